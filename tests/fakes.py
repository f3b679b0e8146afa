"""In-memory stand-ins for the Protocols the services' cores depend on
(shared/messaging/ports.py, services/<svc>/ports.py), for unit tests that run in
milliseconds. They keep the semantics the outbox, redelivery and replay logic
relies on — versions compared and set (StaleState), an id inserted once, the
outbox kept until cleared at its version, a publish that fails raising
UnavailableError — and nothing else (no indexes, no query language). The
integration tests run the same logic against the real stores and broker."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from services.intake.duplicates import Earlier
from services.intake.repository import IntakeRecord, KeyBinding, RecordMeta
from services.intake.status import Progress
from services.notifier.channels import Outcome
from services.notifier.records import JobStatus, Kinds
from services.notifier.schedule import Planned
from services.notifier.timers import TicketTimers, timer_doc
from services.router.repository import StaleState, StoredTicket
from services.router.workflow.state import TicketState
from shared.directory import Department
from shared.domain import TicketDraft
from shared.errors import UnavailableError
from shared.events import EVENT_ADAPTER, Envelope, TicketEvent, TicketFeedback, TicketLinked
from shared.mongo import Document


def _stored(events: list[Envelope]) -> list[TicketEvent]:
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
        return StoredTicket(found.state, _stored(found.outbox)) if found else None

    async def create(
        self, state: TicketState, events: list[Envelope], now: datetime
    ) -> tuple[StoredTicket, bool]:
        if state.ticket_id in self.tickets:
            existing = await self.get(state.ticket_id)
            assert existing is not None
            return existing, False
        self.tickets[state.ticket_id] = _Ticket(state, list(events), now)
        return StoredTicket(state, _stored(events)), True

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

    async def with_pending_outbox(self, before: datetime, limit: int = 100) -> list[StoredTicket]:
        pending = [
            StoredTicket(t.state, _stored(t.outbox))
            for t in self.tickets.values()
            if t.outbox_since is not None and t.outbox_since < before
        ]
        return pending[:limit]


class FakeRefusedStore:
    def __init__(self) -> None:
        self.refused: dict[str, str] = {}

    async def record(self, event: TicketFeedback, code: str, reason: str, now: datetime) -> None:
        self.refused.setdefault(str(event.event_id), code)


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
        (event,) = _stored([build(ticket_id)])
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

    async def find(self, caller: str, text: str, now: datetime) -> Earlier | None:
        for ticket_id, seen in reversed(self.recent.get(caller, [])):
            if seen == text:
                return Earlier(ticket_id, 100.0)
        return None

    async def remember(self, caller: str, ticket_id: str, text: str, now: datetime) -> None:
        self.recent.setdefault(caller, []).append((ticket_id, text))

    async def record_link(self, link: TicketLinked) -> None:
        self.links.setdefault(str(link.event_id), (link, False))

    async def unpublished_link(self, link_id: str) -> TicketLinked | None:
        found = self.links.get(link_id)
        return found[0] if found and not found[1] else None

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


class FakeDeliveries:
    """The notifier's DeliveryStore: a delivery id scheduled once."""

    def __init__(self) -> None:
        self.jobs: dict[str, Document] = {}

    async def schedule(self, doc: Document) -> Document | None:
        if doc["_id"] in self.jobs:
            return None
        job = {**doc, "status": JobStatus.PENDING, "attempt_no": 0, "attempts": []}
        self.jobs[doc["_id"]] = job
        return dict(job)


@dataclass
class FakeTimers:
    """The notifier's TimerStore. Replicas of one store (`replica()`) share its
    timers and claims under another owner, as two notifier processes would."""

    jobs: dict[str, Document] = field(default_factory=dict)
    tickets: dict[str, Document] = field(default_factory=dict)
    claims: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    def replica(self) -> FakeTimers:
        return FakeTimers(self.jobs, self.tickets, self.claims)

    async def schedule(
        self, ticket_id: str, generation: str, planned: list[Planned], context: Document
    ) -> list[Document]:
        new = [timer_doc(ticket_id, generation, p, context) for p in planned]
        new = [doc for doc in new if doc["_id"] not in self.jobs]
        self.jobs.update({doc["_id"]: dict(doc) for doc in new})
        return new

    async def accept_event(
        self, ticket_id: str, occurred_at: datetime, generation: str | None = None
    ) -> TicketTimers | None:
        doc = self.tickets.setdefault(ticket_id, {"last_at": occurred_at, "generations": []})
        if doc["last_at"] > occurred_at:
            return None
        before = list(doc["generations"])
        doc["last_at"] = occurred_at
        if generation is not None and generation not in before:
            doc["generations"].append(generation)
        return TicketTimers(ticket_id, before)

    async def cancel(
        self, known: TicketTimers, kinds: Kinds | None = None, keep: str | None = None
    ) -> int:
        hit = [
            t
            for t in self.jobs.values()
            if t["ticket_id"] == known.ticket_id
            and t["status"] == JobStatus.PENDING
            and (kinds is None or t["kind"] in kinds)
            and t["generation"] != keep
        ]
        for timer in hit:
            timer["status"] = JobStatus.CANCELLED
        return len(hit)

    async def claim(self, job: Document, now: datetime, lease: timedelta) -> bool:
        key = f"{job['_id']}:{job['attempt_no']}"
        holder = self.claims.get(key)
        if holder is not None and holder[0] != self.owner and holder[1] >= now:
            return False
        self.claims[key] = (self.owner, now + lease)
        current = self.jobs.get(job["_id"])
        return (
            current is not None
            and current["status"] == JobStatus.PENDING
            and current["attempt_no"] == job["attempt_no"]
        )

    async def get(self, timer: str) -> Document | None:
        found = self.jobs.get(timer)
        return dict(found) if found else None

    async def cancel_one(self, timer: str) -> None:
        if self.jobs[timer]["status"] == JobStatus.PENDING:
            self.jobs[timer]["status"] = JobStatus.CANCELLED

    async def mark_fired(self, timer: str, fired_at: datetime, lag_s: float) -> bool:
        doc = self.jobs.get(timer)
        if doc is None or doc["status"] != JobStatus.PENDING:
            return False
        doc.update(status=JobStatus.FIRED, fired_at=fired_at, lag_s=lag_s)
        return True


class ReachEveryone:
    """A delivery channel that reaches every department; sends nothing."""

    def __init__(self, name: str) -> None:
        self.name = name

    def target(self, department: Department) -> str | None:
        return f"{self.name}:{department.id}"

    async def send(self, delivery: Document) -> Outcome:
        return Outcome(ok=True)


class FakeArchive:
    """Stats' ArchiveSink: an event id archived once, its first record kept."""

    def __init__(self) -> None:
        self.records: dict[str, Document] = {}

    async def add_many(self, docs: list[Document]) -> int:
        new = [doc for doc in docs if doc["_id"] not in self.records]
        self.records.update({doc["_id"]: doc for doc in new})
        return len(new)
