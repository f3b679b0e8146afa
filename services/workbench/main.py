"""Wires the workbench: settings -> store (sessions) and HTTP client -> pages -> run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pymongo import AsyncMongoClient

from services.workbench import pages_agent, pages_auth, pages_citizen, pages_staff, pages_tickets
from services.workbench.clients import Services
from services.workbench.sessions import SessionStore
from services.workbench.web import Workbench, install_pages_support, make_templates
from shared.clock import Clock
from shared.directory import load_directory
from shared.http import BodyLimitMiddleware, ReadinessCheck, create_app
from shared.mongo import Document, create_client, ping, service_database
from shared.ratelimit import TokenBuckets
from shared.service import configure_logging, serve
from shared.settings import WorkbenchSettings
from shared.workcalendar import WorkCalendar, load_overrides

SERVICE = "workbench"
STATIC = Path(__file__).parent / "static"
CALLED = ("intake", "router", "notifier", "stats")
PURGE_EVERY_S = 600.0
CITIZEN_BURST = 10
logger = logging.getLogger(__name__)


def build_app(bench: Workbench, store_up: ReadinessCheck) -> FastAPI:
    """Ready when the services it calls answer and its session store does."""
    checks = {name: _answers(bench.services, name) for name in CALLED}
    checks["store"] = store_up
    app = create_app(SERVICE, checks, title="Hotline workbench")
    app.state.workbench = bench
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (pages_auth, pages_tickets, pages_staff, pages_agent, pages_citizen):
        app.include_router(module.build_router())
    install_pages_support(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=bench.settings.max_body_bytes)
    return app


def _answers(services: Services, name: str) -> ReadinessCheck:
    async def check() -> bool:
        return await services.answers(name)

    return check


async def purge_forever(sessions: SessionStore, clock: Callable[[], datetime]) -> None:
    while True:
        await asyncio.sleep(PURGE_EVERY_S)
        try:
            await sessions.purge_idle(clock())
        except Exception as exc:  # the store is down: next round
            logger.warning("session purge failed: %r", exc)


def make_workbench(
    settings: WorkbenchSettings, client: AsyncMongoClient[Document], http: httpx.AsyncClient
) -> Workbench:
    urls = {
        "intake": settings.intake_url,
        "router": settings.router_url,
        "notifier": settings.notifier_url,
        "stats": settings.stats_url,
    }
    directory = load_directory(settings.districts_file, settings.directory_file)
    return Workbench(
        settings=settings,
        services=Services(http, urls),
        sessions=SessionStore(
            service_database(client, settings, SERVICE),
            timedelta(seconds=settings.session_idle_s),
        ),
        directory=directory,
        calendar=WorkCalendar(settings.timezone, load_overrides(settings.calendar_overrides_file)),
        templates=make_templates(settings.timezone, directory),
        buckets=TokenBuckets(settings.citizen_rate_per_minute, CITIZEN_BURST),
        clock=Clock(settings.clock_offset_file),
    )


async def main(settings: WorkbenchSettings) -> None:
    client = create_client(settings)
    http = httpx.AsyncClient(timeout=settings.call_timeout_s)
    bench = make_workbench(settings, client, http)

    async def store_up() -> bool:
        return await ping(client)

    await serve(
        build_app(bench, store_up),
        settings.http_host,
        settings.http_port,
        tasks=[purge_forever(bench.sessions, bench.clock)],
        on_close=[http.aclose, client.close],
    )


def run() -> int:
    settings = WorkbenchSettings()
    configure_logging(settings.log_level)
    # httpx logs every call with its query string (a lookup's phone digits).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(main(settings))
    return 0
