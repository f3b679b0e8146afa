"""Intake wired as services/intake/main.py wires it, without the HTTP server, and
a probe that reads what it published from the namespace's queues.

Nobody consumes the queues the probe reads, so a queue's depth is the number of
events intake published there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aio_pika
import httpx
from aio_pika.abc import AbstractChannel, AbstractConnection
from fastapi import FastAPI

from services.intake.assembly import IntakeParts, build_app, build_parts
from services.intake.intake import Intake
from services.intake.status import SUBSCRIPTIONS
from shared.bootstrap import Infra, connect
from shared.directory import load_directory
from shared.events import TicketEvent, parse_event, utcnow
from shared.keys import KeyKind
from shared.messaging.broker import Broker
from shared.messaging.publisher import Publisher
from shared.messaging.topology import Topology
from shared.settings import IntakeSettings
from tests.support import eventually

SERVICE = "intake"


@dataclass
class IntakeHarness:
    settings: IntakeSettings
    infra: Infra
    parts: IntakeParts
    app: FastAPI
    client: httpx.AsyncClient
    tasks: list[asyncio.Task[None]]

    @property
    def intake(self) -> Intake:
        return self.parts.intake

    async def post(
        self, body: dict[str, Any], key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key is not None else {}
        headers.update(kwargs.pop("headers", {}))
        return await self.client.post("/v1/tickets", json=body, headers=headers, **kwargs)

    async def issue(self, kind: str, owner: str) -> str:
        """A real key from the shared key store."""
        return (await self.parts.access.store.issue(KeyKind(kind), owner, utcnow()))[1]


class Probe:
    """Reads the namespace's queues over a connection of its own."""

    def __init__(self, channel: AbstractChannel, topology: Topology) -> None:
        self._channel = channel
        self._topology = topology

    def queue(self, service: str) -> str:
        topology = self._topology
        purpose = "status" if service == "intake" else "events"
        return topology.queue_name(topology.spec(service, purpose))

    async def count(self, service: str) -> int:
        declared = await self._channel.declare_queue(self.queue(service), passive=True)
        return int(declared.declaration_result.message_count or 0)

    async def drain(self, service: str) -> list[TicketEvent]:
        queue = await self._channel.get_queue(self.queue(service), ensure=False)
        events: list[TicketEvent] = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            events.append(parse_event(message.body))
        return events

    async def wait_for(self, service: str, count: int) -> list[TicketEvent]:
        """Wait until the queue holds `count` events, then take them all."""

        async def arrived() -> bool:
            return await self.count(service) >= count

        await eventually(arrived)
        return await self.drain(service)


async def build_harness(
    settings: IntakeSettings, infra: Infra, consume_status: bool = False
) -> IntakeHarness:
    directory = load_directory(settings.districts_file, settings.directory_file)
    parts = build_parts(settings, infra, directory, utcnow)
    await parts.ensure_indexes()
    if consume_status:
        await infra.consume(SUBSCRIPTIONS.adapter, parts.ctx.status.handle, purpose="status")
    app = build_app(parts, infra)
    tasks = [asyncio.create_task(t) for t in parts.background()]
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    client = httpx.AsyncClient(transport=transport, base_url="http://t")
    return IntakeHarness(settings, infra, parts, app, client, tasks)


@asynccontextmanager
async def running(
    settings: IntakeSettings, consume_status: bool = False
) -> AsyncIterator[IntakeHarness]:
    infra = await connect(settings, SERVICE)
    try:
        built = await build_harness(settings, infra, consume_status)
        try:
            yield built
        finally:
            for task in built.tasks:
                task.cancel()
            await asyncio.gather(*built.tasks, return_exceptions=True)
            await built.client.aclose()
            for consumer in infra.consumers:
                await consumer.stop()
    finally:
        await infra.close()


@asynccontextmanager
async def probing(harness: IntakeHarness) -> AsyncIterator[Probe]:
    # After the harness: its connect() declared the topology the probe reads.
    connection: AbstractConnection = await aio_pika.connect(harness.settings.amqp_url)
    try:
        channel = await connection.channel()
        yield Probe(channel, harness.infra.broker.topology)
    finally:
        await connection.close()


def intake_settings_of(settings: Any, **changes: Any) -> IntakeSettings:
    """The test's namespace, intake's settings; the SMTP listener on a free port."""
    base = IntakeSettings(**settings.model_dump())
    return base.model_copy(update={"email_listen_port": 0, **changes})


async def reconnect(harness: IntakeHarness) -> Broker:
    """A new broker connection for the intake after a test closed its own (the
    caller closes it)."""
    settings = harness.settings
    broker = Broker(settings.amqp_url, Topology.from_settings(settings), settings.prefetch)
    await broker.connect()
    harness.intake.publisher = Publisher(broker.exchange, SERVICE, settings.publish_timeout_s)
    return broker


async def progress_to(harness: IntakeHarness, ticket_id: str, *steps: str) -> None:
    """Move intake's view of a ticket through workflow steps, as the router's
    events would (dispatched, accepted, resolved, closed), without a router."""
    from shared.events import Rating
    from tests.stats_support import TicketStory

    story = TicketStory(ticket_id, "yanggu")
    at = utcnow()
    makers: dict[str, Callable[[], TicketEvent]] = {
        "dispatched": lambda: story.dispatched(at, "yanggu.urban-mgmt", 24),
        "accepted": lambda: story.accepted(at),
        "resolved": lambda: story.resolved(at),
        "closed": lambda: story.closed(at, Rating.SATISFIED, True),
    }
    for step in steps:
        await harness.parts.ctx.status.apply(makers[step]())
