"""The stats service's collections: the event archive, the per-ticket view and
the daily counters. Stats is their only writer.

Exactly-once without transactions: the archive insert is keyed by event_id; the
ticket view is updated only if it has not recorded the event_id yet, in one
single-document update; a counter is set to the count of archived events in its
bucket with $max, so replaying an event can never raise it twice.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import Document

BUCKET_FIELDS = ("day", "measure", "district", "category", "channel", "department")


class EventArchive:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._events = db["events"]

    async def ensure_indexes(self) -> None:
        await self._events.create_index([(f, 1) for f in BUCKET_FIELDS])
        await self._events.create_index([("ticket_id", 1), ("occurred_at", 1)])

    async def add(self, doc: Document) -> bool:
        """Store the event; False if it was stored before."""
        try:
            await self._events.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def count_bucket(self, bucket: dict[str, Any]) -> int:
        return await self._events.count_documents(bucket)


class TicketViews:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._views = db["tickets"]

    async def ensure_indexes(self) -> None:
        await self._views.create_index([("department", 1)])
        await self._views.create_index([("district", 1)])

    async def apply(self, ticket_id: str, event_id: str, fields: Document, step: Document) -> bool:
        """Record one step of the ticket's history once; False if already recorded."""
        try:
            await self._views.update_one(
                {"_id": ticket_id, "applied": {"$ne": event_id}},
                {"$set": fields, "$push": {"history": step, "applied": event_id}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # the document exists and already holds this event
        return True

    async def get(self, ticket_id: str) -> Document | None:
        return await self._views.find_one({"_id": ticket_id}, {"applied": 0})


class DailyCounters:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._counters = db["daily"]

    async def ensure_indexes(self) -> None:
        await self._counters.create_index([("day", 1), ("measure", 1)])

    async def raise_to(self, bucket: dict[str, Any], count: int) -> None:
        key = "|".join(str(bucket[f]) for f in BUCKET_FIELDS)
        for _ in range(2):  # a concurrent upsert of the same new bucket may win once
            try:
                await self._counters.update_one(
                    {"_id": key},
                    {"$max": {"count": count}, "$setOnInsert": bucket},
                    upsert=True,
                )
                return
            except DuplicateKeyError:
                continue

    async def totals(self, start: date, end: date, where: dict[str, str]) -> dict[str, int]:
        match: Document = {"day": {"$gte": start.isoformat(), "$lte": end.isoformat()}, **where}
        cursor = await self._counters.aggregate(
            [{"$match": match}, {"$group": {"_id": "$measure", "count": {"$sum": "$count"}}}]
        )
        return {doc["_id"]: int(doc["count"]) for doc in await cursor.to_list()}
