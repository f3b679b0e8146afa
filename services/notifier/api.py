"""Notifier HTTP API, version 1: deliveries with every attempt, and timers.

Hotline staff read everything. A department reads the notices sent to it and the
timers running on it, with the citizen's contact masked: the dispatch notice
itself carried the contact to the department while the ticket was in its hands.
Agents and channels read nothing here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from services.notifier.records import DeliveryStatus
from services.notifier.repository import DeliveryRepository
from services.notifier.timers import TimerRepository
from shared.access import allow, refusal_responses
from shared.keys import KeyKind, KeyOwner
from shared.mongo import Document
from shared.params import TICKET_ID
from shared.privacy import Contact, redact_known

TicketId = Annotated[str | None, Query(pattern=TICKET_ID)]
Reader = Annotated[KeyOwner, Depends(allow(KeyKind.STAFF, KeyKind.DEPARTMENT))]


def build_router(deliveries: DeliveryRepository, timers: TimerRepository) -> APIRouter:
    router = APIRouter(prefix="/v1", responses=refusal_responses())

    @router.get("/deliveries", tags=["deliveries"])
    async def list_deliveries(
        reader: Reader,
        ticket_id: TicketId = None,
        status: DeliveryStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        """Deliveries of a ticket's notices, or all of one status (status=dead lists
        the notices that never arrived), each with every attempt and its outcome;
        a department's own."""
        if ticket_id is None and status is None:
            raise HTTPException(422, "give ticket_id, status or both")
        department = None if reader.is_staff else reader.id
        docs = await deliveries.find(ticket_id, status, limit, department)
        if ticket_id is not None and department is not None and not docs:
            raise HTTPException(404, f"no notices of ticket {ticket_id} sent to {department}")
        for doc in docs:
            doc["delivery_id"] = doc.pop("_id")
        return docs if reader.is_staff else [masked(doc) for doc in docs]

    @router.get("/timers", tags=["timers"])
    async def list_timers(
        reader: Reader,
        ticket_id: Annotated[str, Query(pattern=TICKET_ID)],
    ) -> list[dict[str, Any]]:
        """A ticket's timers: urging, warning, overdue and supervision, with their
        due time and whether they fired or were cancelled; a department's own."""
        docs = await timers.for_ticket(ticket_id)
        if not reader.is_staff:
            docs = [doc for doc in docs if doc.get("department") == reader.id]
            if not docs:
                raise HTTPException(404, f"no timers of ticket {ticket_id} on {reader.id}")
        for doc in docs:
            doc["timer_id"] = doc.pop("_id")
        return docs

    return router


def masked(delivery: Document) -> Document:
    """A delivery with the citizen's contact masked wherever it appears."""
    contact = Contact.model_validate((delivery.get("body") or {}).get("contact") or {})
    return dict(redact_known(delivery, contact))
