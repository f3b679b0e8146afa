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
from shared.messaging.publisher import Publisher
from shared.service import configure_logging
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
    await infra.consume(
        TypeAdapter(TicketReceived),
        partial(handle_received, repo=repo, engines=engines, publisher=publisher, clock=utcnow),
    )
    app = create_app(SERVICE, infra.readiness_checks(), title="Hotline router")
    await infra.serve(app, settings, settings.http_port)


def run() -> int:
    settings = RouterSettings()
    configure_logging(settings.log_level)
    asyncio.run(main(settings))
    return 0
