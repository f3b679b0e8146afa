"""Wires intake: settings -> connections -> channels, status consumer, API -> run
until SIGTERM -> close."""

from __future__ import annotations

import asyncio

from pydantic import ValidationError

from services.intake.assembly import SERVICE, build_app, build_parts
from services.intake.status import SUBSCRIPTIONS
from shared.bootstrap import connect
from shared.clock import Clock
from shared.directory import load_directory
from shared.service import configure_logging
from shared.settings import IntakeSettings


async def main(settings: IntakeSettings) -> None:
    directory = load_directory(settings.districts_file, settings.directory_file)
    infra = await connect(settings, SERVICE)
    parts = build_parts(settings, infra, directory, Clock(settings.clock_offset_file))
    await parts.ensure_indexes()
    await infra.consume(SUBSCRIPTIONS.adapter, parts.ctx.status.handle, purpose="status")
    app = build_app(parts, infra)
    await infra.serve(app, settings, settings.http_port, tasks=parts.background())


def run() -> int:
    try:
        settings = IntakeSettings()
    except ValidationError as exc:  # a bad HOTLINE_* value: say which, without a traceback
        raise SystemExit(f"intake: {exc}") from None
    configure_logging(settings.log_level)
    asyncio.run(main(settings))
    return 0
