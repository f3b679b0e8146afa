"""Intake's own view of each ticket's progress, for citizens (lookup, Open311).

Intake does not own the workflow (the router does); it consumes the events
that move a ticket and keeps the few fields a citizen may see. Each field
remembers the time of the event that set it and only a later event replaces
it, so events may arrive in any order; an event id already applied changes
nothing, so a redelivery does no harm.

Writes go with the request path's (shared.groupcommit), conditional on the
version they were made from. A ticket's document is kept in memory after this
process wrote it, so its next step costs no read; a ticket not held here is
most likely at its first step, so its document is inserted without a read,
and only if one is there already (another replica, a restart) is it read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import InsertOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.events import (
    Envelope,
    TicketAccepted,
    TicketClosed,
    TicketDispatched,
    TicketEvent,
    TicketExtended,
    TicketReopened,
    TicketResolved,
    TicketReturned,
    TicketUnroutable,
)
from shared.events.catalogue import stage_of
from shared.groupcommit import GroupWriter, Update
from shared.locks import KeyedLock
from shared.messaging.subscriptions import Subscriptions
from shared.messaging.topology import PROGRESS_EVENTS, queue_spec
from shared.mongo import Document

MAX_APPLIED = 100
CAS_TRIES = 5
MAX_HELD = 5000  # tickets whose last written document is kept in memory


@dataclass(frozen=True)
class Progress:
    ticket_id: str
    status: str | None
    department: str | None
    deadline: datetime | None
    updated_at: datetime | None
    # The department's answer to the citizen, once resolved.
    reply: str | None = None
    # Why it was last reopened (重办): rating or repeat_call (ReopenCause).
    reopen_cause: str | None = None


def changes(event: TicketEvent) -> dict[str, Any]:
    """The citizen-visible fields an event sets."""
    match event:
        case TicketDispatched():
            p = event.payload
            return {"status": "dispatched", "department": p.department, "deadline": p.deadline}
        case TicketUnroutable():
            return {"status": "unroutable"}
        case TicketResolved():
            p3 = event.payload
            return {"status": "resolved", "department": p3.department, "reply": p3.reply}
        case TicketAccepted() | TicketReturned() | TicketClosed():
            return {"status": event.event_type, "department": event.payload.department}
        case TicketExtended():
            return {"deadline": event.payload.deadline}
        case TicketReopened():
            p2 = event.payload
            return {
                "status": "reopened",
                "department": p2.department,
                "deadline": p2.deadline,
                "reopen_cause": p2.cause.value,
            }
    return {}


class StatusProjection:
    def __init__(self, db: AsyncDatabase[Document], writer: GroupWriter | None = None) -> None:
        self._status = db["status"]
        self._locks = KeyedLock()
        self._writer = writer or GroupWriter(db)
        self._held: dict[str, Document] = {}  # ticket -> its document as last written here

    async def handle(self, event: Envelope) -> None:
        """The status queue's handler: each event to its subscription."""
        await SUBSCRIPTIONS.dispatch(event, self)

    async def apply(self, event: TicketEvent) -> None:
        fields = changes(event)
        if not fields:
            return
        ticket_id = event.ticket_id
        async with self._locks.hold(ticket_id):
            doc = self._held.pop(ticket_id, None)
            for attempt in range(CAS_TRIES):
                if attempt:
                    doc = await self._status.find_one({"_id": ticket_id})
                stored = await self._try_apply(event, fields, doc)
                if stored is not None:
                    if len(self._held) >= MAX_HELD:
                        self._held.pop(next(iter(self._held)))
                    self._held[ticket_id] = stored
                    return
        raise RuntimeError(f"status of {ticket_id} kept changing under us")

    async def _try_apply(
        self, event: TicketEvent, fields: dict[str, Any], doc: Document | None
    ) -> Document | None:
        """The document as stored after the event, or None if `doc` was not the
        stored one (read it and try again)."""
        event_id = str(event.event_id)
        if doc is not None and event_id in doc.get("applied", []):
            return doc
        # Ties of one millisecond are broken by where a step stands in the
        # lifecycle, the same order stats uses (shared.events.catalogue).
        at = _to_ms(event.occurred_at)
        stamp = [at, stage_of(event.event_type)]
        new = dict(doc or {"_id": event.ticket_id, "version": 0})
        for name, value in fields.items():
            held = new.get(f"{name}_stamp")
            if held is None or (held[0], held[1]) < (stamp[0], stamp[1]):
                new[name], new[f"{name}_stamp"] = value, stamp
        new["applied"] = [*new.get("applied", []), event_id][-MAX_APPLIED:]
        new["updated_at"] = max(at, new.get("updated_at") or at)
        new["version"] = int(new["version"]) + 1
        if doc is None:
            write: InsertOne[Document] | Update = InsertOne(new)
        else:
            condition = {"_id": event.ticket_id, "version": doc["version"]}
            write = Update(condition, new, upsert=True, conditional=True)
        try:
            await self._writer.write(self._status.name, write)
        except DuplicateKeyError:
            return None
        return new

    async def get(self, ticket_id: str) -> Progress | None:
        doc = await self._status.find_one({"_id": ticket_id})
        if doc is None:
            return None
        return Progress(
            ticket_id,
            doc.get("status"),
            doc.get("department"),
            doc.get("deadline"),
            doc.get("updated_at"),
            doc.get("reply"),
            doc.get("reopen_cause"),
        )


def _to_ms(at: datetime) -> datetime:
    """As the store keeps it: a document held in memory compares like one read."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


async def _apply(event: TicketEvent, status: StatusProjection) -> None:
    await status.apply(event)


# Every step of the status queue is applied alike: changes() picks the fields
# each sets (a unit test checks it sets some for each).
SUBSCRIPTIONS: Subscriptions[StatusProjection] = Subscriptions(
    queue_spec("intake", "status"), dict.fromkeys(PROGRESS_EVENTS, _apply)
)
