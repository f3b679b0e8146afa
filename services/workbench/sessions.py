"""Server-side sessions, kept in the workbench's own database so that any
replica serves any user. The browser holds only a random session id (in an
HttpOnly, SameSite=Strict cookie); the store holds its SHA-256, never the id.

The user's API key is stored encrypted (AES-GCM) under a key derived from the
session id, so a copy of the database alone opens no service to anyone."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document

COOKIE = "wb_session"
# A session seen less than this long ago is not written again on every page.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Session:
    kind: str  # staff, department, agent
    id: str
    name: str
    key_id: str
    key: str
    csrf: str

    @property
    def role_label(self) -> str:
        return {"staff": "热线工作人员", "department": "承办单位", "agent": "坐席"}.get(
            self.kind, self.kind
        )


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _cipher(session_id: str) -> AESGCM:
    return AESGCM(hashlib.sha256(b"workbench-key:" + session_id.encode()).digest())


def seal(session_id: str, key: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + _cipher(session_id).encrypt(nonce, key.encode(), None)


def unseal(session_id: str, sealed: bytes) -> str | None:
    try:
        return _cipher(session_id).decrypt(sealed[:12], sealed[12:], None).decode()
    except (InvalidTag, ValueError):
        return None


class SessionStore:
    def __init__(self, db: AsyncDatabase[Document], idle: timedelta) -> None:
        self._sessions = db["sessions"]
        self._idle = idle

    async def create(self, who: dict[str, Any], key: str, now: datetime) -> str:
        """A new session for the owner of the key; returns the id for the cookie."""
        session_id = secrets.token_urlsafe(32)
        await self._sessions.insert_one(
            {
                "_id": _digest(session_id),
                "kind": str(who["kind"]),
                "id": str(who["id"]),
                "name": str(who.get("name") or who["id"]),
                "key_id": str(who.get("key_id", "")),
                "key": seal(session_id, key),
                "csrf": secrets.token_urlsafe(32),
                "seen_at": now,
            }
        )
        return session_id

    async def get(self, session_id: str, now: datetime) -> Session | None:
        if not session_id or len(session_id) > 100:
            return None
        doc = await self._sessions.find_one({"_id": _digest(session_id)})
        if doc is None:
            return None
        seen: datetime = doc["seen_at"]
        key = unseal(session_id, bytes(doc["key"]))
        if now - seen > self._idle or key is None:
            await self.delete(session_id)
            return None
        if now - seen > TOUCH_EVERY:
            await self._sessions.update_one({"_id": doc["_id"]}, {"$set": {"seen_at": now}})
        return Session(
            kind=doc["kind"],
            id=doc["id"],
            name=doc["name"],
            key_id=doc["key_id"],
            key=key,
            csrf=doc["csrf"],
        )

    async def delete(self, session_id: str) -> None:
        await self._sessions.delete_one({"_id": _digest(session_id)})

    async def purge_idle(self, now: datetime) -> int:
        """Sessions idle past the limit (the dev store has no TTL indexes)."""
        result = await self._sessions.delete_many({"seen_at": {"$lt": now - self._idle}})
        return int(result.deleted_count)
