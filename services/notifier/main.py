"""Wires the notifier: settings -> connections -> handlers, workers -> run -> close."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

import httpx

from services.notifier.api import build_router
from services.notifier.assembly import assemble
from services.notifier.batch import handle_batch
from services.notifier.handlers import SUBSCRIPTIONS
from services.notifier.metrics import (
    DELIVERIES_BY_STATUS,
    OVERDUE_TICKETS,
    TIMER_BACKLOG_AGE,
    TIMERS_PENDING,
)
from services.notifier.repository import DeliveryRepository
from services.notifier.timers import TimerRepository
from shared.access import install_access, open_access
from shared.bootstrap import connect
from shared.clock import Clock
from shared.directory import load_directory
from shared.http import create_app
from shared.service import configure_logging
from shared.settings import NotifierSettings
from shared.workcalendar import WorkCalendar, load_overrides

SERVICE = "notifier"
GAUGE_INTERVAL_S = 10.0
# A message waits at most BATCH_WAIT_S for others to join its batch; under
# load batches fill while the one before is stored.
BATCH_MAX = 200
BATCH_WAIT_S = 0.005
logger = logging.getLogger(__name__)


async def refresh_gauges(
    deliveries: DeliveryRepository, timers: TimerRepository, clock: Clock
) -> None:
    while True:
        try:
            for status, n in (await deliveries.count_by_status()).items():
                DELIVERIES_BY_STATUS.labels(status).set(n)
            pending, backlog_age = await timers.pending_summary(clock())
            for kind, n in pending.items():
                TIMERS_PENDING.labels(kind).set(n)
            # Each overdue ticket has exactly one pending supervision.
            OVERDUE_TICKETS.set(pending["supervision"])
            TIMER_BACKLOG_AGE.set(backlog_age)
        except Exception as exc:  # store down: keep the last values
            logger.debug("gauges not refreshed: %r", exc)
        await asyncio.sleep(GAUGE_INTERVAL_S)


async def main(settings: NotifierSettings) -> None:
    directory = load_directory(settings.districts_file, settings.directory_file)
    calendar = WorkCalendar(settings.timezone, load_overrides(None))
    clock = Clock(settings.clock_offset_file)
    infra = await connect(settings, SERVICE)
    http = httpx.AsyncClient(timeout=settings.webhook_timeout_s)
    parts = await assemble(settings, infra, directory, calendar, clock, http)
    # New tickets' dispatches in batches: three store writes for a batch
    # (docs/PERFORMANCE.md, batch consumers).
    await infra.consume_batches(
        SUBSCRIPTIONS.adapter,
        partial(handle_batch, notifier=parts.notifier),
        max_batch=BATCH_MAX,
        max_wait_s=BATCH_WAIT_S,
    )

    app = create_app(SERVICE, infra.readiness_checks(), title="Hotline notifier")
    app.include_router(build_router(parts.deliveries, parts.timers))
    install_access(app, open_access(infra.mongo, settings, directory))
    tasks = [
        parts.delivery_worker.run(),
        parts.timer_worker.run(),
        refresh_gauges(parts.deliveries, parts.timers, clock),
    ]
    await infra.serve(app, settings, settings.http_port, tasks=tasks, on_close=[http.aclose])


def run() -> int:
    settings = NotifierSettings()
    configure_logging(settings.log_level)
    asyncio.run(main(settings))
    return 0
