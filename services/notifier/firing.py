"""Firing a due timer: notices to the department (or its supervisor), the event
for stats, and the next supervision while the ticket stays overdue.

Every step is idempotent (delivery ids and the event id derive from the timer
id), so a timer whose firing was cut short by a crash is fired again, under its
next attempt number, with the same effects, once.

Timers that fall due together (a Monday morning after a holiday) are fired as
a batch (fire_many, up to FIRE_BATCH): one insert of all claims, with the
reads of where they stand sent alongside; then one insert of all notices and
one of their first attempts' claims (this process sends them) while the
events are published together, their confirms awaited together; then the
notices handed to the sender, one insert of the next supervisions and the
fired marks in update commands of 50. The steps are those of fire(), the
fired mark last as there, so the guarantees are.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.notifier.channels import DeliveryChannel
from services.notifier.metrics import TIMER_LAG, TIMERS_FIRED
from services.notifier.notices import notice
from services.notifier.ports import DeliveryStore, TimerStore
from services.notifier.records import ESCALATING_KINDS, JobStatus, Timer, TimerKind, timer_id
from services.notifier.schedule import supervision
from services.notifier.templates import local_time
from services.notifier.timers import timer_doc
from shared.directory import Directory
from shared.domain import Actor, ActorKind, TicketDims
from shared.events import (
    Envelope,
    OverduePayload,
    SupervisedPayload,
    TicketOverdue,
    TicketSupervised,
    TicketUrged,
    TicketWarning,
    UrgedPayload,
    WarningPayload,
)
from shared.messaging.ports import EventPublisher
from shared.mongo import Document
from shared.workcalendar import WorkCalendar

logger = logging.getLogger(__name__)
NOTIFIER = Actor(kind=ActorKind.SYSTEM, id="notifier")
EVENT_IDS = uuid.UUID("6d1f1c2e-12a5-4e2b-9a37-123450000000")
# Timers fired in one batch: what one scan returns (JobWorker's batch), so a
# burst goes out in one round of bulk commands. In smaller batches run side by
# side, the first batches' notices were sent while the later batches still
# fired, and their writes queued ahead of them on the store (measured: p99 7.8 s
# in batches of 500 against 3.1 s in one, same load). The marks still go 50 to
# a command (shared.groupcommit).
FIRE_BATCH = 2000


@dataclass
class TimerFirer:
    timers: TimerStore
    deliveries: DeliveryStore
    directory: Directory
    channels: dict[str, DeliveryChannel]
    publisher: EventPublisher
    calendar: WorkCalendar
    clock: Callable[[], datetime]
    lease: timedelta
    hotline_centre: str
    offer_delivery: Callable[[Document], None]
    offer_timer: Callable[[Document], None]

    async def fire(self, doc: Document) -> None:
        if not await self.timers.claim(doc, self.clock(), self.lease):
            return
        timer, now = Timer.of(doc), self.clock()
        recipient = self._recipient(timer)
        delivery = await self.deliveries.schedule(self._notice(timer, recipient, now))
        if delivery is not None:
            self.offer_delivery(delivery)
        await self.publisher.publish(self._event(timer, recipient, now))
        escalation = None
        if timer.kind in ESCALATING_KINDS:
            escalation = await self._next_supervision(timer)
        lag = (now - timer.original_due_at).total_seconds()
        if not await self.timers.mark_fired(timer.id, now, lag):
            # The ticket was resolved (or re-dispatched) while this timer fired; the
            # cancellation may have run before the next supervision existed.
            if escalation is not None:
                await self.timers.cancel_one(escalation)
            return
        TIMER_LAG.observe(max(lag, 0.0))
        TIMERS_FIRED.labels(timer.kind).inc()

    async def fire_many(self, docs: list[Document]) -> None:
        """Fire timers due together, each as fire() would, in a few bulk steps."""
        now = self.clock()
        timers = [Timer.of(doc) for doc in await self.timers.claim_many(docs, now, self.lease)]
        if not timers:
            return
        recipients = [self._recipient(timer) for timer in timers]
        notices = [self._notice(t, r, now) for t, r in zip(timers, recipients, strict=True)]
        events = [self._event(t, r, now) for t, r in zip(timers, recipients, strict=True)]
        # The notices are stored while the events go out: each step is
        # idempotent and the fired marks come after both, so a batch cut short
        # anywhere is fired again whole, with the same effects.
        stored, sent = await asyncio.gather(
            self._store_notices(notices, now), self._publish_all(events)
        )
        # Sent from here on, not while the events go out: the sender's work on
        # the same event loop delayed the confirms past the publisher's timeout
        # (measured: 118 of 2,000 timed out, and the batch ran timer by timer,
        # 21 s). Stored and claimed already, so if the batch stops before this
        # line the sender's next scan takes them (after a crash, once the
        # claims expire).
        for delivery in stored:
            self.offer_delivery(delivery)
        await self._settle(timers, sent)

    async def _store_notices(self, notices: list[Document], now: datetime) -> list[Document]:
        stored = await self.deliveries.schedule_many(notices)
        # This process sends them: their first attempts are its own from the
        # start, one claim write for all instead of one per notice.
        await self.deliveries.claim_new(stored, now, self.lease)
        return stored

    async def _publish_all(self, events: list[Envelope]) -> datetime:
        """Publish together (the confirms come back pipelined, not one round
        trip each); when the last was confirmed: the moment a timer of the batch
        "went out", which its lag runs to."""
        await asyncio.gather(*(self.publisher.publish(event) for event in events))
        return self.clock()

    async def _settle(self, timers: list[Timer], sent: datetime) -> None:
        """The next supervisions, then the fired marks (see fire())."""
        escalating = [t for t in timers if t.kind in ESCALATING_KINDS]
        nexts = [self._planned_supervision(t) for t in escalating]
        for doc in await self.timers.insert_new(nexts):
            self.offer_timer(doc)
        lags = {t.id: (sent - t.original_due_at).total_seconds() for t in timers}
        fired = await self.timers.mark_fired_many(lags, sent)
        for timer, following in zip(escalating, nexts, strict=True):
            if timer.id not in fired:  # resolved while it fired: see fire()
                await self.timers.cancel_one(str(following["_id"]))
        for timer in timers:
            if timer.id in fired:
                TIMER_LAG.observe(max(lags[timer.id], 0.0))
                TIMERS_FIRED.labels(timer.kind).inc()

    def _notice(self, timer: Timer, recipient: str, now: datetime) -> Document:
        return notice(
            self.directory,
            self.channels,
            cause=timer.id,
            kind=timer.kind,
            ticket_id=timer.ticket_id,
            department_id=recipient,
            fields=self._fields(timer),
            now=now,
            about=timer.department,
        )

    async def overdue_missed(
        self, ticket_id: str, generations: list[str], resolved_at: datetime
    ) -> None:
        """A ticket resolved after its deadline whose red card never fired (no
        notifier ran at the deadline, or it lagged): the overdue event goes out
        now, for stats, under the id firing would have given it, and the timer
        counts as fired. The completion rate needs it: a late resolution is
        counted against an overdue notice on the deadline's day. No notice: the
        department has resolved the ticket."""
        for generation in generations:
            doc = await self.timers.get(timer_id(ticket_id, generation, TimerKind.OVERDUE))
            if doc is None:
                continue
            timer = Timer.of(doc)
            if timer.status != JobStatus.PENDING or timer.due_at > resolved_at:
                continue
            now = self.clock()
            # Claimed like any firing: a worker firing it this very moment publishes
            # it instead (the same event id either way).
            if not await self.timers.claim(doc, now, self.lease):
                continue
            await self.publisher.publish(self._event(timer, timer.department, now))
            lag = (now - timer.original_due_at).total_seconds()
            if await self.timers.mark_fired(timer.id, now, lag):
                TIMER_LAG.observe(max(lag, 0.0))
                TIMERS_FIRED.labels(TimerKind.OVERDUE).inc()
                logger.info("ticket %s resolved late: its missed overdue event sent", ticket_id)

    def _recipient(self, timer: Timer) -> str:
        """Supervision goes to the unit above the department first, then to the
        hotline centre; every other notice to the department itself."""
        if timer.kind != TimerKind.SUPERVISION:
            return timer.department
        above = self.directory.chain_above(timer.department)
        if timer.seq == 1 and above and above[0].id != self.hotline_centre:
            return above[0].id
        return self.hotline_centre

    def _fields(self, timer: Timer) -> dict[str, Any]:
        handler = self.directory.department(timer.department)
        response_deadline = timer.response_deadline
        return {
            "deadline": timer.deadline.isoformat(),
            "deadline_local": local_time(timer.deadline, self.calendar),
            "response_deadline": response_deadline.isoformat() if response_deadline else None,
            "response_deadline_local": local_time(response_deadline, self.calendar),
            "handler": timer.department,
            "handler_name": handler.name if handler else timer.department,
            "count": timer.seq,
        }

    async def _next_supervision(self, timer: Timer) -> str:
        following = self._planned_supervision(timer)
        for doc in await self.timers.insert_new([following]):
            self.offer_timer(doc)
        return str(following["_id"])

    def _planned_supervision(self, timer: Timer) -> Document:
        count = timer.seq + 1 if timer.kind == TimerKind.SUPERVISION else 1
        planned = supervision(timer.deadline, count, self.calendar)
        return timer_doc(timer.ticket_id, timer.generation, planned, timer.context())

    def _event(self, timer: Timer, recipient: str, now: datetime) -> Envelope:
        common: dict[str, Any] = {
            "event_id": uuid.uuid5(EVENT_IDS, timer.id),
            "ticket_id": timer.ticket_id,
            "occurred_at": now,
            "actor": NOTIFIER,
        }
        step = {"dims": TicketDims.model_validate(timer.dims), "department": timer.department}
        deadline = timer.deadline
        if timer.kind == TimerKind.URGE:
            urged = UrgedPayload(**step, response_deadline=timer.response_deadline)
            return TicketUrged(**common, payload=urged)
        if timer.kind == TimerKind.WARNING:
            return TicketWarning(**common, payload=WarningPayload(**step, deadline=deadline))
        if timer.kind == TimerKind.OVERDUE:
            return TicketOverdue(**common, payload=OverduePayload(**step, deadline=deadline))
        supervised = SupervisedPayload(
            **step, deadline=deadline, supervisor=recipient, count=timer.seq
        )
        return TicketSupervised(**common, payload=supervised)
