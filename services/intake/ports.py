"""The stores Intake depends on, as Protocols.

IntakeRepository, CallerIndex, Hotspots and StatusProjection satisfy them
against MongoDB; tests/fakes_intake.py keeps them in memory with the same semantics
(a number taken once, a key bound once, a record unpublished until marked), so
the idempotent replay is unit-tested without servers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Protocol

from services.intake.duplicates import Earlier
from services.intake.repository import IntakeRecord, KeyBinding, RecordMeta
from services.intake.status import Progress
from shared.domain import TicketDraft
from shared.events import Envelope, TicketLinked


class IntakeStore(Protocol):
    async def insert_new(
        self, day: date, build: Callable[[str], Envelope], now: datetime, meta: RecordMeta
    ) -> IntakeRecord:
        """Take the day's next number and store the record, unpublished."""
        ...

    async def get(self, ticket_id: str) -> IntakeRecord | None: ...

    async def find_published(
        self, channel: str, since: datetime, until: datetime, limit: int
    ) -> list[IntakeRecord]: ...

    async def mark_published(self, ticket_id: str) -> None: ...

    async def claim_key(self, key: str, binding: KeyBinding, now: datetime) -> KeyBinding | None:
        """Bind the key; None if bound now, else the earlier binding."""
        ...

    async def find_key(self, key: str) -> KeyBinding | None: ...

    async def mark_abandoned(self, ticket_id: str) -> None: ...


class CallerStore(Protocol):
    async def find(self, caller: str, text: str, now: datetime) -> list[Earlier]: ...

    async def remember(self, caller: str, ticket_id: str, text: str, now: datetime) -> None: ...

    async def record_link(self, link: TicketLinked) -> None:
        """Store the link unpublished; a second record of one event id keeps the first."""
        ...

    async def unpublished_link(self, link_id: str) -> TicketLinked | None: ...

    async def stored_link(self, link_id: str) -> TicketLinked | None:
        """The link recorded under this id, published or not."""
        ...

    async def mark_link_published(self, link_id: str) -> None: ...

    async def links_of(self, ticket_id: str) -> int:
        """Published links to the ticket."""
        ...


class HotspotStore(Protocol):
    async def add(self, draft: TicketDraft, ticket_id: str, caller: str, now: datetime) -> None: ...

    async def list(self, now: datetime, district: str | None = None) -> list[dict[str, Any]]: ...


class StatusReader(Protocol):
    async def get(self, ticket_id: str) -> Progress | None: ...
