"""The router's record of each ticket's workflow; the router is its only writer.

A ticket's outgoing event is stored in the same document as its new state, in
one insert, before it is published (an outbox): a crash between the two is
repaired by the redelivered input, which finds the document and publishes the
stored event again with the same event_id, which consumers apply once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.domain import TicketDraft
from shared.events import EVENT_ADAPTER, Envelope, TicketEvent
from shared.mongo import Document


@dataclass(frozen=True)
class RoutedTicket:
    ticket_id: str
    status: str
    department: str | None
    outbox: list[TicketEvent]


class TicketRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._tickets = db["tickets"]

    async def ensure_indexes(self) -> None:
        await self._tickets.create_index([("status", 1)])
        await self._tickets.create_index([("department", 1), ("status", 1)])

    async def get(self, ticket_id: str) -> RoutedTicket | None:
        doc = await self._tickets.find_one({"_id": ticket_id})
        return _from_doc(doc) if doc else None

    async def create(
        self,
        ticket_id: str,
        draft: TicketDraft,
        status: str,
        department: str | None,
        event: Envelope,
        now: datetime,
    ) -> tuple[RoutedTicket, bool]:
        """Insert the ticket with its outgoing event; (ticket, False) if it existed."""
        doc: dict[str, Any] = {
            "_id": ticket_id,
            "status": status,
            "department": department,
            "draft": draft.model_dump(mode="json"),
            "returned_by": [],
            "outbox": [event.model_dump(mode="json")],
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self._tickets.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.get(ticket_id)
            if existing is None:  # deleted in between: nothing in this system deletes
                raise
            return existing, False
        return _from_doc(doc), True


def _from_doc(doc: Document) -> RoutedTicket:
    return RoutedTicket(
        ticket_id=doc["_id"],
        status=doc["status"],
        department=doc.get("department"),
        outbox=[EVENT_ADAPTER.validate_python(e) for e in doc.get("outbox", [])],
    )
