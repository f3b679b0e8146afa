"""API keys of departments and hotline staff.

A key is 32 random bytes, shown once when issued; only its SHA-256 is stored. A
slow password hash buys nothing for random keys of this length and would cost
every request."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.router.workflow.state import Principal
from shared.domain import ActorKind
from shared.mongo import Document

KEY_PREFIX = "hk_"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._keys = db["api_keys"]

    async def ensure_indexes(self) -> None:
        await self._keys.create_index([("key_id", 1)], unique=True)

    async def issue(self, principal: Principal, now: datetime) -> tuple[str, str]:
        """A new key for the principal: (key_id, key). The key is not kept."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        digest = _digest(key)
        key_id = digest[:12]
        await self._keys.insert_one(
            {
                "_id": digest,
                "key_id": key_id,
                "kind": principal.kind.value,
                "principal": principal.id,
                "created_at": now,
                "revoked_at": None,
            }
        )
        return key_id, key

    async def verify(self, key: str) -> Principal | None:
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        doc = await self._keys.find_one({"_id": _digest(key), "revoked_at": None})
        if doc is None:
            return None
        return Principal(kind=ActorKind(doc["kind"]), id=doc["principal"])

    async def revoke(self, key_id: str, now: datetime) -> bool:
        result = await self._keys.update_one(
            {"key_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
        )
        return result.modified_count == 1

    async def list(self) -> list[dict[str, Any]]:
        cursor = self._keys.find({}, {"_id": 0}).sort("created_at", 1)
        return await cursor.to_list()
