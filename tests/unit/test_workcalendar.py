"""Working time on China's calendar (shared/workcalendar.py).

Facts used (State Council notice for 2026, as packaged by chinese-calendar):
Mid-Autumn holiday 2026-09-25..27; National Day holiday 2026-10-01..07;
Saturday 2026-10-10 is a make-up working day; Sunday 2026-10-11 is a rest day.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from pydantic import ValidationError

from shared.workcalendar import TimeLimit, WorkCalendar, load_overrides

SHANGHAI = ZoneInfo("Asia/Shanghai")


def sh(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def write_overrides(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


# --- TimeLimit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"hours": 2}, "2h"),
        ({"working_hours": 0.5}, "0.5 working h"),
        ({"working_days": 5}, "5 working days"),
    ],
)
def test_time_limit_with_one_unit(fields: dict[str, float], text: str) -> None:
    assert TimeLimit.model_validate(fields).describe() == text


@pytest.mark.parametrize(
    "fields",
    [{}, {"hours": 2, "working_days": 1}, {"hours": 1, "working_hours": 1, "working_days": 1}],
    ids=["none", "two", "three"],
)
def test_time_limit_needs_exactly_one_unit(fields: dict[str, float]) -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        TimeLimit.model_validate(fields)


@pytest.mark.parametrize(
    "fields",
    [{"hours": 0}, {"working_hours": -1}, {"working_days": 0}, {"working_days": 1.5}, {"days": 1}],
)
def test_time_limit_refuses_non_positive_fractional_days_and_unknown_units(
    fields: dict[str, float],
) -> None:
    with pytest.raises(ValidationError):
        TimeLimit.model_validate(fields)


# --- is_workday ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 10, 1), False),  # National Day, a Thursday
        (date(2026, 10, 5), False),  # holiday on a Monday
        (date(2026, 10, 10), True),  # make-up working Saturday
        (date(2026, 10, 11), False),  # the Sunday after it
        (date(2026, 10, 17), False),  # plain Saturday
        (date(2026, 11, 29), False),  # plain Sunday
        (date(2026, 11, 26), True),  # plain Thursday
        (date(2026, 9, 25), False),  # Mid-Autumn, a Friday
        (date(2026, 9, 30), True),  # last working day before National Day
    ],
)
def test_is_workday(cal: WorkCalendar, day: date, expected: bool) -> None:
    assert cal.is_workday(day) is expected


def test_next_workday_skips_the_whole_national_day_holiday(cal: WorkCalendar) -> None:
    assert cal.next_workday(date(2026, 10, 1)) == date(2026, 10, 8)
    assert cal.next_workday(date(2026, 9, 30)) == date(2026, 9, 30)
    assert cal.next_workday(date(2026, 10, 11)) == date(2026, 10, 12)


# --- add_working_days ----------------------------------------------------------------


def test_the_package_agrees_on_the_day_after_september_30() -> None:
    # The expected values below rest on this.
    day = date(2026, 10, 1)
    while not chinese_calendar.is_workday(day):
        day += timedelta(days=1)
    assert day == date(2026, 10, 8)


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (0, sh(2026, 9, 30, 10)),
        (1, sh(2026, 10, 8, 10)),
        (2, sh(2026, 10, 9, 10)),
        (3, sh(2026, 10, 10, 10)),  # the make-up Saturday counts
        (4, sh(2026, 10, 12, 10)),  # the Sunday does not
        (5, sh(2026, 10, 13, 10)),
    ],
)
def test_add_working_days_across_national_day(
    cal: WorkCalendar, days: int, expected: datetime
) -> None:
    result = cal.add_working_days(sh(2026, 9, 30, 10), days)
    assert result == expected
    assert result.astimezone(SHANGHAI).time() == time(10, 0)


def test_add_working_days_keeps_the_timezone_of_the_start(cal: WorkCalendar) -> None:
    start = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    result = cal.add_working_days(start, 1)
    assert result == datetime(2026, 10, 8, 2, 0, tzinfo=UTC)
    assert result.tzinfo is UTC


def test_add_working_days_counts_calendar_days_in_local_time(cal: WorkCalendar) -> None:
    # 17:00 UTC on Tuesday 29 Sep is 01:00 on Wednesday 30 Sep in Shanghai.
    start = datetime(2026, 9, 29, 17, 0, tzinfo=UTC)
    assert cal.add_working_days(start, 1) == sh(2026, 10, 8, 1)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (sh(2026, 10, 3, 15), sh(2026, 10, 9)),  # holiday: counts from 8 Oct 00:00
        (sh(2026, 11, 28, 10), sh(2026, 12, 1)),  # plain Saturday: from Monday 00:00
        (sh(2026, 10, 11, 23, 59), sh(2026, 10, 13)),  # Sunday after the make-up day
    ],
)
def test_add_working_days_from_a_rest_day_counts_from_the_next_working_day(
    cal: WorkCalendar, start: datetime, expected: datetime
) -> None:
    assert cal.add_working_days(start, 1) == expected


def test_add_working_days_from_a_rest_day_with_zero_days(cal: WorkCalendar) -> None:
    assert cal.add_working_days(sh(2026, 10, 4, 12), 0) == sh(2026, 10, 8)


# --- add_working_hours (window 08:30-17:30, no lunch break) ---------------------------


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (sh(2026, 11, 26, 9), 2, sh(2026, 11, 26, 11)),  # inside the window
        (sh(2026, 11, 26, 11, 30), 2, sh(2026, 11, 26, 13, 30)),  # lunch counts
        (sh(2026, 11, 26, 8, 30), 9, sh(2026, 11, 26, 17, 30)),  # fills the day exactly
        (sh(2026, 11, 26, 16, 30), 2, sh(2026, 11, 27, 9, 30)),  # across the evening
        (sh(2026, 11, 26, 7), 1, sh(2026, 11, 26, 9, 30)),  # before the window opens
        (sh(2026, 11, 26, 18), 1, sh(2026, 11, 27, 9, 30)),  # after it closes
        (sh(2026, 11, 27, 16, 30), 2, sh(2026, 11, 30, 9, 30)),  # Friday to Monday
        (sh(2026, 11, 28, 10), 0.5, sh(2026, 11, 30, 9)),  # from a Saturday
        (sh(2026, 11, 26, 8, 30), 18, sh(2026, 11, 27, 17, 30)),  # two whole days
        (sh(2026, 9, 30, 17), 1, sh(2026, 10, 8, 9)),  # across National Day
        (sh(2026, 10, 9, 17), 1, sh(2026, 10, 10, 9)),  # onto the make-up Saturday
    ],
)
def test_add_working_hours(
    cal: WorkCalendar, start: datetime, hours: float, expected: datetime
) -> None:
    assert cal.add_working_hours(start, hours) == expected


def test_add_working_hours_keeps_the_timezone_of_the_start(cal: WorkCalendar) -> None:
    start = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)  # 16:30 in Shanghai
    result = cal.add_working_hours(start, 2)
    assert result == sh(2026, 11, 27, 9, 30)
    assert result.tzinfo is UTC


def test_custom_working_window() -> None:
    cal = WorkCalendar(day_start=time(9, 0), day_end=time(12, 0))
    assert cal.add_working_hours(sh(2026, 11, 26, 11), 2) == sh(2026, 11, 27, 10)


# --- deadline ------------------------------------------------------------------------


def test_deadline_in_natural_hours_ignores_the_calendar(cal: WorkCalendar) -> None:
    start = sh(2026, 10, 1, 10)
    assert cal.deadline(start, TimeLimit(hours=2)) == sh(2026, 10, 1, 12)
    assert cal.deadline(start, TimeLimit(hours=24)) == sh(2026, 10, 2, 10)


def test_deadline_in_working_hours_and_days(cal: WorkCalendar) -> None:
    start = sh(2026, 9, 30, 17)
    assert cal.deadline(start, TimeLimit(working_hours=2)) == sh(2026, 10, 8, 10)
    assert cal.deadline(start, TimeLimit(working_days=5)) == sh(2026, 10, 13, 17)


# --- overrides -----------------------------------------------------------------------


def test_no_override_file_means_no_overrides() -> None:
    assert load_overrides(None) == {}


def test_overrides_are_read_from_json(tmp_path: Path) -> None:
    path = write_overrides(tmp_path, {"2026-10-01": "workday", "2026-11-26": "holiday"})
    assert load_overrides(path) == {date(2026, 10, 1): True, date(2026, 11, 26): False}


def test_overrides_take_precedence_over_the_package(tmp_path: Path) -> None:
    path = write_overrides(
        tmp_path, {"2026-10-01": "workday", "2026-11-26": "holiday", "2026-11-28": "workday"}
    )
    cal = WorkCalendar(overrides=load_overrides(path))
    assert cal.is_workday(date(2026, 10, 1)) is True
    assert cal.is_workday(date(2026, 11, 26)) is False
    assert cal.is_workday(date(2026, 11, 28)) is True
    assert cal.is_workday(date(2026, 10, 2)) is False  # not overridden
    assert cal.add_working_days(sh(2026, 9, 30, 10), 1) == sh(2026, 10, 1, 10)
    assert cal.add_working_days(sh(2026, 11, 25, 10), 1) == sh(2026, 11, 27, 10)


@pytest.mark.parametrize(
    "content",
    [
        {"2026-10-01": "day-off"},
        {"2026-10-01": True},
        {"2026-13-01": "holiday"},
        {"soon": "workday"},
    ],
    ids=["unknown-kind", "boolean", "bad-month", "not-a-date"],
)
def test_bad_override_values_raise_value_error(tmp_path: Path, content: object) -> None:
    with pytest.raises(ValueError):
        load_overrides(write_overrides(tmp_path, content))


def test_bad_override_kind_names_the_file_and_the_day(tmp_path: Path) -> None:
    path = write_overrides(tmp_path, {"2026-10-01": "day-off"})
    with pytest.raises(ValueError) as info:
        load_overrides(path)
    assert str(path) in str(info.value)
    assert "2026-10-01" in str(info.value)


def test_override_file_that_is_not_json_raises_value_error(tmp_path: Path) -> None:
    path = tmp_path / "calendar.json"
    path.write_text("{2026-10-01: holiday", encoding="utf-8")
    with pytest.raises(ValueError):
        load_overrides(path)


def test_override_file_that_is_not_an_object_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        load_overrides(write_overrides(tmp_path, ["2026-10-01"]))


# --- a year without data ---------------------------------------------------------------


def test_a_year_without_data_falls_back_to_monday_to_friday(
    cal: WorkCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2030, 1, 1))  # the premise: no data for 2030
    with caplog.at_level(logging.WARNING, logger="shared.workcalendar"):
        assert cal.is_workday(date(2030, 1, 1)) is True  # New Year, but unknown: Tuesday
        assert cal.is_workday(date(2030, 1, 4)) is True  # Friday
        assert cal.is_workday(date(2030, 1, 5)) is False  # Saturday
        assert cal.is_workday(date(2030, 1, 6)) is False  # Sunday
    warnings = [r for r in caplog.records if "2030" in r.getMessage()]
    assert len(warnings) == 1, "warn once per year, not once per day"


def test_a_year_without_data_still_counts_working_days(cal: WorkCalendar) -> None:
    assert cal.add_working_days(sh(2030, 1, 4, 10), 1) == sh(2030, 1, 7, 10)
    assert cal.add_working_hours(sh(2030, 1, 4, 17), 1) == sh(2030, 1, 7, 9)


def test_overrides_fill_a_year_without_data(tmp_path: Path) -> None:
    path = write_overrides(tmp_path, {"2030-01-01": "holiday", "2030-01-05": "workday"})
    cal = WorkCalendar(overrides=load_overrides(path))
    assert cal.is_workday(date(2030, 1, 1)) is False
    assert cal.is_workday(date(2030, 1, 5)) is True
    assert cal.add_working_days(sh(2029, 12, 31, 10), 1) == sh(2030, 1, 2, 10)
