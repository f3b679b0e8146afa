"""Wires the notifier: settings -> connections -> handlers, workers -> run -> close."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import partial

import httpx

from services.notifier.api import build_router
from services.notifier.channels import load_channels
from services.notifier.delivery import DeliverySender
from services.notifier.firing import TimerFirer
from services.notifier.handlers import Notifier, handle_event
from services.notifier.jobs import JobWorker
from services.notifier.metrics import DELIVERIES_BY_STATUS, OVERDUE_TICKETS, TIMERS_PENDING
from services.notifier.repository import DeliveryRepository
from services.notifier.timers import TimerRepository
from shared.bootstrap import connect
from shared.clock import Clock
from shared.directory import load_directory
from shared.events import EVENT_ADAPTER
from shared.http import create_app
from shared.messaging.publisher import Publisher
from shared.service import configure_logging
from shared.settings import NotifierSettings
from shared.workcalendar import WorkCalendar, load_overrides

SERVICE = "notifier"
GAUGE_INTERVAL_S = 10.0
logger = logging.getLogger(__name__)


async def refresh_gauges(deliveries: DeliveryRepository, timers: TimerRepository) -> None:
    while True:
        try:
            for status, n in (await deliveries.count_by_status()).items():
                DELIVERIES_BY_STATUS.labels(status).set(n)
            for kind in ("urge", "warning", "overdue", "supervision"):
                TIMERS_PENDING.labels(kind).set(
                    await timers.count({"kind": kind, "status": "pending"})
                )
            OVERDUE_TICKETS.set(await timers.count({"kind": "supervision", "status": "pending"}))
        except Exception as exc:  # store down: keep the last values
            logger.debug("gauges not refreshed: %r", exc)
        await asyncio.sleep(GAUGE_INTERVAL_S)


async def main(settings: NotifierSettings) -> None:
    directory = load_directory(settings.districts_file, settings.directory_file)
    calendar = WorkCalendar(settings.timezone, load_overrides(None))
    clock = Clock(settings.clock_offset_file)
    lease = timedelta(seconds=settings.claim_lease_s)
    infra = await connect(settings, SERVICE)
    deliveries, timers = DeliveryRepository(infra.db), TimerRepository(infra.db)
    await deliveries.ensure_indexes()
    await timers.ensure_indexes()
    http = httpx.AsyncClient(timeout=settings.webhook_timeout_s)
    channels = load_channels(settings, http)

    sender = DeliverySender(
        deliveries,
        channels,
        clock,
        settings.delivery_backoff_base_s,
        settings.delivery_backoff_cap_s,
        settings.delivery_max_attempts,
        lease,
    )
    delivery_worker = JobWorker(deliveries, sender.attempt, clock, settings.delivery_poll_s)
    firer = TimerFirer(
        timers,
        deliveries,
        directory,
        channels,
        Publisher(infra.broker.exchange, SERVICE),
        calendar,
        clock,
        lease,
        settings.hotline_centre,
        delivery_worker.wake,
    )
    timer_worker = JobWorker(timers, firer.fire, clock, settings.timer_poll_s)
    notifier = Notifier(
        timers, deliveries, directory, channels, calendar, clock, delivery_worker.wake
    )
    await infra.consume(EVENT_ADAPTER, partial(handle_event, notifier=notifier))

    app = create_app(SERVICE, infra.readiness_checks(), title="Hotline notifier")
    app.include_router(build_router(deliveries, timers))
    tasks = [delivery_worker.run(), timer_worker.run(), refresh_gauges(deliveries, timers)]
    await infra.serve(app, settings, settings.http_port, tasks=tasks, on_close=[http.aclose])


def run() -> int:
    settings = NotifierSettings()
    configure_logging(settings.log_level)
    asyncio.run(main(settings))
    return 0
