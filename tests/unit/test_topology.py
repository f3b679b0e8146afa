"""The AMQP topology (shared/messaging/topology.py): names, queue arguments and
bindings, checked without a broker; declare_topology runs against a recording fake."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from aio_pika.abc import AbstractChannel

from shared.events import EVENT_TYPES, TicketFeedback, TicketLinked, TicketReceived
from shared.messaging.topology import QUEUES, QueueSpec, Topology, declare_topology
from shared.settings import CommonSettings

NS = "hl"
DELAYS = (0.5, 5.0, 30.0)


@pytest.fixture
def topology() -> Topology:
    return Topology(NS, "classic", DELAYS)


def topic_matches(pattern: str, key: str) -> bool:
    """RabbitMQ topic matching: '*' is exactly one word, '#' zero or more."""
    return _words_match(pattern.split("."), key.split("."))


def _words_match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_words_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return head in ("*", words[0]) and _words_match(rest, words[1:])


def test_topic_matcher_itself() -> None:
    assert topic_matches("ticket.#", "ticket.received")
    assert topic_matches("ticket.#", "ticket.a.b")
    assert topic_matches("ticket.*", "ticket.received")
    assert not topic_matches("ticket.*", "ticket.a.b")
    assert not topic_matches("ticket.received", "ticket.dispatched")
    assert not topic_matches("ticket.#", "order.received")
    assert topic_matches("ticket.#", "ticket")


def test_exchange_names_derive_from_the_namespace(topology: Topology) -> None:
    assert topology.exchange == "hl.tickets"
    assert topology.dead_letter_exchange == "hl.dlx"


def test_queue_names(topology: Topology) -> None:
    assert topology.queue_name(topology.spec("router")) == "hl.router.events"
    assert topology.queue_name(topology.spec("notifier")) == "hl.notifier.events"
    assert topology.queue_name(topology.spec("stats", "events")) == "hl.stats.events"
    assert topology.all_queue_names() == [
        "hl.router.events",
        "hl.notifier.events",
        "hl.stats.events",
        "hl.intake.status",
    ]


def test_two_namespaces_share_no_name() -> None:
    a, b = Topology("a", "classic", DELAYS), Topology("b", "classic", DELAYS)
    names_a = {a.exchange, a.dead_letter_exchange, *a.all_queue_names()}
    names_b = {b.exchange, b.dead_letter_exchange, *b.all_queue_names()}
    assert not names_a & names_b


def test_dead_letter_and_retry_queue_names(topology: Topology) -> None:
    q = "hl.router.events"
    assert topology.dlq_name(q) == "hl.router.events.dlq"
    assert topology.retry_queue_name(q, 5.0) == "hl.router.events.retry.5s"
    assert topology.retry_queue_name(q, 0.5) == "hl.router.events.retry.0.5s"
    assert topology.retry_queue_name(q, 600) == "hl.router.events.retry.600s"


def test_retry_queue_names_are_distinct_per_delay(topology: Topology) -> None:
    q = "hl.stats.events"
    names = {topology.retry_queue_name(q, d) for d in DELAYS}
    assert len(names) == len(DELAYS)
    assert topology.dlq_name(q) not in names
    assert q not in names


def test_main_queue_dead_letters_to_the_dlx_with_its_own_name(topology: Topology) -> None:
    q = "hl.notifier.events"
    assert topology.main_queue_args(q) == {
        "x-queue-type": "classic",
        "x-dead-letter-exchange": "hl.dlx",
        "x-dead-letter-routing-key": q,
    }


@pytest.mark.parametrize(("delay", "ttl"), [(0.2, 200), (0.5, 500), (5.0, 5000), (600.0, 600000)])
def test_retry_queue_holds_for_the_delay_then_returns_to_the_main_queue(
    topology: Topology, delay: float, ttl: int
) -> None:
    q = "hl.router.events"
    args = topology.retry_queue_args(q, delay)
    assert args == {
        "x-queue-type": "classic",
        "x-message-ttl": ttl,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": q,
    }
    assert isinstance(args["x-message-ttl"], int)


def test_retry_ttl_is_the_delay_rounded_to_the_millisecond(topology: Topology) -> None:
    assert topology.retry_queue_args("q", 2.01)["x-message-ttl"] == 2010
    assert topology.retry_queue_args("q", 4.35)["x-message-ttl"] == 4350


def test_quorum_queue_type_reaches_every_queue_argument_set() -> None:
    topology = Topology(NS, "quorum", DELAYS)
    q = topology.all_queue_names()[0]
    assert topology.main_queue_args(q)["x-queue-type"] == "quorum"
    for delay in DELAYS:
        assert topology.retry_queue_args(q, delay)["x-queue-type"] == "quorum"


def test_from_settings_takes_namespace_type_and_delays() -> None:
    settings = CommonSettings(amqp_namespace="t123", queue_type="quorum", retry_delays=[0.2, 0.4])
    topology = Topology.from_settings(settings)
    assert topology == Topology("t123", "quorum", (0.2, 0.4))
    assert topology.exchange == "t123.tickets"


def test_every_service_queue_has_a_binding() -> None:
    assert {spec.service for spec in QUEUES} == {"router", "notifier", "stats", "intake"}
    for spec in QUEUES:
        assert spec.binding_keys, f"{spec.service}.{spec.purpose} would receive nothing"
        for key in spec.binding_keys:
            assert key.startswith("ticket."), key


def test_queue_specs_are_unique() -> None:
    pairs = [(spec.service, spec.purpose) for spec in QUEUES]
    assert len(set(pairs)) == len(pairs)


def test_stats_receives_every_event_type(topology: Topology) -> None:
    keys = topology.spec("stats").binding_keys
    assert "ticket.#" in keys
    for event_type in EVENT_TYPES:
        assert any(topic_matches(k, f"ticket.{event_type}") for k in keys), event_type


@pytest.mark.parametrize(
    ("service", "receives", "ignores"),
    [
        ("router", "ticket.received", "ticket.dispatched"),
        ("notifier", "ticket.dispatched", "ticket.received"),
    ],
)
def test_service_bindings_select_their_events(
    topology: Topology, service: str, receives: str, ignores: str
) -> None:
    keys = topology.spec(service).binding_keys
    assert any(topic_matches(k, receives) for k in keys)
    assert not any(topic_matches(k, ignores) for k in keys)


def test_every_event_type_reaches_some_consumer() -> None:
    for event_type in EVENT_TYPES:
        key = f"ticket.{event_type}"
        assert any(topic_matches(b, key) for spec in QUEUES for b in spec.binding_keys), key


@pytest.mark.parametrize(("service", "purpose"), [("billing", "events"), ("router", "commands")])
def test_spec_of_an_unknown_queue_raises_key_error(
    topology: Topology, service: str, purpose: str
) -> None:
    with pytest.raises(KeyError, match=f"{service}.{purpose}"):
        topology.spec(service, purpose)


def test_spec_returns_the_queue_spec() -> None:
    spec = Topology(NS, "classic", ()).spec("router")
    assert spec == QueueSpec("router", "events", (TicketReceived, TicketFeedback, TicketLinked))
    assert spec.binding_keys == ("ticket.received", "ticket.feedback", "ticket.linked")


# --- declare_topology against a recording fake channel ---------------------------


@dataclass
class FakeExchange:
    name: str
    kind: str


@dataclass
class FakeQueue:
    name: str
    arguments: dict[str, Any]
    bindings: list[tuple[str, str]] = field(default_factory=list)

    async def bind(self, exchange: FakeExchange, routing_key: str) -> None:
        self.bindings.append((exchange.name, routing_key))


@dataclass
class FakeChannel:
    exchanges: dict[str, FakeExchange] = field(default_factory=dict)
    queues: dict[str, FakeQueue] = field(default_factory=dict)
    durable: list[bool] = field(default_factory=list)

    async def declare_exchange(self, name: str, kind: Any, durable: bool = False) -> FakeExchange:
        self.durable.append(durable)
        self.exchanges[name] = FakeExchange(name, str(kind.value))
        return self.exchanges[name]

    async def declare_queue(
        self, name: str, durable: bool = False, arguments: dict[str, Any] | None = None
    ) -> FakeQueue:
        self.durable.append(durable)
        self.queues[name] = FakeQueue(name, dict(arguments or {}))
        return self.queues[name]


async def test_declare_topology_declares_every_queue_with_its_partners(
    topology: Topology,
) -> None:
    channel = FakeChannel()
    exchange = await declare_topology(cast(AbstractChannel, channel), topology)

    assert cast(FakeExchange, exchange).name == "hl.tickets"
    assert channel.exchanges["hl.tickets"].kind == "topic"
    assert channel.exchanges["hl.dlx"].kind == "direct"
    assert all(channel.durable), "every exchange and queue must be durable"
    expected = set()
    for spec in QUEUES:
        q = topology.queue_name(spec)
        expected |= {q, f"{q}.dlq", *(topology.retry_queue_name(q, d) for d in DELAYS)}
        main = channel.queues[q]
        assert main.arguments == topology.main_queue_args(q)
        assert sorted(main.bindings) == sorted(("hl.tickets", k) for k in spec.binding_keys)
        dlq = channel.queues[f"{q}.dlq"]
        assert dlq.bindings == [("hl.dlx", q)]
        assert dlq.arguments == {"x-queue-type": "classic"}
        for delay in DELAYS:
            retry = channel.queues[topology.retry_queue_name(q, delay)]
            assert retry.arguments == topology.retry_queue_args(q, delay)
            assert retry.bindings == [], "a retry queue is fed by the default exchange"
    assert set(channel.queues) == expected
