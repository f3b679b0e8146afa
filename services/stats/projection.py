"""The per-ticket view, derived from the ticket's steps.

The view keeps every step under its event_id, so applying an event twice sets
the same key twice; every other field is recomputed by replaying the steps in
time order, so the order in which events arrive does not matter either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.events import TicketEvent
from shared.events.catalogue import CLOSED_STATUSES, NEUTRAL_EVENTS, STATUS_AFTER, stage_of
from shared.mongo import Document
from shared.privacy import caller_digest


def step_of(event: TicketEvent) -> Document:
    return {
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "at": event.occurred_at,
        "actor": event.actor.model_dump(mode="json"),
        "payload": event.payload.model_dump(mode="json"),
    }


def ordered_steps(view: Document) -> list[Document]:
    steps = list((view.get("steps") or {}).values())
    return sorted(steps, key=_order)


def _order(step: Document) -> tuple[datetime, int, str]:
    return step["at"], stage_of(step["event_type"]), str(step["event_id"])


def build_view(ticket_id: str, old: Document | None, events: list[TicketEvent]) -> Document:
    """The view with these events added to the old one's steps."""
    steps: dict[str, Document] = dict((old or {}).get("steps") or {})
    for event in events:
        steps[str(event.event_id)] = step_of(event)
    view: Document = {"_id": ticket_id, "steps": steps, "status": "unknown", "open": 0}
    for step in ordered_steps(view):
        _replay(view, step)
    view["open"] = 0 if view["status"] in CLOSED_STATUSES else 1
    return view


def _replay(view: Document, step: Document) -> None:
    kind, at, p = step["event_type"], step["at"], step["payload"]
    if kind not in NEUTRAL_EVENTS:
        view["status"] = STATUS_AFTER.get(kind, kind)
        view["status_at"] = at
    # A linked request carries its own draft: the ticket keeps its dimensions.
    if ("dims" in p or "ticket" in p) and kind != "linked":
        _dims(view, p.get("dims") or p["ticket"])
    handler = _REPLAY.get(kind)
    if handler is not None:
        handler(view, at, p)


def _dims(view: Document, dims: dict[str, Any]) -> None:
    for field in ("district", "category", "channel", "priority"):
        if dims.get(field) is not None:
            view[field] = dims[field]


def _received(view: Document, at: datetime, p: dict[str, Any]) -> None:
    ticket = p["ticket"]
    view.update(text=ticket["text"], town=ticket.get("town"), received_at=at)
    # The caller's number as agents find their earlier tickets by (never shown).
    view["caller"] = caller_digest((ticket.get("citizen") or {}).get("phone"))
    if "answer" in p:
        view["answer"] = p["answer"]
    if p.get("related_to"):
        view["related_to"] = p["related_to"]  # the closed ticket this one repeats


def _dispatched(view: Document, at: datetime, p: dict[str, Any]) -> None:
    view.update(
        department=p["department"],
        co_departments=p.get("co_departments", []),
        deadline=_dt(p["deadline"]),
        response_deadline=_dt(p["response_deadline"]),
        dispatched_at=at,
        time_limit=p.get("time_limit"),
        accepted_at=None,
        overdue_notified=False,
    )
    # Every unit the ticket was ever dispatched to, and a county sub-centre that
    # passed it on to one of its units: who may read the ticket.
    passed_on_by = [p.get("previous_department")] if p.get("via") == "sub_dispatch" else []
    handlers = [*view.get("handlers", []), p["department"], *p.get("co_departments", [])]
    view["handlers"] = list(dict.fromkeys(h for h in [*handlers, *passed_on_by] if h))


def _set(**fields: str) -> Any:
    """A replay step that copies payload fields (or the step's time, "@at");
    only deadlines are read back as times, free text stays text."""

    def apply(view: Document, at: datetime, p: dict[str, Any]) -> None:
        for target, source in fields.items():
            value = at if source == "@at" else p.get(source)
            view[target] = _dt(value) if source in TIME_FIELDS else value

    return apply


def _returned(view: Document, at: datetime, p: dict[str, Any]) -> None:
    view["returned_by"] = [*view.get("returned_by", []), p["department"]]


def _linked(view: Document, at: datetime, p: dict[str, Any]) -> None:
    view["linked"] = view.get("linked", 0) + 1


def _overdue(view: Document, at: datetime, p: dict[str, Any]) -> None:
    view["overdue_notified"] = True


def _reopened(view: Document, at: datetime, p: dict[str, Any]) -> None:
    view.update(
        reopen_count=p["reopen_count"],
        # Why (ReopenCause): the citizen's rating, or a repeat call (older events: rating).
        reopen_cause=p.get("cause", "rating"),
        deadline=_dt(p["deadline"]),
        response_deadline=_dt(p["response_deadline"]),
        resolved_at=None,
        accepted_at=None,
        closed_at=None,  # a repeat call reopens a closed ticket
        overdue_notified=False,
    )


TIME_FIELDS = frozenset({"deadline", "response_deadline"})


def _dt(value: Any) -> Any:
    """Payload times arrive as ISO text; other text passes through unchanged."""
    if isinstance(value, str) and "T" in value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


_REPLAY = {
    "received": _received,
    "resolved_on_spot": _received,
    "dispatched": _dispatched,
    "unroutable": _set(department="department"),
    "accepted": _set(accepted_at="@at"),
    "returned": _returned,
    "extended": _set(deadline="deadline"),
    "resolved": _set(resolved_at="@at", reply="reply"),
    "closed": _set(closed_at="@at", rating="rating"),
    "reopened": _reopened,
    "overdue": _overdue,
    "linked": _linked,
    "explained": _set(explanation="text"),
}


def current_status(history: list[Document]) -> str:
    """The status after the last status-changing step (by time, then stage)."""
    moves = [s for s in history if s["event_type"] not in NEUTRAL_EVENTS]
    if not moves:
        return "unknown"
    last = max(moves, key=_order)
    return STATUS_AFTER.get(str(last["event_type"]), str(last["event_type"]))
