"""Wires intake: settings -> connections -> API -> run until SIGTERM -> close."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from services.intake.api import build_router, install_error_handlers
from services.intake.intake import Intake
from services.intake.repository import IntakeRepository
from shared.bootstrap import connect
from shared.directory import load_directory
from shared.events import utcnow
from shared.http import BodyLimitMiddleware, create_app
from shared.messaging.publisher import Publisher
from shared.service import configure_logging, serve
from shared.settings import IntakeSettings

SERVICE = "intake"


async def main(settings: IntakeSettings) -> None:
    directory = load_directory(settings.districts_file, settings.directory_file)
    infra = await connect(settings, SERVICE)
    repo = IntakeRepository(infra.db, settings.ticket_prefix)
    await repo.ensure_indexes()
    publisher = Publisher(infra.broker.exchange, SERVICE, settings.publish_timeout_s)
    intake = Intake(repo, publisher, directory, ZoneInfo(settings.timezone), utcnow)

    app = create_app(SERVICE, infra.readiness_checks(), title="Hotline intake")
    app.include_router(build_router(intake))
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    await serve(app, settings.http_host, settings.http_port, tasks=[], on_close=[infra.close])


def run() -> int:
    settings = IntakeSettings()
    configure_logging(settings.log_level)
    asyncio.run(main(settings))
    return 0
