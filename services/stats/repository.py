"""The stats service's collections; stats is their only writer.

- events: the append-only archive, one document per event_id, in arrival order
  (`seq`): the audit trail and the source every other collection derives from;
- inbox: what the aggregator has still to fold, one document per chunk of a
  consumer's batch, deleted once folded (services.stats.aggregator);
- tickets: the per-ticket view (current state and every step);
- rollups: the counters per day, for every filter combination
  (services.stats.rollups);
- meta: the aggregator's checkpoint in the archive (and the batch it is
  applying), and its lease.

FerretDB narrows a query to an index only for a plain _id: documents are read
by _id, one lookup each, never with $in (which reads the whole collection). It
hangs on update batches of a hundred statements or more: bulk writes go in
chunks below that, from a single writer (the aggregator holding the lease).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from pymongo import DeleteOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.stats.packing import PACKED, pack, unpacked
from services.stats.rollups import Increments, Place, read_place
from shared.mongo import Document, insert_new

WRITE_CHUNK = 90  # statements per bulk write
INSERT_CHUNK = 1000  # documents per insert_many
READ_CHUNK = 64  # lookups by _id in flight at once
INBOX_CHUNK = 250  # archive records per inbox document


class EventArchive:
    """The archive and, beside it, the inbox the aggregator drains.

    The dev store narrows no query but an exact `_id`, except one: an
    unfiltered, unsorted `find().limit(n)` becomes an SQL LIMIT. So the
    aggregator reads its next batch from the inbox that way, a few documents
    of many records each, and deletes them by `_id` once folded: a batch costs
    what it folds, not the whole archive. An inbox document holds its records
    packed (BSON, compressed) in one binary field: the dev store converts every
    field of a document on each insert, read and delete, and a binary field is
    one field."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._events = db["events"]
        self._inbox = db["inbox"]

    async def ensure_indexes(self) -> None:
        await self._events.create_index([("seq", 1)])
        await self._events.create_index([("ticket_id", 1)])

    async def add_many(self, docs: list[Document]) -> int:
        """Archive the events (those archived before are left as they were),
        then hand all of them to the aggregator's inbox: a redelivered event may
        be there twice, or come again after it was folded, and the aggregator
        folds an event once (its ticket's view holds its step). Returns how
        many were new to the archive."""
        if not docs:
            return 0
        new = len(docs) - len(await insert_new(self._events, docs))
        chunks = [docs[i : i + INBOX_CHUNK] for i in range(0, len(docs), INBOX_CHUNK)]
        await self._inbox.insert_many([{PACKED: pack(chunk)} for chunk in chunks])
        return new

    async def inbox_head(self, documents: int) -> list[Document]:
        """Some inbox documents, oldest first as the store keeps them (not
        filtered, not sorted: the dev store reads only these)."""
        return [unpacked(doc) for doc in await self._inbox.find({}).limit(documents).to_list()]

    async def inbox_get(self, ids: list[Any]) -> list[Document]:
        """These inbox documents, those still there (a pinned batch read again)."""
        return [unpacked(doc) for doc in await _by_id(self._inbox, ids, {})]

    async def inbox_remove(self, ids: list[Any]) -> None:
        await self._inbox.bulk_write([DeleteOne({"_id": i}) for i in ids], ordered=False)

    async def inbox_size(self) -> int:
        return await self._inbox.count_documents({})

    async def after(self, seq: str, before: str, limit: int) -> list[Document]:
        cursor = self._events.find({"seq": {"$gt": seq, "$lt": before}}).sort("seq", 1).limit(limit)
        return await cursor.to_list()

    async def upto(self, seq: str, last: str) -> list[Document]:
        """The events after `seq` up to `last` included: a batch read again."""
        cursor = self._events.find({"seq": {"$gt": seq, "$lte": last}}).sort("seq", 1)
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
        return {doc["_id"]: doc for doc in await _by_id(self.collection, ids, {})}

    async def put_many(self, docs: list[Document], existing: set[str]) -> set[str]:
        """The `existing` documents replaced in bulk, the others inserted in bulk
        (an upsert costs the store a search first). Returns the ids of those
        inserted that were there after all: they were left as they were."""
        fresh = [doc for doc in docs if doc["_id"] not in existing]
        there: set[str] = set()
        for start in range(0, len(fresh), INSERT_CHUNK):
            chunk = fresh[start : start + INSERT_CHUNK]
            there |= {chunk[i]["_id"] for i in await insert_new(self.collection, chunk)}
        replaced = [ReplaceOne({"_id": d["_id"]}, d) for d in docs if d["_id"] in existing]
        await bulk(self.collection, replaced)
        return there

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


class Counters:
    """The roll-ups (services.stats.rollups), in one collection. A batch's
    increments go out as one $inc per document, in bulk; each document records
    the batch it took last (`applied`), so a batch taken again after a crash
    skips the documents it already reached."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.collection = db["rollups"]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("day", 1)])

    async def applied(self, ids: list[str], batch: str) -> set[str]:
        """Of these documents, those that took `batch` already (read by _id)."""
        found = await _by_id(self.collection, ids, {"applied": 1})
        return {doc["_id"] for doc in found if doc.get("applied") == batch}

    async def add(self, batch: str, increments: Increments, skip: set[str]) -> None:
        ops = []
        for key, counts in increments.docs.items():
            # A view's contribution taken off and added back unchanged sums to 0.
            changes = {path: value for path, value in counts.items() if value}
            if key in skip or not changes:
                continue
            update = {"$inc": changes, "$set": {"applied": batch}}
            update["$setOnInsert"] = increments.about[key]
            ops.append(UpdateOne({"_id": key}, update, upsert=True))
        await bulk(self.collection, ops)

    async def read(self, places: list[Place]) -> list[dict[str, Any]]:
        """The counter group of each place (empty where nothing was counted)."""
        paths = {place.path for place in places}
        found = await _by_id(self.collection, [p.doc_id for p in places], dict.fromkeys(paths, 1))
        docs = {doc["_id"]: doc for doc in found}
        return [read_place(docs.get(place.doc_id), place) for place in places]

    async def clear(self) -> None:
        await self.collection.delete_many({})
        for name in await self.db.list_collection_names():
            if name == "counters" or name.startswith("counters_"):
                await self.db.drop_collection(name)  # the layout before the roll-ups


async def _by_id(
    collection: AsyncCollection[Document], ids: list[Any], projection: Document
) -> list[Document]:
    """Documents by _id, one indexed lookup each (FerretDB reads a whole
    collection for an $in), READ_CHUNK at a time."""
    found: list[Document] = []
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), READ_CHUNK):
        chunk = unique[start : start + READ_CHUNK]
        docs = await asyncio.gather(*(collection.find_one({"_id": i}, projection) for i in chunk))
        found.extend(doc for doc in docs if doc is not None)
    return found


async def bulk(collection: AsyncCollection[Document], ops: list[Any]) -> None:
    """Writes in bulk, in chunks under the size FerretDB hangs on."""
    for start in range(0, len(ops), WRITE_CHUNK):
        await collection.bulk_write(ops[start : start + WRITE_CHUNK], ordered=False)


class Meta:
    """The aggregator's place (one document each): `checkpoint` holds the
    last batch applied and the batch being applied (pinned); `rebuild`, while
    a rebuild folds the archive, how far it got (a seq) and the range it is
    applying; and the lease."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._meta = db["meta"]

    async def pinned(self) -> tuple[str, list[Any]] | None:
        """The inbox batch being applied (its id and inbox documents), if any."""
        doc = await self._meta.find_one({"_id": "checkpoint"}) or {}
        pin = doc.get("pin")
        return (str(pin["batch"]), list(pin["inbox"])) if pin else None

    async def last(self) -> str | None:
        doc = await self._meta.find_one({"_id": "checkpoint"}) or {}
        return doc.get("last")

    async def pin(self, batch: str, inbox: list[Any]) -> None:
        """Until unpinned, every aggregator applies exactly this batch."""
        await self._set_checkpoint(
            {"last": await self.last(), "pin": {"batch": batch, "inbox": inbox}}
        )

    async def unpin(self, batch: str) -> None:
        await self._set_checkpoint({"last": batch})

    async def _set_checkpoint(self, doc: Document) -> None:
        await self._meta.replace_one({"_id": "checkpoint"}, doc, upsert=True)

    async def rebuilding(self) -> tuple[str, str | None] | None:
        """While a rebuild runs: the seq it got to, and the last of the range it
        is applying (pinned)."""
        doc = await self._meta.find_one({"_id": "rebuild"})
        return (str(doc["seq"]), doc.get("pending")) if doc else None

    async def set_rebuild(self, seq: str, pending: str | None = None) -> None:
        doc = {"seq": seq, "pending": pending}
        await self._meta.replace_one({"_id": "rebuild"}, doc, upsert=True)

    async def rebuilt(self) -> None:
        await self._meta.delete_one({"_id": "rebuild"})

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
