"""The proof that the roll-ups answer as the counters always did: a varied history
(returns, redispatches, reopenings, overdue tickets, merged and repeated
requests, answers on the spot, unroutable requests, over five days) is
aggregated live in small batches, and the summary for every filter combination
the API accepts (none, each dimension, each pair, triple and all four), over
several ranges, is compared with a straightforward recomputation: every event's
increments (services.stats.measures) summed over the buckets the filter and
the range select, and the dispatch quality of the tickets' views built from
their events."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import date, timedelta
from itertools import combinations
from typing import Any

import pytest

from services.stats.dispatch_quality import TOP, _first_department, city_day_bounds, quality
from services.stats.measures import DIMENSIONS, increments
from services.stats.projection import build_view
from services.stats.rates import measures
from shared.domain import Category, Channel
from shared.events import Rating, TicketEvent
from shared.keys import KeyKind
from shared.settings import CommonSettings
from tests.stats_support import CITY, StatsHarness, TicketStory, city, stats_harness

pytestmark = pytest.mark.integration

DAYS = ["2025-03-10", "2025-03-11", "2025-03-12", "2025-03-13", "2025-03-14"]
UNITS = {
    "guanxian": ["guanxian.water", "guanxian.housing"],
    "yanggu": ["yanggu.urban-mgmt"],
    "dongchangfu": ["dongchangfu.urban-mgmt"],
}
CITY_DEPARTMENTS = ["city.env", "city.housing"]
RANGES = [(DAYS[0], DAYS[-1]), (DAYS[2], DAYS[3])]


def life(rng: random.Random, n: int, repeats: list[str]) -> list[TicketEvent]:
    """One ticket's events, taking one of the paths a ticket takes."""
    district = rng.choice(sorted(UNITS))
    s = TicketStory(
        f"LC2025031{n:04d}", district, rng.choice(list(Category)), rng.choice(list(Channel))
    )
    at = city(rng.choice(DAYS[:4]), rng.randrange(0, 24), rng.randrange(60))
    if rng.random() < 0.1:
        return [s.resolved_on_spot(at)]
    repeat = rng.choice(repeats) if repeats and rng.random() < 0.15 else None
    events: list[TicketEvent] = [s.received(at, related_to=repeat)]
    repeats.append(s.ticket_id)
    if rng.random() < 0.15:
        events.append(s.linked(at + timedelta(minutes=30), rng.choice(list(Channel))))
    if rng.random() < 0.08:
        return [*events, s.unroutable(at + timedelta(minutes=1))]
    departments = [*UNITS[district], *CITY_DEPARTMENTS]
    at += timedelta(minutes=rng.randrange(1, 30))
    events.append(s.dispatched(at, rng.choice(departments), hours=rng.choice([24, 48])))
    if rng.random() < 0.15:
        at += timedelta(hours=1)
        events += [s.returned(at), s.dispatched(at, rng.choice(departments), hours=24)]
    at += timedelta(hours=rng.choice([0.5, 1, 3]))  # 3 h: past the response limit
    events.append(s.accepted(at))
    if rng.random() < 0.2:
        return [*events, s.urged(at), s.overdue()]  # never resolved
    resolved_at = at + timedelta(hours=rng.choice([2, 20, 30, 60]))
    if resolved_at > s.deadline:  # type: ignore[operator]
        events.append(s.overdue())
    events.append(s.resolved(resolved_at))
    return [*events, *rated(rng, s, resolved_at + timedelta(hours=2))]


def rated(rng: random.Random, s: TicketStory, at: Any) -> list[TicketEvent]:
    draw = rng.random()
    if draw < 0.3:
        return []
    if draw < 0.45:
        events: list[TicketEvent] = [s.feedback(at, Rating.UNSATISFIED, False)]
        events.append(s.reopened(at, hours=24))
        at += timedelta(hours=5)
        return [*events, s.accepted(at - timedelta(hours=4)), s.resolved(at)]
    rating = rng.choice(list(Rating))
    solved = rating != Rating.UNSATISFIED and rng.random() < 0.9
    return [s.feedback(at, rating, solved), s.closed(at, rating, solved)]


def history() -> list[TicketEvent]:
    rng, repeats = random.Random(20251205), list[str]()
    return [e for n in range(150) for e in life(rng, n, repeats)]


EVENTS = history()
# Each event's increments, bucket by bucket: what the recomputation sums.
INCREMENTS = [pair for event in EVENTS for pair in increments(event, CITY)]


def recomputed(start: str, end: str, filters: dict[str, str]) -> dict[str, float]:
    """The counters under a filter over a range, summed from each event's increments."""
    sums: dict[str, float] = defaultdict(float)
    for bucket, counts in INCREMENTS:
        if start <= bucket.day <= end and all(
            getattr(bucket, dim) == value for dim, value in filters.items()
        ):
            for name, value in counts.items():
                sums[name] += value
    return sums


def recomputed_quality(start: str, end: str, filters: dict[str, str]) -> dict[str, Any]:
    by_ticket: dict[str, list[TicketEvent]] = defaultdict(list)
    for event in EVENTS:
        by_ticket[event.ticket_id].append(event)
    low, high = city_day_bounds(date.fromisoformat(start), date.fromisoformat(end), CITY)
    chosen = []
    for ticket, events in by_ticket.items():
        view = build_view(ticket, None, events)
        if not low <= view.get("received_at", high) < high:
            continue
        if any(view.get(d) != v for d, v in filters.items() if d != "department"):
            continue
        if "department" in filters and _first_department(view) != filters["department"]:
            continue
        chosen.append(view)
    return quality(chosen)


def value_sets(dims: tuple[str, ...]) -> list[dict[str, str]]:
    """The value combinations of these dimensions the history has (a few), and
    one it has not."""
    seen = set()
    for bucket, _ in INCREMENTS:
        values = tuple(str(getattr(bucket, d)) for d in dims)
        if all(values):  # a receipt has no department yet: not a filter one can ask
            seen.add(values)
    chosen = random.Random(len(dims)).sample(sorted(seen), min(3, len(seen)))
    missing = tuple("city.nobody" if d in ("department", "district") else "" for d in dims)
    sets = [dict(zip(dims, values, strict=True)) for values in chosen]
    if all(missing):
        sets.append(dict(zip(dims, missing, strict=True)))
    return sets


def tied(report: dict[str, Any]) -> dict[str, Any]:
    """The report with its top lists in a fixed order: among equal counts the order
    is the store's (most_common keeps the order it met them in)."""
    lists = ("misroutes", "returns_by_reason")
    assert all(len(report[name]) < TOP for name in lists)  # nothing cut among ties
    return {**report, **{name: sorted(map(str, report[name])) for name in lists}}


COMBINATIONS = [c for n in range(len(DIMENSIONS) + 1) for c in combinations(DIMENSIONS, n)]


@pytest.fixture
async def stats(settings: CommonSettings) -> AsyncIterator[StatsHarness]:
    async with stats_harness(settings, city(DAYS[-1], 23), batch=37) as harness:
        shuffled = random.Random(3).sample(EVENTS, len(EVENTS))
        await harness.ingest(shuffled, chunk=53)
        yield harness


async def test_the_summary_from_roll_ups_equals_the_recomputation(stats: StatsHarness) -> None:
    """Every combination of filters (one test: the history is aggregated once)."""
    asked = 0
    for filters in (f for dims in COMBINATIONS for f in value_sets(dims)):
        for start, end in RANGES:
            asked += 1
            summary = await stats.get("/v1/stats/summary", **{"from": start, "to": end, **filters})
            expected = measures(recomputed(start, end, filters))
            assert summary["counts"] == expected["counts"], (filters, start, end)
            assert summary["rates"] == expected["rates"], (filters, start, end)
            assert summary["handling_time_hours"] == expected["handling_time_hours"]
            assert tied(summary["dispatch_quality"]) == tied(
                recomputed_quality(start, end, filters)
            )
    assert asked > 2 * len(COMBINATIONS)


def test_the_history_is_varied_enough_to_prove_something() -> None:
    totals = recomputed(DAYS[0], DAYS[-1], {})
    for name in ("repeated", "linked", "resolved_on_spot", "unroutable", "redispatched"):
        assert totals[name] > 0, name
    for name in ("reopened", "due_overdue", "due_late_resolved", "rated_satisfied", "urged"):
        assert totals[name] > 0, name
    assert recomputed_quality(DAYS[0], DAYS[-1], {})["first_time_right"]["denominator"] > 50


async def test_trend_ranking_and_a_departments_scope_from_roll_ups(stats: StatsHarness) -> None:
    department = "guanxian.water"
    trend = await stats.get(
        "/v1/stats/trend", **{"from": DAYS[0], "to": DAYS[-1], "department": department}
    )
    for row in trend["days"]:
        expected = measures(recomputed(row["day"], row["day"], {"department": department}))
        assert row["dispatched"] == expected["counts"]["dispatched"]
        assert row["response"] == expected["rates"]["response"]["value"]
    ranking = await stats.get("/v1/stats/ranking", **{"from": DAYS[0], "to": DAYS[-1]})
    assert ranking["departments"]
    for row in ranking["departments"]:
        expected = measures(recomputed(DAYS[0], DAYS[-1], {"department": row["department"]}))
        assert row["dispatched"] == expected["counts"]["dispatched"]
        assert row["completion_rate"] == expected["rates"]["completion"]["value"]
        assert row["satisfaction_rate"] == expected["rates"]["satisfaction"]["value"]
    # What the aggregator records of a view for itself is never shown.
    ticket = await stats.get(f"/v1/tickets/{EVENTS[0].ticket_id}")
    listed = await stats.get("/v1/tickets", limit=1000)
    assert ticket["history"] and listed["items"]
    assert all("_counted" not in view for view in [ticket, *listed["items"]])
    csv = await stats.http.get("/v1/tickets", params={"format": "csv"})
    assert csv.status_code == 200 and "_counted" not in csv.text
    # A department key reads its own breakdowns, and no other department's.
    own = await stats.issue(KeyKind.DEPARTMENT, "guanxian.water")
    period = {"from": DAYS[0], "to": DAYS[-1]}
    response = await stats.http.get(
        "/v1/stats/summary", params={**period, "district": "guanxian"}, headers=own
    )
    assert response.status_code == 200
    staff = await stats.get(
        "/v1/stats/summary", **period, district="guanxian", department="guanxian.water"
    )
    assert response.json() == staff
    assert staff["counts"]["dispatched"] > 0
    other = await stats.http.get(
        "/v1/stats/summary",
        params={**period, "department": "city.env", "channel": "phone"},
        headers=own,
    )
    assert other.status_code == 403
    assert "its own" in other.json()["detail"]
