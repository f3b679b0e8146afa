"""Dispatch quality (派单准确率), the feedback loop of a dispatch office: of the
tickets received in a period and dispatched, the share whose first dispatch
was right (never returned, never dispatched again), that share by what
decided the first dispatch (a rule, the lists, a model, a person), the returns
by reason, and the most frequent misroutes (dispatched first to A, finally
sent to B).

A ticket's first dispatch and its final department are facts of the whole
ticket, so they come from its view (its steps). The aggregator keeps what each
view contributes in the roll-ups (contribution: under `q`, on the day the
ticket was received, with its first department): when a view changes, its old
contribution is taken off and the new one added, so the summary reads the
report from the roll-ups (from_rollups) as it reads the counters.
A county sub-centre passing a ticket to one of its units (sub_dispatch) is its
job, not a misroute.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

from prometheus_client import Gauge

from services.stats.measures import Bucket, day_of
from services.stats.projection import ordered_steps
from services.stats.repository import TicketViews
from services.stats.rollups import field, unfield
from shared.mongo import Document

logger = logging.getLogger(__name__)

TOP = 10
DECIDERS = ("rule", "list", "model", "manual", "unknown")
WINDOW_DAYS = 30
GAUGE_INTERVAL_S = 300.0  # reads every ticket view of the window: not every scrape
REASON_CHARS = 80

FIRST_TIME_RIGHT = Gauge(
    "hotline_dispatch_first_time_right_ratio",
    f"Dispatched tickets of the last {WINDOW_DAYS} days never returned nor dispatched again"
    " (0..1), by what decided the first dispatch (all: every ticket)",
    ["decided_by"],
)
MISROUTES = Gauge(
    "hotline_dispatch_misroutes",
    f"The {TOP} most frequent misroutes of the last {WINDOW_DAYS} days, by the department"
    " type first dispatched to and the type finally dispatched to",
    ["dispatched_type", "final_type"],
)


def unit_type(department: str) -> str:
    """The type of a unit (water of guanxian.water), bounded like the directory:
    a county's or zone's own centre is its sub-centre."""
    _, dot, tail = department.partition(".")
    return tail if dot else "sub-centre"


def _journey(view: Document) -> tuple[Document, list[Document], int] | None:
    """The first dispatch, the returns, and how many times the hotline
    dispatched the ticket (sub-dispatches below a county left out)."""
    steps = ordered_steps(view)
    dispatches = [
        s
        for s in steps
        if s["event_type"] == "dispatched" and s["payload"].get("via") != "sub_dispatch"
    ]
    if not dispatches:
        return None
    returns = [s for s in steps if s["event_type"] == "returned"]
    return dispatches[0], returns, len(dispatches)


def quality(views: Iterable[Document]) -> dict[str, Any]:
    dispatched, right = Counter[str](), Counter[str]()
    reasons, misroutes = Counter[str](), Counter[tuple[str, str]]()
    for view in views:
        journey = _journey(view)
        if journey is None:
            continue
        first, returns, times = journey
        decider = first["payload"].get("decided_by") or "unknown"
        dispatched[decider] += 1
        reasons.update(str(r["payload"].get("reason", ""))[:REASON_CHARS] for r in returns)
        if not returns and times == 1:
            right[decider] += 1
            continue
        final = view.get("department")
        if final and final != first["payload"]["department"]:
            misroutes[(first["payload"]["department"], final)] += 1
    return {
        "first_time_right": _rate(sum(right.values()), sum(dispatched.values())),
        "by_decided_by": {d: _rate(right[d], dispatched[d]) for d in DECIDERS if dispatched[d]},
        "returns_by_reason": [{"reason": r, "returns": n} for r, n in reasons.most_common(TOP)],
        "misroutes": [
            {"dispatched_to": a, "finally": b, "tickets": n}
            for (a, b), n in misroutes.most_common(TOP)
        ],
    }


def _rate(numerator: int, denominator: int) -> dict[str, Any]:
    value = round(numerator / denominator, 4) if denominator else None
    return {"value": value, "numerator": numerator, "denominator": denominator}


async def dispatch_quality(
    views: TicketViews,
    start: datetime,
    end: datetime,
    filters: dict[str, str],
) -> dict[str, Any]:
    """Of the tickets received in [start, end): filters on district, category
    and channel as the view has them; department is the first dispatch's."""
    department = filters.get("department")
    query: Document = {
        "received_at": {"$gte": start, "$lt": end},
        **{k: v for k, v in filters.items() if k != "department"},
    }
    found = await views.collection.find(query, {"steps": 1, "department": 1}).to_list()
    if department is not None:
        found = [v for v in found if _first_department(v) == department]
    return quality(found)


def _first_department(view: Document) -> str | None:
    journey = _journey(view)
    return journey[0]["payload"]["department"] if journey else None


def contribution(view: Document, tz: Any) -> tuple[Bucket, dict[str, float]] | None:
    """What one ticket adds to the report, and where (None: nothing yet)."""
    journey = _journey(view)
    if journey is None or view.get("received_at") is None:
        return None
    first, returns, times = journey
    decider = field(first["payload"].get("decided_by") or "unknown")
    counts: dict[str, float] = {f"q.d.{decider}": 1}
    right = not returns and times == 1
    if right:
        counts[f"q.r.{decider}"] = 1
    for step in returns:
        reason = f"q.why.{field(str(step['payload'].get('reason', ''))[:REASON_CHARS])}"
        counts[reason] = counts.get(reason, 0) + 1
    department, final = first["payload"]["department"], view.get("department")
    if not right and final and final != department:
        counts[f"q.mis.{field(department)}|{field(final)}"] = 1
    dims = [str(view.get(d) or "") for d in ("district", "category", "channel")]
    return Bucket(day_of(view["received_at"], tz), department, *dims), counts


def from_rollups(groups: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The report from the roll-up groups of the days asked (as quality() makes
    it from the views; among equal counts, the top lists order by name)."""
    sums: dict[str, Counter[str]] = {part: Counter() for part in ("d", "r", "why", "mis")}
    for group in groups:
        for part, counts in (group.get("q") or {}).items():
            sums[part].update(counts)
    dispatched, right = sums["d"], sums["r"]
    return {
        "first_time_right": _rate(sum(right.values()), sum(dispatched.values())),
        "by_decided_by": {
            d: _rate(right[field(d)], dispatched[field(d)])
            for d in DECIDERS
            if dispatched[field(d)] > 0
        },
        "returns_by_reason": [{"reason": unfield(r), "returns": n} for r, n in _top(sums["why"])],
        "misroutes": [
            {"dispatched_to": unfield(a), "finally": unfield(b), "tickets": n}
            for (a, _, b), n in ((pair.partition("|"), n) for pair, n in _top(sums["mis"]))
        ],
    }


def _top(counts: Counter[str]) -> list[tuple[str, int]]:
    ranked = sorted(((k, int(n)) for k, n in counts.items() if n > 0), key=lambda x: (-x[1], x[0]))
    return ranked[:TOP]


def city_day_bounds(start: date, end: date, tz: Any) -> tuple[datetime, datetime]:
    return (
        datetime.combine(start, datetime.min.time(), tz),
        datetime.combine(end + timedelta(days=1), datetime.min.time(), tz),
    )


async def refresh_dispatch_gauges(
    views: TicketViews, tz: Any, clock: Callable[[], datetime]
) -> None:
    while True:
        try:
            await set_dispatch_gauges(views, tz, clock())
        except Exception as exc:  # store down: keep the last values
            logger.debug("dispatch gauges not refreshed: %r", exc)
        await asyncio.sleep(GAUGE_INTERVAL_S)


async def set_dispatch_gauges(views: TicketViews, tz: Any, now: datetime) -> None:
    today = now.astimezone(tz).date()
    start, end = city_day_bounds(today - timedelta(days=WINDOW_DAYS - 1), today, tz)
    result = await dispatch_quality(views, start, end, {})
    FIRST_TIME_RIGHT.clear()
    rates = {"all": result["first_time_right"], **result["by_decided_by"]}
    for decider, rate in rates.items():
        if rate["value"] is not None:
            FIRST_TIME_RIGHT.labels(decider).set(rate["value"])
    MISROUTES.clear()
    pairs = Counter[tuple[str, str]]()
    for row in result["misroutes"]:
        pairs[(unit_type(row["dispatched_to"]), unit_type(row["finally"]))] += row["tickets"]
    for (dispatched_type, final_type), n in pairs.items():
        MISROUTES.labels(dispatched_type, final_type).set(n)
