"""Wires the router: settings -> connections -> handlers -> run until SIGTERM -> close."""

from __future__ import annotations

import asyncio
from functools import partial

from pydantic import TypeAdapter

from services.router.engine import RuleEngine
from services.router.handlers import EngineHolder, handle_received
from services.router.repository import TicketRepository
from services.router.rules import load_rules
from shared.bootstrap import connect
from shared.directory import load_directory
from shared.events import TicketReceived, utcnow
from shared.http import create_app
from shared.messaging.consumer import Consumer
from shared.messaging.monitor import monitor_queues
from shared.messaging.publisher import Publisher
from shared.service import configure_logging, serve
from shared.settings import RouterSettings
from shared.workcalendar import WorkCalendar, load_overrides

SERVICE = "router"


async def main(settings: RouterSettings) -> None:
    directory = load_directory(settings.districts_file, settings.directory_file)
    calendar = WorkCalendar(settings.timezone, load_overrides(settings.calendar_overrides_file))
    engines = EngineHolder(RuleEngine(load_rules(settings.rules_file), directory, calendar))

    infra = await connect(settings, SERVICE)
    repo = TicketRepository(infra.db)
    await repo.ensure_indexes()
    publisher = Publisher(infra.broker.exchange, SERVICE)

    queue = infra.broker.topology.queue_name(infra.broker.topology.spec(SERVICE))
    consumer = Consumer(
        infra.broker,
        SERVICE,
        queue,
        TypeAdapter(TicketReceived),
        partial(handle_received, repo=repo, engines=engines, publisher=publisher, clock=utcnow),
    )
    await consumer.start()

    app = create_app(SERVICE, infra.readiness_checks(), title="Hotline router")
    await serve(
        app,
        settings.http_host,
        settings.http_port,
        tasks=[monitor_queues(infra.broker, SERVICE, [queue])],
        on_close=[consumer.stop, infra.close],
    )


def run() -> int:
    settings = RouterSettings()
    configure_logging(settings.log_level)
    asyncio.run(main(settings))
    return 0
