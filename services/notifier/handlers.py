"""Notifier handlers: ticket events start, move and stop the ticket's timers, and
a dispatch sends its notices."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from services.notifier.channels import DeliveryChannel
from services.notifier.currency import standing
from services.notifier.notices import contact_line, notify
from services.notifier.ports import DeliveryStore, EventTimers
from services.notifier.records import DEADLINE_KINDS, TimerKind
from services.notifier.schedule import Planned, deadline_timers, dispatch_timers
from services.notifier.templates import REOPEN_CAUSES, ROLE_NAMES, local_time
from services.notifier.timers import TicketTimers
from shared.directory import Directory
from shared.events import (
    Envelope,
    TicketAccepted,
    TicketClosed,
    TicketDispatched,
    TicketEvent,
    TicketExtended,
    TicketExtensionRefused,
    TicketExtensionRequested,
    TicketReopened,
    TicketResolved,
    TicketReturned,
    TicketUnroutable,
)
from shared.locks import KeyedLock
from shared.messaging.subscriptions import Subscriptions
from shared.messaging.topology import queue_spec
from shared.mongo import Document
from shared.privacy import contact_of
from shared.workcalendar import WorkCalendar

# The events that start a department's round with a ticket.
Round = TypeVar("Round", TicketDispatched, TicketReopened)

logger = logging.getLogger(__name__)


@dataclass
class Notifier:
    timers: EventTimers
    deliveries: DeliveryStore
    directory: Directory
    channels: dict[str, DeliveryChannel]
    calendar: WorkCalendar
    clock: Callable[[], datetime]
    offer_delivery: Callable[[Document], None]
    offer_timer: Callable[[Document], None]
    # Sends the overdue event a late resolution finds never sent
    # (TimerFirer.overdue_missed): ticket, its generations, resolved at.
    overdue_missed: Callable[[str, list[str], datetime], Awaitable[None]]
    # The hotline centre (city.platform): told when staff must act.
    hotline_centre: str = "city.platform"
    # How long a claim on a delivery's attempt holds (settings.claim_lease_s).
    claim_lease: timedelta = timedelta(seconds=60)
    locks: KeyedLock = field(default_factory=KeyedLock)


@dataclass(frozen=True)
class Applying:
    """What each handler gets: the notifier and what accept_event read of the
    ticket's timers."""

    n: Notifier
    known: TicketTimers


async def handle_event(event: Envelope, *, notifier: Notifier) -> None:
    """The notifier queue's handler: each event to its subscription, once the
    ticket's timer record accepted it (a late redelivery changes nothing)."""
    async with notifier.locks.hold(event.ticket_id):
        schedules = isinstance(event, (TicketDispatched, TicketExtended, TicketReopened))
        generation = str(event.event_id) if schedules else None
        known = await notifier.timers.accept_event(
            event.ticket_id, event.occurred_at, generation, standing(event)
        )
        if known is None:
            logger.info(
                "ignoring %s of %s: a newer event applied", event.event_type, event.ticket_id
            )
            return
        await SUBSCRIPTIONS.dispatch(event, Applying(notifier, known))


async def _to_centre(n: Notifier, event: TicketEvent, kind: str, fields: Document) -> None:
    """A notice to the hotline centre that staff must act (issue #17, point 7),
    delivered like any other and dropped once they have (currency.is_current)."""
    await _tell(n, event, kind, n.hotline_centre, fields)


async def _tell(
    n: Notifier,
    event: TicketEvent,
    kind: str,
    department: str,
    fields: Document,
    step: str | None = None,
) -> None:
    """One notice caused by the event, to one unit, sent at once."""
    delivery = await notify(
        n.deliveries,
        n.directory,
        n.channels,
        cause=str(event.event_id),
        kind=kind,
        ticket_id=event.ticket_id,
        department_id=department,
        fields=fields,
        now=n.clock(),
        step=step,
    )
    if delivery is not None:
        n.offer_delivery(delivery)


def _extension_fields(event: TicketExtensionRequested, n: Notifier) -> Document:
    p = event.payload
    handler = n.directory.department(p.department)
    return {
        "handler": p.department,
        "handler_name": handler.name if handler else p.department,
        "days": p.days,
        "reason": p.reason,
    }


def _district(event: TicketUnroutable, n: Notifier) -> str:
    district = n.directory.district(event.payload.dims.district)
    return district.name if district else event.payload.dims.district


async def _dispatched(event: TicketDispatched, a: Applying) -> None:
    await _new_round(event, a, _dispatch_notices)


async def _accepted(event: TicketAccepted, a: Applying) -> None:
    await a.n.timers.cancel(a.known, kinds=(TimerKind.URGE,))


async def _extended(event: TicketExtended, a: Applying) -> None:
    p = event.payload
    await a.n.timers.cancel(a.known, kinds=DEADLINE_KINDS, keep=str(event.event_id))
    plan = deadline_timers(event.occurred_at, p.deadline, a.n.calendar)
    await _schedule(a.n, event, plan, p.department, p.deadline, None)


async def _reopened(event: TicketReopened, a: Applying) -> None:
    await _new_round(event, a, _reopen_notice)


async def _new_round(
    event: Round, a: Applying, tell: Callable[[Round, Notifier], Awaitable[None]]
) -> None:
    """A department's new round with the ticket (a dispatch, a reopening): the
    previous round's clock stops, the department is told, the new limits' timers start."""
    p = event.payload
    await a.n.timers.cancel(a.known, keep=str(event.event_id))
    await tell(event, a.n)
    plan = dispatch_timers(event.occurred_at, p.deadline, p.response_deadline, a.n.calendar)
    await _schedule(a.n, event, plan, p.department, p.deadline, p.response_deadline)


async def _reopen_notice(event: TicketReopened, n: Notifier) -> None:
    """The department is told the ticket is back (重办), why, and its new limits."""
    p = event.payload
    fields: Document = {
        "cause": p.cause.value,
        "cause_text": REOPEN_CAUSES[p.cause.value],
        "deadline": p.deadline.isoformat(),
        "deadline_local": local_time(p.deadline, n.calendar),
        "response_deadline": p.response_deadline.isoformat(),
        "response_deadline_local": local_time(p.response_deadline, n.calendar),
        "reopen_count": p.reopen_count,
        "reopened_at": event.occurred_at.isoformat(),
    }
    await _tell(n, event, "reopen", p.department, fields, step=str(event.event_id))


async def _resolved(event: TicketResolved, a: Applying) -> None:
    if not event.payload.on_time and a.known.generations:
        await a.n.overdue_missed(event.ticket_id, a.known.generations, event.occurred_at)
    await _stopped(event, a)


async def _stopped(event: TicketEvent, a: Applying) -> None:
    """Closed, returned, unroutable (and resolved): the clock stops."""
    await a.n.timers.cancel(a.known)


async def _unroutable(event: TicketUnroutable, a: Applying) -> None:
    await _stopped(event, a)
    fields = {"reason": event.payload.reason, "district_name": _district(event, a.n)}
    await _to_centre(a.n, event, "manual_queue", fields)


async def _extension_requested(event: TicketExtensionRequested, a: Applying) -> None:
    await _to_centre(a.n, event, "extension_request", _extension_fields(event, a.n))


async def _extension_refused(event: TicketExtensionRefused, a: Applying) -> None:
    """The clock runs on; the centre's notice of the request is superseded."""


SUBSCRIPTIONS: Subscriptions[Applying] = Subscriptions(
    queue_spec("notifier"),
    {
        TicketDispatched: _dispatched,
        TicketAccepted: _accepted,
        TicketReturned: _stopped,
        TicketUnroutable: _unroutable,
        TicketExtensionRequested: _extension_requested,
        TicketExtensionRefused: _extension_refused,
        TicketExtended: _extended,
        TicketResolved: _resolved,
        TicketClosed: _stopped,
        TicketReopened: _reopened,
    },
)


async def _schedule(
    n: Notifier,
    event: TicketEvent,
    plan: list[Planned],
    department: str,
    deadline: datetime,
    response_deadline: datetime | None,
) -> None:
    context: dict[str, Any] = {
        "department": department,
        "deadline": deadline,
        "response_deadline": response_deadline,
        "dims": event.dims().model_dump(mode="json"),
        "created_at": n.clock(),
    }
    for timer in await n.timers.schedule(event.ticket_id, str(event.event_id), plan, context):
        n.offer_timer(timer)


async def _dispatch_notices(event: TicketDispatched, n: Notifier) -> None:
    p = event.payload
    roles = [(p.department, "lead")] + [(dep, "co") for dep in p.co_departments]
    for department, role in roles:
        fields = _dispatch_fields(event, role, n.calendar)
        await _tell(n, event, "dispatch", department, fields, step=str(event.event_id))


def _dispatch_fields(event: TicketDispatched, role: str, calendar: WorkCalendar) -> Document:
    p = event.payload
    fields: Document = {
        "role": role,
        "role_name": ROLE_NAMES[role],
        "lead_department": p.department,
        "co_departments": list(p.co_departments),
        "time_limit": p.time_limit,
        "deadline": p.deadline.isoformat(),
        "deadline_local": local_time(p.deadline, calendar),
        "response_deadline": p.response_deadline.isoformat(),
        "response_deadline_local": local_time(p.response_deadline, calendar),
        "text": p.ticket.text,
        "dispatched_at": event.occurred_at.isoformat(),
    }
    # The lead department calls the citizen back: its notice carries the contact
    # (name, phone, town, address). Co-handlers get the request without it.
    if role == "lead":
        contact = contact_of(p.ticket.model_dump(mode="json"))
        fields["ticket"] = p.ticket.model_dump(mode="json", exclude={"citizen"})
        fields.update(contact=contact.model_dump(), contact_line=contact_line(contact))
    else:
        fields["ticket"] = p.ticket.model_dump(
            mode="json", exclude={"citizen": True, "location": {"address"}}
        )
    return fields
