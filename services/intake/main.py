"""Wires intake: settings -> connections -> API -> run until SIGTERM -> close."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from services.intake.api import build_router, install_error_handlers
from services.intake.intake import Intake
from services.intake.repository import IntakeRepository
from shared.bootstrap import Infra, connect
from shared.clock import Clock
from shared.directory import Directory, load_directory
from shared.http import BodyLimitMiddleware, create_app
from shared.messaging.publisher import Publisher
from shared.service import configure_logging
from shared.settings import IntakeSettings

SERVICE = "intake"


def build_app(settings: IntakeSettings, infra: Infra, directory: Directory) -> FastAPI:
    repo = IntakeRepository(infra.db, settings.ticket_prefix)
    publisher = Publisher(infra.broker.exchange, SERVICE, settings.publish_timeout_s)
    clock = Clock(settings.clock_offset_file)
    intake = Intake(repo, publisher, directory, ZoneInfo(settings.timezone), clock)
    app = create_app(SERVICE, infra.readiness_checks(), title="Hotline intake")
    app.include_router(build_router(intake))
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app


async def main(settings: IntakeSettings) -> None:
    directory = load_directory(settings.districts_file, settings.directory_file)
    infra = await connect(settings, SERVICE)
    await IntakeRepository(infra.db, settings.ticket_prefix).ensure_indexes()
    await infra.serve(build_app(settings, infra, directory), settings, settings.http_port)


def run() -> int:
    settings = IntakeSettings()
    configure_logging(settings.log_level)
    asyncio.run(main(settings))
    return 0
