"""API keys, shared by the services that take calls from outside.

A key is 32 random bytes, shown once when issued; only its SHA-256 is stored. A
slow password hash buys nothing for random keys of this length and would cost
every request. Each service keeps its own keys in its own database: the router's
belong to departments and staff, intake's to channels and staff.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document

KEY_PREFIX = "hk_"
MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class KeyOwner:
    """Who a key belongs to: a kind ("department", "staff", "channel") and an id."""

    kind: str
    id: str
    key_id: str


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyStore:
    def __init__(self, db: AsyncDatabase[Document], collection: str = "api_keys") -> None:
        self._keys = db[collection]

    async def ensure_indexes(self) -> None:
        await self._keys.create_index([("key_id", 1)], unique=True)

    async def issue(self, kind: str, owner: str, now: datetime) -> tuple[str, str]:
        """A new key for the owner: (key_id, key). The key itself is not kept."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_digest = digest(key)
        key_id = key_digest[:12]
        await self._keys.insert_one(
            {
                "_id": key_digest,
                "key_id": key_id,
                "kind": kind,
                "principal": owner,
                "created_at": now,
                "revoked_at": None,
            }
        )
        return key_id, key

    async def verify(self, key: str) -> KeyOwner | None:
        if not key.startswith(KEY_PREFIX) or len(key) > MAX_KEY_LENGTH:
            return None
        doc = await self._keys.find_one({"_id": digest(key), "revoked_at": None})
        if doc is None:
            return None
        return KeyOwner(kind=str(doc["kind"]), id=str(doc["principal"]), key_id=doc["key_id"])

    async def revoke(self, key_id: str, now: datetime) -> bool:
        result = await self._keys.update_one(
            {"key_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
        )
        return result.modified_count == 1

    async def list(self) -> list[dict[str, Any]]:
        cursor = self._keys.find({}, {"_id": 0}).sort("created_at", 1)
        return await cursor.to_list()
