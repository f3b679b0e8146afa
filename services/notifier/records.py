"""The words of the notifier's timer records, in one place: the kinds of timer,
the states of a job, and how a timer's id is made (its id is what makes every
effect of firing it idempotent, so it must be built one way only)."""

from __future__ import annotations

from enum import StrEnum


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
    """A job's state. Timers end fired or cancelled; deliveries end in the
    statuses of services.notifier.repository.DELIVERY_STATUSES."""

    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"


def timer_id(ticket_id: str, generation: str, kind: TimerKind, seq: int = 0) -> str:
    """One timer per ticket, generation (the event that set it), kind and count."""
    return f"{ticket_id}:{generation}:{kind.value}:{seq}"
