"""Wires the notifier: settings -> connections -> handlers, worker -> run -> close."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial

import httpx
from pydantic import TypeAdapter

from services.notifier.api import build_router
from services.notifier.delivery import DeliveryWorker, WebhookSender
from services.notifier.handlers import handle_dispatched
from services.notifier.repository import DeliveryRepository
from shared.bootstrap import connect
from shared.directory import load_directory
from shared.events import TicketDispatched, utcnow
from shared.http import create_app
from shared.service import configure_logging
from shared.settings import NotifierSettings

SERVICE = "notifier"


async def main(settings: NotifierSettings) -> None:
    directory = load_directory(settings.districts_file, settings.directory_file)
    infra = await connect(settings, SERVICE)
    repo = DeliveryRepository(infra.db)
    await repo.ensure_indexes()
    http = httpx.AsyncClient(timeout=settings.webhook_timeout_s)
    worker = DeliveryWorker(
        repo=repo,
        sender=WebhookSender(http),
        clock=utcnow,
        backoff=settings.delivery_backoff,
        max_attempts=settings.delivery_max_attempts,
        poll_s=settings.delivery_poll_s,
        lease=timedelta(seconds=settings.claim_lease_s),
    )

    handler = partial(
        handle_dispatched, repo=repo, directory=directory, clock=utcnow, wake=worker.wake
    )
    await infra.consume(TypeAdapter(TicketDispatched), handler)

    app = create_app(SERVICE, infra.readiness_checks(), title="Hotline notifier")
    app.include_router(build_router(repo))
    await infra.serve(
        app, settings, settings.http_port, tasks=[worker.run()], on_close=[http.aclose]
    )


def run() -> int:
    settings = NotifierSettings()
    configure_logging(settings.log_level)
    asyncio.run(main(settings))
    return 0
