"""The stats API over a hand-built history, on the real store.

Ten tickets over 10-12 March 2025 (tests.stats_support.three_days) arrive shuffled,
in small archive batches, aggregated between batches (so a ticket's closing is
often aggregated before its receipt). Every figure below is worked out by hand
from that history; the worked sums sit next to the expectations.

Handling times (dispatch to resolution) of the six resolutions:
  T2 5h59m = 21,540 s (4-8 h)      T6a 17h50m = 64,200 s (8-24 h)
  T1 24h55m = 89,700 s (24-48 h)   T3 27h58m = 100,680 s (24-48 h, late)
  T6b 42h50m = 154,200 s (24-48 h) T4 50h = 180,000 s (48-72 h)
Due (on the deadline's day): D2 T2, T3 (overdue, resolved late), T6a;
D3 T1, T4 (after its extension), T6b, T7 (overdue, open).
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from services.stats.api import StatsApi
from services.stats.dispatch_quality import set_dispatch_gauges
from services.stats.gauges import _refresh_open
from shared.events import TicketEvent
from tests.stats_support import (
    CITY,
    D1,
    D2,
    D3,
    ENV,
    HOUSING,
    URBAN,
    WATER,
    StatsHarness,
    city,
    stats_harness,
    three_days,
)
from tests.support import make_settings, purge_namespace, unique_namespace

# One event loop for the module, so that the loaded store serves every test.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

NOW = city(D3, 20)  # the service's clock: T7's deadline (D3 08:10) has passed, T9's not
THREE_DAYS = {"from": D1, "to": D3}
HISTORY = three_days()
EVENTS = [event for events in HISTORY.values() for event in events]
T = ["", *HISTORY]  # T[1] .. T[10]: the ticket ids
Rates = dict[str, tuple[int, int, float | None]]


def shuffled(events: list[TicketEvent], seed: int) -> list[TicketEvent]:
    out = list(events)
    random.Random(seed).shuffle(out)
    return out


async def arrive_out_of_order(stats: StatsHarness, seed: int, chunk: int = 9) -> None:
    """Every event of the history, shuffled, archived `chunk` at a time and
    aggregated after each archive batch."""
    events = shuffled(EVENTS, seed)
    batch_of = {(e.ticket_id, e.event_type): i // chunk for i, e in enumerate(events)}
    closed_first = [
        t for t in T[1:] if batch_of.get((t, "closed"), 99) < batch_of.get((t, "received"), 0)
    ]
    assert len(closed_first) >= 3, "the seed should bring closings before receipts"
    for start in range(0, len(events), chunk):
        await stats.archive_events(events[start : start + chunk])
        stats.settle()
        await stats.aggregator.catch_up()


@asynccontextmanager
async def loaded_store() -> AsyncIterator[StatsHarness]:
    settings = make_settings(unique_namespace())
    try:
        async with stats_harness(settings, NOW, batch=7) as harness:
            await arrive_out_of_order(harness, seed=5)
            yield harness
    finally:
        await purge_namespace(settings)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stats(servers: None) -> AsyncIterator[StatsHarness]:
    """The history loaded once for the tests that only read it."""
    async with loaded_store() as harness:
        yield harness


@pytest_asyncio.fixture(loop_scope="module")
async def own_stats(servers: None) -> AsyncIterator[StatsHarness]:
    """The history loaded for one test that changes the store."""
    async with loaded_store() as harness:
        yield harness


def rates(summary: dict[str, Any]) -> Rates:
    return {
        name: (r["numerator"], r["denominator"], r["value"]) for name, r in summary["rates"].items()
    }


def counts(summary: dict[str, Any], *names: str) -> dict[str, int]:
    return {name: summary["counts"][name] for name in names}


async def summary(stats: StatsHarness, **params: str) -> dict[str, Any]:
    result: dict[str, Any] = await stats.get("/v1/stats/summary", **THREE_DAYS, **params)
    return result


# --- the summary --------------------------------------------------------------------------


async def test_summary_of_the_three_days(stats: StatsHarness) -> None:
    result = await summary(stats)
    assert (result["from"], result["to"], result["filters"]) == (D1, D3, {})
    assert result["counts"] == {
        "requests": 10,  # received + linked: no request was merged in these days
        "received": 10,  # every ticket, T5 answered on the spot included
        "linked": 0,
        "repeated": 0,  # no ticket repeats a closed one
        "resolved_on_spot": 1,
        "dispatched": 9,  # T1 T2 T3 T4 (twice) T6 T7 T9 T10
        "redispatched": 1,  # T4 after the return
        "unroutable": 1,  # T8
        "returned": 1,
        "accepted": 9,  # T6 twice (after its reopening); not T4 at housing, not T8
        "resolved": 6,  # T1 T2 T3 T4 T6 twice
        "closed": 5,
        "reopened": 1,
        "due": 7,  # due_resolved 6 + due_overdue 2 - due_late_resolved 1
        "overdue": 1,  # T7: red card, never resolved
        "urged": 2,  # T3, T9
        "supervised": 2,  # T3, T7
    }
    assert rates(result) == {
        "completion": (6, 7, 0.8571),
        "on_time": (5, 6, 0.8333),  # all but T3
        # in time: T1 T2 T4 T6 T6 T7 T10 of 9 dispatches + 1 reopening
        "response": (7, 10, 0.7),
        # rated: 5 closings + 1 reopening; solved: T1 T2 T4 T6(closing)
        "resolution": (4, 6, 0.6667),
        "satisfaction": (5, 6, 0.8333),  # all but the reopening
        "return": (1, 9, 0.1111),
        "reopen": (1, 6, 0.1667),
    }
    # mean 610,320 s / 6 = 28.26 h; p90: 5.4th of 6, cumulative 1, 2, 5, 6 -> the
    # 48-72 h bucket, 0.4 into its one value: 48 + 24 * 0.4 = 57.6
    assert result["handling_time_hours"] == {"mean": 28.26, "p90": 57.6, "resolved": 6}


DEPARTMENTS: dict[str, tuple[dict[str, int], Rates, dict[str, Any]]] = {
    WATER: (
        {"dispatched": 3, "accepted": 4, "resolved": 3, "reopened": 1, "due": 3, "urged": 1},
        {
            "completion": (3, 3, 1.0),
            "on_time": (3, 3, 1.0),
            "response": (3, 4, 0.75),  # T1 T6 T6 of 3 dispatches + 1 reopening; T9 late
            "resolution": (2, 3, 0.6667),  # T1, T6's closing; not the reopening
            "satisfaction": (2, 3, 0.6667),
            "return": (0, 3, 0.0),
            "reopen": (1, 3, 0.3333),
        },
        # 308,100 s / 3; p90 2.7th of 3: 24 + 24 * (2.7 - 1) / 2 = 44.4
        {"mean": 28.53, "p90": 44.4, "resolved": 3},
    ),
    URBAN: (
        {"dispatched": 3, "accepted": 3, "resolved": 2, "reopened": 0, "due": 2, "urged": 1},
        {
            "completion": (2, 2, 1.0),  # T3 resolved late is resolved
            "on_time": (1, 2, 0.5),
            "response": (2, 3, 0.6667),  # T3 accepted late
            "resolution": (1, 2, 0.5),  # T3 not solved
            "satisfaction": (2, 2, 1.0),
            "return": (0, 3, 0.0),
            "reopen": (0, 2, 0.0),
        },
        # 122,220 s / 2 = 16.98 h; p90 1.8th of 2: 24 + 24 * 0.8 = 43.2
        {"mean": 16.98, "p90": 43.2, "resolved": 2},
    ),
    HOUSING: (
        {"dispatched": 1, "accepted": 0, "resolved": 0, "reopened": 0, "due": 0, "urged": 0},
        {
            "completion": (0, 0, None),
            "on_time": (0, 0, None),
            "response": (0, 1, 0.0),
            "resolution": (0, 0, None),
            "satisfaction": (0, 0, None),
            "return": (1, 1, 1.0),
            "reopen": (0, 0, None),
        },
        {"mean": None, "p90": None, "resolved": 0},
    ),
    ENV: (
        {"dispatched": 2, "accepted": 2, "resolved": 1, "reopened": 0, "due": 2, "urged": 0},
        {
            "completion": (1, 2, 0.5),  # T4 resolved, T7 overdue
            "on_time": (1, 1, 1.0),  # T4 within its extended deadline
            "response": (2, 2, 1.0),
            "resolution": (1, 1, 1.0),
            "satisfaction": (1, 1, 1.0),
            "return": (0, 2, 0.0),
            "reopen": (0, 1, 0.0),
        },
        {"mean": 50.0, "p90": 69.6, "resolved": 1},  # 48 + 24 * 0.9
    ),
}


@pytest.mark.parametrize("department", sorted(DEPARTMENTS))
async def test_summary_per_department(stats: StatsHarness, department: str) -> None:
    expected_counts, expected_rates, handling = DEPARTMENTS[department]
    result = await summary(stats, department=department)
    assert result["filters"] == {"department": department}
    assert counts(result, *expected_counts) == expected_counts
    assert result["counts"]["received"] == 0  # a receipt belongs to no department
    assert rates(result) == expected_rates
    assert result["handling_time_hours"] == handling


DISTRICTS: dict[str, tuple[dict[str, int], Rates]] = {
    # T1 T6 T9, all at guanxian.water: its figures plus the receipts.
    "guanxian": ({"received": 3, "dispatched": 3, "resolved": 3}, DEPARTMENTS[WATER][1]),
    "yanggu": ({"received": 3, "dispatched": 3, "resolved": 2}, DEPARTMENTS[URBAN][1]),
    # T4 (housing, then env) and T7 (env)
    "dongchangfu": (
        {"received": 2, "dispatched": 3, "resolved": 1, "returned": 1, "overdue": 1},
        {
            "completion": (1, 2, 0.5),
            "on_time": (1, 1, 1.0),
            "response": (2, 3, 0.6667),
            "resolution": (1, 1, 1.0),
            "satisfaction": (1, 1, 1.0),
            "return": (1, 3, 0.3333),
            "reopen": (0, 1, 0.0),
        },
    ),
    # T5 answered on the spot, T8 waiting for a person
    "linqing": (
        {"received": 2, "resolved_on_spot": 1, "unroutable": 1, "dispatched": 0},
        {
            "completion": (0, 0, None),
            "on_time": (0, 0, None),
            "response": (0, 0, None),
            "resolution": (0, 0, None),
            "satisfaction": (0, 0, None),
            "return": (0, 0, None),
            "reopen": (0, 0, None),
        },
    ),
}


@pytest.mark.parametrize("district", sorted(DISTRICTS))
async def test_summary_per_district(stats: StatsHarness, district: str) -> None:
    expected_counts, expected_rates = DISTRICTS[district]
    result = await summary(stats, district=district)
    assert counts(result, *expected_counts) == expected_counts
    assert rates(result) == expected_rates


async def test_summary_with_two_and_three_filters(stats: StatsHarness) -> None:
    env_here = await summary(stats, department=ENV, district="dongchangfu")
    assert rates(env_here) == DEPARTMENTS[ENV][1]
    water_phone = await summary(stats, department=WATER, district="guanxian", channel="phone")
    assert rates(water_phone) == DEPARTMENTS[WATER][1]
    nowhere = await summary(stats, department=WATER, district="yanggu")
    assert set(nowhere["counts"].values()) == {0}
    complaints = await summary(stats, category="complaint")  # T2 T3 T7
    assert counts(complaints, "received", "dispatched", "resolved") == {
        "received": 3,
        "dispatched": 3,
        "resolved": 2,
    }


async def test_days_are_city_days(stats: StatsHarness) -> None:
    # T9 arrived at 17:30 UTC on D2: 01:30 on D3 in the city.
    third = await stats.get("/v1/stats/summary", **{"from": D3, "to": D3})
    assert counts(third, "received", "dispatched") == {"received": 2, "dispatched": 2}
    second = await stats.get("/v1/stats/summary", **{"from": D2, "to": D2})
    assert counts(second, "received", "resolved_on_spot") == {"received": 3, "resolved_on_spot": 1}
    today = await stats.get("/v1/stats/summary")  # default: today on the service's clock
    assert (today["from"], today["to"]) == (D3, D3)
    assert today["counts"] == third["counts"]


# --- ranking and trend --------------------------------------------------------------------


async def test_ranking_of_departments(stats: StatsHarness) -> None:
    result = await stats.get("/v1/stats/ranking", **THREE_DAYS)
    got = [
        (
            r["rank"],
            r["department"],
            r["score"],
            r["response_rate"],
            r["resolution_rate"],
            r["satisfaction_rate"],
            r["completion_rate"],
            r["dispatched"],
            r["laggard"],
        )
        for r in result["departments"]
    ]
    assert got == [
        (1, ENV, 1.0, 1.0, 1.0, 1.0, 0.5, 2, False),
        # (0.6667 + 0.5 + 1) / 3 = 0.7222
        (2, URBAN, 0.7222, 0.6667, 0.5, 1.0, 1.0, 3, False),
        # (0.75 + 0.6667 + 0.6667) / 3 = 0.6945
        (3, WATER, 0.6945, 0.75, 0.6667, 0.6667, 1.0, 3, False),
        # only the response is known: 0; no laggard among fewer than five
        # departments with five tickets each (services/stats/ranking.py)
        (4, HOUSING, 0.0, 0.0, None, None, None, 1, False),
    ]


async def test_trend_day_by_day(stats: StatsHarness) -> None:
    result = await stats.get("/v1/stats/trend", **THREE_DAYS)
    keys = ("day", "received", "dispatched", "resolved", "due", "overdue")
    rate_keys = ("response", "on_time", "completion", "resolution", "satisfaction", "reopen")
    got = [tuple(day[k] for k in keys + rate_keys) for day in result["days"]]
    assert got == [
        # D1: 6 dispatches (T4 twice), 4 in time; T2 resolved and closed basically satisfied
        (D1, 5, 6, 1, 0, 0, 0.6667, 1.0, None, 1.0, 1.0, 0.0),
        # D2: T7 and T6's reopening answered in time; T1 T3 T6 resolved (T3 late);
        # rated T1 (solved), T3, T6's reopening; due T2 T3 T6, all resolved
        (D2, 3, 1, 3, 3, 0, 1.0, 0.6667, 1.0, 0.3333, 0.6667, 0.3333),
        # D3: T10 in time, T9 late; T4 T6 resolved; due T1 T4 T6 and T7 (overdue)
        (D3, 2, 2, 2, 4, 1, 0.5, 1.0, 0.75, 1.0, 1.0, 0.0),
    ]


# --- tickets ------------------------------------------------------------------------------


async def ticket_ids(stats: StatsHarness, **params: Any) -> list[str]:
    result = await stats.get("/v1/tickets", **params)
    return [item["ticket_id"] for item in result["items"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [T[10], T[9], T[8], T[5], T[7], T[6], T[4], T[3], T[2], T[1]]),  # newest first
        ({"status": "closed"}, [T[6], T[4], T[3], T[2], T[1]]),
        ({"status": "accepted"}, [T[10], T[9], T[7]]),  # T10 after a refused extension
        ({"status": "unroutable"}, [T[8]]),
        ({"status": "resolved_on_spot"}, [T[5]]),
        ({"department": ENV}, [T[7], T[4]]),  # T4 is env's since the return
        ({"department": HOUSING}, []),
        ({"district": "yanggu"}, [T[10], T[3], T[2]]),
        ({"district": "guanxian", "status": "accepted"}, [T[9]]),
        # open and past the deadline at 20:00 on D3: T7 (08:10), not T9 (D4 01:35),
        # T10 (D5), T8 (no deadline) or T3 (overdue once, resolved since)
        ({"overdue": "true"}, [T[7]]),
        ({"from": D2, "to": D2}, [T[8], T[5], T[7]]),
        ({"from": D3}, [T[10], T[9]]),  # to: today
        ({"to": D1}, [T[6], T[4], T[3], T[2], T[1]]),  # from: the same day
        ({"from": D1, "to": D3, "district": "linqing"}, [T[8], T[5]]),
    ],
)
async def test_ticket_filters(
    stats: StatsHarness, params: dict[str, str], expected: list[str]
) -> None:
    result = await stats.get("/v1/tickets", **params)
    assert [item["ticket_id"] for item in result["items"]] == expected
    assert result["total"] == len(expected)


async def test_ticket_paging(stats: StatsHarness) -> None:
    pages = [await stats.get("/v1/tickets", limit=4, offset=o) for o in (0, 4, 8, 12)]
    assert [p["total"] for p in pages] == [10, 10, 10, 10]
    ids = [[item["ticket_id"] for item in p["items"]] for p in pages]
    assert ids == [[T[10], T[9], T[8], T[5]], [T[7], T[6], T[4], T[3]], [T[2], T[1]], []]
    first = pages[0]["items"][0]
    assert "steps" not in first and "history" not in first
    closed = await stats.get("/v1/tickets", status="closed", limit=2, offset=2)
    assert (closed["total"], [i["ticket_id"] for i in closed["items"]]) == (5, [T[3], T[2]])


async def test_ticket_history_in_time_order(stats: StatsHarness) -> None:
    view = await stats.get(f"/v1/tickets/{T[4]}")
    history = view["history"]
    assert [step["event_type"] for step in history] == [
        "received",
        "dispatched",
        "returned",  # before the re-dispatch it caused at the same instant
        "dispatched",
        "accepted",
        "extension_requested",
        "extended",
        "resolved",
        "feedback",
        "closed",
    ]
    times = [datetime.fromisoformat(step["at"]) for step in history]
    assert times == sorted(times)
    assert times[0] == city(D1, 13)
    assert [step["payload"].get("department") for step in history[1:4]] == [HOUSING] * 2 + [ENV]
    assert history[2]["payload"]["reason"] == "不属于本单位职责"
    assert history[2]["actor"] == {"kind": "department", "id": HOUSING}
    assert (view["ticket_id"], view["status"], view["open"]) == (T[4], "closed", 0)
    assert (view["department"], view["returned_by"]) == (ENV, [HOUSING])
    assert datetime.fromisoformat(view["deadline"]) == city(D3, 18)  # extended
    assert (view["district"], view["town"], view["text"]) == (
        "dongchangfu",
        "古楼街道",
        "小区污水外溢",
    )


async def test_reopened_ticket_view(stats: StatsHarness) -> None:
    view = await stats.get(f"/v1/tickets/{T[6]}")
    assert (view["status"], view["reopen_count"], view["rating"]) == (
        "closed",
        1,
        "basically_satisfied",
    )
    assert view["explanation"] == "管网老化，已安排整体更换"
    assert datetime.fromisoformat(view["deadline"]) == city(D3, 12)  # set by the reopening
    assert [s["event_type"] for s in view["history"]].count("resolved") == 2


async def test_unknown_ticket_is_404(stats: StatsHarness) -> None:
    response = await stats.http.get("/v1/tickets/LC20250310-9999")
    assert response.status_code == 404
    assert "LC20250310-9999" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/stats/summary", {"from": D3, "to": D1}),
        ("/v1/stats/ranking", {"from": D3, "to": D1}),
        ("/v1/stats/trend", {"from": D3, "to": D1}),
        ("/v1/tickets", {"from": D3, "to": D1}),
        ("/v1/stats/summary", {"from": "2024-01-01", "to": "2025-03-12"}),  # over a year
        ("/v1/stats/summary", {"from": "10/03/2025"}),
        ("/v1/tickets", {"limit": "0"}),
        ("/v1/tickets", {"format": "xlsx"}),
    ],
)
async def test_bad_ranges_are_422(stats: StatsHarness, path: str, params: dict[str, str]) -> None:
    response = await stats.http.get(path, params=params)
    assert response.status_code == 422, response.text


# --- CSV ----------------------------------------------------------------------------------


async def csv_rows(stats: StatsHarness, path: str, **params: str) -> list[dict[str, str]]:
    response = await stats.http.get(path, params={**params, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"\xef\xbb\xbf")
    text = response.content.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_csv_answers(stats: StatsHarness) -> None:
    [row] = await csv_rows(stats, "/v1/stats/summary", **THREE_DAYS, department=WATER)
    assert (row["from"], row["to"], row["department"]) == (D1, D3, WATER)
    assert (row["response_numerator"], row["response_denominator"], row["response_rate"]) == (
        "3",
        "4",
        "0.75",
    )
    assert (row["dispatched"], row["handling_mean"], row["handling_p90"]) == ("3", "28.53", "44.4")

    ranking = await csv_rows(stats, "/v1/stats/ranking", **THREE_DAYS)
    assert [(r["rank"], r["department"], r["laggard"]) for r in ranking] == [
        ("1", ENV, "False"),
        ("2", URBAN, "False"),
        ("3", WATER, "False"),
        ("4", HOUSING, "False"),
    ]
    assert ranking[3]["resolution_rate"] == ""
    # The Chinese name in the column beside the id.
    assert ranking[2]["department_name"] == "冠县水务集团"
    # An empty answer still has its header row.
    for path in ("/v1/stats/ranking", "/v1/tickets"):
        empty = await stats.http.get(
            path, params={"from": "2001-01-01", "to": "2001-01-02", "format": "csv"}
        )
        assert empty.status_code == 200, empty.text
        header = empty.content.decode("utf-8-sig").splitlines()
        assert len(header) == 1 and header[0].split(",")[:2] in (
            ["rank", "department"],
            ["ticket_id", "status"],
        )

    tickets = await csv_rows(stats, "/v1/tickets", district="yanggu")
    assert [(t["ticket_id"], t["text"], t["town"]) for t in tickets] == [
        (T[10], "建议增设公交站", ""),
        (T[3], "小区旁夜间施工噪音扰民", ""),
        (T[2], "阳谷县紫荆街一家店铺门口北侧堆放建筑垃圾好几天了", "博济桥街道"),
    ]
    assert tickets[2]["reply"] == "已处理完毕"
    assert datetime.fromisoformat(tickets[2]["received_at"]) == city(D1, 10)


# --- the same figures however the events come -----------------------------------------


async def snapshot(stats: StatsHarness) -> dict[str, Any]:
    """Everything the API says about the history."""
    out: dict[str, Any] = {
        "summary": await summary(stats),
        "ranking": await stats.get("/v1/stats/ranking", **THREE_DAYS),
        "trend": await stats.get("/v1/stats/trend", **THREE_DAYS),
        "tickets": await stats.get("/v1/tickets", limit=100),
    }
    for department in DEPARTMENTS:
        out[department] = await summary(stats, department=department)
    for district in DISTRICTS:
        out[district] = await summary(stats, district=district)
    out["env@dongchangfu"] = await summary(stats, department=ENV, district="dongchangfu")
    for ticket in T[1:]:
        out[ticket] = await stats.get(f"/v1/tickets/{ticket}")
    return out


async def test_redelivered_events_change_nothing(own_stats: StatsHarness) -> None:
    stats = own_stats
    before = await snapshot(stats)
    archived = await stats.archive.count()
    assert archived == len(EVENTS) == 61
    # Every event again (the broker redelivers after a lost ack), in another order,
    # some twice in one batch.
    for event in shuffled(EVENTS, seed=3)[:20]:
        await stats.archive_events([event, event])
    await stats.ingest(shuffled(EVENTS, seed=4), chunk=13)
    assert await stats.archive.count() == archived
    assert await snapshot(stats) == before


async def test_rebuild_equals_live(own_stats: StatsHarness) -> None:
    stats = own_stats
    live = await snapshot(stats)
    await stats.aggregator.release()
    rebuilt_from = await stats.aggregator_as("rebuild", batch=5).rebuild()
    assert rebuilt_from == 61
    assert await snapshot(stats) == live
    # The live aggregator picks up where the rebuild left: nothing more to add.
    stats.settle()
    await stats.aggregator.catch_up()
    assert await snapshot(stats) == live
    assert (await stats.meta.info()).keys() == {"checkpoint", "lease"}  # pause lifted


async def test_overdue_gauge_exports_zero_for_departments_with_none(stats: StatsHarness) -> None:
    """Without a 0 series, a department going from no overdue ticket to thirty
    has no delta for the alert to see."""
    api = StatsApi(stats.views, stats.counters, CITY, stats.clock)
    quiet = "gaotang.culture-tourism-none"  # a unit with no ticket in the history
    await _refresh_open(api, stats.clock(), [quiet, WATER])
    assert REGISTRY.get_sample_value("hotline_overdue_tickets", {"department": quiet}) == 0.0
    assert REGISTRY.get_sample_value("hotline_open_tickets", {"department": quiet}) == 0.0
    water_open = REGISTRY.get_sample_value("hotline_open_tickets", {"department": WATER})
    assert water_open is not None and water_open >= 0


# --- dispatch quality (派单准确率) ------------------------------------------------------
# Eight of the ten tickets were dispatched (T5 answered on the spot, T8 waits for
# a person); T4 went to housing first, was returned and dispatched to ecology:
# 7 of 8 right the first time. The history's dispatches do not say what decided
# them (events of an older router): "unknown".


async def test_dispatch_quality_of_the_three_days(stats: StatsHarness) -> None:
    report = await stats.get("/v1/stats/dispatch-quality", **THREE_DAYS)
    assert report["first_time_right"] == {"value": 0.875, "numerator": 7, "denominator": 8}
    assert report["by_decided_by"] == {
        "unknown": {"value": 0.875, "numerator": 7, "denominator": 8}
    }
    assert report["returns_by_reason"] == [{"reason": "不属于本单位职责", "returns": 1}]
    assert report["misroutes"] == [{"dispatched_to": HOUSING, "finally": ENV, "tickets": 1}]
    # The summary carries it for its own period and filters.
    day_one = await stats.get("/v1/stats/summary", **{"from": D1, "to": D1}, department=HOUSING)
    assert day_one["dispatch_quality"]["first_time_right"] == {
        "value": 0.0,
        "numerator": 0,
        "denominator": 1,
    }
    # Nothing of the citizens: no ticket text, no ticket number.
    for text in ("小区污水外溢", *T[1:]):
        assert text not in str(report)


async def test_dispatch_quality_per_department_and_empty_ranges(stats: StatsHarness) -> None:
    water = await stats.get("/v1/stats/dispatch-quality", **THREE_DAYS, department=WATER)
    assert water["first_time_right"] == {"value": 1.0, "numerator": 3, "denominator": 3}
    empty = await stats.get(
        "/v1/stats/dispatch-quality", **{"from": "2025-01-01", "to": "2025-01-02"}
    )
    assert empty["first_time_right"] == {"value": None, "numerator": 0, "denominator": 0}
    assert (empty["misroutes"], empty["returns_by_reason"]) == ([], [])


async def test_dispatch_quality_gauges(stats: StatsHarness) -> None:
    # The gauges look at the last 30 days of the service's clock: the history's.
    await set_dispatch_gauges(stats.views, CITY, NOW)
    assert (
        REGISTRY.get_sample_value("hotline_dispatch_first_time_right_ratio", {"decided_by": "all"})
        == 0.875
    )
    assert (
        REGISTRY.get_sample_value(
            "hotline_dispatch_misroutes", {"dispatched_type": "housing", "final_type": "env"}
        )
        == 1
    )
