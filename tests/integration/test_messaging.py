"""The messaging layer against the real RabbitMQ: confirms, returns, redelivery,
poison messages, bounded retries and the dead-letter queues."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import aio_pika
import aiormq.exceptions
import pytest
from aio_pika.abc import AbstractIncomingMessage
from pydantic import TypeAdapter

from shared.domain import Actor, ActorKind, Category, Channel, TicketDraft
from shared.errors import PermanentError, UnavailableError
from shared.events import EVENT_ADAPTER, ReceivedPayload, TicketEvent, TicketReceived
from shared.messaging.broker import Broker
from shared.messaging.consumer import ATTEMPT_HEADER, Consumer, Handler
from shared.messaging.monitor import queue_depths
from shared.messaging.publisher import Publisher
from shared.messaging.topology import Topology
from shared.settings import CommonSettings
from tests.support import dlq_bodies, eventually

pytestmark = pytest.mark.integration

RECEIVED: TypeAdapter[TicketReceived] = TypeAdapter(TicketReceived)


def received(ticket_id: str = "LC-1", text: str = "路灯不亮") -> TicketReceived:
    return TicketReceived(
        ticket_id=ticket_id,
        actor=Actor(kind=ActorKind.AGENT, id="agent-7"),
        payload=ReceivedPayload(
            ticket=TicketDraft(
                channel=Channel.PHONE,
                district="dongchangfu",
                category=Category.REPORT,
                text=text,
            )
        ),
    )


@asynccontextmanager
async def connected(settings: CommonSettings, prefetch: int = 10) -> AsyncIterator[Broker]:
    broker = Broker(settings.amqp_url, Topology.from_settings(settings), prefetch)
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.close()


def router_queue(broker: Broker) -> str:
    return broker.topology.queue_name(broker.topology.spec("router"))


@dataclass
class Delivery:
    """What the broker handed the consumer, seen before the handler runs."""

    message_id: str | None
    headers: dict[str, Any]
    redelivered: bool


class RecordingConsumer(Consumer):
    """The product's Consumer, recording each delivery so a test can see the
    retry headers and the redelivery flag that the handler never sees."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deliveries: list[Delivery] = []

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.deliveries.append(
            Delivery(message.message_id, dict(message.headers or {}), bool(message.redelivered))
        )
        await super()._on_message(message)


async def start_consumer(
    broker: Broker, queue: str, handler: Handler[TicketEvent]
) -> RecordingConsumer:
    consumer = RecordingConsumer(broker, "test", queue, EVENT_ADAPTER, handler)
    await consumer.start()
    return consumer


async def depth(broker: Broker, name: str) -> int:
    """Ready messages in a queue, asked of the broker now. (A passive declare on
    the robust channel answers from aio_pika's cache of the first declaration.)"""
    channel = await broker.channel.get_underlay_channel()
    declared = await channel.queue_declare(name, passive=True)
    return int(declared.message_count or 0)


async def dlq_depth(broker: Broker, queue: str) -> int:
    return await depth(broker, broker.topology.dlq_name(queue))


async def depths(broker: Broker, queue: str) -> tuple[int, int]:
    """(main queue, DLQ) ready messages."""
    return await depth(broker, queue), await dlq_depth(broker, queue)


async def test_published_event_reaches_consumer_as_typed_model(settings: CommonSettings) -> None:
    event = received()
    got: list[object] = []

    async def handler(e: TicketReceived) -> None:
        got.append(e)

    async with connected(settings) as broker:
        consumer = Consumer(broker, "test", router_queue(broker), RECEIVED, handler)
        await consumer.start()
        try:
            await Publisher(broker.exchange, "test").publish(event)

            async def arrived() -> bool:
                return len(got) == 1

            await eventually(arrived)
        finally:
            await consumer.stop()
    assert isinstance(got[0], TicketReceived)
    assert got[0] == event
    assert got[0].event_id == event.event_id


async def test_publish_to_exchange_without_bound_queue_raises_unavailable(
    settings: CommonSettings,
) -> None:
    async with connected(settings) as broker:
        name = f"{settings.amqp_namespace}.nowhere"
        exchange = await broker.channel.declare_exchange(
            name, aio_pika.ExchangeType.TOPIC, auto_delete=False
        )
        try:
            with pytest.raises(UnavailableError) as raised:
                await Publisher(exchange, "test", timeout_s=5.0).publish(received())
            # Returned by the broker (NO_ROUTE), not merely timed out.
            assert isinstance(raised.value.__cause__, aiormq.exceptions.PublishError)
            # The channel survives the return: the next publish still works.
            await Publisher(broker.exchange, "test").publish(received())
        finally:
            await broker.channel.exchange_delete(name)


async def test_publish_after_connection_closed_raises_unavailable(
    settings: CommonSettings,
) -> None:
    async with connected(settings) as broker:
        publisher = Publisher(broker.exchange, "test", timeout_s=2.0)
        await broker.close()
        # Bounded by the publisher's own timeout; the outer bound only keeps a
        # hanging publish from hanging the test run.
        with pytest.raises(UnavailableError):
            await asyncio.wait_for(publisher.publish(received()), timeout=30)


async def test_unacked_message_is_redelivered_after_consumer_dies(
    settings: CommonSettings,
) -> None:
    event = received()
    entered = asyncio.Event()
    release = asyncio.Event()
    seen_by_b: list[UUID] = []

    async def blocking(e: TicketEvent) -> None:
        entered.set()
        await release.wait()

    async def recording(e: TicketEvent) -> None:
        seen_by_b.append(e.event_id)

    async with connected(settings) as broker_b:
        queue = router_queue(broker_b)
        async with connected(settings) as broker_a:
            await start_consumer(broker_a, queue, blocking)
            await Publisher(broker_a.exchange, "test").publish(event)
            await asyncio.wait_for(entered.wait(), timeout=15)
            await broker_a.close()  # dies with the message unacked
        release.set()
        consumer_b = await start_consumer(broker_b, queue, recording)
        try:

            async def redelivered() -> bool:
                return seen_by_b == [event.event_id]

            await eventually(redelivered)
            assert consumer_b.deliveries[0].redelivered
        finally:
            await consumer_b.stop()


# A well-formed event of a schema version this code does not know.
FUTURE_VERSION = json.dumps({**received().model_dump(mode="json"), "schema_version": 2}).encode()


@pytest.mark.parametrize(
    "poison",
    [b'{"event_type": "received", not json', FUTURE_VERSION],
    ids=["invalid-json", "unknown-schema-version"],
)
async def test_poison_message_goes_to_dlq_and_does_not_block_queue(
    settings: CommonSettings, poison: bytes
) -> None:
    valid = received()
    handled: list[UUID] = []

    async def handler(e: TicketEvent) -> None:
        handled.append(e.event_id)

    async with connected(settings) as broker:
        queue = router_queue(broker)
        consumer = await start_consumer(broker, queue, handler)
        try:
            await broker.exchange.publish(
                aio_pika.Message(body=poison, content_type="application/json"),
                routing_key="ticket.received",
            )
            await Publisher(broker.exchange, "test").publish(valid)

            async def both_settled() -> bool:
                return handled == [valid.event_id] and await dlq_depth(broker, queue) == 1

            await eventually(both_settled)
        finally:
            await consumer.stop()
        assert await dlq_bodies(broker, queue) == [poison]


async def test_permanent_error_dead_letters_at_once(settings: CommonSettings) -> None:
    event = received()
    calls: list[UUID] = []

    async def handler(e: TicketEvent) -> None:
        calls.append(e.event_id)
        raise PermanentError("illegal transition")

    async with connected(settings) as broker:
        queue = router_queue(broker)
        consumer = await start_consumer(broker, queue, handler)
        try:
            await Publisher(broker.exchange, "test").publish(event)

            async def dead_lettered() -> bool:
                return await dlq_depth(broker, queue) == 1

            await eventually(dead_lettered)
        finally:
            await consumer.stop()
        assert calls == [event.event_id]
        [body] = await dlq_bodies(broker, queue)
        assert EVENT_ADAPTER.validate_json(body) == event


async def test_transient_failure_is_retried_once_then_handled(settings: CommonSettings) -> None:
    event = received()
    calls: list[UUID] = []
    handled: list[UUID] = []

    async def flaky(e: TicketEvent) -> None:
        calls.append(e.event_id)
        if len(calls) == 1:
            raise RuntimeError("transient")
        handled.append(e.event_id)

    async with connected(settings) as broker:
        queue = router_queue(broker)
        consumer = await start_consumer(broker, queue, flaky)
        try:
            await Publisher(broker.exchange, "test").publish(event)

            async def done() -> bool:
                return handled == [event.event_id]

            await eventually(done)
        finally:
            await consumer.stop()
        assert calls == [event.event_id, event.event_id]
        attempts = [d.headers.get(ATTEMPT_HEADER) for d in consumer.deliveries]
        assert attempts == [None, 1]
        assert [d.message_id for d in consumer.deliveries] == [str(event.event_id)] * 2
        assert await depths(broker, queue) == (0, 0)


async def test_always_failing_message_is_dead_lettered_after_bounded_retries(
    settings: CommonSettings,
) -> None:
    event = received()
    calls: list[UUID] = []

    async def broken(e: TicketEvent) -> None:
        calls.append(e.event_id)
        raise RuntimeError("always")

    expected_calls = len(settings.retry_delays) + 1
    async with connected(settings) as broker:
        queue = router_queue(broker)
        consumer = await start_consumer(broker, queue, broken)
        try:
            await Publisher(broker.exchange, "test").publish(event)

            async def all_attempts_made() -> bool:
                return len(calls) == expected_calls

            await eventually(all_attempts_made)

            # Not lost: the last failure dead-letters it.
            async def dead_lettered() -> bool:
                return await dlq_depth(broker, queue) == 1

            await eventually(dead_lettered)
        finally:
            await consumer.stop()
        # Not earlier: every retry ran before the dead-lettering, and no more.
        assert len(calls) == expected_calls
        attempts = [d.headers.get(ATTEMPT_HEADER) for d in consumer.deliveries]
        assert attempts == [None, *range(1, expected_calls)]
        [body] = await dlq_bodies(broker, queue)
        assert EVENT_ADAPTER.validate_json(body) == event


async def test_unavailable_dependency_requeues_without_spending_a_retry(
    settings: CommonSettings,
) -> None:
    event = received()
    calls: list[UUID] = []

    async def store_down_once(e: TicketEvent) -> None:
        calls.append(e.event_id)
        if len(calls) == 1:
            raise UnavailableError("store down")

    async with connected(settings) as broker:
        queue = router_queue(broker)
        consumer = await start_consumer(broker, queue, store_down_once)
        try:
            await Publisher(broker.exchange, "test").publish(event)

            async def handled() -> bool:
                return len(calls) == 2 and await depths(broker, queue) == (0, 0)

            await eventually(handled)
        finally:
            await consumer.stop()
        assert calls == [event.event_id, event.event_id]
        first, second = consumer.deliveries
        assert ATTEMPT_HEADER not in first.headers
        assert ATTEMPT_HEADER not in second.headers
        assert second.redelivered  # requeued, not republished to a retry queue


async def test_queue_depths_reports_dead_letters(settings: CommonSettings) -> None:
    async def handler(e: TicketEvent) -> None:
        return None

    async with connected(settings) as broker:
        queue = router_queue(broker)
        dlq = broker.topology.dlq_name(queue)
        assert await queue_depths(broker, queue) == {queue: 0, dlq: 0}
        consumer = await start_consumer(broker, queue, handler)
        try:
            await broker.exchange.publish(
                aio_pika.Message(body=b"\x00not an event"), routing_key="ticket.received"
            )

            async def dead_lettered() -> bool:
                return await depths(broker, queue) == (0, 1)

            await eventually(dead_lettered)
        finally:
            await consumer.stop()
        assert await queue_depths(broker, queue) == {queue: 0, dlq: 1}


async def test_message_types_a_publisher_invents_share_one_label(settings: CommonSettings) -> None:
    """The AMQP type property is whatever the publisher wrote; only known event
    types may become label values, or a client could grow the metrics forever."""
    from prometheus_client import REGISTRY

    async with connected(settings) as broker:
        queue = router_queue(broker)
        consumer = await start_consumer(broker, queue, lambda e: asyncio.sleep(0))
        labels = {"service": "test", "queue": queue, "outcome": "dead_lettered"}
        before = REGISTRY.get_sample_value(
            "hotline_messages_total", {**labels, "event_type": "other"}
        )
        try:
            for n in range(3):
                await broker.exchange.publish(
                    aio_pika.Message(body=b"{}", type=f"invented-{n}"),
                    routing_key="ticket.received",
                )

            async def all_dead() -> bool:
                return await dlq_depth(broker, queue) == 3

            await eventually(all_dead)
        finally:
            await consumer.stop()
    after = REGISTRY.get_sample_value("hotline_messages_total", {**labels, "event_type": "other"})
    assert (after or 0) - (before or 0) == 3
    names = {s.labels.get("event_type") for m in REGISTRY.collect() for s in m.samples}
    assert not any(str(name).startswith("invented-") for name in names)
