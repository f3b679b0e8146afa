"""The stats service's collections; stats is their only writer.

- events: the append-only archive, one document per event_id, in arrival order
  (`seq`): the audit trail and the source every other collection derives from;
- tickets: the per-ticket view (current state and every step);
- counters: the measures per day x department x district x category x channel;
- meta: the aggregator's checkpoint in the archive and its lease.

FerretDB hangs on update batches of a hundred statements or more, and applies
updates without isolation: writes go one document at a time, in chunks, from a
single writer (the aggregator holding the lease).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.mongo import Document

DUPLICATE_KEY = 11000


class EventArchive:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._events = db["events"]

    async def ensure_indexes(self) -> None:
        await self._events.create_index([("seq", 1)])
        await self._events.create_index([("ticket_id", 1)])

    async def add_many(self, docs: list[Document]) -> int:
        """Archive the events; those archived before are left as they were.
        Returns how many were new."""
        if not docs:
            return 0
        try:
            result = await self._events.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(err.get("code") != DUPLICATE_KEY for err in errors):
                raise
            return len(docs) - len(errors)
        return len(result.inserted_ids)

    async def after(self, seq: str, before: str, limit: int) -> list[Document]:
        cursor = self._events.find({"seq": {"$gt": seq, "$lt": before}}).sort("seq", 1).limit(limit)
        return await cursor.to_list()

    async def for_ticket(self, ticket_id: str) -> list[Document]:
        return await self._events.find({"ticket_id": ticket_id}).sort("seq", 1).to_list()

    async def count(self) -> int:
        return await self._events.count_documents({})


class Documents:
    """A collection read and written whole, one document per key."""

    def __init__(self, db: AsyncDatabase[Document], name: str) -> None:
        self.collection = db[name]

    async def get_many(self, ids: list[str]) -> dict[str, Document]:
        if not ids:
            return {}
        cursor = self.collection.find({"_id": {"$in": ids}})
        return {doc["_id"]: doc for doc in await cursor.to_list()}

    async def put(self, doc: Document) -> None:
        await self.collection.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def get(self, doc_id: str) -> Document | None:
        return await self.collection.find_one({"_id": doc_id})

    async def clear(self) -> None:
        await self.collection.delete_many({})

    async def aggregate(self, pipeline: list[Document]) -> list[Document]:
        cursor = await self.collection.aggregate(pipeline)
        return await cursor.to_list()


class TicketViews(Documents):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db, "tickets")

    async def ensure_indexes(self) -> None:
        for field in ("department", "district", "status", "received_at", "deadline"):
            await self.collection.create_index([(field, 1)])

    async def search(self, query: Document, skip: int, limit: int) -> tuple[list[Document], int]:
        total = await self.collection.count_documents(query)
        cursor = (
            self.collection.find(query, {"steps": 0})
            .sort([("received_at", -1), ("_id", 1)])
            .skip(skip)
            .limit(limit)
        )
        return await cursor.to_list(), total


class Counters(Documents):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db, "counters")

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("rollup", 1), ("day", 1)])

    async def find(self, query: Document) -> list[Document]:
        return await self.collection.find(query, {"_id": 0, "applied_upto": 0}).to_list()


class Meta:
    """The aggregator's checkpoint and lease (one document each)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._meta = db["meta"]

    async def checkpoint(self) -> str:
        doc = await self._meta.find_one({"_id": "checkpoint"})
        return str(doc["seq"]) if doc else ""

    async def set_checkpoint(self, seq: str) -> None:
        await self._meta.replace_one({"_id": "checkpoint"}, {"seq": seq}, upsert=True)

    async def take_lease(self, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Hold (or renew) the aggregator's lease; False while another holds it."""
        try:
            await self._meta.insert_one({"_id": "lease", "holder": holder, "until": now + ttl})
            return True
        except DuplicateKeyError:
            pass
        doc = await self._meta.find_one({"_id": "lease"})
        if doc is None or (doc["holder"] != holder and doc["until"] > now):
            return False
        result = await self._meta.update_one(
            {"_id": "lease", "holder": doc["holder"], "until": doc["until"]},
            {"$set": {"holder": holder, "until": now + ttl}},
        )
        return result.modified_count == 1

    async def pause(self, holder: str, until: datetime) -> None:
        """Ask live aggregators to stand aside (for a rebuild) until `until`."""
        await self._meta.replace_one(
            {"_id": "pause"}, {"holder": holder, "until": until}, upsert=True
        )

    async def paused_by_other(self, holder: str, now: datetime) -> bool:
        doc = await self._meta.find_one({"_id": "pause"})
        return doc is not None and doc["holder"] != holder and doc["until"] > now

    async def resume(self, holder: str) -> None:
        await self._meta.delete_one({"_id": "pause", "holder": holder})

    async def release_lease(self, holder: str) -> None:
        await self._meta.delete_one({"_id": "lease", "holder": holder})

    async def info(self) -> dict[str, Any]:
        return {doc["_id"]: doc for doc in await self._meta.find({}).to_list()}
