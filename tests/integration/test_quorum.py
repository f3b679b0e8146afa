"""The scale-out profile's messaging on the real RabbitMQ: with
HOTLINE_QUEUE_TYPE=quorum every queue is a quorum queue, replicas of a service
share its queue as competing consumers (each event handled once), and retries
and dead-lettering work as on classic queues."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from uuid import UUID

import aio_pika
import aiormq.exceptions
import pytest

from shared.events import EVENT_ADAPTER, TicketEvent
from shared.messaging.broker import Broker
from shared.messaging.consumer import Consumer
from shared.messaging.monitor import queue_depths
from shared.messaging.publisher import Publisher
from shared.messaging.topology import Topology
from shared.settings import CommonSettings
from tests.integration.test_messaging import received
from tests.support import eventually

pytestmark = pytest.mark.integration
EVENTS = 30


def quorum(settings: CommonSettings) -> CommonSettings:
    return settings.model_copy(update={"queue_type": "quorum"})


@asynccontextmanager
async def replicas(settings: CommonSettings, count: int) -> AsyncIterator[list[Broker]]:
    """Connections of `count` replicas, each declaring the topology as a service does."""
    async with AsyncExitStack() as stack:
        brokers = []
        for _ in range(count):
            broker = Broker(settings.amqp_url, Topology.from_settings(settings), prefetch=1)
            await broker.connect()
            stack.push_async_callback(broker.close)
            brokers.append(broker)
        yield brokers


async def test_every_queue_is_a_quorum_queue(settings: CommonSettings) -> None:
    settings = quorum(settings)
    async with replicas(settings, 1) as [broker]:
        queue = broker.topology.all_queue_names()[0]
        names = [queue, broker.topology.dlq_name(queue)]
        names += [broker.topology.retry_queue_name(queue, d) for d in settings.retry_delays]
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        for name in names:
            channel = await connection.channel()
            # The broker refuses a declaration whose type differs from the queue's.
            with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
                await channel.declare_queue(
                    name, durable=True, arguments={"x-queue-type": "classic"}
                )
            channel = await connection.channel()
            same = await channel.declare_queue(
                name, durable=True, arguments={"x-queue-type": "quorum"}, passive=True
            )
            assert same.name == name


async def test_replicas_compete_and_handle_each_event_once(settings: CommonSettings) -> None:
    settings = quorum(settings)
    handled: Counter[UUID] = Counter()
    by_replica: Counter[int] = Counter()

    def handler_of(replica: int) -> Callable[[TicketEvent], Awaitable[None]]:
        async def handle(event: TicketEvent) -> None:
            await asyncio.sleep(0.01)  # a little work, so the other replica gets its turn
            handled[event.event_id] += 1
            by_replica[replica] += 1

        return handle

    async with replicas(settings, 2) as brokers:
        queue = brokers[0].topology.queue_name(brokers[0].topology.spec("router"))
        consumers = [
            Consumer(broker, "router", queue, EVENT_ADAPTER, handler_of(i))
            for i, broker in enumerate(brokers)
        ]
        for consumer in consumers:
            await consumer.start()
        try:
            publisher = Publisher(brokers[0].exchange, "intake")
            events = [received(f"LC{n}") for n in range(EVENTS)]
            for event in events:
                await publisher.publish(event)

            async def all_handled() -> bool:
                return len(handled) == EVENTS

            await eventually(all_handled)
            await asyncio.sleep(0.5)  # a duplicate would arrive now
        finally:
            for consumer in consumers:
                await consumer.stop()
    assert set(handled) == {event.event_id for event in events}
    assert set(handled.values()) == {1}, "an event was handled twice"
    assert by_replica[0] > 0 and by_replica[1] > 0, f"one replica did all: {by_replica}"


async def test_failing_event_is_retried_then_dead_lettered(settings: CommonSettings) -> None:
    settings = quorum(settings)
    calls: list[UUID] = []

    async def broken(event: TicketEvent) -> None:
        calls.append(event.event_id)
        raise RuntimeError("always")

    async with replicas(settings, 1) as [broker]:
        queue = broker.topology.queue_name(broker.topology.spec("router"))
        consumer = Consumer(broker, "router", queue, EVENT_ADAPTER, broken)
        await consumer.start()
        try:
            await Publisher(broker.exchange, "intake").publish(received())

            async def dead_lettered() -> bool:
                return (await queue_depths(broker, queue))[broker.topology.dlq_name(queue)] == 1

            await eventually(dead_lettered)
        finally:
            await consumer.stop()
    assert len(calls) == len(settings.retry_delays) + 1
