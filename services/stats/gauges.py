"""Business gauges for Prometheus: open and overdue tickets per department,
today's counts and rates, and each department's counts today and rates over
the ranking's 30 days. Labels are bounded sets (department ids, measure and rate
names); never ticket numbers, phone numbers or free text.

Every stats replica reports the same values (read from the store): dashboards
and alerts combine replicas with max, not sum."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from prometheus_client import Gauge

from services.stats.api import StatsApi
from services.stats.rates import measures

logger = logging.getLogger(__name__)
INTERVAL_S = 15.0
RATE_WINDOW_DAYS = 30  # as the department ranking
DEPARTMENT_MEASURES = ("dispatched", "accepted", "resolved", "returned", "reopened", "overdue")
DEPARTMENT_RATES = ("response", "resolution", "satisfaction", "completion", "on_time")

OPEN = Gauge("hotline_open_tickets", "Open tickets by department", ["department"])
OVERDUE = Gauge("hotline_overdue_tickets", "Open tickets past their deadline", ["department"])
TODAY_RATE = Gauge("hotline_today_rate", "Today's rates (0..1), city time", ["rate"])
TODAY_TICKETS = Gauge("hotline_today_tickets", "Today's ticket counts, city time", ["measure"])
DEPARTMENT_TODAY = Gauge(
    "hotline_department_today_tickets",
    "Today's ticket counts per department, city time",
    ["department", "measure"],
)
DEPARTMENT_RATE = Gauge(
    "hotline_department_rate",
    f"Rates (0..1) per department over the last {RATE_WINDOW_DAYS} days; absent without data",
    ["department", "rate"],
)


async def refresh_gauges(
    api: StatsApi, clock: Callable[[], datetime], departments: Sequence[str] = ()
) -> None:
    """`departments`: the directory's units, exported as 0 when they have
    nothing open, so a jump from none to many is a change an alert can see."""
    while True:
        try:
            await _refresh(api, clock(), departments)
        except Exception as exc:  # store down: keep the last values
            logger.debug("gauges not refreshed: %r", exc)
        await asyncio.sleep(INTERVAL_S)


async def _refresh(api: StatsApi, now: datetime, departments: Sequence[str] = ()) -> None:
    await _refresh_open(api, now, departments)
    today = now.astimezone(api.tz).date()
    totals = await api.totals(today, today, {})
    m = measures(totals.get("", {}))
    for name, r in m["rates"].items():
        TODAY_RATE.labels(name).set(r["value"] if r["value"] is not None else float("nan"))
    for name, value in m["counts"].items():
        TODAY_TICKETS.labels(name).set(value)
    await _refresh_departments(api, today)


async def _refresh_open(api: StatsApi, now: datetime, departments: Sequence[str]) -> None:
    open_rows = await api.views.aggregate(
        [{"$match": {"open": 1}}, {"$group": {"_id": "$department", "n": {"$sum": 1}}}]
    )
    late_rows = await api.views.aggregate(
        [
            {"$match": {"open": 1, "deadline": {"$lt": now}}},
            {"$group": {"_id": "$department", "n": {"$sum": 1}}},
        ]
    )
    for gauge, rows in ((OPEN, open_rows), (OVERDUE, late_rows)):
        gauge.clear()
        for department in departments:
            gauge.labels(department).set(0)
        for row in rows:
            gauge.labels(row["_id"] or "unassigned").set(row["n"])


async def _refresh_departments(api: StatsApi, today: date) -> None:
    start = today - timedelta(days=RATE_WINDOW_DAYS - 1)
    window = await api.totals(start, today, {}, group_by="department")
    todays = await api.totals(today, today, {}, group_by="department")
    for rows in (window, todays):
        rows.pop("", None)  # receipts and other steps before any department
    DEPARTMENT_TODAY.clear()
    for department, row in todays.items():
        counts = measures(row)["counts"]
        for name in DEPARTMENT_MEASURES:
            DEPARTMENT_TODAY.labels(department, name).set(counts[name])
    DEPARTMENT_RATE.clear()
    for department, row in window.items():
        rates = measures(row)["rates"]
        for name in DEPARTMENT_RATES:
            if rates[name]["value"] is not None:
                DEPARTMENT_RATE.labels(department, name).set(rates[name]["value"])
