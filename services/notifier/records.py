"""The words of the notifier's records, in one place: the kinds of timer, the
states of a timer and of a delivery, an attempt to deliver, and how a timer's id
is made (its id is what makes every effect of firing it idempotent, so it must
be built one way only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class TimerKind(StrEnum):
    URGE = "urge"  # not accepted by the response deadline
    WARNING = "warning"  # yellow card: a working day before the deadline
    OVERDUE = "overdue"  # red card: at the deadline
    SUPERVISION = "supervision"  # 督办: each working day the ticket stays overdue


Kinds = tuple[TimerKind, ...]
# What an extension moves; what keeps escalating while the ticket stays overdue.
DEADLINE_KINDS = (TimerKind.WARNING, TimerKind.OVERDUE, TimerKind.SUPERVISION)
ESCALATING_KINDS = (TimerKind.OVERDUE, TimerKind.SUPERVISION)


class JobStatus(StrEnum):
    """A job's state. Timers end fired or cancelled; deliveries end in a
    DeliveryStatus."""

    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"


class DeliveryStatus(StrEnum):
    PENDING = JobStatus.PENDING.value  # waiting for its (next) attempt
    DELIVERED = "delivered"
    DEAD = "dead"  # given up after the last attempt, or nothing reaches the department
    # Dropped before an attempt: the ticket moved on (services.notifier.currency).
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Attempt:
    """One attempt to deliver a notice, as the delivery's history keeps it."""

    n: int
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None

    def doc(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "at": self.at,
            "ok": self.ok,
            "status_code": self.status_code,
            "error": self.error,
        }


def timer_id(ticket_id: str, generation: str, kind: TimerKind, seq: int = 0) -> str:
    """One timer per ticket, generation (the event that set it), kind and count."""
    return f"{ticket_id}:{generation}:{kind.value}:{seq}"


@dataclass(frozen=True)
class Timer:
    """A stored timer as firing reads it (services.notifier.timers.timer_doc
    writes it)."""

    id: str
    ticket_id: str
    generation: str
    kind: TimerKind
    seq: int
    status: JobStatus
    due_at: datetime
    original_due_at: datetime
    # What firing needs of the step that set it, carried to the next supervision.
    department: str
    deadline: datetime
    response_deadline: datetime | None
    dims: dict[str, Any]

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Timer:
        return cls(
            id=str(doc["_id"]),
            ticket_id=str(doc["ticket_id"]),
            generation=str(doc["generation"]),
            kind=TimerKind(doc["kind"]),
            seq=int(doc["seq"]),
            status=JobStatus(doc["status"]),
            due_at=doc["due_at"],
            original_due_at=doc["original_due_at"],
            department=str(doc["department"]),
            deadline=doc["deadline"],
            response_deadline=doc.get("response_deadline"),
            dims=dict(doc["dims"]),
        )

    def context(self) -> dict[str, Any]:
        """What the next timer of the same step carries."""
        return {name: getattr(self, name) for name in CONTEXT_FIELDS}


CONTEXT_FIELDS = ("department", "deadline", "response_deadline", "dims")
