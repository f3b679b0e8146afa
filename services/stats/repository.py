"""The stats service's collections; stats is their only writer.

- events: the append-only archive, one document per event_id, in arrival order
  (`seq`): the audit trail and the source every other collection derives from;
- tickets: the per-ticket view (current state and every step);
- counters: the measures per day x department x district x category x channel,
  and beside it each roll-up (counters_all, counters_department, ...);
- meta: the aggregator's checkpoint in the archive and its lease.

FerretDB hangs on update batches of a hundred statements or more, and applies
updates without isolation: updates go one document at a time, in chunks, from a
single writer (the aggregator holding the lease); new documents go in bulk.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.stats.measures import DIMENSIONS, Bucket
from shared.mongo import Document

DUPLICATE_KEY = 11000
INSERT_CHUNK = 1000
ROLLUPS = ("full", "all", *DIMENSIONS)


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

    async def insert_many(self, docs: list[Document]) -> None:
        """Documents that do not exist yet (the caller looked), in chunks the
        store takes at once."""
        for start in range(0, len(docs), INSERT_CHUNK):
            await self.collection.insert_many(docs[start : start + INSERT_CHUNK], ordered=False)

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
        fields = ("department", "district", "status", "received_at", "deadline", "handlers")
        for field in (*fields, "caller"):
            await self.collection.create_index([(field, 1)])

    async def search(
        self, query: Document, skip: int, limit: int, with_steps: bool = False
    ) -> tuple[list[Document], int]:
        total = await self.collection.count_documents(query)
        cursor = (
            self.collection.find(query, None if with_steps else {"steps": 0})
            .sort([("received_at", -1), ("_id", 1)])
            .skip(skip)
            .limit(limit)
        )
        return await cursor.to_list(), total


class Counters(Documents):
    """One collection per roll-up: the full buckets in "counters", each roll-up
    in "counters_<rollup>". A query reads only the roll-up that answers it; the
    roll-ups, a few percent of the documents, are what the summary page and the
    gauges read most (and FerretDB scans a whole collection for any query)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db, "counters")
        self.collections = {
            rollup: self.collection if rollup == "full" else db[f"counters_{rollup}"]
            for rollup in ROLLUPS
        }

    async def ensure_indexes(self) -> None:
        for collection in self.collections.values():
            await collection.create_index([("day", 1)])

    async def get_many(self, ids: list[str]) -> dict[str, Document]:
        by_rollup: dict[str, list[str]] = defaultdict(list)
        for key in ids:
            by_rollup[Bucket(*key.split("|")).rollup].append(key)
        found: dict[str, Document] = {}
        for rollup, keys in by_rollup.items():
            cursor = self.collections[rollup].find({"_id": {"$in": keys}})
            found.update({doc["_id"]: doc for doc in await cursor.to_list()})
        return found

    async def put(self, doc: Document) -> None:
        collection = self.collections[doc["rollup"]]
        await collection.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def insert_many(self, docs: list[Document]) -> None:
        by_rollup: dict[str, list[Document]] = defaultdict(list)
        for doc in docs:
            by_rollup[doc["rollup"]].append(doc)
        for rollup, some in by_rollup.items():
            for start in range(0, len(some), INSERT_CHUNK):
                chunk = some[start : start + INSERT_CHUNK]
                await self.collections[rollup].insert_many(chunk, ordered=False)

    async def clear(self) -> None:
        for collection in self.collections.values():
            await collection.delete_many({})

    async def find(self, query: Document) -> list[Document]:
        """Counter documents of one roll-up (query["rollup"])."""
        collection = self.collections[query["rollup"]]
        return await collection.find(query, {"_id": 0, "applied_upto": 0}).to_list()


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
        # matched, not modified: a renewal within the same millisecond changes nothing
        # and still holds the lease.
        return result.matched_count == 1

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
