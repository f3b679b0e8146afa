"""Dispatcher and supervisor pages (hotline staff only): the manual dispatch
queue with the router's candidates, extension requests, overdue tickets by
department; the stats dashboard is linked, not copied."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request, Response

from services.workbench import viewlogic as vl
from services.workbench.actions import dispatch_choices
from services.workbench.clients import Refused
from services.workbench.sessions import Session
from services.workbench.web import render, signed_in, wb

QUEUE_LIMIT = 100


def build_router() -> APIRouter:
    router = APIRouter(prefix="/staff", include_in_schema=False)

    @router.get("/queue")
    async def queue(request: Request, done: str = "") -> Response:
        session = await signed_in(request, "staff")
        bench = wb(request)
        tickets = await bench.services.get(
            "router", "/v1/tickets", session.key, status="unroutable", limit=QUEUE_LIMIT
        )
        for ticket in tickets:
            ticket["candidates"] = await _candidates(request, session, ticket)
            ticket["choices"] = dispatch_choices(ticket["district"], bench.directory)
        return render(request, "queue.html", tickets=tickets, names=_names(request), done=done)

    @router.get("/extensions")
    async def extensions(request: Request, done: str = "") -> Response:
        session = await signed_in(request, "staff")
        tickets = await wb(request).services.get(
            "router", "/v1/tickets", session.key, status="extension_requested", limit=500
        )
        return render(request, "extensions.html", tickets=tickets, names=_names(request), done=done)

    @router.get("/overdue")
    async def overdue(request: Request) -> Response:
        session = await signed_in(request, "staff")
        bench = wb(request)
        page = await bench.services.get(
            "stats", "/v1/tickets", session.key, overdue="true", limit=1000
        )
        now = bench.clock()
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in page.get("items", []):
            item["remaining"] = vl.remaining(item.get("deadline"), now, bench.calendar)
            groups[str(item.get("department") or "—")].append(item)
        ordered = sorted(groups.items(), key=lambda pair: -len(pair[1]))
        return render(
            request,
            "overdue.html",
            groups=ordered,
            total=page.get("total", 0),
            names=_names(request),
            dashboard=bench.settings.stats_public_url,
        )

    return router


def _names(request: Request) -> dict[str, str]:
    return {d.id: d.name for d in wb(request).directory.departments.values()}


async def _candidates(request: Request, session: Session, ticket: dict[str, Any]) -> list[str]:
    """The router's candidates for a queued ticket: departments of the rules
    that match it, those that returned it last (marked on the page)."""
    body = {
        "district": ticket["district"],
        "category": ticket["category"],
        "priority": ticket.get("priority", "normal"),
        "text": ticket["text"],
        "exclude": ticket.get("returned_by", []),
    }
    try:
        found = await wb(request).services.post("router", "/v1/explain", session.key, body)
    except Refused:
        return []
    candidates: list[str] = found.get("candidates", [])
    return candidates
