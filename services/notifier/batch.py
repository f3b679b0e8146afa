"""The notifier queue's batch handler (shared.messaging.batch).

Most of what the queue carries under load is the first event of a ticket the
notifier has not heard of (its dispatch, or that nothing could route it). For
those the batch costs four store writes, whatever its size, each an unordered
insert: the tickets' records (TimerRepository.accept_new), every delivery,
their first attempts' claims for this process (JobStore.claim_new: sending
each then needs no claim of its own), every timer. The handlers run unchanged
against stand-ins that keep what they would insert (Deferred*); the jobs are
offered to the workers only once stored.

Every other event (of a ticket the notifier knows, or a ticket with several
events in the batch) is applied by handle_event, a ticket's events in their
order, tickets side by side. Nothing here is applied twice: ids follow from the
event (a delivery from its cause and department, a timer from its generation
and kind), so a redelivered batch inserts nothing new, and a ticket's record
already stored sends its event to handle_event, which finishes what a crash
left half done, as it does for a single message.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from services.notifier.currency import standing
from services.notifier.handlers import SUBSCRIPTIONS, Applying, Notifier, handle_event
from services.notifier.ports import EventTimers
from services.notifier.repository import pending_delivery
from services.notifier.schedule import Planned
from services.notifier.timers import FirstEvent, TicketTimers, timer_doc
from shared.events import Envelope, TicketDispatched, TicketUnroutable
from shared.mongo import Document

# The events that can be the first the notifier hears of a ticket.
FIRST_EVENTS = (TicketDispatched, TicketUnroutable)


class DeferredDeliveries:
    """A DeliveryStore that keeps the deliveries it is given, unstored."""

    def __init__(self) -> None:
        self.docs: list[Document] = []

    async def schedule(self, doc: Document) -> Document | None:
        job = pending_delivery(doc)
        self.docs.append(job)
        return job

    async def insert_new(self, docs: list[Document]) -> list[Document]:
        self.docs.extend(docs)
        return docs

    async def schedule_many(self, docs: list[Document]) -> list[Document]:
        return await self.insert_new([pending_delivery(doc) for doc in docs])

    async def claim_new(self, jobs: list[Document], now: datetime, lease: timedelta) -> None:
        """Claimed once stored, by handle_batch."""


class DeferredTimers:
    """The handlers' timers, keeping the new timers they schedule unstored. A new
    ticket has no timers to cancel; anything else goes to the store."""

    def __init__(self, store: EventTimers) -> None:
        self.docs: list[Document] = []
        self.accept_event = store.accept_event
        self.accept_new = store.accept_new
        self.cancel = store.cancel

    async def schedule(
        self, ticket_id: str, generation: str, planned: list[Planned], context: Document
    ) -> list[Document]:
        docs = [timer_doc(ticket_id, generation, timer, context) for timer in planned]
        self.docs.extend(docs)
        return docs

    async def insert_new(self, docs: list[Document]) -> list[Document]:
        self.docs.extend(docs)
        return docs


async def handle_batch(events: list[Envelope], *, notifier: Notifier) -> None:
    by_ticket: dict[str, list[Envelope]] = defaultdict(list)
    for event in events:
        by_ticket[event.ticket_id].append(event)
    candidates = [
        evs[0] for evs in by_ticket.values() if len(evs) == 1 and isinstance(evs[0], FIRST_EVENTS)
    ]
    async with notifier.locks.hold_all(e.ticket_id for e in candidates):
        new = await _apply_first(candidates, notifier)
    rest = [evs for ticket, evs in by_ticket.items() if ticket not in new]
    outcomes = await asyncio.gather(
        *(_in_order(evs, notifier) for evs in rest), return_exceptions=True
    )
    for failure in outcomes:
        if isinstance(failure, BaseException):
            raise failure


async def _in_order(events: list[Envelope], notifier: Notifier) -> None:
    for event in events:
        await handle_event(event, notifier=notifier)


async def _apply_first(candidates: Sequence[Envelope], notifier: Notifier) -> set[str]:
    """Record the tickets the notifier did not know and apply their first event:
    three writes for all. Returns those tickets."""
    if not candidates:
        return set()
    first = [_first(event) for event in candidates]
    new = await notifier.timers.accept_new(first)
    deliveries, timers = DeferredDeliveries(), DeferredTimers(notifier.timers)
    deferred = dataclasses.replace(
        notifier,
        deliveries=deliveries,
        timers=timers,
        offer_delivery=lambda _job: None,
        offer_timer=lambda _job: None,
    )
    for event in candidates:
        if event.ticket_id in new:
            known = TicketTimers(event.ticket_id, [])
            await SUBSCRIPTIONS.dispatch(event, Applying(deferred, known))
    stored = await notifier.deliveries.insert_new(deliveries.docs)
    # This process sends them now: their first attempts are its own from the
    # start, one write for all instead of a claim each.
    await notifier.deliveries.claim_new(stored, notifier.clock(), notifier.claim_lease)
    for job in stored:
        notifier.offer_delivery(job)
    for job in await notifier.timers.insert_new(timers.docs):
        notifier.offer_timer(job)
    return new


def _first(event: Envelope) -> FirstEvent:
    generation = str(event.event_id) if isinstance(event, TicketDispatched) else None
    return FirstEvent(event.ticket_id, event.occurred_at, generation, standing(event))
