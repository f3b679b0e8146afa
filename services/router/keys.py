"""API keys of departments and hotline staff (stored as shared.keys describes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.router.workflow.state import Principal
from shared.domain import ActorKind
from shared.keys import ApiKeyStore
from shared.mongo import Document


class KeyRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._store = ApiKeyStore(db)

    async def ensure_indexes(self) -> None:
        await self._store.ensure_indexes()

    async def issue(self, principal: Principal, now: datetime) -> tuple[str, str]:
        """A new key for the principal: (key_id, key). The key is not kept."""
        return await self._store.issue(principal.kind.value, principal.id, now)

    async def verify(self, key: str) -> Principal | None:
        owner = await self._store.verify(key)
        if owner is None:
            return None
        return Principal(kind=ActorKind(owner.kind), id=owner.id)

    async def revoke(self, key_id: str, now: datetime) -> bool:
        return await self._store.revoke(key_id, now)

    async def list(self) -> list[dict[str, Any]]:
        return await self._store.list()
