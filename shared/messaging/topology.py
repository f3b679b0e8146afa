"""The AMQP topology, declared whole by every service at start.

Every service declares every queue, not only its own: a publisher that starts
before a consumer must not publish into an exchange with no queue bound, or the
message would be dropped. Declarations are idempotent.

Per consumer queue ``Q``:
- ``Q`` is bound to the ticket exchange with the queue's routing keys and
  dead-letters to the dead-letter exchange with routing key ``Q``;
- ``Q.dlq`` receives what ``Q`` dead-letters (poison messages, exhausted retries);
- ``Q.retry.<N>s`` holds a message for N seconds, then dead-letters it back to
  ``Q`` through the default exchange. One queue per delay keeps expiry in FIFO
  order, which per-message TTLs in one queue would not.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Union

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange
from pydantic import Field, TypeAdapter

from shared.events import (
    EVENT_ADAPTER,
    Envelope,
    TicketAccepted,
    TicketClosed,
    TicketDispatched,
    TicketExtended,
    TicketExtensionRefused,
    TicketExtensionRequested,
    TicketFeedback,
    TicketLinked,
    TicketReceived,
    TicketReopened,
    TicketResolved,
    TicketReturned,
    TicketUnroutable,
)
from shared.settings import CommonSettings

ROUTING_PREFIX = "ticket"


def routing_key_of(event: type[Envelope]) -> str:
    """The routing key every event of this type is published with
    (Envelope.routing_key)."""
    return f"{ROUTING_PREFIX}.{event.model_fields['event_type'].default}"


@dataclass(frozen=True)
class QueueSpec:
    """A consumer queue and the event types it takes. Its binding keys and the
    union its consumer parses derive from these; `events` None takes every
    type, now and to come."""

    service: str
    purpose: str
    events: tuple[type[Envelope], ...] | None

    @property
    def binding_keys(self) -> tuple[str, ...]:
        if self.events is None:
            return (f"{ROUTING_PREFIX}.#",)
        return tuple(routing_key_of(event) for event in self.events)

    def adapter(self) -> TypeAdapter[Any]:
        """Parses what the queue takes, and nothing else."""
        return _adapter(self.events)


@cache
def _adapter(events: tuple[type[Envelope], ...] | None) -> TypeAdapter[Any]:
    if events is None:
        return EVENT_ADAPTER
    if len(events) == 1:
        return TypeAdapter(events[0])
    union: Any = Union[events]  # noqa: UP007 (a union built from a tuple at run time)
    return TypeAdapter(Annotated[union, Field(discriminator="event_type")])


# The steps that start, move or stop a ticket's clock are the steps a citizen
# sees of its progress: the notifier and intake's status view take these.
PROGRESS_EVENTS: tuple[type[Envelope], ...] = (
    TicketDispatched,
    TicketAccepted,
    TicketReturned,
    TicketUnroutable,
    TicketExtended,
    TicketResolved,
    TicketClosed,
    TicketReopened,
)
# The queues of the system and the event types each takes. They are listed here,
# in shared, rather than assembled from the services' handler tables, because
# every service declares every queue at start and must not import the other
# services' code (their handlers bring engines, models and stores) to do so. Each
# service's handler table (shared.messaging.subscriptions) is checked against its
# queue's line here when it is built, so the two cannot drift apart.
QUEUES: tuple[QueueSpec, ...] = (
    # A linked repeat reopens a closed ticket where the centre's policy says so
    # (LinkedPayload.reopen); the router acknowledges the other links unchanged.
    QueueSpec("router", "events", (TicketReceived, TicketFeedback, TicketLinked)),
    # The progress steps, and the extension requests and refusals: the hotline
    # centre is told of a request, and its notice is current until staff decide.
    QueueSpec(
        "notifier", "events", (*PROGRESS_EVENTS, TicketExtensionRequested, TicketExtensionRefused)
    ),
    QueueSpec("stats", "events", None),
    # What a citizen sees of a ticket's progress (lookup, Open311 GET requests).
    QueueSpec("intake", "status", PROGRESS_EVENTS),
)


def queue_spec(service: str, purpose: str = "events") -> QueueSpec:
    for spec in QUEUES:
        if spec.service == service and spec.purpose == purpose:
            return spec
    raise KeyError(f"no queue {service}.{purpose} in the topology")


def _delay_label(delay: float) -> str:
    return f"{delay:g}s"


@dataclass(frozen=True)
class Topology:
    namespace: str
    queue_type: str
    retry_delays: tuple[float, ...]

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> Topology:
        return cls(settings.amqp_namespace, settings.queue_type, tuple(settings.retry_delays))

    @property
    def exchange(self) -> str:
        return f"{self.namespace}.tickets"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.namespace}.dlx"

    def queue_name(self, spec: QueueSpec) -> str:
        return f"{self.namespace}.{spec.service}.{spec.purpose}"

    def spec(self, service: str, purpose: str = "events") -> QueueSpec:
        return queue_spec(service, purpose)

    def dlq_name(self, queue: str) -> str:
        return f"{queue}.dlq"

    def retry_queue_name(self, queue: str, delay: float) -> str:
        return f"{queue}.retry.{_delay_label(delay)}"

    def _base_args(self) -> dict[str, Any]:
        return {"x-queue-type": self.queue_type}

    def main_queue_args(self, queue: str) -> dict[str, Any]:
        return {
            **self._base_args(),
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": queue,
        }

    def retry_queue_args(self, queue: str, delay: float) -> dict[str, Any]:
        return {
            **self._base_args(),
            "x-message-ttl": round(delay * 1000),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": queue,
        }

    def all_queue_names(self) -> list[str]:
        return [self.queue_name(spec) for spec in QUEUES]


async def declare_exchange(channel: AbstractChannel, topology: Topology) -> AbstractExchange:
    return await channel.declare_exchange(
        topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )


async def declare_topology(channel: AbstractChannel, topology: Topology) -> AbstractExchange:
    """Declare exchanges and every queue of every service; return the ticket exchange."""
    exchange = await declare_exchange(channel, topology)
    dlx = await channel.declare_exchange(
        topology.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    for spec in QUEUES:
        name = topology.queue_name(spec)
        queue = await channel.declare_queue(
            name, durable=True, arguments=topology.main_queue_args(name)
        )
        for key in spec.binding_keys:
            await queue.bind(exchange, routing_key=key)
        dlq = await channel.declare_queue(
            topology.dlq_name(name), durable=True, arguments=topology._base_args()
        )
        await dlq.bind(dlx, routing_key=name)
        for delay in topology.retry_delays:
            await channel.declare_queue(
                topology.retry_queue_name(name, delay),
                durable=True,
                arguments=topology.retry_queue_args(name, delay),
            )
    return exchange
