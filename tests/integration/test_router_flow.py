"""The router's consumer against the real broker and store.

TicketReceived events are published to the namespace's exchange; the router's
Consumer and handler run as services/router/main.py wires them; what the router
publishes is read back from the notifier queue (ticket.dispatched) and the stats
queue (every event) over a connection of the test's own.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel
from pydantic import TypeAdapter

from services.router.cli import draft_from_json
from services.router.engine import RuleEngine
from services.router.handlers import EngineHolder, decision_event, handle_received
from services.router.repository import TicketRepository
from services.router.rules import load_rules, parse_rules
from shared.bootstrap import Infra, connect
from shared.directory import Directory, load_directory
from shared.domain import Actor, ActorKind, TicketDraft
from shared.events import (
    ReceivedPayload,
    TicketDispatched,
    TicketEvent,
    TicketReceived,
    TicketUnroutable,
    parse_event,
    utcnow,
)
from shared.messaging.consumer import Consumer
from shared.messaging.publisher import Publisher
from shared.settings import DATA_DIR, CommonSettings
from shared.workcalendar import WorkCalendar
from tests.support import eventually

pytestmark = pytest.mark.integration

SERVICE = "router"
INTAKE = Actor(kind=ActorKind.CITIZEN, id="channel:phone")
NARROW_RULES = """
version: 1
time_limits:
  urgent: {hours: 2}
  general: {working_days: 5}
  consultation: {working_days: 1}
response_limits:
  default: {working_hours: 2}
  urgent: {hours: 0.5}
rules:
  - id: unicorns
    when:
      keywords:
        any: [独角兽]
    then:
      department: city.platform
"""


def samples() -> list[dict[str, Any]]:
    lines = (DATA_DIR / "sample_requests.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line]


class Probe:
    def __init__(self, channel: AbstractChannel, infra: Infra) -> None:
        self._channel = channel
        self._topology = infra.broker.topology

    def _name(self, service: str) -> str:
        return self._topology.queue_name(self._topology.spec(service))

    async def count(self, queue: str) -> int:
        declared = await self._channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)

    async def count_of(self, service: str) -> int:
        return await self.count(self._name(service))

    async def dead_letters(self, service: str) -> int:
        return await self.count(self._topology.dlq_name(self._name(service)))

    async def take(self, service: str) -> list[TicketEvent]:
        queue = await self._channel.get_queue(self._name(service), ensure=False)
        events: list[TicketEvent] = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            events.append(parse_event(message.body))
        return events


@dataclass
class RouterHarness:
    infra: Infra
    directory: Directory
    repo: TicketRepository
    engines: EngineHolder
    publisher: Publisher
    probe: Probe

    async def collect(self, service: str, count: int) -> list[TicketEvent]:
        """Wait until ``count`` events were read from the service's queue."""
        got: list[TicketEvent] = []

        async def enough() -> bool:
            got.extend(await self.probe.take(service))
            return len(got) >= count

        await eventually(enough)
        return got

    async def tickets_in_store(self, ticket_id: str) -> int:
        return await self.infra.db["tickets"].count_documents({"_id": ticket_id})

    def draft(self, raw: dict[str, Any]) -> TicketDraft:
        return draft_from_json(raw, self.directory)


def received(ticket_id: str, draft: TicketDraft) -> TicketReceived:
    return TicketReceived(ticket_id=ticket_id, actor=INTAKE, payload=ReceivedPayload(ticket=draft))


@pytest.fixture
async def router(settings: CommonSettings) -> AsyncIterator[RouterHarness]:
    """The router's consumer, wired as services/router/main.py wires it."""
    directory = load_directory(settings.districts_file, settings.directory_file)
    engines = EngineHolder(RuleEngine(load_rules(), directory, WorkCalendar()))
    infra = await connect(settings, SERVICE)
    connection = None
    consumer = None
    try:
        repo = TicketRepository(infra.db)
        await repo.ensure_indexes()
        publisher = Publisher(infra.broker.exchange, SERVICE)
        queue = infra.broker.topology.queue_name(infra.broker.topology.spec(SERVICE))
        handler = partial(
            handle_received, repo=repo, engines=engines, publisher=publisher, clock=utcnow
        )
        consumer = Consumer(infra.broker, SERVICE, queue, TypeAdapter(TicketReceived), handler)
        await consumer.start()
        connection = await aio_pika.connect(settings.amqp_url)
        probe = Probe(await connection.channel(), infra)
        yield RouterHarness(infra, directory, repo, engines, publisher, probe)
    finally:
        if consumer is not None:
            await consumer.stop()
        if connection is not None:
            await connection.close()
        await infra.close()


async def test_samples_are_dispatched_to_their_expected_departments(
    router: RouterHarness,
) -> None:
    routable = [s for s in samples() if s["expected_department"] != "on_spot"]
    started = utcnow()
    expected: dict[str, str] = {}
    for n, raw in enumerate(routable):
        ticket_id = f"LC{n:06d}"
        expected[ticket_id] = raw["expected_department"]
        await router.publisher.publish(received(ticket_id, router.draft(raw)))

    events = await router.collect("notifier", len(expected))
    dispatched = [e for e in events if isinstance(e, TicketDispatched)]
    assert len(dispatched) == len(events) == len(expected)
    assert {e.ticket_id: e.payload.department for e in dispatched} == expected
    for event in dispatched:
        assert event.payload.deadline > started
        assert event.payload.response_deadline > started
        assert event.payload.round == 1
        assert event.actor.id == "router"
    assert await router.probe.dead_letters("router") == 0


async def test_sample_dispatch_carries_the_request(router: RouterHarness) -> None:
    raw = samples()[0]  # the Guan County water-pipe case of the brief
    draft = router.draft(raw)
    await router.publisher.publish(received("LC-S001", draft))
    [event] = await router.collect("notifier", 1)
    assert isinstance(event, TicketDispatched)
    assert event.payload.department == raw["expected_department"] == "guanxian.water"
    assert event.payload.ticket == draft
    assert event.payload.dims.district == "guanxian"
    stored = await router.repo.get("LC-S001")
    assert stored is not None
    assert stored.status == "dispatched"
    assert stored.department == "guanxian.water"
    assert [e.event_id for e in stored.outbox] == [event.event_id]


async def test_redelivered_received_event_dispatches_once(router: RouterHarness) -> None:
    event = received("LC-TWICE", router.draft(samples()[1]))
    await router.publisher.publish(event)
    await router.publisher.publish(event)  # the broker redelivers: same event_id

    # Each delivery republishes the stored outbox (by design), so wait for two.
    events = await router.collect("notifier", 2)
    assert {e.ticket_id for e in events} == {"LC-TWICE"}
    assert len({e.event_id for e in events}) == 1  # the same event: applied once
    assert await router.tickets_in_store("LC-TWICE") == 1
    assert await router.probe.count_of("router") == 0
    assert await router.probe.dead_letters("router") == 0


async def test_ticket_matching_no_rule_is_unroutable(router: RouterHarness) -> None:
    router.engines.engine = RuleEngine(parse_rules(NARROW_RULES), router.directory, WorkCalendar())
    await router.publisher.publish(received("LC-NOWHERE", router.draft(samples()[0])))
    unicorn = {**samples()[0], "text": "公园里出现了一只独角兽，请派人看看。"}
    await router.publisher.publish(received("LC-UNICORN", router.draft(unicorn)))

    [dispatched] = await router.collect("notifier", 1)
    assert isinstance(dispatched, TicketDispatched)
    assert dispatched.ticket_id == "LC-UNICORN"
    assert dispatched.payload.department == "city.platform"
    assert dispatched.payload.rule == "unicorns"

    # stats sees every event: two received, one dispatched, one unroutable
    events = await router.collect("stats", 4)
    unroutable = [e for e in events if isinstance(e, TicketUnroutable)]
    assert [e.ticket_id for e in unroutable] == ["LC-NOWHERE"]
    assert unroutable[0].payload.dims.district == "guanxian"
    stored = await router.repo.get("LC-NOWHERE")
    assert stored is not None
    assert stored.status == "unroutable"
    assert stored.department is None
    assert await router.probe.count_of("notifier") == 0


async def test_crash_between_store_and_publish_is_repaired(router: RouterHarness) -> None:
    draft = router.draft(samples()[2])
    now: datetime = utcnow()
    decision = router.engines.engine.decide(draft, now)
    outgoing = decision_event("LC-CRASH", draft, decision, now)
    # The handler stored its outcome, then died before publishing it.
    _, created = await router.repo.create(
        "LC-CRASH", draft, "dispatched", decision.department, outgoing, now
    )
    assert created

    await router.publisher.publish(received("LC-CRASH", draft))  # the redelivery
    [event] = await router.collect("notifier", 1)
    assert event.event_id == outgoing.event_id
    assert isinstance(event, TicketDispatched)
    assert event.payload.department == decision.department
    assert await router.tickets_in_store("LC-CRASH") == 1


async def test_poison_message_is_dead_lettered_and_does_not_block(router: RouterHarness) -> None:
    poison = aio_pika.Message(body=b'{"event_type": "received", "nonsense": true}')
    await router.infra.broker.exchange.publish(poison, routing_key="ticket.received")
    await router.publisher.publish(received("LC-AFTER", router.draft(samples()[0])))

    [event] = await router.collect("notifier", 1)
    assert event.ticket_id == "LC-AFTER"

    async def dead_lettered() -> bool:
        return await router.probe.dead_letters("router") == 1

    await eventually(dead_lettered)
