"""Duplicates (并单): the same caller with near-identical text within the window is
linked to the earlier ticket, while it is open, instead of opening a new one; a
repeat of a closed ticket opens a new one that records the earlier as related,
or, under the reopen policy (HOTLINE_REPEAT_OF_CLOSED=reopen), is linked to it
and reopens it.

One small document per caller (keyed by a hash of the number, an _id lookup)
holds that caller's tickets of the window, so a check never scans the tickets.
Writes of one caller's document are serialised in the process by the caller
lock Intake holds; two replicas racing on one caller can at worst miss a link.
Under that lock a check is always followed by the remembering of the new
ticket (or by a link, which writes nothing here), so the remembering reuses
what the check read instead of reading the document again; the write goes
with other requests' writes (shared.groupcommit).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from rapidfuzz import fuzz

from services.intake.textparse import fold
from shared.events import TicketLinked
from shared.groupcommit import GroupWriter, Update
from shared.mongo import Document

MAX_RECENT = 50  # per caller: a bound on the document, far above real use
MAX_READ_HELD = 1000  # callers whose last read is held for their remembering


@dataclass(frozen=True)
class Earlier:
    ticket_id: str
    similarity: float


class CallerIndex:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        window: timedelta,
        threshold: float,
        writer: GroupWriter | None = None,
    ) -> None:
        self._callers = db["callers"]
        self._links = db["links"]
        self._window = window
        self._threshold = threshold
        self._writer = writer or GroupWriter(db)
        self._read: dict[str, list[Document]] = {}  # caller -> what find() last read

    async def _recent(self, caller: str, now: datetime) -> list[Document]:
        doc = await self._callers.find_one({"_id": caller})
        since = now - self._window
        recent = [e for e in (doc or {}).get("recent", []) if e["at"] >= since]
        if len(self._read) >= MAX_READ_HELD:  # links leave theirs behind
            self._read.clear()
        self._read[caller] = recent
        return list(recent)

    async def find(self, caller: str, text: str, now: datetime) -> list[Earlier]:
        """The caller's near-identical tickets of the window, the most similar
        first, the latest first among equals (the one a repeat reopens)."""
        folded = fold(text)
        found = [
            Earlier(entry["ticket_id"], fuzz.ratio(folded, entry["text"]))
            for entry in reversed(await self._recent(caller, now))
        ]
        close = [e for e in found if e.similarity >= self._threshold]
        return sorted(close, key=lambda e: -e.similarity)

    async def remember(self, caller: str, ticket_id: str, text: str, now: datetime) -> None:
        held = self._read.pop(caller, None)
        recent = held if held is not None else await self._recent(caller, now)
        self._read.pop(caller, None)
        recent = [*recent, {"ticket_id": ticket_id, "text": fold(text), "at": now}]
        doc = {"_id": caller, "recent": recent[-MAX_RECENT:]}
        await self._writer.write(self._callers.name, Update({"_id": caller}, doc, upsert=True))

    async def record_link(self, link: TicketLinked) -> None:
        """One document per linked request: every step is recorded (一张单子管到底).
        Stored unpublished before its event goes out, so a retry with the same
        Idempotency-Key finds it and publishes the same event."""
        # A retry of this very request finds it stored: the stored one stands.
        with contextlib.suppress(DuplicateKeyError):
            await self._links.insert_one(
                {
                    "_id": str(link.event_id),
                    "ticket_id": link.ticket_id,
                    "channel": link.payload.ticket.channel.value,
                    "at": link.occurred_at,
                    "event": link.model_dump(mode="json"),
                    "published": False,
                }
            )

    async def unpublished_link(self, link_id: str) -> TicketLinked | None:
        doc = await self._links.find_one({"_id": link_id})
        if doc is None or doc.get("published", True):
            return None
        return TicketLinked.model_validate(doc["event"])

    async def stored_link(self, link_id: str) -> TicketLinked | None:
        """The link as recorded, published or not (a retry's answer names what it did)."""
        doc = await self._links.find_one({"_id": link_id})
        return TicketLinked.model_validate(doc["event"]) if doc is not None else None

    async def mark_link_published(self, link_id: str) -> None:
        await self._links.update_one({"_id": link_id}, {"$set": {"published": True}})

    async def links_of(self, ticket_id: str) -> int:
        """Published links only: a link whose event never went out was never answered."""
        query = {"ticket_id": ticket_id, "published": {"$ne": False}}
        return await self._links.count_documents(query)
