"""Notifier HTTP API, version 1: deliveries with every attempt, and timers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from services.notifier.repository import DeliveryRepository
from services.notifier.timers import TimerRepository
from shared.params import TICKET_ID

TicketId = Annotated[str | None, Query(pattern=TICKET_ID)]


def build_router(deliveries: DeliveryRepository, timers: TimerRepository) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/deliveries", tags=["deliveries"])
    async def list_deliveries(
        ticket_id: TicketId = None,
        status: Literal["pending", "delivered", "dead"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        """Deliveries of a ticket's notices, or all of one status (status=dead lists
        the notices that never arrived), each with every attempt and its outcome."""
        if ticket_id is None and status is None:
            raise HTTPException(422, "give ticket_id, status or both")
        docs = await deliveries.find(ticket_id, status, limit)
        for doc in docs:
            doc["delivery_id"] = doc.pop("_id")
        return docs

    @router.get("/timers", tags=["timers"])
    async def list_timers(
        ticket_id: Annotated[str, Query(pattern=TICKET_ID)],
    ) -> list[dict[str, Any]]:
        """A ticket's timers: urging, warning, overdue and supervision, with their
        due time and whether they fired or were cancelled."""
        docs = await timers.for_ticket(ticket_id)
        for doc in docs:
            doc["timer_id"] = doc.pop("_id")
        return docs

    return router
