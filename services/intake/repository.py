"""Intake's records: one per accepted request (with its event, as an outbox), and
the idempotency keys that map a retried request to the ticket it already got."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pymongo import InsertOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.intake.numbers import NumberBlocks
from shared.domain import TicketDraft
from shared.events import (
    EVENT_ADAPTER,
    Envelope,
    TicketEvent,
    TicketReceived,
    TicketResolvedOnSpot,
)
from shared.groupcommit import GroupWriter, Update
from shared.mongo import Document

MAX_ALLOCATION_TRIES = 10_000


@dataclass(frozen=True)
class IntakeRecord:
    ticket_id: str
    event: TicketEvent
    published: bool
    created_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def draft(self) -> TicketDraft | None:
        event = self.event
        if isinstance(event, TicketReceived | TicketResolvedOnSpot):
            return event.payload.ticket
        return None

    @property
    def channel(self) -> str:
        return self.draft.channel.value if self.draft else "unknown"

    @property
    def phone(self) -> str | None:
        draft = self.draft
        return draft.citizen.phone if draft and draft.citizen else None


@dataclass(frozen=True)
class RecordMeta:
    """How a request came, kept with its record: the channel, the request's
    Idempotency-Key and channel-specific facts (e.g. an Open311 service code)."""

    channel: str
    key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KeyBinding:
    """What an Idempotency-Key stands for: the request's fingerprint and the
    ticket it got, or the earlier ticket it was linked to as a duplicate."""

    fingerprint: str
    ticket_id: str
    linked: bool


def _record(doc: Document) -> IntakeRecord:
    return IntakeRecord(
        doc["_id"],
        EVENT_ADAPTER.validate_python(doc["event"]),
        bool(doc["published"]),
        doc.get("created_at"),
        dict(doc.get("extra") or {}),
    )


class IntakeRepository:
    """Ticket numbers come in blocks from a counter per day (services.intake.numbers)
    and each is taken by inserting the record under the number as its _id: a
    unique-key insert is atomic on MongoDB and FerretDB alike, so any number of
    intake replicas never hand out one number twice, whatever the counter did.

    Writes go through the group writer (shared.groupcommit): concurrent
    requests' records, keys and published marks share one bulk write each."""

    def __init__(
        self, db: AsyncDatabase[Document], prefix: str, writer: GroupWriter | None = None
    ) -> None:
        self._records = db["requests"]
        self._keys = db["idempotency_keys"]
        self._prefix = prefix
        self._writer = writer or GroupWriter(db)
        self._numbers = NumberBlocks(db["numbers"], self._first_free_guess)

    async def ensure_indexes(self) -> None:
        await self._records.create_index([("day", 1), ("seq", -1)])
        await self._records.create_index([("channel", 1), ("created_at", -1)])

    def _number(self, day: date, seq: int) -> str:
        return f"{self._prefix}{day:%Y%m%d}{seq:06d}"

    async def _first_free_guess(self, day: date) -> int:
        last = await self._records.find_one({"day": day.isoformat()}, sort=[("seq", -1)])
        return int(last["seq"]) + 1 if last else 1

    async def insert_new(
        self, day: date, build: Callable[[str], Envelope], now: datetime, meta: RecordMeta
    ) -> IntakeRecord:
        """Allocate the next number of the day and store the record built for it.

        ``build(ticket_id) -> Envelope`` makes the event once the number is known."""
        for _ in range(MAX_ALLOCATION_TRIES):
            seq = await self._numbers.take(day)
            ticket_id = self._number(day, seq)
            event = build(ticket_id)
            doc = {
                "_id": ticket_id,
                "day": day.isoformat(),
                "seq": seq,
                "channel": meta.channel,
                "event": event.model_dump(mode="json"),
                "published": False,
                "idempotency_key": meta.key,
                "created_at": now,
                "extra": dict(meta.extra),
            }
            try:
                await self._writer.write(self._records.name, InsertOne(doc))
            except DuplicateKeyError:
                continue  # another replica took this number
            return _record(doc)
        raise RuntimeError(f"no free ticket number for {day}")

    async def get(self, ticket_id: str) -> IntakeRecord | None:
        doc = await self._records.find_one({"_id": ticket_id})
        return _record(doc) if doc else None

    async def find_published(
        self,
        channel: str,
        since: datetime,
        until: datetime,
        limit: int,
    ) -> list[IntakeRecord]:
        """Published records of one channel in [since, until], newest first."""
        query: Document = {
            "channel": channel,
            "published": True,
            "created_at": {"$gte": since, "$lte": until},
        }
        cursor = self._records.find(query).sort("created_at", -1).limit(limit)
        return [_record(doc) for doc in await cursor.to_list()]

    async def mark_published(self, ticket_id: str) -> None:
        mark = Update({"_id": ticket_id}, {"$set": {"published": True}})
        await self._writer.write(self._records.name, mark)

    async def claim_key(self, key: str, binding: KeyBinding, now: datetime) -> KeyBinding | None:
        """Bind the key; None if bound now, else the earlier binding."""
        doc = {
            "_id": key,
            "hash": binding.fingerprint,
            "ticket_id": binding.ticket_id,
            "linked": binding.linked,
            "created_at": now,
        }
        try:
            await self._writer.write(self._keys.name, InsertOne(doc))
        except DuplicateKeyError:
            found = await self.find_key(key)
            if found is None:
                raise
            return found
        return None

    async def find_key(self, key: str) -> KeyBinding | None:
        doc = await self._keys.find_one({"_id": key})
        if doc is None:
            return None
        return KeyBinding(doc["hash"], doc["ticket_id"], bool(doc.get("linked", False)))

    async def mark_abandoned(self, ticket_id: str) -> None:
        await self._records.update_one({"_id": ticket_id}, {"$set": {"abandoned": True}})
