"""Connections every service opens at start, waiting for servers that are not up yet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import FastAPI
from pydantic import TypeAdapter
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.http import ReadinessCheck
from shared.messaging.batch import BatchConsumer, BatchHandler
from shared.messaging.broker import Broker
from shared.messaging.consumer import Consumer, Handler
from shared.messaging.monitor import monitor_queues
from shared.messaging.topology import Topology
from shared.mongo import Document, create_client, ping, service_database
from shared.service import serve
from shared.settings import CommonSettings

logger = logging.getLogger(__name__)
T = TypeVar("T")
E = TypeVar("E")


async def with_retry(
    what: str, action: Callable[[], Awaitable[T]], attempts: int = 60, delay_s: float = 1.0
) -> T:
    """Start-up must survive servers that come up a little later (compose, CI)."""
    for attempt in range(1, attempts + 1):
        try:
            return await action()
        except Exception as exc:
            if attempt == attempts:
                raise
            logger.warning("%s not available yet (%r); retry %d/%d", what, exc, attempt, attempts)
            await asyncio.sleep(delay_s)
    raise AssertionError("unreachable")


@dataclass
class Infra:
    service: str
    mongo: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    broker: Broker
    consumers: list[Consumer | BatchConsumer[Any]] = field(default_factory=list)

    def queue(self, purpose: str = "events") -> str:
        topology = self.broker.topology
        return topology.queue_name(topology.spec(self.service, purpose))

    async def consume(
        self, adapter: TypeAdapter[E], handler: Handler[E], purpose: str = "events"
    ) -> Consumer:
        """Start consuming the service's queue with a typed handler."""
        consumer = Consumer(self.broker, self.service, self.queue(purpose), adapter, handler)
        await consumer.start()
        self.consumers.append(consumer)
        return consumer

    async def consume_batches(
        self,
        adapter: TypeAdapter[E],
        handler: BatchHandler[E],
        purpose: str = "events",
        *,
        max_batch: int = 500,
        max_wait_s: float = 0.05,
    ) -> BatchConsumer[E]:
        """Start consuming the service's queue, a batch of typed events at a time."""
        consumer = BatchConsumer(
            self.broker,
            self.service,
            self.queue(purpose),
            adapter,
            handler,
            max_batch=max_batch,
            max_wait_s=max_wait_s,
        )
        await consumer.start()
        self.consumers.append(consumer)
        return consumer

    async def serve(
        self,
        app: FastAPI,
        settings: CommonSettings,
        port: int,
        tasks: list[Coroutine[Any, Any, None]] | None = None,
        on_close: list[Callable[[], Awaitable[None]]] | None = None,
    ) -> None:
        """Serve until SIGTERM; then stop consuming, run on_close, close connections."""
        queues = [c.queue_name for c in self.consumers]
        await serve(
            app,
            settings.http_host,
            port,
            tasks=[*(tasks or []), monitor_queues(self.broker, self.service, queues)],
            on_close=[*(c.stop for c in self.consumers), *(on_close or []), self.close],
        )

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        async def broker_up() -> bool:
            return self.broker.is_connected()

        async def store_up() -> bool:
            return await ping(self.mongo)

        return {"broker": broker_up, "store": store_up}

    async def close(self) -> None:
        await self.broker.close()
        await self.mongo.close()


async def connect(settings: CommonSettings, service: str) -> Infra:
    mongo = create_client(settings)
    await with_retry("store", lambda: mongo.admin.command("ping"))
    broker = Broker(settings.amqp_url, Topology.from_settings(settings), settings.prefetch)
    await with_retry("broker", broker.connect)
    return Infra(service, mongo, service_database(mongo, settings, service), broker)
