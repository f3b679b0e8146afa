"""Stats HTTP API, version 1: ticket views and the summary of the measures."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from services.stats.projection import current_status
from services.stats.repository import DailyCounters, TicketViews

MAX_RANGE_DAYS = 366


class Summary(BaseModel):
    from_day: date
    to_day: date
    filters: dict[str, str]
    received: int
    resolved_on_spot: int
    dispatched: int
    unroutable: int


def build_router(views: TicketViews, counters: DailyCounters, tz: ZoneInfo) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/tickets/{ticket_id}", tags=["tickets"])
    async def get_ticket(ticket_id: str) -> dict[str, Any]:
        """One ticket: its current state and every step with actor and time."""
        doc = await views.get(ticket_id)
        if doc is None:
            raise HTTPException(404, f"no ticket {ticket_id}")
        history = sorted(doc.get("history", []), key=lambda s: s["at"])
        doc["history"] = history
        doc["status"] = current_status(history)
        doc["ticket_id"] = doc.pop("_id")
        return doc

    @router.get("/stats/summary", tags=["stats"], response_model=Summary)
    async def summary(
        from_: Annotated[date | None, Query(alias="from")] = None,
        to: date | None = None,
        department: str | None = None,
        district: str | None = None,
        category: str | None = None,
        channel: str | None = None,
    ) -> Summary:
        """Counts over a range of days (city time; both ends included; default today)."""
        today = datetime.now(tz).date()
        start, end = from_ or today, to or today
        if end < start:
            raise HTTPException(422, "'to' is before 'from'")
        if (end - start).days > MAX_RANGE_DAYS:
            raise HTTPException(422, f"range longer than {MAX_RANGE_DAYS} days")
        filters = {
            k: v
            for k, v in {
                "department": department,
                "district": district,
                "category": category,
                "channel": channel,
            }.items()
            if v is not None
        }
        totals = await counters.totals(start, end, filters)
        return Summary(
            from_day=start,
            to_day=end,
            filters=filters,
            received=totals.get("received", 0) + totals.get("resolved_on_spot", 0),
            resolved_on_spot=totals.get("resolved_on_spot", 0),
            dispatched=totals.get("dispatched", 0),
            unroutable=totals.get("unroutable", 0),
        )

    return router
