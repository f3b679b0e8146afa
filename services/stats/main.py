"""Wires stats: settings -> connections -> handler -> run until SIGTERM -> close."""

from __future__ import annotations

import asyncio
from functools import partial
from zoneinfo import ZoneInfo

from services.stats.api import build_router
from services.stats.handlers import StatsStore, handle_event
from services.stats.repository import DailyCounters, EventArchive, TicketViews
from shared.bootstrap import connect
from shared.events import EVENT_ADAPTER
from shared.http import create_app
from shared.service import configure_logging
from shared.settings import StatsSettings

SERVICE = "stats"


async def main(settings: StatsSettings) -> None:
    tz = ZoneInfo(settings.timezone)
    infra = await connect(settings, SERVICE)
    store = StatsStore(EventArchive(infra.db), TicketViews(infra.db), DailyCounters(infra.db), tz)
    for repo in (store.archive, store.views, store.counters):
        await repo.ensure_indexes()
    await infra.consume(EVENT_ADAPTER, partial(handle_event, store=store))

    app = create_app(SERVICE, infra.readiness_checks(), title="Hotline stats")
    app.include_router(build_router(store.views, store.counters, tz))
    await infra.serve(app, settings, settings.http_port)


def run() -> int:
    settings = StatsSettings()
    configure_logging(settings.log_level)
    asyncio.run(main(settings))
    return 0
