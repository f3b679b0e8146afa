"""A department's tickets for its worklist, from the router (the workflow
state) and, for the closed ones that pile up forever, the newest from stats.

The router lists oldest first, so one page of everything would soon hold only
closed tickets: each open status is read on its own, page by page."""

from __future__ import annotations

from typing import Any

from services.workbench.clients import Services

PAGE = 500
MAX_PAGES = 4  # 2,000 tickets in one status: more than any unit holds open
LIVE = ("dispatched", "accepted", "extension_requested", "reopened", "resolved")
CLOSED_SHOWN = 100


async def live_tickets(services: Services, key: str) -> list[dict[str, Any]]:
    """Every ticket of the key's department that is not closed yet."""
    found: list[dict[str, Any]] = []
    for status in LIVE:
        for page in range(MAX_PAGES):
            batch = await services.get(
                "router", "/v1/tickets", key, status=status, limit=PAGE, offset=page * PAGE
            )
            found += batch
            if len(batch) < PAGE:
                break
    return found


async def closed_tickets(services: Services, key: str) -> tuple[list[dict[str, Any]], int]:
    """The newest closed tickets of the department, and how many there are."""
    page = await services.get("stats", "/v1/tickets", key, status="closed", limit=CLOSED_SHOWN)
    items: list[dict[str, Any]] = page.get("items", [])
    return items, int(page.get("total", len(items)))
