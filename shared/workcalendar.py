"""Working time on China's official calendar: weekends, public holidays and the
make-up working days (调休) declared each year.

The holiday data comes from the maintained `chinese-calendar` package; an
override file adds what it does not know yet (next year's declaration arrives in
November) or local deviations. A year with neither falls back to Monday-Friday.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
from pydantic import BaseModel, ConfigDict, Field, model_validator

logger = logging.getLogger(__name__)


class TimeLimit(BaseModel):
    """A limit in natural hours, working hours or working days; exactly one is set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hours: float | None = Field(default=None, gt=0)
    working_hours: float | None = Field(default=None, gt=0)
    working_days: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> TimeLimit:
        given = [v for v in (self.hours, self.working_hours, self.working_days) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of hours, working_hours, working_days")
        return self

    def describe(self) -> str:
        if self.hours is not None:
            return f"{self.hours:g}h"
        if self.working_hours is not None:
            return f"{self.working_hours:g} working h"
        return f"{self.working_days} working days"


def load_overrides(path: Path | None) -> dict[date, bool]:
    """JSON object {"2027-01-01": "holiday", "2027-02-07": "workday"}."""
    if path is None:
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object of date -> 'holiday' | 'workday'")
    result: dict[date, bool] = {}
    for key, kind in raw.items():
        if kind not in ("holiday", "workday"):
            raise ValueError(f"{path}: {key}: expected 'holiday' or 'workday', got {kind!r}")
        result[date.fromisoformat(key)] = kind == "workday"
    return result


class WorkCalendar:
    def __init__(
        self,
        tz: str = "Asia/Shanghai",
        overrides: dict[date, bool] | None = None,
        day_start: time = time(8, 30),
        day_end: time = time(17, 30),
    ) -> None:
        self.tz = ZoneInfo(tz)
        self._overrides = overrides or {}
        self._day_start = day_start
        self._day_end = day_end
        self._warned_years: set[int] = set()
        self._cache: dict[date, bool] = {}  # a few hundred days a year at most

    def is_workday(self, day: date) -> bool:
        known = self._cache.get(day)
        if known is None:
            known = self._cache[day] = self._lookup(day)
        return known

    def _lookup(self, day: date) -> bool:
        if day in self._overrides:
            return self._overrides[day]
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year not in self._warned_years:
                self._warned_years.add(day.year)
                logger.warning("no holiday data for %d: weekends only", day.year)
            return day.weekday() < 5

    def next_workday(self, day: date) -> date:
        while not self.is_workday(day):
            day += timedelta(days=1)
        return day

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The same local time on the n-th working day after start. A start on a
        rest day counts from the beginning of the next working day."""
        local = start.astimezone(self.tz)
        day = local.date()
        if not self.is_workday(day):
            day = self.next_workday(day)
            local = datetime.combine(day, time(0, 0), self.tz)
        for _ in range(days):
            day = self.next_workday(day + timedelta(days=1))
        return datetime.combine(day, local.timetz()).astimezone(start.tzinfo)

    def previous_workday(self, day: date) -> date:
        while not self.is_workday(day):
            day -= timedelta(days=1)
        return day

    def working_days_before(self, end: datetime, days: int) -> datetime:
        """The same local time, n working days before end (a warning's time)."""
        local = end.astimezone(self.tz)
        day = local.date()
        for _ in range(days):
            day = self.previous_workday(day - timedelta(days=1))
        return datetime.combine(day, local.timetz()).astimezone(end.tzinfo)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """Counts only the working window of working days."""
        remaining = timedelta(hours=hours)
        cursor = start.astimezone(self.tz)
        while True:
            window_start = datetime.combine(cursor.date(), self._day_start, self.tz)
            window_end = datetime.combine(cursor.date(), self._day_end, self.tz)
            if self.is_workday(cursor.date()) and cursor < window_end:
                cursor = max(cursor, window_start)
                if cursor + remaining <= window_end:
                    return (cursor + remaining).astimezone(start.tzinfo)
                remaining -= window_end - cursor
            next_day = self.next_workday(cursor.date() + timedelta(days=1))
            cursor = datetime.combine(next_day, self._day_start, self.tz)

    def deadline(self, start: datetime, limit: TimeLimit) -> datetime:
        if limit.hours is not None:
            return start + timedelta(hours=limit.hours)
        if limit.working_hours is not None:
            return self.add_working_hours(start, limit.working_hours)
        assert limit.working_days is not None
        return self.add_working_days(start, limit.working_days)
