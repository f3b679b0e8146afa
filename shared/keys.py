"""API keys: one key store for every service.

A key is 32 random bytes, shown once when issued; only its SHA-256 is stored. A
slow password hash buys nothing for random keys of this length and would cost
every request. The keys live in one database of their own (`hotline_keys` by
default, `HOTLINE_KEYS_DB`); `hotline keys` is its only writer, every service
reads it to verify the keys presented to it.

A key belongs to one kind of owner:
- staff: the hotline centre, reads and acts on everything;
- department: a unit of the directory, reads its own tickets and statistics;
- agent: a call-centre seat, submits calls and reads the tickets of its callers;
- channel: an intake channel, submits on that channel and reads nothing else.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document
from shared.settings import CommonSettings

KEY_PREFIX = "hk_"
MAX_KEY_LENGTH = 200
COLLECTION = "api_keys"


class KeyKind(StrEnum):
    STAFF = "staff"
    DEPARTMENT = "department"
    AGENT = "agent"
    CHANNEL = "channel"


@dataclass(frozen=True)
class KeyOwner:
    """Who a key belongs to: its kind and an id (a staff member, a unit id of the
    directory, an agent seat, a channel name)."""

    kind: KeyKind
    id: str
    key_id: str

    @property
    def is_staff(self) -> bool:
        return self.kind == KeyKind.STAFF


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def keys_database(
    client: AsyncMongoClient[Document], settings: CommonSettings
) -> AsyncDatabase[Document]:
    return client[settings.keys_database]


class KeyStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._keys = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._keys.create_index([("key_id", 1)], unique=True)

    async def issue(self, kind: KeyKind, owner: str, now: datetime) -> tuple[str, str]:
        """A new key for the owner: (key_id, key). The key itself is not kept."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_digest = digest(key)
        key_id = key_digest[:12]
        await self._keys.insert_one(
            {
                "_id": key_digest,
                "key_id": key_id,
                "kind": kind.value,
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
        if doc is None or doc.get("kind") not in KeyKind.__members__.values():
            return None
        return KeyOwner(kind=KeyKind(doc["kind"]), id=str(doc["principal"]), key_id=doc["key_id"])

    async def revoke(self, key_id: str, now: datetime) -> bool:
        result = await self._keys.update_one(
            {"key_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
        )
        return result.modified_count == 1

    async def list(self) -> list[dict[str, Any]]:
        cursor = self._keys.find({}, {"_id": 0}).sort("created_at", 1)
        return await cursor.to_list()
