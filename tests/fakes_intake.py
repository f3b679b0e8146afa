"""In-memory stand-ins for the stores Intake depends on (services/intake/ports.py);
see tests/fakes.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from services.intake.duplicates import Earlier
from services.intake.repository import IntakeRecord, KeyBinding, RecordMeta
from services.intake.status import Progress
from shared.domain import TicketDraft
from shared.events import Envelope, TicketLinked
from tests.fakes import stored_events


class FakeIntakeStore:
    """Intake's IntakeStore: numbers "<prefix><day><seq>" taken once."""

    def __init__(self, prefix: str = "LC") -> None:
        self.records: dict[str, IntakeRecord] = {}
        self.keys: dict[str, KeyBinding] = {}
        self.abandoned: set[str] = set()
        self._prefix = prefix
        self._seq: dict[date, int] = {}

    async def insert_new(
        self, day: date, build: Callable[[str], Envelope], now: datetime, meta: RecordMeta
    ) -> IntakeRecord:
        self._seq[day] = self._seq.get(day, 0) + 1
        ticket_id = f"{self._prefix}{day:%Y%m%d}{self._seq[day]:06d}"
        (event,) = stored_events([build(ticket_id)])
        record = IntakeRecord(ticket_id, event, False, now, dict(meta.extra))
        self.records[ticket_id] = record
        return record

    async def get(self, ticket_id: str) -> IntakeRecord | None:
        return self.records.get(ticket_id)

    async def find_published(
        self, channel: str, since: datetime, until: datetime, limit: int
    ) -> list[IntakeRecord]:
        found = [
            r
            for r in self.records.values()
            if r.published
            and r.channel == channel
            and r.created_at
            and since <= r.created_at <= until
        ]
        return sorted(found, key=lambda r: r.created_at or since, reverse=True)[:limit]

    async def mark_published(self, ticket_id: str) -> None:
        self.records[ticket_id] = replace(self.records[ticket_id], published=True)

    async def claim_key(self, key: str, binding: KeyBinding, now: datetime) -> KeyBinding | None:
        if key in self.keys:
            return self.keys[key]
        self.keys[key] = binding
        return None

    async def find_key(self, key: str) -> KeyBinding | None:
        return self.keys.get(key)

    async def mark_abandoned(self, ticket_id: str) -> None:
        self.abandoned.add(ticket_id)


class FakeCallers:
    """Intake's CallerStore; "near-identical" here means the same text."""

    def __init__(self) -> None:
        self.recent: dict[str, list[tuple[str, str]]] = {}
        self.links: dict[str, tuple[TicketLinked, bool]] = {}

    async def find(self, caller: str, text: str, now: datetime) -> list[Earlier]:
        return [
            Earlier(ticket_id, 100.0)
            for ticket_id, seen in reversed(self.recent.get(caller, []))
            if seen == text
        ]

    async def remember(self, caller: str, ticket_id: str, text: str, now: datetime) -> None:
        self.recent.setdefault(caller, []).append((ticket_id, text))

    async def record_link(self, link: TicketLinked) -> None:
        self.links.setdefault(str(link.event_id), (link, False))

    async def unpublished_link(self, link_id: str) -> TicketLinked | None:
        found = self.links.get(link_id)
        return found[0] if found and not found[1] else None

    async def stored_link(self, link_id: str) -> TicketLinked | None:
        found = self.links.get(link_id)
        return found[0] if found else None

    async def mark_link_published(self, link_id: str) -> None:
        self.links[link_id] = (self.links[link_id][0], True)

    async def links_of(self, ticket_id: str) -> int:
        return sum(1 for link, sent in self.links.values() if sent and link.ticket_id == ticket_id)


class FakeHotspots:
    def __init__(self) -> None:
        self.added: list[dict[str, Any]] = []

    async def add(self, draft: TicketDraft, ticket_id: str, caller: str, now: datetime) -> None:
        self.added.append({"ticket_id": ticket_id, "district": draft.district, "caller": caller})

    async def list(self, now: datetime, district: str | None = None) -> list[dict[str, Any]]:
        return [h for h in self.added if district is None or h["district"] == district]


class FakeStatus:
    def __init__(self) -> None:
        self.progress: dict[str, Progress] = {}

    def set(self, ticket_id: str, status: str) -> None:
        self.progress[ticket_id] = Progress(ticket_id, status, None, None, None)

    async def get(self, ticket_id: str) -> Progress | None:
        return self.progress.get(ticket_id)
