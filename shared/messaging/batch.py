"""A consumer that hands its handler a batch of events at a time.

For writers whose store is faster in bulk: stats archives events with one
insert_many, the router stores a batch of new tickets in one, the notifier a
batch of dispatches' timers and deliveries. A batch can only be as large as the
broker's window of unacked deliveries, so the consumer opens its channel's
window to two batches (one being stored, the next arriving) and flushes as soon
as a batch is full, or max_wait after its first message arrived. Batches are
handled one at a time, in the order of delivery: the handler sees a queue's
events in the order a one-message consumer would, and two batches never
overlap. (While one is being stored the next fills up: under load batches grow
by themselves, alone a message waits only max_wait.)

Each message is parsed on its own: a poison message goes to the dead-letter
queue alone. The batch is acked only after the handler stored it. If a
dependency is down, the batch is requeued after a pause; if the handler fails
otherwise, the batch is retried message by message, each settled as the
one-message Consumer settles it (shared.messaging.consumer.Settler: a
PermanentError dead-lettered at once, another error retried through the retry
queues and dead-lettered when they are exhausted). The handler must be
idempotent: a batch may be handled again, whole or in part.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Generic, TypeVar

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from pydantic import TypeAdapter, ValidationError

from shared.errors import is_unavailable
from shared.messaging.broker import Broker
from shared.messaging.consumer import Settler
from shared.metrics import HANDLER_DURATION, HANDLER_ERRORS, MESSAGES, event_type_label

logger = logging.getLogger(__name__)
E = TypeVar("E")
BatchHandler = Callable[[list[E]], Awaitable[None]]


class BatchConsumer(Generic[E]):
    def __init__(
        self,
        broker: Broker,
        service: str,
        queue: str,
        adapter: TypeAdapter[E],
        handler: BatchHandler[E],
        max_batch: int = 500,
        max_wait_s: float = 0.05,
    ) -> None:
        self._broker = broker
        self._service = service
        self.queue_name = queue
        self._adapter = adapter
        self._handler = handler
        self._max_batch = max_batch
        self._max_wait = max_wait_s
        self._settler = Settler(broker, service, queue)
        self._pending: list[tuple[AbstractIncomingMessage, E]] = []
        self._has_pending = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        # A stored batch is acked with one multiple-ack (an ack is a socket write
        # and a drain each) while every delivery on the channel came here: its
        # tags run 1, 2, 3, ... without a gap, so each delivery up to the batch's
        # last is in the batch or settled. Not while a rejection is on its way:
        # the broker must see it before an ack that would cover its tag.
        self._next_tag = 1
        self._sole_consumer = True
        self._rejecting = 0

    async def start(self) -> None:
        topology = self._broker.topology
        channel = self._broker.channel
        # With the service's usual prefetch (tens) every batch would be that small
        # and wait max_wait for nothing. The window applies to consumers started
        # after it on this channel and is restored after a reconnect.
        await channel.set_qos(prefetch_count=2 * self._max_batch)
        self._queue = await channel.declare_queue(
            self.queue_name, durable=True, arguments=topology.main_queue_args(self.queue_name)
        )
        self._flusher = asyncio.create_task(self._flush_forever())
        self._tag = await self._queue.consume(self._on_message)

    async def stop(self) -> None:
        if self._queue is not None and self._tag is not None:
            await self._queue.cancel(self._tag)
        if self._flusher is not None:
            self._flusher.cancel()
        await self.flush()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._follow(message.delivery_tag)
        try:
            event = self._adapter.validate_json(message.body)
        except ValidationError as exc:
            HANDLER_ERRORS.labels(self._service, self.queue_name, "ValidationError").inc()
            logger.error("dead-lettering unparsable message %s: %s", message.message_id, exc)
            self._rejecting += 1
            try:
                await message.reject(requeue=False)
            finally:
                self._rejecting -= 1
            self._count(message, "dead_lettered")
            return
        self._pending.append((message, event))
        if len(self._pending) >= self._max_batch:
            await self.flush()
        else:
            self._has_pending.set()

    async def _flush_forever(self) -> None:
        """Flush at most max_wait after a message arrived. A message arriving while
        a flush runs sets the event again, so it is never left behind."""
        while True:
            await self._has_pending.wait()
            await asyncio.sleep(self._max_wait)
            self._has_pending.clear()
            try:
                await self.flush()
            except Exception:  # the broker went away mid-ack: redelivered later
                logger.exception("flush failed")

    async def flush(self) -> None:
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                await self._handler([event for _, event in batch])
            except Exception as exc:
                if is_unavailable(exc):
                    await self._requeue(batch, exc)
                else:
                    await self._one_by_one(batch, exc)
                return
            finally:
                HANDLER_DURATION.labels(self._service, self.queue_name).observe(
                    loop.time() - started
                )
            await self._ack([message for message, _ in batch])

    def _follow(self, tag: int | None) -> None:
        """Tags start at 1 on each (re)opened channel; a gap means another consumer
        (or a basic.get) takes deliveries on the same channel."""
        if tag == 1:
            self._sole_consumer = True
        elif tag != self._next_tag:
            self._sole_consumer = False
        self._next_tag = (tag or 0) + 1

    async def _ack(self, messages: list[AbstractIncomingMessage]) -> None:
        if self._sole_consumer and not self._rejecting:
            last = max(messages, key=lambda message: message.delivery_tag or 0)
            await last.ack(multiple=True)
        else:
            for message in messages:
                await message.ack()
        for message in messages:
            self._count(message, "ok")

    async def _one_by_one(
        self, batch: list[tuple[AbstractIncomingMessage, E]], exc: BaseException
    ) -> None:
        """A batch failed for a reason other than an outage: handle each message
        alone, so that only the one that cannot be handled is retried or
        dead-lettered and the others are stored."""
        HANDLER_ERRORS.labels(self._service, self.queue_name, type(exc).__name__).inc()
        logger.warning("batch of %d failed (%r); handling one by one", len(batch), exc)
        for message, event in batch:
            await self._settler.settle(message, partial(self._handler, [event]))

    async def _requeue(
        self, batch: list[tuple[AbstractIncomingMessage, E]], exc: BaseException
    ) -> None:
        HANDLER_ERRORS.labels(self._service, self.queue_name, type(exc).__name__).inc()
        logger.warning("batch of %d failed (%r); requeueing", len(batch), exc)
        if is_unavailable(exc):
            await asyncio.sleep(1.0)
        for message, _ in batch:
            await message.nack(requeue=True)
            self._count(message, "requeued")

    def _count(self, message: AbstractIncomingMessage, outcome: str) -> None:
        label = event_type_label(message.type)
        MESSAGES.labels(self._service, self.queue_name, label, outcome).inc()
