"""What goes wrong during the chaos run, one fault after another.

Poison messages are published to the ticket exchange as any publisher would,
each under a routing key its consumers bind: unparsable bytes, JSON that is
not an event, an event of a schema version nobody knows. Each must end in the
dead-letter queue of every queue that received it, and nowhere else.
Duplicates are events already published, published again byte for byte with
the same event_id: they must change nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aio_pika

from shared.messaging.topology import QUEUES, Topology
from tests.e2e.cluster import Cluster
from tests.observer import Observer
from tests.servers import OwnServers

logger = logging.getLogger(__name__)
CLOCK_JUMP_S = 86_400.0  # a day: urging, short-limit warnings and overdue notices fall due


def _event_shaped(event_type: str, schema_version: int) -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "schema_version": schema_version,
            "ticket_id": "POISON-1",
            "occurred_at": "2026-11-26T10:00:00+00:00",
            "actor": {"kind": "system", "id": "chaos"},
            "payload": {},
        }
    ).encode()


# message_id -> (routing key, body)
POISON: dict[str, tuple[str, bytes]] = {
    "poison-not-json": ("ticket.received", b'{"event_type": "received", "ticket_id": '),
    "poison-not-utf8": ("ticket.feedback", b"\xff\xfe\x00bad\x80"),
    "poison-schema": ("ticket.dispatched", _event_shaped("dispatched", 1)),
    "poison-version": ("ticket.accepted", _event_shaped("accepted", 99)),
}


def expected_dead_letters(topology: Topology) -> dict[str, set[str]]:
    """Per main queue: the poison message ids its dead-letter queue must hold."""
    expected: dict[str, set[str]] = {}
    for spec in QUEUES:
        queue = topology.queue_name(spec)
        expected[queue] = {
            mid for mid, (key, _) in POISON.items() if _binds(spec.binding_keys, key)
        }
    return expected


def _binds(binding_keys: tuple[str, ...], routing_key: str) -> bool:
    return any(b == routing_key or b == "ticket.#" for b in binding_keys)


async def _publish(
    url: str, exchange: str, messages: list[aio_pika.Message], keys: list[str]
) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange)
        for message, key in zip(messages, keys, strict=True):
            await target.publish(message, routing_key=key)


async def inject_poison(url: str, exchange: str) -> None:
    messages = [
        aio_pika.Message(body, message_id=mid, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        for mid, (_, body) in POISON.items()
    ]
    await _publish(url, exchange, messages, [key for key, _ in POISON.values()])


async def inject_duplicates(url: str, exchange: str, observer: Observer, per_type: int) -> int:
    """Publish again the first events seen of each type; returns how many."""
    chosen = []
    for event_type in ("received", "dispatched", "urged", "warning", "overdue"):
        chosen += observer.of_type(event_type)[:per_type]
    messages = [
        aio_pika.Message(
            seen.body,
            message_id=seen.message_id,
            type=seen.event_type,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={"schema_version": 1},
        )
        for seen in chosen
    ]
    await _publish(url, exchange, messages, [f"ticket.{seen.event_type}" for seen in chosen])
    return len(messages)


@dataclass
class Faults:
    servers: OwnServers
    cluster: Cluster
    observer: Observer
    exchange: str
    duplicates_per_type: int = 10
    done: list[str] = field(default_factory=list)
    duplicates: int = 0

    def schedule(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        return [
            ("poison", lambda: inject_poison(self.servers.broker.url, self.exchange)),
            ("restart rabbitmq", self.servers.broker.restart),
            ("kill intake", lambda: self.kill("intake")),
            ("kill router", lambda: self.kill("router")),
            ("clock +1 day", self.jump),
            ("kill notifier", lambda: self.kill("notifier")),
            ("kill stats", lambda: self.kill("stats")),
            ("restart store", self.servers.store.restart),
            ("kill -9 rabbitmq", self.servers.broker.kill_and_start),
            ("kill -9 store", self.servers.store.kill_and_start),
            ("duplicates", self.duplicate),
        ]

    async def kill(self, service: str) -> None:
        await self.cluster.kill(service)
        await self.cluster.start(service)

    async def jump(self) -> None:
        self.cluster.set_clock_offset(CLOCK_JUMP_S)

    async def duplicate(self) -> None:
        self.duplicates = await inject_duplicates(
            self.servers.broker.url, self.exchange, self.observer, self.duplicates_per_type
        )

    async def run(self, duration_s: float) -> None:
        """The faults one after another, spread over duration_s."""
        steps = self.schedule()
        gap = duration_s / (len(steps) + 1)
        for name, action in steps:
            await asyncio.sleep(gap)
            logger.info("chaos: %s", name)
            await action()
            self.done.append(name)
