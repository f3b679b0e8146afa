"""Deadlines as people in the city read them."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.workcalendar import WorkCalendar


def deadline_label(value: datetime, calendar: WorkCalendar) -> str:
    """ "2026-12-11 17:30" in the city's time. A deadline at midnight ends the
    working day before it: it reads as that working day's 24:00 (当日), never as
    00:00 of the next day (or of a Monday after a weekend that does not count),
    which a department would take for a day more."""
    local = value.astimezone(calendar.tz)
    if (local.hour, local.minute, local.second, local.microsecond) != (0, 0, 0, 0):
        return local.strftime("%Y-%m-%d %H:%M")
    day = calendar.previous_workday(local.date() - timedelta(days=1))
    return f"{day.isoformat()} 24:00"
