"""Wires the router: settings -> connections -> handlers, API -> run until SIGTERM -> close."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from services.router.api import install
from services.router.commands import CommandService
from services.router.handlers import SUBSCRIPTIONS, EngineHolder, handle_batch
from services.router.knowledge import EngineFactory
from services.router.preview import install_preview
from services.router.refused import RefusedFeedbackRepository, build_refused_routes
from services.router.reload import install_sighup, load_engine, watch_rules
from services.router.repository import TicketRepository
from services.router.workflow.context import Policy
from shared.access import open_access
from shared.bootstrap import connect
from shared.clock import Clock
from shared.democlock import clock_routes
from shared.directory import load_directory
from shared.http import BodyLimitMiddleware, create_app
from shared.messaging.publisher import Publisher
from shared.service import configure_logging
from shared.settings import RouterSettings
from shared.workcalendar import WorkCalendar, load_overrides

SERVICE = "router"
RELAY_INTERVAL_S = 2.0
# A message waits at most BATCH_WAIT_S for others to join its batch; under
# load batches fill while the one before is stored.
BATCH_MAX = 200
BATCH_WAIT_S = 0.005
logger = logging.getLogger(__name__)


async def relay_forever(commands: CommandService) -> None:
    """Publish what a crash or an outage left behind in the outboxes."""
    while True:
        try:
            await commands.relay()
        except Exception as exc:  # broker or store down: try again next round
            logger.warning("outbox relay failed: %r", exc)
        await asyncio.sleep(RELAY_INTERVAL_S)


async def main(settings: RouterSettings) -> None:
    directory = load_directory(settings.districts_file, settings.directory_file)
    calendar = WorkCalendar(settings.timezone, load_overrides(settings.calendar_overrides_file))
    # The lists and the model are read with the rules, at start and on each reload.
    build_engine = EngineFactory.of(settings, directory, calendar)
    # An invalid rules file stops the start here; after that, a bad edit keeps the
    # rules in force running (services.router.reload).
    engines = EngineHolder(load_engine(settings.rules_file, build_engine, directory))
    install_sighup(
        asyncio.get_running_loop(), settings.rules_file, engines, build_engine, directory
    )

    limits = engines.engine.ruleset.time_limits
    if settings.reopen_time_limit is not None and settings.reopen_time_limit not in limits:
        raise SystemExit(f"HOTLINE_REOPEN_TIME_LIMIT: no time limit {settings.reopen_time_limit!r}")
    infra = await connect(settings, SERVICE)
    repo, refused = TicketRepository(infra.db), RefusedFeedbackRepository(infra.db)
    for store in (repo, refused):
        await store.ensure_indexes()
    publisher = Publisher(infra.broker.exchange, SERVICE)
    clock = Clock(settings.clock_offset_file)
    policy = Policy(
        extension_requests_per_dispatch=settings.extension_requests_per_dispatch,
        reopen_time_limit=settings.reopen_time_limit,
    )
    commands = CommandService(repo, engines, publisher, clock, infra.broker.is_connected, policy)
    # New tickets in batches: one store write for a batch's tickets, one for
    # clearing their outboxes (docs/PERFORMANCE.md, batch consumers).
    await infra.consume_batches(
        SUBSCRIPTIONS.adapter,
        partial(handle_batch, commands=commands, refused=refused),
        max_batch=BATCH_MAX,
        max_wait_s=BATCH_WAIT_S,
    )

    app = create_app(SERVICE, infra.readiness_checks(), title="Hotline router")
    install(app, commands, repo, open_access(infra.mongo, settings, directory))
    install_preview(app, engines)
    app.include_router(build_refused_routes(refused))
    app.include_router(clock_routes(settings, clock))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    tasks = [
        relay_forever(commands),
        watch_rules(settings.rules_file, engines, build_engine, directory),
    ]
    await infra.serve(app, settings, settings.http_port, tasks=tasks)


def run() -> int:
    settings = RouterSettings()
    configure_logging(settings.log_level)
    asyncio.run(main(settings))
    return 0
