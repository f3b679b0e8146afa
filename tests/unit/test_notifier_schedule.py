"""The notifier's pure parts: when timers fall due (services/notifier/schedule.py),
the Chinese message texts, the webhook signature, the choice of channel and the
retry backoff.

Calendar facts used (State Council notice for 2026, as packaged by
chinese-calendar): Sunday 2026-09-20 is a make-up working day; Mid-Autumn holiday
2026-09-25..27; National Day holiday 2026-10-01..07; Saturday 2026-10-10 is a
make-up working day; Sunday 2026-10-11 is a rest day.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.notifier.channels import (
    DeliveryChannel,
    Outcome,
    channel_for,
    load_channels,
)
from services.notifier.delivery import DeliverySender
from services.notifier.records import TimerKind
from services.notifier.repository import DeliveryRepository
from services.notifier.schedule import (
    Planned,
    deadline_timers,
    dispatch_timers,
    supervision,
    warning_time,
)
from services.notifier.templates import ROLE_NAMES, TEMPLATES, local_time, render
from shared.directory import Contact, Department
from shared.mongo import Document
from shared.settings import NotifierSettings
from shared.signing import sign
from shared.workcalendar import WorkCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


def sh(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


# --- warning: one working day before the deadline ----------------------------------


@pytest.mark.parametrize(
    ("start", "deadline", "warning"),
    [
        # An ordinary week: Friday's deadline, Thursday's warning.
        (sh(2026, 11, 16, 10), sh(2026, 11, 20, 10), sh(2026, 11, 19, 10)),
        # Across a weekend: Monday's deadline warns on the Friday before.
        (sh(2026, 11, 16, 10), sh(2026, 11, 23, 9, 30), sh(2026, 11, 20, 9, 30)),
        # Across National Day: the first working day after it warns on 30 September.
        (sh(2026, 9, 24, 10), sh(2026, 10, 8, 15), sh(2026, 9, 30, 15)),
        # Monday after the holiday week: the make-up Saturday 10 October is the
        # working day before, Sunday 11 October is not.
        (sh(2026, 9, 28, 10), sh(2026, 10, 12, 11), sh(2026, 10, 10, 11)),
        # A make-up Sunday deadline (20 September): the Friday before.
        (sh(2026, 9, 14, 10), sh(2026, 9, 20, 10), sh(2026, 9, 18, 10)),
        # Across Mid-Autumn: Monday 28 September warns on Thursday 24.
        (sh(2026, 9, 21, 10), sh(2026, 9, 28, 10), sh(2026, 9, 24, 10)),
    ],
)
def test_warning_one_working_day_before_the_deadline(
    cal: WorkCalendar, start: datetime, deadline: datetime, warning: datetime
) -> None:
    assert warning_time(start, deadline, cal) == warning


def test_warning_never_before_the_start(cal: WorkCalendar) -> None:
    # Dispatched on 30 September at noon with a deadline on 8 October: the working
    # day before the deadline is 30 September 10:00, before the dispatch itself.
    start, deadline = sh(2026, 9, 30, 12), sh(2026, 10, 8, 10)
    assert warning_time(start, deadline, cal) == start


@pytest.mark.parametrize(
    "limit",
    [timedelta(minutes=30), timedelta(hours=2), timedelta(hours=24), timedelta(hours=47)],
)
def test_warning_at_80_percent_for_limits_under_two_days(
    cal: WorkCalendar, limit: timedelta
) -> None:
    start = sh(2026, 10, 1, 10)  # a holiday: the 80% rule counts plain time
    assert warning_time(start, start + limit, cal) == start + limit * 0.8


def test_a_two_day_limit_warns_a_working_day_before(cal: WorkCalendar) -> None:
    start = sh(2026, 11, 17, 10)  # Tuesday
    deadline = start + timedelta(days=2)  # Thursday: not shorter than two days
    assert warning_time(start, deadline, cal) == sh(2026, 11, 18, 10)


def test_dispatch_timers_urge_warning_overdue(cal: WorkCalendar) -> None:
    start = sh(2026, 11, 16, 10)
    response, deadline = sh(2026, 11, 16, 12), sh(2026, 11, 23, 10)
    assert dispatch_timers(start, deadline, response, cal) == [
        Planned(TimerKind.URGE, response),
        Planned(TimerKind.WARNING, sh(2026, 11, 20, 10)),
        Planned(TimerKind.OVERDUE, deadline),
    ]


def test_deadline_timers_keep_the_exact_deadline(cal: WorkCalendar) -> None:
    start, deadline = sh(2026, 9, 24, 10), sh(2026, 10, 8, 15, 45)
    [warning, overdue] = deadline_timers(start, deadline, cal)
    assert (warning.kind, warning.due_at) == ("warning", sh(2026, 9, 30, 15, 45))
    assert (overdue.kind, overdue.due_at, overdue.seq) == ("overdue", deadline, 0)


def test_timers_keep_the_time_zone_of_the_input(cal: WorkCalendar) -> None:
    # The store hands back UTC; 2026-11-23 02:00 UTC is Monday 10:00 in the city.
    deadline = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    due = warning_time(deadline - timedelta(days=7), deadline, cal)
    assert due == datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    assert due.tzinfo == UTC


# --- supervision: the n-th on the n-th working day after the deadline ----------------


@pytest.mark.parametrize(
    ("deadline", "expected"),
    [
        # Friday's deadline: Monday, Tuesday, Wednesday.
        (sh(2026, 11, 20, 10), [sh(2026, 11, 23, 10), sh(2026, 11, 24, 10), sh(2026, 11, 25, 10)]),
        # Friday 18 September: the make-up Sunday 20 counts, Saturday 19 does not.
        (sh(2026, 9, 18, 10), [sh(2026, 9, 20, 10), sh(2026, 9, 21, 10), sh(2026, 9, 22, 10)]),
        # 30 September: the holiday week is skipped, the make-up Saturday counts.
        (
            sh(2026, 9, 30, 16),
            [sh(2026, 10, 8, 16), sh(2026, 10, 9, 16), sh(2026, 10, 10, 16), sh(2026, 10, 12, 16)],
        ),
    ],
)
def test_supervision_n_working_days_after_the_deadline(
    cal: WorkCalendar, deadline: datetime, expected: list[datetime]
) -> None:
    planned = [supervision(deadline, n, cal) for n in range(1, len(expected) + 1)]
    assert planned == [Planned(TimerKind.SUPERVISION, due, n) for n, due in enumerate(expected, 1)]


def test_supervisions_fall_on_working_days_only(cal: WorkCalendar) -> None:
    deadline = sh(2026, 9, 23, 9)
    days = [supervision(deadline, n, cal).due_at for n in range(1, 15)]
    assert all(cal.is_workday(d.astimezone(SHANGHAI).date()) for d in days)
    assert days == sorted(set(days))  # one per working day, never two on one day


# --- templates ---------------------------------------------------------------------


def test_dispatch_text_in_chinese(cal: WorkCalendar) -> None:
    subject, text = render(
        "dispatch",
        {
            "ticket_id": "LC-20261116-0001",
            "department_name": "冠县水务集团",
            "role_name": ROLE_NAMES["lead"],
            "response_deadline_local": local_time(datetime(2026, 11, 16, 4, 0, tzinfo=UTC), cal),
            "deadline_local": local_time(datetime(2026, 11, 23, 2, 0, tzinfo=UTC), cal),
            "text": "自来水管道占用耕地",
        },
    )
    assert subject == "【12345派单】LC-20261116-0001"
    assert text == (
        "冠县水务集团：12345热线向你单位派发工单LC-20261116-0001（主办），"
        "请于2026-11-16 12:00前签收，2026-11-23 10:00前办结。诉求内容：自来水管道占用耕地"
    )


def test_supervision_text_names_the_handler_and_the_count() -> None:
    fields = {
        "ticket_id": "LC-1",
        "department_name": "冠县人民政府",
        "handler_name": "冠县水务集团",
        "count": 2,
        "deadline_local": "2026-11-20 10:00",
    }
    subject, text = render("supervision", fields)
    assert subject == "【12345督办】LC-1"
    assert "冠县人民政府：冠县水务集团承办的工单LC-1已超期2个工作日" in text
    assert "2026-11-20 10:00" in text


@pytest.mark.parametrize(
    ("kind", "word"),
    [("urge", "催办"), ("warning", "黄牌"), ("overdue", "红牌"), ("supervision", "督办")],
)
def test_every_timer_kind_has_its_chinese_subject(kind: str, word: str) -> None:
    subject, text = render(kind, {"ticket_id": "LC-9", "department_name": "市供电公司"})
    assert word in subject and "LC-9" in subject
    assert text.startswith("市供电公司：") and "LC-9" in text


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_missing_fields_render_empty_rather_than_fail(kind: str) -> None:
    subject, text = render(kind, {})
    assert "{" not in subject + text and "None" not in text
    assert text.startswith("：")  # the department's name, missing, left empty


def test_local_time_in_the_city_time_zone(cal: WorkCalendar) -> None:
    assert local_time(datetime(2026, 9, 30, 16, 30, tzinfo=UTC), cal) == "2026-10-01 00:30"
    assert local_time(None, cal) == ""


# --- webhook signature -------------------------------------------------------------


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = '{"ticket_id":"LC-1","text":"冠县贾镇"}'.encode()
    expected = hmac.new(b"s3cret", b"1764115200." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", "1764115200", body) == f"sha256={expected}"


def test_signature_changes_with_secret_timestamp_and_body() -> None:
    base = sign("s3cret", "1764115200", b"{}")
    assert sign("other", "1764115200", b"{}") != base
    assert sign("s3cret", "1764115201", b"{}") != base
    assert sign("s3cret", "1764115200", b"{ }") != base
    assert sign("s3cret", "1764115200", b"{}") == base


# --- channel choice ------------------------------------------------------------------


@pytest.fixture
async def channels() -> AsyncIterator[dict[str, DeliveryChannel]]:
    settings = NotifierSettings(sms_gateway_url="http://127.0.0.1:9/sms")
    async with httpx.AsyncClient() as client:  # never used: choosing sends nothing
        yield load_channels(settings, client)


def department(**contact: object) -> Department:
    return Department(
        id="guanxian.water",
        name="冠县水务集团",
        level="county-unit",
        contact=Contact.model_validate(contact),
    )


ALL = {"webhook": "http://h/x", "email": "w@example.gov.cn", "sms": "13800000000"}


@pytest.mark.parametrize(
    ("contact", "chosen"),
    [
        (ALL, "webhook"),
        ({"email": ALL["email"], "sms": ALL["sms"]}, "email"),
        ({"sms": ALL["sms"]}, "sms"),
        ({**ALL, "channels": ["email"]}, "email"),
        ({**ALL, "channels": ["sms", "webhook"]}, "sms"),
        # A preferred channel the department has no address for is skipped.
        ({"email": ALL["email"], "channels": ["webhook", "email"]}, "email"),
        # An unknown channel name (no such plugin) is skipped too.
        ({**ALL, "channels": ["fax", "email"]}, "email"),
        # The department's own list decides: nothing else is tried.
        ({"webhook": ALL["webhook"], "channels": ["email", "sms"]}, None),
        ({}, None),
    ],
)
def test_channel_for(
    channels: dict[str, DeliveryChannel], contact: dict[str, object], chosen: str | None
) -> None:
    assert channel_for(department(**contact), channels) == chosen


async def test_sms_without_a_gateway_reaches_nobody() -> None:
    async with httpx.AsyncClient() as client:
        channels = load_channels(NotifierSettings(sms_gateway_url=None), client)
    assert channel_for(department(sms=ALL["sms"]), channels) is None
    assert channel_for(department(sms=ALL["sms"], email=ALL["email"]), channels) == "email"


def test_channel_for_uses_the_plugins_given() -> None:
    class Pager:
        name = "pager"

        def target(self, dep: Department) -> str | None:
            return f"pager:{dep.id}"

        async def send(self, delivery: Document) -> Outcome:
            return Outcome(True)

    plugins: dict[str, DeliveryChannel] = {"pager": Pager()}
    assert channel_for(department(**ALL), plugins) is None  # default order knows no pager
    assert channel_for(department(**ALL, channels=["pager"]), plugins) == "pager"


# --- backoff -------------------------------------------------------------------------


def sender(base_s: float, cap_s: float) -> DeliverySender:
    # backoff() touches neither the repository nor the channels.
    return DeliverySender(
        repo=cast(DeliveryRepository, None),
        channels={},
        clock=lambda: datetime.now(UTC),
        backoff_base_s=base_s,
        backoff_cap_s=cap_s,
        max_attempts=10,
        lease=timedelta(seconds=60),
    )


def test_backoff_stays_within_half_the_ceiling_and_the_ceiling() -> None:
    s = sender(2.0, 600.0)
    for attempt in range(1, 15):
        ceiling = min(600.0, 2.0 * 2 ** (attempt - 1))
        for _ in range(200):
            delay = s.backoff(attempt).total_seconds()
            assert ceiling / 2 <= delay <= ceiling, (attempt, delay)


def test_backoff_grows_exponentially_until_the_cap() -> None:
    s = sender(1.0, 60.0)
    samples = {n: [s.backoff(n).total_seconds() for _ in range(200)] for n in range(1, 10)}
    for n in range(1, 6):  # ceilings 1, 2, 4, 8, 16, 32: each range above the last
        assert min(samples[n + 1]) >= max(samples[n])
        assert max(samples[n + 1]) > 1.5 * max(samples[n])
    for n in (7, 8, 9):  # 64 and more: capped at 60
        assert all(30.0 <= d <= 60.0 for d in samples[n])


def test_backoff_is_jittered() -> None:
    s = sender(2.0, 600.0)
    assert len({s.backoff(5) for _ in range(50)}) > 40
