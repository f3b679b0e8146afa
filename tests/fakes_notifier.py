"""In-memory stand-ins for the stores the notifier's handlers and timer firing
depend on (services/notifier/ports.py); see tests/fakes.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.notifier.channels import Outcome
from services.notifier.records import JobStatus, Kinds
from services.notifier.schedule import Planned
from services.notifier.timers import FirstEvent, TicketTimers, timer_doc
from shared.directory import Department
from shared.mongo import Document


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

    async def insert_new(self, docs: list[Document]) -> list[Document]:
        new = [doc for doc in docs if doc["_id"] not in self.jobs]
        self.jobs.update({doc["_id"]: dict(doc) for doc in new})
        return new

    async def claim_new(self, jobs: list[Document], now: datetime, lease: timedelta) -> None:
        """Nothing here claims deliveries: the sender is tested against the store."""

    async def schedule_many(self, docs: list[Document]) -> list[Document]:
        new = [await self.schedule(doc) for doc in docs]
        return [job for job in new if job is not None]


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
        return await self.insert_new(
            [timer_doc(ticket_id, generation, p, context) for p in planned]
        )

    async def insert_new(self, docs: list[Document]) -> list[Document]:
        new = [doc for doc in docs if doc["_id"] not in self.jobs]
        self.jobs.update({doc["_id"]: dict(doc) for doc in new})
        return new

    async def accept_new(self, first: list[FirstEvent]) -> set[str]:
        new = {e.ticket_id for e in first if e.ticket_id not in self.tickets}
        for event in first:
            if event.ticket_id in new:
                record = event.record()
                self.tickets[record.pop("_id")] = record
        return new

    async def accept_event(
        self,
        ticket_id: str,
        occurred_at: datetime,
        generation: str | None = None,
        standing: Document | None = None,
    ) -> TicketTimers | None:
        doc = self.tickets.setdefault(ticket_id, {"last_at": occurred_at, "generations": []})
        if doc["last_at"] > occurred_at:
            return None
        before = list(doc["generations"])
        doc["last_at"] = occurred_at
        doc.update(standing or {})
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

    async def claim_many(
        self, jobs: list[Document], now: datetime, lease: timedelta
    ) -> list[Document]:
        return [job for job in jobs if await self.claim(job, now, lease)]

    async def mark_fired_many(self, fired: dict[str, float], fired_at: datetime) -> set[str]:
        return {t for t, lag in fired.items() if await self.mark_fired(t, fired_at, lag)}

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
