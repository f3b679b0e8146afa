"""The text guard: JSON strings with unpaired surrogates or control characters
are refused with a 422 naming the field; everything else reaches the app."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from shared.http import create_app
from shared.textguard import find_bad_text


class Body(BaseModel):
    text: str


def app() -> FastAPI:
    application = create_app("test", {}, title="guard")

    @application.post("/echo")
    async def echo(body: Body) -> dict[str, str]:
        return {"text": body.text}

    return application


async def post(content: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(
            "/echo", content=content, headers={"Content-Type": "application/json"}
        )


@pytest.mark.parametrize(
    ("raw", "field", "problem"),
    [
        (rb'{"text": "a\ud800b"}', ["body", "text"], "surrogate"),
        (rb'{"text": "\udc00"}', ["body", "text"], "surrogate"),
        (rb'{"text": "a\u0000b"}', ["body", "text"], "U+0000"),
        (rb'{"text": "ring\u0007"}', ["body", "text"], "U+0007"),
        (rb'{"text": "ok", "x": ["fine", {"k\u0001": 1}]}', ["body", "x", 1, "k\x01"], "U+0001"),
    ],
)
async def test_refused_with_the_field(raw: bytes, field: list[object], problem: str) -> None:
    response = await post(raw)
    assert response.status_code == 422
    detail = response.json()["errors"][0]
    assert detail["loc"] == field
    assert problem in detail["msg"]


@pytest.mark.parametrize(
    "raw",
    [
        '{"text": "路灯坏了"}'.encode(),
        rb'{"text": "emoji \ud83d\ude00 pair"}',  # a surrogate pair is one valid character
        rb'{"text": "tab\tnew\nline\r"}',
        rb'{"text": "\u0041\u00e9"}',
        rb'{"text": "a backslash then u: \\ud800"}',  # escaped backslash: text, not a surrogate
    ],
)
async def test_clean_text_reaches_the_app(raw: bytes) -> None:
    response = await post(raw)
    assert response.status_code == 200, response.text


def test_find_bad_text_walks_keys_values_and_lists() -> None:
    assert find_bad_text({"a": ["ok", "ok"], "b": {"c": "fine"}}) is None
    assert find_bad_text(["x", "\x7f"]) == (["body", 1], "contains the control character U+007F")
