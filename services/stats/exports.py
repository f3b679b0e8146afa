"""Exports of tickets with the citizens' contacts: staff only, each one recorded
(who, when, with which filter, how many rows) and the record readable by staff."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pymongo.asynchronous.database import AsyncDatabase

from services.stats.access import ticket_contact
from services.stats.projection import ordered_steps
from shared.access import allow, refusal_responses
from shared.keys import KeyKind, KeyOwner
from shared.mongo import Document

CONTACT_COLUMNS = ("name", "phone", "town", "address")


class ExportLog:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._log = db["contact_exports"]

    async def ensure_indexes(self) -> None:
        await self._log.create_index([("at", -1)])

    async def record(
        self, owner: KeyOwner, at: datetime, filters: dict[str, Any], rows: int
    ) -> None:
        await self._log.insert_one(
            {
                "at": at,
                "kind": owner.kind.value,
                "by": owner.id,
                "key_id": owner.key_id,
                "filters": filters,
                "rows": rows,
            }
        )

    async def latest(self, limit: int) -> list[Document]:
        cursor = self._log.find({}, {"_id": 0}).sort("at", -1).limit(limit)
        return await cursor.to_list()


def with_contacts(items: list[Document]) -> list[Document]:
    """Rows of a contacts export: each ticket with its contact's columns, the
    steps they were read from dropped."""
    rows = []
    for item in items:
        contact = ticket_contact(ordered_steps(item)).model_dump()
        item.pop("steps", None)
        rows.append({**item, **{f"contact_{c}": contact[c] for c in CONTACT_COLUMNS}})
    return rows


def export_routes(log: ExportLog) -> APIRouter:
    router = APIRouter(tags=["tickets"])
    staff = Depends(allow(KeyKind.STAFF))

    @router.get("/exports", dependencies=[staff], responses=refusal_responses())
    async def contact_exports(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Every export of tickets with contacts, newest first (hotline staff only)."""
        return await log.latest(limit)

    return router
