"""The stores the router's command service and handlers depend on, as Protocols.

TicketRepository and RefusedFeedbackRepository satisfy them against MongoDB;
tests/fakes.py keeps them in memory with the same semantics (versions compared
and set, the outbox kept until cleared), so the outbox, redelivery and relay
logic is unit-tested without servers."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from services.router.repository import StoredTicket
from services.router.workflow.state import TicketState
from shared.events import Envelope, TicketFeedback


class TicketStore(Protocol):
    async def get(self, ticket_id: str) -> StoredTicket | None: ...

    async def create(
        self, state: TicketState, events: list[Envelope], now: datetime
    ) -> tuple[StoredTicket, bool]:
        """Insert with its events as the outbox; (existing, False) if it existed."""
        ...

    async def create_many(
        self, new: list[tuple[TicketState, list[Envelope]]], now: datetime
    ) -> list[tuple[StoredTicket, bool]]:
        """create() for a batch, in one write where the store allows."""
        ...

    async def save(self, state: TicketState, events: list[Envelope], now: datetime) -> TicketState:
        """Store at state.version + 1 if still at state.version, else StaleState."""
        ...

    async def clear_outbox(self, ticket_id: str, version: int) -> None:
        """Empty the outbox only if the ticket is still at that version."""
        ...

    async def clear_outboxes(self, published: list[tuple[str, int]]) -> None:
        """clear_outbox() for each (ticket, version)."""
        ...

    async def with_pending_outbox(
        self, before: datetime, limit: int = 100
    ) -> list[StoredTicket]: ...


class RefusedStore(Protocol):
    async def record(self, event: TicketFeedback, code: str, reason: str, now: datetime) -> None:
        """Keep a rating the workflow refused, once per event."""
        ...
