"""What stands between the internet and intake: API keys per channel, a rate
limit per key, and a refusal of bytes that are not UTF-8.

The rate limit is a token bucket per key (per client address for requests
without one) held in this process: with N replicas behind a balancer a key gets
up to N times the rate. That is the documented trade-off for needing no shared
state on every request.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from fastapi import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.intake.metrics import REFUSED
from shared.access import Access, presented_key
from shared.asgibody import read_body, replay_body
from shared.keys import KeyKind, KeyOwner
from shared.ratelimit import TokenBuckets

# The intake channels a call-centre seat submits on.
AGENT_CHANNELS = frozenset({"agent", "phone"})


class Unauthorized(Exception):
    """No key where one is needed, or a key nobody issued (401)."""


class Forbidden(Exception):
    """A valid key of another channel (403)."""


class RateLimited(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"rate limit exceeded; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass
class ChannelGuard:
    access: Access
    buckets: TokenBuckets
    require_keys: bool

    async def check(self, request: Request, channel: str, key: str | None) -> str:
        """Admit a request to the channel; return the bucket it was counted in."""
        if key is None:
            if self.require_keys:
                REFUSED.labels(channel, "no_key").inc()
                raise Unauthorized(f"the {channel} channel needs an API key")
            bucket = f"address:{request.client.host if request.client else 'unknown'}"
        else:
            owner = await self.access.verify(key)
            if owner is None:
                REFUSED.labels(channel, "bad_key").inc()
                raise Unauthorized("invalid API key")
            if not may_submit(owner, channel):
                REFUSED.labels(channel, "wrong_key").inc()
                raise Forbidden(f"this key is not for the {channel} channel")
            bucket = f"key:{owner.key_id}"
        self.limit(bucket, channel)
        return bucket

    def limit(self, bucket: str, channel: str) -> None:
        wait = self.buckets.take(bucket)
        if wait > 0:
            REFUSED.labels(channel, "rate_limited").inc()
            raise RateLimited(max(1, math.ceil(wait)))

    def dependency(self, channel: str) -> Callable[[Request], Awaitable[str]]:
        """A FastAPI dependency admitting requests of one channel."""

        async def admit(request: Request) -> str:
            return await self.check(request, channel, presented_key(request))

        return admit


def may_submit(owner: KeyOwner, channel: str) -> bool:
    """Staff on every channel, an agent on the call centre's, a channel key on its own."""
    if owner.kind == KeyKind.STAFF:
        return True
    if owner.kind == KeyKind.AGENT:
        return channel in AGENT_CHANNELS
    return owner.kind == KeyKind.CHANNEL and owner.id == channel


ErrorRenderer = Callable[[Scope, int, str], Response]


class Utf8Middleware:
    """Refuses a body or query string that is not UTF-8 with a clear 400, before
    any parser guesses at it (form parsing would otherwise read it as Latin-1)."""

    def __init__(self, app: ASGIApp, render: ErrorRenderer) -> None:
        self.app = app
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the client went away
        problem = _utf8_problem(scope.get("query_string", b""), body)
        if problem is not None:
            REFUSED.labels("http", "not_utf8").inc()
            await self.render(scope, 400, problem)(scope, receive, send)
            return
        await self.app(scope, replay_body(body, receive), send)


def _utf8_problem(query: bytes, body: bytes) -> str | None:
    try:
        unquote_to_bytes(query).decode("utf-8")
    except UnicodeDecodeError:
        return "the query string is not valid UTF-8"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"the request body is not valid UTF-8 (byte {exc.start}); send UTF-8"
    return None
