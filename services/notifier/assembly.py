"""The notifier's parts, built once from the settings: used by main.py and by
tests that run several notifier replicas in one process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from services.notifier.channels import DeliveryChannel, load_channels
from services.notifier.delivery import DeliverySender
from services.notifier.firing import FIRE_BATCH, TimerFirer
from services.notifier.handlers import Notifier
from services.notifier.repository import DeliveryRepository
from services.notifier.timers import TimerRepository
from services.notifier.worker import JobWorker
from shared.bootstrap import Infra
from shared.directory import Directory
from shared.messaging.publisher import Publisher
from shared.settings import NotifierSettings
from shared.workcalendar import WorkCalendar


@dataclass
class NotifierParts:
    deliveries: DeliveryRepository
    timers: TimerRepository
    channels: dict[str, DeliveryChannel]
    sender: DeliverySender
    delivery_worker: JobWorker
    firer: TimerFirer
    timer_worker: JobWorker
    notifier: Notifier


async def assemble(
    settings: NotifierSettings,
    infra: Infra,
    directory: Directory,
    calendar: WorkCalendar,
    clock: Callable[[], datetime],
    http: httpx.AsyncClient,
) -> NotifierParts:
    lease = timedelta(seconds=settings.claim_lease_s)
    deliveries, timers = DeliveryRepository(infra.db), TimerRepository(infra.db)
    await deliveries.ensure_indexes()
    await timers.ensure_indexes()
    channels = load_channels(settings, http)
    sender = DeliverySender(
        deliveries,
        channels,
        clock,
        settings.delivery_backoff_base_s,
        settings.delivery_backoff_cap_s,
        settings.delivery_max_attempts,
        lease,
        standing=timers.standing,
    )
    delivery_worker = JobWorker(deliveries, sender.attempt, clock, settings.delivery_poll_s)
    sender.offer = delivery_worker.offer
    firer = TimerFirer(
        timers,
        deliveries,
        directory,
        channels,
        Publisher(infra.broker.exchange, "notifier"),
        calendar,
        clock,
        lease,
        settings.hotline_centre,
        delivery_worker.offer,
        lambda timer: timer_worker.offer(timer),
    )
    timer_worker = JobWorker(
        timers,
        firer.fire,
        clock,
        settings.timer_poll_s,
        process_batch=firer.fire_many,
        batch_max=FIRE_BATCH,
    )
    notifier = Notifier(
        timers,
        deliveries,
        directory,
        channels,
        calendar,
        clock,
        delivery_worker.offer,
        timer_worker.offer,
        firer.overdue_missed,
        settings.hotline_centre,
        lease,
    )
    return NotifierParts(
        deliveries, timers, channels, sender, delivery_worker, firer, timer_worker, notifier
    )
