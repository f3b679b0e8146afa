"""When each timer of a ticket falls due (docs/DOMAIN.md §3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.notifier.records import TimerKind
from shared.workcalendar import WorkCalendar

SHORT_LIMIT = timedelta(days=2)


@dataclass(frozen=True)
class Planned:
    kind: TimerKind
    due_at: datetime
    seq: int = 0


def warning_time(start: datetime, deadline: datetime, calendar: WorkCalendar) -> datetime:
    """One working day before the deadline; at 80% of the time for limits
    shorter than two days, where a day's notice would come before the start."""
    if deadline - start < SHORT_LIMIT:
        return start + (deadline - start) * 0.8
    return max(start, calendar.working_days_before(deadline, 1))


def deadline_timers(start: datetime, deadline: datetime, calendar: WorkCalendar) -> list[Planned]:
    return [
        Planned(TimerKind.WARNING, warning_time(start, deadline, calendar)),
        Planned(TimerKind.OVERDUE, deadline),
    ]


def dispatch_timers(
    start: datetime, deadline: datetime, response_deadline: datetime, calendar: WorkCalendar
) -> list[Planned]:
    return [Planned(TimerKind.URGE, response_deadline), *deadline_timers(start, deadline, calendar)]


def supervision(deadline: datetime, count: int, calendar: WorkCalendar) -> Planned:
    """The count-th supervision: count working days after the deadline."""
    return Planned(TimerKind.SUPERVISION, calendar.add_working_days(deadline, count), count)
