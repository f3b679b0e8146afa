"""The consumer helper: typed handlers, ack after the effect, bounded retries.

A handler is a plain async function taking the parsed event. The helper:
- acks only after the handler returned, i.e. after its effect is stored;
- rejects to the dead-letter queue at once what cannot be parsed or raises
  PermanentError, so a poison message never blocks the queue;
- when a dependency is unavailable, waits and requeues without spending a retry;
- for any other error, republishes the message to the retry queue of the next
  delay (confirmed before the original is acked) and dead-letters it once the
  delays are exhausted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from pydantic import TypeAdapter, ValidationError

from shared.errors import PermanentError, is_unavailable
from shared.messaging.broker import Broker
from shared.metrics import HANDLER_DURATION, HANDLER_ERRORS, IN_FLIGHT, MESSAGES, event_type_label

logger = logging.getLogger(__name__)

E = TypeVar("E")
Handler = Callable[[E], Awaitable[None]]
ATTEMPT_HEADER = "x-hotline-attempt"
UNAVAILABLE_BACKOFF_S = 1.0


class Consumer:
    def __init__(
        self,
        broker: Broker,
        service: str,
        queue: str,
        adapter: TypeAdapter[E],
        handler: Handler[E],
    ) -> None:
        # The settler holds the broker, the service and the queue's name.
        self._settler = Settler(broker, service, queue)
        self._adapter = adapter
        self._handler = handler
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None

    @property
    def queue_name(self) -> str:
        return self._settler.queue_name

    async def start(self) -> None:
        # Declared (with the same arguments as the topology) rather than fetched, so
        # the robust channel re-creates the consumer after a broker restart.
        broker, name = self._settler.broker, self._settler.queue_name
        self._queue = await broker.channel.declare_queue(
            name, durable=True, arguments=broker.topology.main_queue_args(name)
        )
        self._tag = await self._queue.consume(self._on_message)
        logger.info("consuming %s", name)

    async def stop(self) -> None:
        if self._queue is not None and self._tag is not None:
            await self._queue.cancel(self._tag)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        labels = (self._settler.service, self._settler.queue_name)
        IN_FLIGHT.labels(*labels).inc()
        started = time.perf_counter()
        try:
            await self._process(message)
        finally:
            IN_FLIGHT.labels(*labels).dec()
            HANDLER_DURATION.labels(*labels).observe(time.perf_counter() - started)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        try:
            event = self._adapter.validate_json(message.body)
        except ValidationError as exc:
            await self._settler.dead_letter(message, exc)
            return
        await self._settler.settle(message, lambda: self._handler(event))


class Settler:
    """What becomes of one parsed message once its handler ran: acked, dead-lettered,
    requeued or sent to a retry queue. Consumer settles every message so; a
    BatchConsumer a message of a batch it retries one by one."""

    def __init__(self, broker: Broker, service: str, queue: str) -> None:
        self.broker = broker
        self.service = service
        self.queue_name = queue

    async def settle(
        self, message: AbstractIncomingMessage, run: Callable[[], Awaitable[None]]
    ) -> None:
        event_type = event_type_label(message.type)
        try:
            await run()
        except PermanentError as exc:
            await self.dead_letter(message, exc)
        except Exception as exc:
            self._count_error(exc)
            if is_unavailable(exc):
                await self._requeue_later(message, event_type, exc)
            else:
                await self._retry(message, event_type, exc)
        else:
            await message.ack()
            self._count(event_type, "ok")

    def _count(self, event_type: str, outcome: str) -> None:
        MESSAGES.labels(self.service, self.queue_name, event_type, outcome).inc()

    def _count_error(self, exc: BaseException) -> None:
        HANDLER_ERRORS.labels(self.service, self.queue_name, type(exc).__name__).inc()

    async def dead_letter(self, message: AbstractIncomingMessage, exc: BaseException) -> None:
        event_type = event_type_label(message.type)
        self._count_error(exc)
        logger.error("dead-lettering %s message %s: %s", event_type, message.message_id, exc)
        await message.reject(requeue=False)
        self._count(event_type, "dead_lettered")

    async def _requeue_later(
        self, message: AbstractIncomingMessage, event_type: str, exc: BaseException
    ) -> None:
        logger.warning("dependency unavailable handling %s: %r; requeueing", event_type, exc)
        await asyncio.sleep(UNAVAILABLE_BACKOFF_S)
        await message.nack(requeue=True)
        self._count(event_type, "requeued")

    async def _retry(
        self, message: AbstractIncomingMessage, event_type: str, exc: BaseException
    ) -> None:
        attempt = _attempt_of(message)
        delays = self.broker.topology.retry_delays
        if attempt >= len(delays):
            logger.error("retries exhausted for %s %s", event_type, message.message_id)
            await self.dead_letter(message, exc)
            return
        logger.warning("handler failed for %s (attempt %d): %r", event_type, attempt + 1, exc)
        retry_queue = self.broker.topology.retry_queue_name(self.queue_name, delays[attempt])
        await self.broker.channel.default_exchange.publish(
            _copy(message, attempt + 1), routing_key=retry_queue
        )
        await message.ack()
        self._count(event_type, "retried")


def _attempt_of(message: AbstractIncomingMessage) -> int:
    value: Any = (message.headers or {}).get(ATTEMPT_HEADER, 0)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _copy(message: AbstractIncomingMessage, attempt: int) -> aio_pika.Message:
    headers = dict(message.headers or {})
    headers[ATTEMPT_HEADER] = attempt
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        type=message.type,
        timestamp=message.timestamp,
    )
