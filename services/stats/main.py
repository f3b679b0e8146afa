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
from shared.messaging.consumer import Consumer
from shared.messaging.monitor import monitor_queues
from shared.service import configure_logging, serve
from shared.settings import StatsSettings

SERVICE = "stats"


async def main(settings: StatsSettings) -> None:
    tz = ZoneInfo(settings.timezone)
    infra = await connect(settings, SERVICE)
    store = StatsStore(EventArchive(infra.db), TicketViews(infra.db), DailyCounters(infra.db), tz)
    for repo in (store.archive, store.views, store.counters):
        await repo.ensure_indexes()

    queue = infra.broker.topology.queue_name(infra.broker.topology.spec(SERVICE))
    consumer = Consumer(
        infra.broker, SERVICE, queue, EVENT_ADAPTER, partial(handle_event, store=store)
    )
    await consumer.start()

    app = create_app(SERVICE, infra.readiness_checks(), title="Hotline stats")
    app.include_router(build_router(store.views, store.counters, tz))
    await serve(
        app,
        settings.http_host,
        settings.http_port,
        tasks=[monitor_queues(infra.broker, SERVICE, [queue])],
        on_close=[consumer.stop, infra.close],
    )


def run() -> int:
    settings = StatsSettings()
    configure_logging(settings.log_level)
    asyncio.run(main(settings))
    return 0
