"""services/notifier/currency: where an event leaves a ticket, and which notices
are still current there (issue #17, points 4 and 7)."""

from __future__ import annotations

import pytest

from services.notifier.currency import is_current
from shared.mongo import Document

DISPATCHED: Document = {
    "status": "dispatched",
    "open": True,
    "step": "d2",
    "holders": ["guanxian.water", "guanxian.env"],
}


def notice(kind: str, department: str = "guanxian.water", **extra: str) -> Document:
    return {"kind": kind, "department": department, **extra}


@pytest.mark.parametrize(
    ("delivery", "ticket", "current"),
    [
        (notice("dispatch", step="d2"), DISPATCHED, True),
        (notice("dispatch", "guanxian.env", step="d2"), DISPATCHED, True),
        # Re-dispatched (a return, a correction, a sub-dispatch): the old round's notice.
        (notice("dispatch", step="d1"), DISPATCHED, False),
        (notice("dispatch", step="d2"), {**DISPATCHED, "status": "accepted"}, True),
        (notice("dispatch", step="d2"), {**DISPATCHED, "status": "closed", "open": False}, False),
        (notice("dispatch", step="d2"), {**DISPATCHED, "status": "resolved", "open": False}, False),
        (notice("urge"), DISPATCHED, True),
        (notice("urge", "guanxian.police"), DISPATCHED, False),
        # Supervision goes to the unit above, about the handler.
        (notice("supervision", "guanxian", about="guanxian.water"), DISPATCHED, True),
        (notice("supervision", "guanxian", about="guanxian.police"), DISPATCHED, False),
        (notice("manual_queue", "city.platform"), {"status": "unroutable", "open": False}, True),
        (notice("manual_queue", "city.platform"), DISPATCHED, False),
        (
            notice("extension_request", "city.platform"),
            {**DISPATCHED, "status": "extension_requested"},
            True,
        ),
        (notice("extension_request", "city.platform"), {**DISPATCHED, "status": "accepted"}, False),
        # A reopening's notice is current while that reopening is in force.
        (notice("reopen", step="r1"), {**DISPATCHED, "status": "reopened", "step": "r1"}, True),
        (notice("reopen", step="r1"), {**DISPATCHED, "status": "accepted", "step": "r1"}, True),
        (notice("reopen", step="r1"), {**DISPATCHED, "step": "d3"}, False),
        (notice("reopen", step="r1"), {**DISPATCHED, "status": "closed", "open": False}, False),
        # Nothing known of the ticket yet: the notice goes.
        (notice("dispatch", step="d1"), None, True),
        (notice("dispatch", step="d1"), {"last_at": 0, "generations": []}, True),
    ],
)
def test_is_current(delivery: Document, ticket: Document | None, current: bool) -> None:
    assert is_current(delivery, ticket) is current
