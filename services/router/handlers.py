"""Router handlers: plain async functions taking a typed event and their dependencies."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from services.router.engine import Decision, RuleEngine
from services.router.repository import TicketRepository
from shared.domain import Actor, ActorKind, TicketDims, TicketDraft
from shared.events import (
    DispatchedPayload,
    Envelope,
    TicketDispatched,
    TicketReceived,
    TicketUnroutable,
    UnroutablePayload,
)
from shared.messaging.publisher import Publisher

logger = logging.getLogger(__name__)

ROUTER = Actor(kind=ActorKind.SYSTEM, id="router")


class EngineHolder:
    """The live rule engine; replaced whole when the rules are reloaded."""

    def __init__(self, engine: RuleEngine) -> None:
        self.engine = engine


def decision_event(
    ticket_id: str, draft: TicketDraft, decision: Decision, now: datetime, round_: int = 1
) -> Envelope:
    dims = TicketDims.of(draft)
    if decision.department is None:
        return TicketUnroutable(
            ticket_id=ticket_id,
            occurred_at=now,
            actor=ROUTER,
            payload=UnroutablePayload(dims=dims, reason="no rule matched", rule=None),
        )
    assert decision.deadline is not None and decision.response_deadline is not None
    return TicketDispatched(
        ticket_id=ticket_id,
        occurred_at=now,
        actor=ROUTER,
        payload=DispatchedPayload(
            dims=dims.model_copy(update={"priority": decision.priority}),
            ticket=draft,
            department=decision.department,
            co_departments=decision.co_departments,
            rule=decision.rule or "",
            time_limit=decision.time_limit,
            deadline=decision.deadline,
            response_deadline=decision.response_deadline,
            round=round_,
        ),
    )


async def handle_received(
    event: TicketReceived,
    *,
    repo: TicketRepository,
    engines: EngineHolder,
    publisher: Publisher,
    clock: Callable[[], datetime],
) -> None:
    """Dispatch a new ticket by the rules, exactly once whatever the redeliveries."""
    existing = await repo.get(event.ticket_id)
    if existing is None:
        draft = event.payload.ticket
        now = clock()
        decision = engines.engine.decide(draft, now)
        outgoing = decision_event(event.ticket_id, draft, decision, now)
        status = "dispatched" if decision.routed else "unroutable"
        existing, created = await repo.create(
            event.ticket_id, draft, status, decision.department, outgoing, now
        )
        if created:
            logger.info("ticket %s -> %s (%s)", event.ticket_id, decision.department, status)
    for stored in existing.outbox:
        await publisher.publish(stored)
