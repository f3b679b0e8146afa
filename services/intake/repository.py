"""Intake's records: one per accepted request (with its event, as an outbox), and
the idempotency keys that map a retried request to the ticket it already got."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.events import EVENT_ADAPTER, Envelope, TicketEvent
from shared.mongo import Document

MAX_ALLOCATION_TRIES = 10_000


@dataclass(frozen=True)
class IntakeRecord:
    ticket_id: str
    event: TicketEvent
    published: bool


class IntakeRepository:
    """Ticket numbers are allocated by inserting the record under the number as
    its _id: a unique-key insert is atomic on MongoDB and FerretDB alike, so any
    number of intake replicas never hand out one number twice."""

    def __init__(self, db: AsyncDatabase[Document], prefix: str) -> None:
        self._records = db["requests"]
        self._keys = db["idempotency_keys"]
        self._prefix = prefix
        self._next: dict[date, int] = {}

    async def ensure_indexes(self) -> None:
        await self._records.create_index([("day", 1), ("seq", -1)])

    def _number(self, day: date, seq: int) -> str:
        return f"{self._prefix}{day:%Y%m%d}{seq:06d}"

    async def _first_free_guess(self, day: date) -> int:
        last = await self._records.find_one({"day": day.isoformat()}, sort=[("seq", -1)])
        return int(last["seq"]) + 1 if last else 1

    async def insert_new(
        self, day: date, build: Callable[[str], Envelope], now: datetime, key: str | None
    ) -> IntakeRecord:
        """Allocate the next number of the day and store the record built for it.

        ``build(ticket_id) -> Envelope`` makes the event once the number is known."""
        if day not in self._next:
            self._next[day] = await self._first_free_guess(day)
        for _ in range(MAX_ALLOCATION_TRIES):
            seq = self._next[day]
            self._next[day] = seq + 1  # taken before the await: concurrent calls differ
            ticket_id = self._number(day, seq)
            event = build(ticket_id)
            doc = {
                "_id": ticket_id,
                "day": day.isoformat(),
                "seq": seq,
                "event": event.model_dump(mode="json"),
                "published": False,
                "idempotency_key": key,
                "created_at": now,
            }
            try:
                await self._records.insert_one(doc)
            except DuplicateKeyError:
                continue  # another replica took this number
            return IntakeRecord(ticket_id, EVENT_ADAPTER.validate_python(doc["event"]), False)
        raise RuntimeError(f"no free ticket number for {day}")

    async def get(self, ticket_id: str) -> IntakeRecord | None:
        doc = await self._records.find_one({"_id": ticket_id})
        if doc is None:
            return None
        return IntakeRecord(
            doc["_id"], EVENT_ADAPTER.validate_python(doc["event"]), bool(doc["published"])
        )

    async def mark_published(self, ticket_id: str) -> None:
        await self._records.update_one({"_id": ticket_id}, {"$set": {"published": True}})

    async def claim_key(
        self, key: str, request_hash: str, ticket_id: str, now: datetime
    ) -> tuple[str, str] | None:
        """Bind the key to the ticket; None if bound now, else (hash, ticket_id) of the
        earlier binding."""
        try:
            await self._keys.insert_one(
                {"_id": key, "hash": request_hash, "ticket_id": ticket_id, "created_at": now}
            )
        except DuplicateKeyError:
            found = await self.find_key(key)
            if found is None:
                raise
            return found
        return None

    async def find_key(self, key: str) -> tuple[str, str] | None:
        doc = await self._keys.find_one({"_id": key})
        return (doc["hash"], doc["ticket_id"]) if doc else None

    async def mark_abandoned(self, ticket_id: str) -> None:
        await self._records.update_one({"_id": ticket_id}, {"$set": {"abandoned": True}})
