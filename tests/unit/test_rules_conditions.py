"""Dispatch rules: the conditions and actions beyond districts and keywords —
traditional script, regular expressions, areas, time windows, inline limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.router.conditions import in_window, window_minutes
from services.router.engine import RuleEngine
from services.router.rules import RulesError, TimeWindow, parse_rules
from services.router.text import normalize
from shared.directory import Directory, load_directory
from shared.settings import DATA_DIR
from shared.workcalendar import WorkCalendar
from tests.unit.test_rules import AT, SHANGHAI, draft, rule, rules_text


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")


@pytest.fixture(scope="module")
def calendar() -> WorkCalendar:
    return WorkCalendar("Asia/Shanghai")


def engine_with(when: str, directory: Directory, calendar: WorkCalendar, **kw: str) -> RuleEngine:
    return RuleEngine(parse_rules(rules_text(rule("r", when, **kw))), directory, calendar)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in November 2026 in the city; 23 November is a Monday."""
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


# --- traditional and full-width text ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "folded"),
    [("停電了", "停电了"), ("發票", "发票"), ("臺灣", "台湾"), ("ＫＴＶ 太吵！", "ktv太吵")],
)
def test_normalize_makes_traditional_simplified(text: str, folded: str) -> None:
    assert normalize(text) == folded


@pytest.mark.parametrize(
    ("keyword", "text"),
    [
        ("停电", "我们这片停電了五个小时"),  # traditional text, simplified keyword
        ("停電", "我们这片停电了五个小时"),  # traditional keyword, simplified text
        ("ktv", "楼下ＫＴＶ营业到深夜"),  # full-width text
        ("KTV", "楼下k t v营业到深夜"),  # case and spacing
    ],
)
def test_keywords_match_whatever_the_script(
    directory: Directory, calendar: WorkCalendar, keyword: str, text: str
) -> None:
    engine = engine_with(f"{{keywords: {{any: [{keyword}]}}}}", directory, calendar)
    assert engine.decide(draft(text=text), AT).rule == "r"
    assert engine.decide(draft(text="路灯坏了"), AT).rule is None


# --- regex ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "matching", "other"),
    [
        (r"\d+号楼", "小区３ 号楼漏水", "小区楼道漏水"),
        ("停電.{0,4}小时", "停电五个小时了", "停电了一整天"),  # traditional pattern
        ("^请问", "请问，公积金怎么提取？", "我想请问公积金"),  # punctuation is gone first
        ("ktv|歌厅", "楼下KTV太吵", "楼下酒吧太吵"),  # case is ignored
    ],
)
def test_regex_condition(
    directory: Directory, calendar: WorkCalendar, pattern: str, matching: str, other: str
) -> None:
    engine = engine_with(f"{{regex: '{pattern}'}}", directory, calendar)
    assert engine.decide(draft(text=matching), AT).rule == "r"
    assert engine.decide(draft(text=other), AT).rule is None


def test_regex_and_keywords_must_both_hold(directory: Directory, calendar: WorkCalendar) -> None:
    engine = engine_with(r"{keywords: {any: [漏水]}, regex: '\d+号楼'}", directory, calendar)
    assert engine.decide(draft(text="3号楼漏水"), AT).rule == "r"
    assert engine.decide(draft(text="3号楼停电"), AT).rule is None
    assert engine.decide(draft(text="楼道漏水"), AT).rule is None


@pytest.mark.parametrize("pattern", ["([a-z", "*停水", "(?P<x>a)(?P<x>b)"])
def test_invalid_regex_is_refused_at_load(pattern: str) -> None:
    with pytest.raises(RulesError, match=r":11: rules\[0\] \(r\): when\.regex: invalid regular"):
        parse_rules(rules_text(rule("r", f"{{regex: '{pattern}'}}")))


# --- area -------------------------------------------------------------------------------

# A square around the centre of Liaocheng's old town, as [lat, lon].
SQUARE = "[[36.44, 115.97], [36.44, 116.00], [36.47, 116.00], [36.47, 115.97]]"


@pytest.mark.parametrize(
    ("location", "inside"),
    [
        ({"lat": 36.455, "lon": 115.985}, True),
        ({"lat": 36.44, "lon": 115.985}, True),  # on the border
        ({"lat": 36.50, "lon": 115.985}, False),  # north of it
        ({"lat": 36.455, "lon": 116.5}, False),  # east of it
        (None, False),  # no location: never in an area
    ],
)
def test_area_condition(
    directory: Directory, calendar: WorkCalendar, location: dict[str, Any] | None, inside: bool
) -> None:
    engine = engine_with(f"{{area: {SQUARE}}}", directory, calendar)
    decision = engine.decide(draft(location=location), AT)
    assert (decision.rule == "r") is inside


def test_area_with_a_triangle_and_a_keyword(directory: Directory, calendar: WorkCalendar) -> None:
    when = "{keywords: {any: [井盖]}, area: [[36.0, 115.0], [37.0, 115.0], [36.0, 116.0]]}"
    engine = engine_with(when, directory, calendar)
    near_corner = {"lat": 36.1, "lon": 115.1}
    beyond_diagonal = {"lat": 36.9, "lon": 115.9}
    assert engine.decide(draft(text="井盖丢了", location=near_corner), AT).rule == "r"
    assert engine.decide(draft(text="井盖丢了", location=beyond_diagonal), AT).rule is None
    assert engine.decide(draft(text="路灯坏了", location=near_corner), AT).rule is None


@pytest.mark.parametrize(
    ("area", "words"),
    [
        ("[[36.4, 115.9], [36.5, 116.0]]", "at least 3"),
        ("[[36.4, 115.9], [36.5, 116.0], [36.6, 116.1]]", "degenerate polygon"),
        ("[[36.4, 115.9], [36.5, 116.0], [36.4, 116.0], [36.5, 115.9]]", "degenerate polygon"),
        ("[[136.4, 115.9], [36.5, 116.0], [36.4, 116.0]]", "less than or equal to 90"),
        ("[[36.4], [36.5, 116.0], [36.4, 116.0]]", "area[0]"),
    ],
    ids=["two-points", "on-a-line", "crossing-edges", "latitude", "no-longitude"],
)
def test_bad_areas_are_refused(area: str, words: str) -> None:
    with pytest.raises(RulesError, match=r"rules\[0\] \(r\): when\.area") as info:
        parse_rules(rules_text(rule("r", f"{{area: {area}}}")))
    assert words in str(info.value)


# --- time window ------------------------------------------------------------------------

OFFICE = "{time_window: {from: '08:30', to: '17:30'}}"
NIGHT = "{time_window: {from: '22:00', to: '06:00'}}"
FRIDAY_NIGHT = "{time_window: {days: [fri], from: '22:00', to: '06:00'}}"
WEEKEND = "{time_window: {days: [sat, sun], from: '00:00', to: '23:59'}}"


@pytest.mark.parametrize(
    ("when", "at", "inside"),
    [
        (OFFICE, local(26, 10), True),
        (OFFICE, local(26, 8, 30), True),  # from is inside
        (OFFICE, local(26, 17, 30), False),  # to is not
        (OFFICE, local(26, 18), False),
        (NIGHT, local(26, 23), True),
        (NIGHT, local(26, 2), True),
        (NIGHT, local(26, 6), False),
        (NIGHT, local(26, 12), False),
        (FRIDAY_NIGHT, local(27, 23), True),  # Friday night
        (FRIDAY_NIGHT, local(28, 2), True),  # its small hours, on Saturday
        (FRIDAY_NIGHT, local(27, 2), False),  # Thursday night's small hours
        (FRIDAY_NIGHT, local(28, 23), False),  # Saturday night
        (WEEKEND, local(28, 12), True),
        (WEEKEND, local(29, 23, 30), True),
        (WEEKEND, local(26, 12), False),
    ],
)
def test_time_window_condition(
    directory: Directory, calendar: WorkCalendar, when: str, at: datetime, inside: bool
) -> None:
    engine = engine_with(when, directory, calendar)
    assert (engine.decide(draft(), at).rule == "r") is inside


def test_time_window_is_judged_in_the_city_time_zone(
    directory: Directory, calendar: WorkCalendar
) -> None:
    engine = engine_with(NIGHT, directory, calendar)
    assert engine.decide(draft(), datetime(2026, 11, 26, 14, 30, tzinfo=UTC)).rule == "r"
    assert engine.decide(draft(), datetime(2026, 11, 26, 4, 30, tzinfo=UTC)).rule is None


def test_matching_rules_takes_the_time(directory: Directory, calendar: WorkCalendar) -> None:
    engine = engine_with(NIGHT, directory, calendar)
    assert [r.id for r in engine.matching_rules(draft(), at=local(26, 23))] == ["r"]
    assert engine.matching_rules(draft(), at=local(26, 12)) == []


def test_unquoted_times_are_read_as_times(directory: Directory, calendar: WorkCalendar) -> None:
    # YAML 1.1 reads an unquoted 22:00 as the number 1320; the rules loader does not.
    engine = engine_with("{time_window: {from: 22:00, to: 6:00}}", directory, calendar)
    window = engine.ruleset.rules[0].when.time_window
    assert window is not None and (window.start.hour, window.end.hour) == (22, 6)
    assert engine.decide(draft(), local(26, 23)).rule == "r"


@pytest.mark.parametrize(
    ("window", "words"),
    [
        ("{from: '25:00', to: '06:00'}", 'expected a time of day "HH:MM"'),
        ("{from: 1320, to: '06:00'}", 'expected a time of day "HH:MM"'),
        ("{from: '08:00', to: '08:00'}", "the window is empty"),
        ("{days: [fri, funday], from: '08:00', to: '09:00'}", "days[1]"),
        ("{from: '08:00'}", "when.time_window: missing 'to'"),
    ],
    ids=["hour", "number", "empty", "day", "missing-end"],
)
def test_bad_time_windows_are_refused(window: str, words: str) -> None:
    with pytest.raises(RulesError, match=r"rules\[0\] \(r\): when\.time_window") as info:
        parse_rules(rules_text(rule("r", f"{{time_window: {window}}}")))
    assert words in str(info.value)


def window(days: tuple[str, ...], start: str, end: str) -> TimeWindow:
    return TimeWindow.model_validate({"days": days, "from": start, "to": end})


def test_in_window_wraps_from_sunday_to_monday() -> None:
    sunday_night = window(("sun",), "22:00", "06:00")
    assert in_window(sunday_night, local(29, 23))
    assert in_window(sunday_night, local(30, 1))  # Monday 01:00
    assert not in_window(sunday_night, local(24, 1))  # Tuesday: Monday night's


def test_window_minutes_count_the_week() -> None:
    assert window_minutes(window((), "00:00", "23:59")).bit_count() == 7 * 1439
    night = window_minutes(window(("sun",), "22:00", "06:00"))
    assert night.bit_count() == 8 * 60
    assert night & 1  # Monday 00:00 belongs to Sunday night
    assert night == window_minutes(window(("sun",), "22:00", "06:00"))


# --- actions: explicit limits -----------------------------------------------------------


def test_inline_time_limit(directory: Directory, calendar: WorkCalendar) -> None:
    engine = engine_with("{categories: [complaint]}", directory, calendar, extra=INLINE)
    decision = engine.decide(draft(), AT)
    assert (decision.time_limit, decision.response_limit) == ("3 working days", "1h")
    assert decision.deadline == calendar.add_working_days(AT, 3)
    assert decision.response_deadline == AT + timedelta(hours=1)
    # Named in the ruleset too, for whoever looks a decision's limit up by name.
    assert engine.ruleset.time_limits["3 working days"].working_days == 3
    assert engine.ruleset.response_limits["1h"].hours == 1
    assert engine.ruleset.time_limits["general"].working_days == 5


INLINE = "time_limit: {working_days: 3}, response_limit: {hours: 1}"


def test_inline_limit_with_the_name_of_another_is_refused() -> None:
    text = rules_text(
        rule("r", "{categories: [help]}", extra="time_limit: {working_days: 3}")
    ).replace(
        "general: {working_days: 5}", "general: {working_days: 5}\n  3 working days: {hours: 1}"
    )
    with pytest.raises(RulesError, match="a name taken by another"):
        parse_rules(text)


def test_inline_limit_equal_to_a_named_one_is_fine() -> None:
    extra = "time_limit: {hours: 24}"
    text = rules_text(rule("r", "{categories: [help]}", extra=extra)).replace(
        "utility: {hours: 24}", "utility: {hours: 24}\n  24h: {hours: 24}"
    )
    assert parse_rules(text).time_limits["24h"].hours == 24


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("time_limit: {working_days: 0}", "greater than 0"),
        ("time_limit: {days: 3}", "Extra inputs"),
        ("time_limit: {hours: 1, working_days: 1}", "exactly one"),
        ("response_limit: [1]", "valid dictionary"),
    ],
)
def test_bad_inline_limits_are_refused(extra: str, words: str) -> None:
    with pytest.raises(RulesError, match=r"rules\[0\] \(r\): then\.") as info:
        parse_rules(rules_text(rule("r", "{categories: [help]}", extra=extra)))
    assert words in str(info.value)
