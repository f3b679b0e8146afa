"""Whether a notice is still current when its attempt comes: the ticket is still
with that department at that step. A notice that is not (the department
returned the ticket, it was re-dispatched, resolved or closed, staff already
acted) is dropped as `superseded` instead of telling a department something
untrue, however many retries it had left.

The notifier learns where each ticket stands from the events it consumes
(every event that moves a ticket), kept beside its timers in the per-ticket
document (TimerRepository.accept_event): the status after the event (from the
one catalogue, shared/events/catalogue.py), the step (the dispatch or reopening
in force) and the departments holding the ticket in it.
"""

from __future__ import annotations

from shared.events import Envelope, TicketDispatched, TicketReopened
from shared.events.catalogue import CENTRE_STATUSES, CLOSED_STATUSES, STATUS_AFTER
from shared.mongo import Document

# Notices to the hotline centre, current while the ticket waits in that status.
CENTRE_NOTICES = {"manual_queue": "unroutable", "extension_request": "extension_requested"}
# Notices announcing a step (a dispatch, a reopening): current while it is in force.
STEP_NOTICES = frozenset({"dispatch", "reopen"})


def standing(event: Envelope) -> Document:
    """What an event tells of where the ticket stands; {} for one that does not
    move it (a notice, a rating)."""
    status = STATUS_AFTER.get(event.event_type)
    if status is None:
        return {}
    fields: Document = {
        "status": status,
        "open": status not in CLOSED_STATUSES and status not in CENTRE_STATUSES,
    }
    if isinstance(event, TicketDispatched):
        p = event.payload
        fields.update(step=str(event.event_id), holders=[p.department, *p.co_departments])
    elif isinstance(event, TicketReopened):
        fields.update(step=str(event.event_id), holders=[event.payload.department])
    elif status in CENTRE_STATUSES:
        fields["holders"] = []
    return fields


def is_current(delivery: Document, ticket: Document | None) -> bool:
    """A ticket the notifier knows nothing of yet (its events still on their way,
    or recorded before this was kept) leaves the notice current."""
    if ticket is None or "status" not in ticket:
        return True
    kind = str(delivery.get("kind"))
    if kind in CENTRE_NOTICES:
        return bool(ticket["status"] == CENTRE_NOTICES[kind])
    if not ticket.get("open", True):
        return False
    if kind in STEP_NOTICES:
        return delivery.get("step") in (None, ticket.get("step"))
    about = delivery.get("about") or delivery.get("department")
    return about in ticket.get("holders", [about])
