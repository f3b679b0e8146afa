"""Deadlines as people read them (issue #17, point 11): midnight ends the
working day before, shown as its 24:00, never as 00:00 of the next day."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.notifier.templates import local_time, render
from shared.timefmt import deadline_label
from shared.workcalendar import WorkCalendar

SH = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkCalendar("Asia/Shanghai")


@pytest.mark.parametrize(
    ("deadline", "shown"),
    [
        (datetime(2026, 12, 9, 17, 30, tzinfo=SH), "2026-12-09 17:30"),
        (datetime(2026, 12, 10, 0, 0, tzinfo=SH), "2026-12-09 24:00"),  # Wednesday's end
        # Monday 00:00 after a weekend that does not count: Friday's end.
        (datetime(2026, 12, 14, 0, 0, tzinfo=SH), "2026-12-11 24:00"),
        # After National Day 2026 (10-01..07): the last working day before it, 09-30.
        (datetime(2026, 10, 8, 0, 0, tzinfo=SH), "2026-09-30 24:00"),
        (datetime(2026, 12, 10, 0, 0, 30, tzinfo=SH), "2026-12-10 00:00"),  # not a day's end
    ],
)
def test_a_deadline_at_midnight_is_the_previous_working_days_end(
    deadline: datetime, shown: str
) -> None:
    assert deadline_label(deadline, CALENDAR) == shown
    assert local_time(deadline, CALENDAR) == shown


def test_the_dispatch_notice_says_24_00() -> None:
    deadline = local_time(datetime(2026, 12, 14, tzinfo=SH), CALENDAR)
    _, text = render("dispatch", {"ticket_id": "LC1", "deadline_local": deadline})
    assert "2026-12-11 24:00前办结" in text and "12-14 00:00" not in text
