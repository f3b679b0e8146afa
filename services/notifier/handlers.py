"""Notifier handlers: ticket events start, move and stop the ticket's timers, and
a dispatch sends its notices."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.notifier.channels import DeliveryChannel
from services.notifier.notices import contact_line, notify
from services.notifier.ports import DeliveryStore, TimerStore
from services.notifier.records import DEADLINE_KINDS, TimerKind
from services.notifier.schedule import Planned, deadline_timers, dispatch_timers
from services.notifier.templates import ROLE_NAMES, local_time
from services.notifier.timers import TicketTimers
from shared.directory import Directory
from shared.events import (
    TicketAccepted,
    TicketDispatched,
    TicketEvent,
    TicketExtended,
    TicketReopened,
    TicketResolved,
)
from shared.locks import KeyedLock
from shared.mongo import Document
from shared.privacy import contact_of
from shared.workcalendar import WorkCalendar

logger = logging.getLogger(__name__)


@dataclass
class Notifier:
    timers: TimerStore
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
    locks: KeyedLock = field(default_factory=KeyedLock)


async def handle_event(event: TicketEvent, *, notifier: Notifier) -> None:
    async with notifier.locks.hold(event.ticket_id):
        schedules = isinstance(event, (TicketDispatched, TicketExtended, TicketReopened))
        generation = str(event.event_id) if schedules else None
        known = await notifier.timers.accept_event(event.ticket_id, event.occurred_at, generation)
        if known is None:
            logger.info(
                "ignoring %s of %s: a newer event applied", event.event_type, event.ticket_id
            )
            return
        await _apply(event, notifier, known)


async def _apply(event: TicketEvent, n: Notifier, known: TicketTimers) -> None:
    gen = str(event.event_id)
    if isinstance(event, TicketDispatched):
        p = event.payload
        # The previous round's clock stops.
        await n.timers.cancel(known, keep=gen)
        await _dispatch_notices(event, n)
        plan = dispatch_timers(event.occurred_at, p.deadline, p.response_deadline, n.calendar)
        await _schedule(n, event, plan, p.department, p.deadline, p.response_deadline)
    elif isinstance(event, TicketAccepted):
        await n.timers.cancel(known, kinds=(TimerKind.URGE,))
    elif isinstance(event, TicketExtended):
        p2 = event.payload
        await n.timers.cancel(known, kinds=DEADLINE_KINDS, keep=gen)
        plan = deadline_timers(event.occurred_at, p2.deadline, n.calendar)
        await _schedule(n, event, plan, p2.department, p2.deadline, None)
    elif isinstance(event, TicketReopened):
        p3 = event.payload
        await n.timers.cancel(known, keep=gen)
        plan = dispatch_timers(event.occurred_at, p3.deadline, p3.response_deadline, n.calendar)
        await _schedule(n, event, plan, p3.department, p3.deadline, p3.response_deadline)
    else:  # resolved, closed, returned, unroutable: the clock stops
        if isinstance(event, TicketResolved) and not event.payload.on_time and known.generations:
            await n.overdue_missed(event.ticket_id, known.generations, event.occurred_at)
        await n.timers.cancel(known)


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
        delivery = await notify(
            n.deliveries,
            n.directory,
            n.channels,
            cause=str(event.event_id),
            kind="dispatch",
            ticket_id=event.ticket_id,
            department_id=department,
            fields=_dispatch_fields(event, role, n.calendar),
            now=n.clock(),
        )
        if delivery is not None:
            n.offer_delivery(delivery)


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
