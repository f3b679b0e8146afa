"""Connections every service opens at start, waiting for servers that are not up yet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.http import ReadinessCheck
from shared.messaging.broker import Broker
from shared.messaging.topology import Topology
from shared.mongo import Document, create_client, ping, service_database
from shared.settings import CommonSettings

logger = logging.getLogger(__name__)
T = TypeVar("T")


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
