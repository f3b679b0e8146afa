"""Refuses JSON bodies whose strings are not clean text, before any handler.

JSON may spell an unpaired surrogate (`"\\ud800"`) or a control character
(`"\\u0000"`) as an escape; Python's json module accepts both. An unpaired
surrogate cannot be encoded as UTF-8, so it would fail later in the store, the
broker or the error response itself (a 500); a NUL or a bell in a citizen's
text is never meant. Both are refused here with a 422 that says which field.

Cheap on the common path: the body is parsed a second time only when its raw
bytes contain such an escape.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.asgibody import read_body, replay_body
from shared.problems import invalid_input

SUSPECT = re.compile(rb"\\u[dD][89a-fA-F]|\\u00[01][0-9a-fA-F]|\\u007[fF]")
ALLOWED_CONTROLS = frozenset("\t\n\r")
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def text_problem(value: str) -> str | None:
    for ch in value:
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            return "contains an unpaired surrogate: not valid Unicode text"
        if (code < 0x20 and ch not in ALLOWED_CONTROLS) or code == 0x7F:
            return f"contains the control character U+{code:04X}"
    return None


def find_bad_text(
    value: Any, loc: tuple[str | int, ...] = ("body",)
) -> tuple[list[str | int], str] | None:
    """The location and problem of the first string (key or value) that is not clean text."""
    if isinstance(value, str):
        problem = text_problem(value)
        return ([*loc], problem) if problem else None
    items: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key)
            if problem:
                return [*loc, key], problem
            items.append((key, item))
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, item in items:
        found = find_bad_text(item, (*loc, key))
        if found:
            return found
    return None


class TextGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in METHODS_WITH_BODY:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:  # the client went away
            return
        found = _check(body) if SUSPECT.search(body) else None
        if found is not None:
            loc, problem = found
            errors = [{"loc": loc, "msg": f"text {problem}", "type": "value_error.text"}]
            await invalid_input(errors)(scope, receive, send)
            return
        await self.app(scope, replay_body(body, receive), send)


def _check(body: bytes) -> tuple[list[str | int], str] | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None  # not JSON: the app's own parsing refuses it
    return find_bad_text(parsed)
