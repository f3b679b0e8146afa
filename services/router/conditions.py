"""A rule's conditions compiled into tests of one ticket's facts.

Each condition a rule gives becomes one small function, built once with the
engine (regular expression compiled, polygon prepared); a rule holds only the
tests it needs. The ticket's district is not among them: the engine selects
candidate rules by district and keyword before any test runs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, time, tzinfo

from services.router.geo import area_test
from services.router.schema import WEEKDAYS, Conditions, Keywords, TimeWindow
from services.router.text import compile_pattern, normalize
from shared.domain import TicketDraft

MINUTES_A_DAY = 24 * 60


@dataclass(frozen=True, slots=True)
class Facts:
    """What the conditions look at, worked out once per decision."""

    draft: TicketDraft
    text: str  # normalized
    found: Collection[str]  # the normalized keywords found in text
    at: datetime  # the decision time
    tz: tzinfo  # the city's: a time window is judged in it
    district_kind: str | None


Check = Callable[[Facts], bool]


def normalized(words: tuple[str, ...]) -> frozenset[str]:
    return frozenset(normalize(word) for word in words)


def compile_checks(when: Conditions) -> tuple[Check, ...]:
    """The tests of a rule, cheapest first."""
    checks = [*_keyword_checks(when.keywords), *_field_checks(when)]
    if when.time_window is not None:
        checks.append(_window_check(when.time_window))
    if when.area is not None:
        checks.append(_area_check(when.area))
    if when.regex is not None:
        pattern = compile_pattern(when.regex)
        checks.append(lambda facts: pattern.search(facts.text) is not None)
    return tuple(checks)


def _keyword_checks(keywords: Keywords) -> list[Check]:
    checks: list[Check] = []
    any_kw, all_kw, none_kw = (normalized(w) for w in (keywords.any, keywords.all, keywords.none))
    if any_kw:
        checks.append(lambda facts: not any_kw.isdisjoint(facts.found))
    if all_kw:
        checks.append(lambda facts: all_kw.issubset(facts.found))
    if none_kw:
        checks.append(lambda facts: none_kw.isdisjoint(facts.found))
    return checks


def _field_checks(when: Conditions) -> list[Check]:
    checks: list[Check] = []
    if when.district_kinds:
        kinds = frozenset(when.district_kinds)
        checks.append(lambda facts: facts.district_kind in kinds)
    if when.towns:
        towns = frozenset(when.towns)
        checks.append(lambda facts: facts.draft.town in towns)
    if when.categories:
        categories = frozenset(when.categories)
        checks.append(lambda facts: facts.draft.category in categories)
    if when.channels:
        channels = frozenset(when.channels)
        checks.append(lambda facts: facts.draft.channel in channels)
    if when.priorities:
        priorities = frozenset(when.priorities)
        checks.append(lambda facts: facts.draft.priority in priorities)
    return checks


def _window_check(window: TimeWindow) -> Check:
    # Converted only here: most rules have no window, and the conversion costs.
    return lambda facts: in_window(window, facts.at.astimezone(facts.tz))


def _area_check(points: tuple[tuple[float, float], ...]) -> Check:
    inside = area_test(points)

    def check(facts: Facts) -> bool:
        location = facts.draft.location
        # A ticket without a location is in no area.
        return location is not None and inside(location.lat, location.lon)

    return check


def _minute(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _day_allowed(window: TimeWindow, weekday: int) -> bool:
    return not window.days or WEEKDAYS[weekday] in window.days


def in_window(window: TimeWindow, local: datetime) -> bool:
    """Whether local (the city's time) is in the window; the small hours of a
    window that crosses midnight count for the day it started."""
    minute, start, end = _minute(local.timetz()), _minute(window.start), _minute(window.end)
    if start < end:
        return start <= minute < end and _day_allowed(window, local.weekday())
    if minute >= start:
        return _day_allowed(window, local.weekday())
    return minute < end and _day_allowed(window, (local.weekday() - 1) % 7)


def window_minutes(window: TimeWindow) -> int:
    """The window as a bit set of the week's minutes (bit 0: Monday 00:00), to
    compare windows exactly: one covers another when it has all its bits."""
    start, end = _minute(window.start), _minute(window.end)
    length = end - start if start < end else end + MINUTES_A_DAY - start
    week = 7 * MINUTES_A_DAY
    bits = 0
    for day in range(7):
        if _day_allowed(window, day):
            first = day * MINUTES_A_DAY + start
            bits |= ((1 << length) - 1) << first
    # Sunday night's small hours are Monday's: fold what ran past the week's end.
    return (bits & ((1 << week) - 1)) | (bits >> week)
