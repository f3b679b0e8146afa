"""Counting store operations from a test or a bench: a PyMongo command
listener on a client of the test's own (never in production code), and intake
wired on such a client."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymongo import AsyncMongoClient
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from shared.bootstrap import Infra
from shared.messaging.broker import Broker
from shared.messaging.topology import Topology
from shared.mongo import Document, service_database
from shared.settings import IntakeSettings
from tests.intake_support import SERVICE, IntakeHarness, build_harness

# What the driver sends that is not a store operation of the code under test.
HOUSEKEEPING = {"hello", "ismaster", "isMaster", "ping", "endSessions", "createIndexes"}


class Commands(CommandListener):
    """(command, collection) -> how many the client sent."""

    def __init__(self) -> None:
        self.sent: Counter[tuple[str, str]] = Counter()

    def started(self, event: CommandStartedEvent) -> None:
        collection = event.command.get(event.command_name)
        self.sent[(event.command_name, str(collection))] += 1

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass

    def reset(self) -> None:
        self.sent.clear()

    def operations(self) -> int:
        return sum(n for (name, _), n in self.sent.items() if name not in HOUSEKEEPING)


@asynccontextmanager
async def counted_intake(
    settings: IntakeSettings, commands: Commands
) -> AsyncIterator[IntakeHarness]:
    """Intake as the tests' harness wires it, on a store client that counts commands."""
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongo_url, tz_aware=True, event_listeners=[commands]
    )
    broker = Broker(settings.amqp_url, Topology.from_settings(settings), settings.prefetch)
    await broker.connect()
    infra = Infra(SERVICE, mongo, service_database(mongo, settings, SERVICE), broker)
    harness = await build_harness(settings, infra)
    try:
        yield harness
    finally:
        await harness.client.aclose()
        await infra.close()
