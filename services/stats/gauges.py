"""Business gauges for Prometheus: open and overdue tickets per department, and
today's rates. Labels are bounded sets (department ids); never ticket numbers,
phone numbers or free text."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from prometheus_client import Gauge

from services.stats.api import StatsApi
from services.stats.rates import measures

logger = logging.getLogger(__name__)
INTERVAL_S = 15.0

OPEN = Gauge("hotline_open_tickets", "Open tickets by department", ["department"])
OVERDUE = Gauge("hotline_overdue_tickets", "Open tickets past their deadline", ["department"])
TODAY_RATE = Gauge("hotline_today_rate", "Today's rates (0..1), city time", ["rate"])
TODAY_COUNT = Gauge("hotline_today_count", "Today's counts, city time", ["measure"])


async def refresh_gauges(api: StatsApi, clock: Callable[[], datetime]) -> None:
    while True:
        try:
            await _refresh(api, clock())
        except Exception as exc:  # store down: keep the last values
            logger.debug("gauges not refreshed: %r", exc)
        await asyncio.sleep(INTERVAL_S)


async def _refresh(api: StatsApi, now: datetime) -> None:
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
        for row in rows:
            gauge.labels(row["_id"] or "unassigned").set(row["n"])
    today = now.astimezone(api.tz).date()
    totals = await api.totals(today, today, {})
    m = measures(totals.get("", {}))
    for name, r in m["rates"].items():
        TODAY_RATE.labels(name).set(r["value"] if r["value"] is not None else float("nan"))
    for name, value in m["counts"].items():
        TODAY_COUNT.labels(name).set(value)
