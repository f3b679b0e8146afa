"""Who is calling: every service verifies the API key of a request the same way
and answers /v1/whoami from here.

A key is presented as `X-API-Key: hk_...` or `Authorization: Bearer hk_...`.
Refusals are JSON: 401 for no key or a key nobody issued (or one revoked), 403
for a valid key that may not do this, each with a code and a message.

Verified keys are trusted for `key_cache_s` seconds (2 by default) without asking
the store again, so a revoked key stops working at most that long after
`hotline keys revoke`. Keys that fail are never cached: a key issued a moment
ago works at once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from pymongo import AsyncMongoClient

from shared.directory import Directory
from shared.keys import KeyKind, KeyOwner, KeyStore, keys_database
from shared.mongo import Document
from shared.problems import problem_response
from shared.settings import CommonSettings

MAX_CACHED = 10_000

REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid API key (X-API-Key or Authorization: Bearer)"},
    403: {"description": "the key may not read or do this"},
}


class AccessDenied(Exception):
    """A refused request: 401 (who are you?) or 403 (not for you)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = "UNAUTHENTICATED" if status == 401 else "FORBIDDEN"


def unauthenticated(message: str = "a valid API key is required") -> AccessDenied:
    return AccessDenied(401, message)


def forbidden(message: str) -> AccessDenied:
    return AccessDenied(403, message)


def presented_key(request: Request) -> str | None:
    """The key of the X-API-Key header or of an Authorization: Bearer header."""
    key = request.headers.get("x-api-key")
    if key and key.strip():
        return key.strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@dataclass
class Access:
    """Verifies keys against the shared store, with a short cache of good ones."""

    store: KeyStore
    directory: Directory | None = None
    cache_s: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _cache: dict[str, tuple[float, KeyOwner]] = field(default_factory=dict)

    async def verify(self, key: str) -> KeyOwner | None:
        now = self.clock()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        owner = await self.store.verify(key)
        if owner is None:
            self._cache.pop(key, None)
            return None
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()  # a flood of keys must not grow memory forever
        self._cache[key] = (now, owner)
        return owner

    async def owner(self, request: Request) -> KeyOwner:
        """The owner of the request's key, or 401."""
        key = presented_key(request)
        owner = await self.verify(key) if key else None
        if owner is None:
            raise unauthenticated()
        return owner

    def name(self, owner: KeyOwner) -> str:
        """A person-readable name: the directory's for a department, else the id."""
        if owner.kind == KeyKind.DEPARTMENT and self.directory is not None:
            department = self.directory.department(owner.id)
            if department is not None:
                return department.name
        return owner.id


# Declared so that the OpenAPI documents name the two ways to present a key and
# /docs offers to send one; the key itself is read by presented_key().
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey")
BEARER = HTTPBearer(auto_error=False, scheme_name="Bearer")


async def caller(
    request: Request,
    _header: Annotated[str | None, Security(API_KEY_HEADER)] = None,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
) -> KeyOwner:
    """FastAPI dependency: the owner of the request's key (401 without one)."""
    access: Access = request.app.state.access
    return await access.owner(request)


Caller = Annotated[KeyOwner, Depends(caller)]


def allow(*kinds: KeyKind) -> Callable[[KeyOwner], Awaitable[KeyOwner]]:
    """FastAPI dependency: a key of one of these kinds (401 without, 403 other)."""
    allowed = frozenset(kinds)

    async def check(owner: Caller) -> KeyOwner:
        if owner.kind not in allowed:
            names = ", ".join(sorted(k.value for k in allowed))
            raise forbidden(f"a {owner.kind.value} key may not read this (needs: {names})")
        return owner

    return check


class WhoAmI(BaseModel):
    kind: KeyKind
    id: str
    key_id: str
    name: str


class Refusal(BaseModel):
    code: str
    message: str
    detail: str


def install_access(app: FastAPI, access: Access) -> None:
    """Keys verified for this app, /v1/whoami, and JSON refusals."""
    app.state.access = access

    @app.get("/v1/whoami", tags=["access"], responses=refusal_responses(401))
    async def whoami(owner: Caller) -> WhoAmI:
        """The owner of the key presented: its kind, id, key id and name."""
        return WhoAmI(kind=owner.kind, id=owner.id, key_id=owner.key_id, name=access.name(owner))

    @app.exception_handler(AccessDenied)
    async def _denied(_: Request, exc: AccessDenied) -> JSONResponse:
        return refusal(exc.status, exc.code, exc.message)


def refusal(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="hotline"'} if status == 401 else None
    return problem_response(status, message, code, headers=headers)


def refusal_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for routes that may refuse with these statuses (401
    and 403 when none are named)."""
    return {s: {**REFUSALS[s], "model": Refusal} for s in statuses or (401, 403)}


def open_access(
    client: AsyncMongoClient[Document], settings: CommonSettings, directory: Directory | None
) -> Access:
    """The service's view of the shared key store."""
    return Access(KeyStore(keys_database(client, settings)), directory, settings.key_cache_s)
