"""The stores the notifier's handlers and timer firing depend on, as Protocols.

TimerRepository and DeliveryRepository satisfy them against MongoDB;
tests/fakes_notifier.py keeps them in memory with the same semantics (an id inserted
once, an attempt claimed by one owner, a timer fired only while pending), so
firing and redelivery are unit-tested without servers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from services.notifier.records import Kinds
from services.notifier.schedule import Planned
from services.notifier.timers import FirstEvent, TicketTimers
from shared.mongo import Document


class DeliveryStore(Protocol):
    async def schedule(self, doc: Document) -> Document | None:
        """Store a new pending delivery; None if one with its id exists."""
        ...

    async def insert_new(self, docs: list[Document]) -> list[Document]:
        """Insert pending deliveries (pending_delivery) in one write; those
        whose id existed are not returned."""
        ...

    async def claim_new(self, jobs: list[Document], now: datetime, lease: timedelta) -> None:
        """Claim for this process the first attempt of deliveries it just inserted."""
        ...

    async def schedule_many(self, docs: list[Document]) -> list[Document]:
        """Store new pending deliveries at once; those whose id exists are not returned."""
        ...


class EventTimers(Protocol):
    """What the event handlers need of the timers."""

    async def schedule(
        self, ticket_id: str, generation: str, planned: list[Planned], context: Document
    ) -> list[Document]:
        """Insert the timers; those inserted before are not returned."""
        ...

    async def accept_event(
        self,
        ticket_id: str,
        occurred_at: datetime,
        generation: str | None = None,
        standing: Document | None = None,
    ) -> TicketTimers | None:
        """None for an event older than one already applied to the ticket;
        `standing`: where the event leaves it (services.notifier.currency)."""
        ...

    async def cancel(
        self, known: TicketTimers, kinds: Kinds | None = None, keep: str | None = None
    ) -> int:
        """Cancel the ticket's pending timers (of these kinds; not of generation keep)."""
        ...

    async def accept_new(self, first: list[FirstEvent]) -> set[str]:
        """accept_event() for tickets the notifier may not know yet, in one
        write: the tickets it did not know, now recorded; the others unchanged."""
        ...

    async def insert_new(self, docs: list[Document]) -> list[Document]:
        """Insert timers (timer_doc) in one write; those inserted before are
        not returned."""
        ...


class TimerStore(EventTimers, Protocol):
    """What firing needs of the timers, besides."""

    async def claim(self, job: Document, now: datetime, lease: timedelta) -> bool:
        """Take the job's current attempt; False if another owner holds it or
        the job is no longer pending at that attempt."""
        ...

    async def claim_many(
        self, jobs: list[Document], now: datetime, lease: timedelta
    ) -> list[Document]:
        """The jobs whose current attempt this owner now holds (claim() for each)."""
        ...

    async def mark_fired_many(self, fired: dict[str, float], fired_at: datetime) -> set[str]:
        """Mark fired the timers (id -> lag) still pending; the ids marked."""
        ...

    async def get(self, timer: str) -> Document | None: ...

    async def cancel_one(self, timer: str) -> None: ...

    async def mark_fired(self, timer: str, fired_at: datetime, lag_s: float) -> bool:
        """False if the timer was not pending any more."""
        ...
