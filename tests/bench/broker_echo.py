"""The broker's own ceiling on this machine: a minimal aio-pika loop publishing
persistent messages with confirms (a window of them in flight) to a durable
queue, and a consumer acking each. The pipeline's figure is judged against it."""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

# About the size of a ticket.received event.
BODY = ("{" + '"x": "' + "工单" * 300 + '"}').encode()


async def echo_rate(amqp_url: str, duration_s: float = 10.0, window: int = 64) -> float:
    """Messages per second that went through publish → confirm → deliver → ack."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        publishing = await connection.channel(publisher_confirms=True)
        consuming = await connection.channel()
        await consuming.set_qos(prefetch_count=window * 2)
        name = f"bench.echo.{uuid.uuid4().hex[:8]}"
        queue = await consuming.declare_queue(name, durable=True)
        received = 0
        all_in = asyncio.Event()
        published = -1

        async def on_message(message: AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received == published:
                all_in.set()

        await queue.consume(on_message)
        started = time.monotonic()
        stop_at = started + duration_s
        sent = 0

        async def publisher() -> None:
            nonlocal sent
            while time.monotonic() < stop_at:
                message = aio_pika.Message(BODY, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                await publishing.default_exchange.publish(message, routing_key=name)
                sent += 1

        await asyncio.gather(*(publisher() for _ in range(window)))
        published = sent
        if received < published:
            await asyncio.wait_for(all_in.wait(), timeout=60)
        elapsed = time.monotonic() - started
        await consuming.queue_delete(name)
    return received / elapsed
