"""Intake's parts assembled once: used by main and by the tests' harness."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from services.intake.api import build_router, error_response, install_error_handlers
from services.intake.channels import ChannelContext, IntakeChannel, discover
from services.intake.duplicates import CallerIndex
from services.intake.hotspots import HotspotPolicy, Hotspots
from services.intake.intake import Intake
from services.intake.lookup import FailureBackoff, Lookups
from services.intake.protection import ChannelGuard, Utf8Middleware
from services.intake.repository import IntakeRepository
from services.intake.status import StatusProjection
from shared.access import Access, install_access, open_access
from shared.bootstrap import Infra
from shared.directory import Directory
from shared.groupcommit import GroupWriter
from shared.http import BodyLimitMiddleware, create_app
from shared.messaging.publisher import Publisher
from shared.ratelimit import TokenBuckets
from shared.settings import IntakeSettings

SERVICE = "intake"


@dataclass
class IntakeParts:
    ctx: ChannelContext
    channels: list[IntakeChannel]
    lookups: Lookups
    access: Access
    # The real stores behind Intake's protocols (services.intake.ports).
    repo: IntakeRepository
    callers: CallerIndex
    hotspots: Hotspots
    # Their writes' group commit (shared.groupcommit).
    writer: GroupWriter

    @property
    def intake(self) -> Intake:
        return self.ctx.intake

    def channel(self, name: str) -> IntakeChannel:
        return next(c for c in self.channels if c.name == name)

    def background(self) -> list[Coroutine[Any, Any, None]]:
        tasks = (c.background(self.ctx) for c in self.channels)
        return [t for t in tasks if t is not None]

    async def ensure_indexes(self) -> None:
        await self.repo.ensure_indexes()
        await self.hotspots.ensure_indexes()


def build_parts(
    settings: IntakeSettings,
    infra: Infra,
    directory: Directory,
    clock: Callable[[], datetime],
) -> IntakeParts:
    db = infra.db
    policy = HotspotPolicy(
        settings.hotspot_similarity,
        settings.hotspot_min_callers,
        timedelta(days=settings.hotspot_window_days),
    )
    # One writer for the request path and the status consumer: a group carries
    # records, keys, published marks, callers, places and status documents of
    # every request and event in flight (shared.groupcommit).
    writer = GroupWriter(db, settings.group_commit_ms / 1000)
    status = StatusProjection(db, writer)
    repo = IntakeRepository(db, settings.ticket_prefix, writer)
    hotspots = Hotspots(db, policy, writer)
    window = timedelta(hours=settings.duplicate_window_hours)
    callers = CallerIndex(db, window, settings.duplicate_similarity, writer)
    intake = Intake(
        repo=repo,
        publisher=Publisher(infra.broker.exchange, SERVICE, settings.publish_timeout_s),
        directory=directory,
        timezone=ZoneInfo(settings.timezone),
        clock=clock,
        callers=callers,
        hotspots=hotspots,
        status=status,
        repeat_of_closed=settings.repeat_of_closed,
    )
    access = open_access(infra.mongo, settings, directory)
    buckets = TokenBuckets(settings.rate_limit_per_minute, settings.rate_limit_burst)
    guard = ChannelGuard(access, buckets, settings.require_channel_keys)
    ctx = ChannelContext(intake, settings, directory, guard, status, clock)
    misses = FailureBackoff(settings.lookup_failures_per_hour, settings.lookup_backoff_s)
    lookups = Lookups(repo, status, directory, misses)
    return IntakeParts(ctx, discover(), lookups, access, repo, callers, hotspots, writer)


def build_app(parts: IntakeParts, infra: Infra) -> FastAPI:
    settings = parts.ctx.settings
    app = create_app(SERVICE, infra.readiness_checks(), title="Hotline intake")
    for channel in parts.channels:
        router = channel.routes(parts.ctx)
        if router is not None:
            app.include_router(router)
    app.include_router(build_router(parts.ctx, parts.lookups, parts.channels))
    install_error_handlers(app)
    install_access(app, parts.access)
    # Added last, so it runs first: an oversized body is refused before anything reads it.
    app.add_middleware(Utf8Middleware, render=error_response)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app
