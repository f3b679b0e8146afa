"""Wires stats: settings -> connections -> ingestion, aggregator, API -> run -> close."""

from __future__ import annotations

import asyncio
import uuid
from functools import partial
from zoneinfo import ZoneInfo

from services.stats.aggregator import Aggregator
from services.stats.api import StatsApi, build_router
from services.stats.dashboard import mount_dashboard
from services.stats.dispatch_quality import refresh_dispatch_gauges
from services.stats.exports import ExportLog
from services.stats.gauges import refresh_gauges
from services.stats.handlers import archive_batch
from services.stats.repository import Counters, EventArchive, Meta, TicketViews
from shared.access import install_access, open_access
from shared.bootstrap import connect
from shared.clock import Clock
from shared.directory import load_directory
from shared.http import create_app
from shared.messaging.topology import queue_spec
from shared.service import configure_logging
from shared.settings import StatsSettings

SERVICE = "stats"


async def main(settings: StatsSettings) -> None:
    tz = ZoneInfo(settings.timezone)
    clock = Clock(settings.clock_offset_file)
    infra = await connect(settings, SERVICE)
    archive, views = EventArchive(infra.db), TicketViews(infra.db)
    counters, meta = Counters(infra.db), Meta(infra.db)
    for repo in (archive, views, counters):
        await repo.ensure_indexes()
    aggregator = Aggregator(archive, views, counters, meta, tz, clock, f"stats-{uuid.uuid4()}")
    await infra.consume_batches(
        queue_spec(SERVICE).adapter(), partial(archive_batch, archive=archive, clock=clock)
    )

    app = create_app(SERVICE, infra.readiness_checks(), title="Hotline stats")
    exports = ExportLog(infra.db)
    await exports.ensure_indexes()
    directory = load_directory(settings.districts_file, settings.directory_file)
    names = {d.id: d.name for d in directory.departments.values()}
    api = StatsApi(views, counters, tz, clock, exports, names)
    app.include_router(build_router(api))
    install_access(app, open_access(infra.mongo, settings, directory))
    mount_dashboard(app)
    tasks = [
        aggregator.run(),
        refresh_gauges(api, clock, list(directory.departments)),
        refresh_dispatch_gauges(views, tz, clock),
    ]
    await infra.serve(app, settings, settings.http_port, tasks=tasks, on_close=[aggregator.release])


def run() -> int:
    settings = StatsSettings()
    configure_logging(settings.log_level)
    asyncio.run(main(settings))
    return 0
