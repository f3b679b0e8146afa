"""What each event means for the stats: its archive record, its step in the
ticket's history, the view fields it sets and the counter bucket it falls in."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.events import (
    TicketDispatched,
    TicketEvent,
    TicketReceived,
    TicketResolvedOnSpot,
    TicketUnroutable,
)
from shared.mongo import Document

# The status a ticket is in after each kind of event.
STATUS_AFTER = {
    "received": "received",
    "resolved_on_spot": "resolved_on_spot",
    "dispatched": "dispatched",
    "unroutable": "unroutable",
    "accepted": "accepted",
    "returned": "returned",
    "extension_requested": "extension_requested",
    "extended": "accepted",
    "extension_refused": "accepted",
    "resolved": "resolved",
    "closed": "closed",
    "reopened": "reopened",
}


# Events that record something without moving the ticket to another status.
NEUTRAL_EVENTS = frozenset(
    {"feedback", "explained", "urged", "warning", "overdue", "supervised"}
)

# Lifecycle stage of each kind of event, to order steps recorded at the same time.
STAGE = {"received": 0, "resolved_on_spot": 1, "dispatched": 1, "unroutable": 1, "returned": 1}


def department_of(event: TicketEvent) -> str:
    return str(getattr(event.payload, "department", "") or "")


def day_of(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).date().isoformat()


def bucket(event: TicketEvent, tz: ZoneInfo) -> dict[str, Any]:
    dims = event.dims()
    return {
        "day": day_of(event.occurred_at, tz),
        "measure": event.event_type,
        "district": dims.district,
        "category": str(dims.category),
        "channel": str(dims.channel),
        "department": department_of(event),
    }


def archive_record(event: TicketEvent, tz: ZoneInfo) -> Document:
    return {
        "_id": str(event.event_id),
        "ticket_id": event.ticket_id,
        "occurred_at": event.occurred_at,
        "event": event.model_dump(mode="json"),
        **bucket(event, tz),
    }


def history_step(event: TicketEvent) -> Document:
    step: Document = {
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "at": event.occurred_at,
        "actor": event.actor.model_dump(mode="json"),
    }
    for name in ("department", "reason", "reply", "days", "rating", "comment", "text"):
        value = getattr(event.payload, name, None)
        if value is not None:
            step[name] = value.value if hasattr(value, "value") else value
    if isinstance(event, TicketDispatched):
        step["rule"] = event.payload.rule
        step["via"] = event.payload.via
    elif isinstance(event, TicketUnroutable):
        step["reason"] = event.payload.reason
    elif isinstance(event, TicketResolvedOnSpot):
        step["answer"] = event.payload.answer
    return step


def view_fields(event: TicketEvent) -> Document:
    """Fields the event sets; each kind of event owns its own fields, so the
    order in which events arrive does not change the result."""
    dims = event.dims()
    fields: Document = {
        "district": dims.district,
        "category": str(dims.category),
        "channel": str(dims.channel),
    }
    if isinstance(event, TicketReceived | TicketResolvedOnSpot):
        draft = event.payload.ticket
        fields.update({"text": draft.text, "town": draft.town, "received_at": event.occurred_at})
    if isinstance(event, TicketDispatched):
        p = event.payload
        fields.update(
            {
                "department": p.department,
                "co_departments": list(p.co_departments),
                "deadline": p.deadline,
                "response_deadline": p.response_deadline,
                "dispatched_at": event.occurred_at,
                "time_limit": p.time_limit,
            }
        )
    return fields


def current_status(history: list[Document]) -> str:
    # Feedback and explanations do not change the state by themselves.
    history = [step for step in history if step["event_type"] not in NEUTRAL_EVENTS]
    if not history:
        return "unknown"
    # Ties on time (stored to the millisecond) go to the later lifecycle stage.
    last = max(history, key=lambda step: (step["at"], STAGE.get(step["event_type"], 0)))
    event_type = str(last["event_type"])
    return STATUS_AFTER.get(event_type, event_type)
