"""Watching a namespace's ticket events from the outside: a queue of our own
bound to the ticket exchange records every event that was published, when it
arrived, and its event_id. The bench times dispatches with it; the chaos run
counts dispatches and timer events by event_id with it.

A durable queue with acks (chaos) keeps what arrives while the broker restarts;
the bench's lighter auto-delete queue without acks costs less CPU.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection


@dataclass(frozen=True)
class Seen:
    event_type: str
    ticket_id: str
    event_id: str
    at: float  # time.monotonic() on arrival
    body: bytes
    message_id: str | None


@dataclass
class Observer:
    amqp_url: str
    exchange: str
    binding_keys: tuple[str, ...] = ("ticket.#",)
    durable: bool = False
    events: list[Seen] = field(default_factory=list)
    unparsable: list[str | None] = field(default_factory=list)  # message ids
    first: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    _connection: AbstractRobustConnection | None = None
    _queue_name: str = ""
    _barriers: dict[str, asyncio.Event] = field(default_factory=dict)
    _exchange: AbstractExchange | None = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.amqp_url, reconnect_interval=0.5)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=500)
        exchange = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        name = f"observer.{uuid.uuid4().hex[:8]}"
        queue = await channel.declare_queue(
            name, durable=self.durable, auto_delete=not self.durable
        )
        for key in (*self.binding_keys, "probe.#"):
            await queue.bind(exchange, routing_key=key)
        self._exchange = exchange
        await queue.consume(self._on_message, no_ack=not self.durable)
        self._queue_name = name

    async def stop(self) -> None:
        if self._connection is not None:
            if self.durable:
                channel = await self._connection.channel()
                await channel.queue_delete(self._queue_name)
            await self._connection.close()

    async def barrier(self) -> None:
        """Returns once everything published to the exchange before the call was
        seen: a message of our own, on a routing key only this queue binds,
        arrives after whatever the queue held (a confirmed publish is in the
        queue before its publisher is told so)."""
        assert self._exchange is not None, "start() first"
        marker = uuid.uuid4().hex
        arrived = self._barriers[marker] = asyncio.Event()
        await self._exchange.publish(aio_pika.Message(b"", message_id=marker), "probe.barrier")
        await asyncio.wait_for(arrived.wait(), timeout=30)
        del self._barriers[marker]

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if message.routing_key == "probe.barrier":
            if message.message_id in self._barriers:
                self._barriers[message.message_id].set()
            if self.durable:
                await message.ack()
            return
        try:
            data: dict[str, Any] = json.loads(message.body)
            seen = Seen(
                str(data["event_type"]),
                str(data["ticket_id"]),
                str(data["event_id"]),
                time.monotonic(),
                message.body,
                message.message_id,
            )
        except (ValueError, KeyError, TypeError):
            self.unparsable.append(message.message_id)
        else:
            self.events.append(seen)
            self.first[seen.event_type].setdefault(seen.ticket_id, seen.at)
        if self.durable:
            await message.ack()

    def event_ids(self, event_type: str) -> dict[str, set[str]]:
        """Distinct event ids of one type, per ticket."""
        result: dict[str, set[str]] = defaultdict(set)
        for seen in self.events:
            if seen.event_type == event_type:
                result[seen.ticket_id].add(seen.event_id)
        return result

    def of_type(self, event_type: str) -> list[Seen]:
        return [seen for seen in self.events if seen.event_type == event_type]
