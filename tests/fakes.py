"""In-memory stand-ins for the Protocols the services' cores depend on
(shared/messaging/ports.py, services/<svc>/ports.py), for unit tests that run in
milliseconds. They keep the semantics the outbox, redelivery and replay logic
relies on — versions compared and set (StaleState), an id inserted once, the
outbox kept until cleared at its version, a publish that fails raising
UnavailableError — and nothing else (no indexes, no query language). The
integration tests run the same logic against the real stores and broker."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.router.repository import StaleState, StoredTicket
from services.router.workflow.state import TicketState
from shared.errors import UnavailableError
from shared.events import EVENT_ADAPTER, Envelope, TicketEvent, TicketFeedback
from shared.mongo import Document


def stored_events(events: list[Envelope]) -> list[TicketEvent]:
    """Events as a store gives them back: through their JSON form."""
    return [EVENT_ADAPTER.validate_python(e.model_dump(mode="json")) for e in events]


class FakePublisher:
    """Confirms every event unless told to fail: `fail_next` publishes fail,
    or every publish while `down`."""

    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self.fail_next = 0
        self.down = False

    async def publish(self, event: Envelope) -> None:
        if self.down or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            raise UnavailableError(f"broker did not confirm {event.routing_key}")
        self.published.append(event)

    def ids(self) -> list[uuid.UUID]:
        return [event.event_id for event in self.published]


@dataclass
class _Ticket:
    state: TicketState
    outbox: list[Envelope]
    outbox_since: datetime | None


class FakeTicketStore:
    """The router's TicketStore."""

    def __init__(self) -> None:
        self.tickets: dict[str, _Ticket] = {}
        self._races: set[str] = set()

    def race(self, ticket_id: str) -> None:
        """Another writer stores the ticket between the next read and write."""
        self._races.add(ticket_id)

    async def get(self, ticket_id: str) -> StoredTicket | None:
        found = self.tickets.get(ticket_id)
        return StoredTicket(found.state, stored_events(found.outbox)) if found else None

    async def create(
        self, state: TicketState, events: list[Envelope], now: datetime
    ) -> tuple[StoredTicket, bool]:
        if state.ticket_id in self.tickets:
            existing = await self.get(state.ticket_id)
            assert existing is not None
            return existing, False
        self.tickets[state.ticket_id] = _Ticket(state, list(events), now)
        return StoredTicket(state, stored_events(events)), True

    async def create_many(
        self, new: list[tuple[TicketState, list[Envelope]]], now: datetime
    ) -> list[tuple[StoredTicket, bool]]:
        return [await self.create(state, events, now) for state, events in new]

    async def save(self, state: TicketState, events: list[Envelope], now: datetime) -> TicketState:
        stored = self.tickets[state.ticket_id]
        if state.ticket_id in self._races:
            self._races.discard(state.ticket_id)
            stored.state = stored.state.model_copy(update={"version": stored.state.version + 1})
        if stored.state.version != state.version:
            raise StaleState(state.ticket_id)
        saved = state.model_copy(update={"version": state.version + 1})
        stored.state, stored.outbox_since = saved, now
        stored.outbox.extend(events)
        return saved

    async def clear_outbox(self, ticket_id: str, version: int) -> None:
        stored = self.tickets[ticket_id]
        if stored.state.version == version:
            stored.outbox, stored.outbox_since = [], None

    async def clear_outboxes(self, published: list[tuple[str, int]]) -> None:
        for ticket_id, version in published:
            await self.clear_outbox(ticket_id, version)

    async def with_pending_outbox(self, before: datetime, limit: int = 100) -> list[StoredTicket]:
        pending = [
            StoredTicket(t.state, stored_events(t.outbox))
            for t in self.tickets.values()
            if t.outbox_since is not None and t.outbox_since < before
        ]
        return pending[:limit]


class FakeRefusedStore:
    def __init__(self) -> None:
        self.refused: dict[str, str] = {}

    async def record(self, event: TicketFeedback, code: str, reason: str, now: datetime) -> None:
        self.refused.setdefault(str(event.event_id), code)


class FakeArchive:
    """Stats' ArchiveSink: an event id archived once, its first record kept."""

    def __init__(self) -> None:
        self.records: dict[str, Document] = {}

    async def add_many(self, docs: list[Document]) -> int:
        new = [doc for doc in docs if doc["_id"] not in self.records]
        self.records.update({doc["_id"]: doc for doc in new})
        return len(new)
