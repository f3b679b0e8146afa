"""The router's record of each ticket's workflow; the router is its only writer.

A ticket's outgoing events are stored in the same document as its new state, in
one write, before they are published (an outbox). Whatever crashes between the
write and the publish, the events are published later — by the redelivered input
or by the outbox relay — with the same event_id, which consumers apply once.

Writes are conditional on the version read (optimistic concurrency): on MongoDB
the compare-and-set is atomic; on FerretDB, whose updates are not isolated, the
command service also serialises writers of one ticket in the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.router.workflow.state import TicketState
from shared.events import EVENT_ADAPTER, Envelope, TicketEvent
from shared.mongo import Document, insert_new


class StaleState(Exception):
    """The ticket changed since it was read."""


@dataclass(frozen=True)
class StoredTicket:
    state: TicketState
    outbox: list[TicketEvent]


class TicketRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._tickets = db["tickets"]

    async def ensure_indexes(self) -> None:
        await self._tickets.create_index([("status", 1), ("dispatched_at", 1)])
        await self._tickets.create_index([("department", 1), ("status", 1)])
        await self._tickets.create_index([("outbox_since", 1)])

    async def get(self, ticket_id: str) -> StoredTicket | None:
        doc = await self._tickets.find_one({"_id": ticket_id})
        return _stored(doc) if doc else None

    async def create(
        self, state: TicketState, events: list[Envelope], now: datetime
    ) -> tuple[StoredTicket, bool]:
        """Insert a new ticket with its events; (existing, False) if it existed."""
        doc = {**_state_doc(state), "outbox": _dump(events), "outbox_since": now}
        try:
            await self._tickets.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.get(state.ticket_id)
            if existing is None:  # nothing in this system deletes tickets
                raise
            return existing, False
        return _stored(doc), True

    async def create_many(
        self, new: list[tuple[TicketState, list[Envelope]]], now: datetime
    ) -> list[tuple[StoredTicket, bool]]:
        """create() for a batch of tickets in one write; each in the order given."""
        docs = [{**_state_doc(s), "outbox": _dump(e), "outbox_since": now} for s, e in new]
        taken = await insert_new(self._tickets, docs)
        stored: list[tuple[StoredTicket, bool]] = []
        for i, doc in enumerate(docs):
            if i not in taken:
                stored.append((_stored(doc), True))
                continue
            existing = await self.get(doc["_id"])
            if existing is None:  # nothing in this system deletes tickets
                raise LookupError(f"ticket {doc['_id']} neither new nor stored")
            stored.append((existing, False))
        return stored

    async def save(self, state: TicketState, events: list[Envelope], now: datetime) -> TicketState:
        """Store the new state (read at state.version) and queue its events."""
        saved = state.model_copy(update={"version": state.version + 1})
        result = await self._tickets.update_one(
            {"_id": state.ticket_id, "version": state.version},
            {
                "$set": {**_state_doc(saved), "outbox_since": now},
                "$push": {"outbox": {"$each": _dump(events)}},
            },
        )
        if result.matched_count == 0:
            raise StaleState(state.ticket_id)
        return saved

    async def clear_outbox(self, ticket_id: str, version: int) -> None:
        # Only if nothing was written since: newer events stay for the relay.
        await self._tickets.update_one(
            {"_id": ticket_id, "version": version},
            {"$set": {"outbox": [], "outbox_since": None}},
        )

    async def clear_outboxes(self, published: list[tuple[str, int]]) -> None:
        """clear_outbox() for (ticket, version) pairs, in one write."""
        if not published:
            return
        updates = [
            UpdateOne({"_id": t, "version": v}, {"$set": {"outbox": [], "outbox_since": None}})
            for t, v in published
        ]
        await self._tickets.bulk_write(updates, ordered=False)

    async def with_pending_outbox(self, before: datetime, limit: int = 100) -> list[StoredTicket]:
        cursor = self._tickets.find({"outbox_since": {"$ne": None, "$lt": before}}).limit(limit)
        return [_stored(doc) for doc in await cursor.to_list()]

    async def list(self, query: dict[str, Any], limit: int, skip: int = 0) -> list[TicketState]:
        cursor = self._tickets.find(query).sort("_id", 1).skip(skip).limit(limit)
        return [_stored(doc).state for doc in await cursor.to_list()]


def _state_doc(state: TicketState) -> Document:
    doc = state.model_dump(mode="python")
    doc["_id"] = doc.pop("ticket_id")
    doc["draft"] = state.draft.model_dump(mode="json")
    return doc


def _dump(events: list[Envelope]) -> list[Document]:
    return [event.model_dump(mode="json") for event in events]


def _stored(doc: Document) -> StoredTicket:
    fields = {k: v for k, v in doc.items() if k not in ("_id", "outbox", "outbox_since")}
    state = TicketState.model_validate({**fields, "ticket_id": doc["_id"]})
    outbox = [EVENT_ADAPTER.validate_python(e) for e in doc.get("outbox") or []]
    return StoredTicket(state, outbox)
