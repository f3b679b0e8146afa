"""Carrying out one workflow action: load, transition, store with its events,
publish, clear the outbox. One writer per ticket at a time in this process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from services.router.engine import RuleEngine
from services.router.metrics import TRANSITIONS
from services.router.ports import TicketStore
from services.router.workflow.context import Context, Policy, Transition
from services.router.workflow.dispatch import new_ticket
from services.router.workflow.state import TicketState, WorkflowError
from shared.domain import TicketDraft
from shared.errors import UnavailableError
from shared.events import Envelope
from shared.locks import KeyedLock
from shared.messaging.ports import EventPublisher

logger = logging.getLogger(__name__)

Action = Callable[[TicketState, Context], Transition]
RELAY_GRACE = timedelta(seconds=5)


class PublishPending(Exception):
    """The change is stored; its events will be published by the relay."""


class HasEngine(Protocol):
    """Holds the live rule engine, replaced whole when the rules are reloaded."""

    engine: RuleEngine


@dataclass
class CommandService:
    repo: TicketStore
    engines: HasEngine
    publisher: EventPublisher
    clock: Callable[[], datetime]
    broker_up: Callable[[], bool]
    policy: Policy = field(default_factory=Policy)
    locks: KeyedLock = field(default_factory=KeyedLock)

    def context(self) -> Context:
        # The store keeps times to the millisecond (BSON dates): a time taken to the
        # microsecond would come back different from what was answered and published.
        now = self.clock()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        return Context(self.engines.engine, now, self.policy)

    async def run(self, ticket_id: str, name: str, action: Action) -> TicketState:
        """Apply one action; WorkflowError leaves everything as it was."""
        if not self.broker_up():
            # Refuse before changing anything: the change could not be announced.
            raise UnavailableError("broker unreachable")
        async with self.locks.hold(ticket_id):
            stored = await self.repo.get(ticket_id)
            if stored is None:
                raise WorkflowError("TICKET_NOT_FOUND", f"no ticket {ticket_id}", 404)
            ctx = self.context()
            try:
                transition = action(stored.state, ctx)
            except WorkflowError as exc:
                TRANSITIONS.labels(name, exc.code).inc()
                raise
            if not transition.events:  # nothing happened (e.g. a redelivered event)
                return stored.state
            saved = await self.repo.save(transition.state, transition.events, ctx.now)
            TRANSITIONS.labels(name, "ok").inc()
            await self._publish(saved, [*stored.outbox, *transition.events], pending_ok=False)
        return saved

    async def create(self, ticket_id: str, draft: TicketDraft) -> TicketState:
        """Dispatch a received ticket once; a redelivery republishes its events."""
        async with self.locks.hold(ticket_id):
            existing = await self.repo.get(ticket_id)
            if existing is None:
                ctx = self.context()
                transition = new_ticket(ticket_id, draft, ctx)
                existing, created = await self.repo.create(
                    transition.state, transition.events, ctx.now
                )
                if created:
                    TRANSITIONS.labels("dispatch", transition.state.status.value).inc()
            await self._publish(existing.state, existing.outbox, pending_ok=True)
        return existing.state

    async def create_many(self, drafts: dict[str, TicketDraft]) -> None:
        """create() for a batch of received tickets: stored in one write, their
        events published (with confirms, tickets side by side), their outboxes
        cleared in one write. A ticket stored before (a redelivery) has its
        outbox published again. Raises the first failure to publish once the
        outboxes of the others are cleared."""
        async with self.locks.hold_all(drafts):
            ctx = self.context()
            transitions = [new_ticket(t, draft, ctx) for t, draft in drafts.items()]
            new = [(transition.state, transition.events) for transition in transitions]
            stored = await self.repo.create_many(new, ctx.now)
            for ticket, created in stored:
                if created:
                    TRANSITIONS.labels("dispatch", ticket.state.status.value).inc()
            pending = [ticket for ticket, _ in stored if ticket.outbox]
            outcomes = await asyncio.gather(
                *(self._send(ticket.outbox) for ticket in pending), return_exceptions=True
            )
            sent = [t for t, failure in zip(pending, outcomes, strict=True) if failure is None]
            await self.repo.clear_outboxes([(t.state.ticket_id, t.state.version) for t in sent])
        for failure in outcomes:
            if isinstance(failure, BaseException):
                raise failure

    async def relay(self) -> int:
        """Publish what a crash or a broker outage left in outboxes; returns how many
        tickets were relayed."""
        stale = await self.repo.with_pending_outbox(self.clock() - RELAY_GRACE)
        for candidate in stale:
            async with self.locks.hold(candidate.state.ticket_id):
                current = await self.repo.get(candidate.state.ticket_id)
                if current is not None and current.outbox:
                    await self._publish(current.state, current.outbox, pending_ok=True)
        return len(stale)

    async def _publish(
        self, state: TicketState, events: Sequence[Envelope], pending_ok: bool
    ) -> None:
        if not events:
            return
        try:
            await self._send(events)
        except UnavailableError as exc:
            if pending_ok:
                raise
            raise PublishPending(state.ticket_id) from exc
        await self.repo.clear_outbox(state.ticket_id, state.version)

    async def _send(self, events: Sequence[Envelope]) -> None:
        """One ticket's events in their order, each confirmed before the next."""
        for event in events:
            await self.publisher.publish(event)
