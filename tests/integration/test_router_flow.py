"""The router's consumer and command service against the real broker and store.

The router is wired as services/router/main.py wires it: a CommandService over
the ticket repository, the live rule engine and a confirming publisher, and a
BatchConsumer of the router queue (ticket.received, ticket.feedback, ticket.linked) calling
handle_batch. What it publishes is read back from the notifier queue
(ticket.dispatched) and the stats queue (every event) over a connection of the
test's own; nobody else consumes those queues.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel
from prometheus_client import REGISTRY

import services.router.commands
from services.router.commands import CommandService, PublishPending
from services.router.engine import RuleEngine
from services.router.handlers import SUBSCRIPTIONS, EngineHolder, handle_batch
from services.router.knowledge import shipped_engine
from services.router.main import BATCH_MAX, BATCH_WAIT_S
from services.router.refused import RefusedFeedbackRepository
from services.router.repository import TicketRepository
from services.router.rules import parse_rules
from services.router.workflow.department import accept, request_extension, resolve
from services.router.workflow.dispatch import new_ticket
from services.router.workflow.hotline import decide_extension
from services.router.workflow.state import Principal, Status, WorkflowError
from shared.bootstrap import Infra, connect
from shared.directory import Directory, load_directory
from shared.domain import Actor, ActorKind, TicketDraft
from shared.events import (
    FeedbackPayload,
    LinkedPayload,
    Rating,
    ReceivedPayload,
    ReopenCause,
    TicketAccepted,
    TicketDispatched,
    TicketEvent,
    TicketFeedback,
    TicketLinked,
    TicketReceived,
    TicketReopened,
    TicketUnroutable,
    parse_event,
    utcnow,
)
from shared.messaging.broker import Broker
from shared.messaging.publisher import Publisher
from shared.settings import DATA_DIR, CommonSettings
from shared.workcalendar import WorkCalendar
from tests.support import eventually

pytestmark = pytest.mark.integration

SERVICE = "router"
INTAKE = Actor(kind=ActorKind.CITIZEN, id="channel:phone")
CITIZEN = Actor(kind=ActorKind.CITIZEN, id="feedback")
WATER = Principal(kind=ActorKind.DEPARTMENT, id="guanxian.water")
STAFF = Principal(kind=ActorKind.STAFF, id="zhang.san")
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


def draft_of(raw: dict[str, Any], directory: Directory) -> TicketDraft:
    """A sample request as intake makes it a ticket draft."""
    district = directory.district(raw["district"])
    assert district is not None
    fields = {k: v for k, v in raw.items() if k in TicketDraft.model_fields}
    return TicketDraft.model_validate({**fields, "district": district.id, "external_id": raw["id"]})


class Probe:
    """Reads the namespace's queues over a connection of its own."""

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
    settings: CommonSettings
    infra: Infra
    directory: Directory
    repo: TicketRepository
    engines: EngineHolder
    commands: CommandService
    publisher: Publisher
    probe: Probe
    refused: RefusedFeedbackRepository

    async def collect(self, service: str, count: int) -> list[TicketEvent]:
        """Wait until ``count`` events were read from the service's queue."""
        got: list[TicketEvent] = []

        async def enough() -> bool:
            got.extend(await self.probe.take(service))
            return len(got) >= count

        await eventually(enough)
        return got

    def handled(self, event_type: str, outcome: str = "ok") -> float:
        """Messages of the type the router's consumer finished with this outcome."""
        labels = {
            "service": SERVICE,
            "queue": self.infra.queue(),
            "event_type": event_type,
            "outcome": outcome,
        }
        return REGISTRY.get_sample_value("hotline_messages_total", labels) or 0.0

    async def handled_at_least(self, event_type: str, count: int) -> None:
        async def done() -> bool:
            return self.handled(event_type) >= count

        await eventually(done)

    async def status(self, ticket_id: str) -> Status | None:
        stored = await self.repo.get(ticket_id)
        return stored.state.status if stored else None

    async def reaches(self, ticket_id: str, status: Status) -> None:
        async def there() -> bool:
            return await self.status(ticket_id) == status

        await eventually(there)

    async def tickets_in_store(self, ticket_id: str) -> int:
        return await self.infra.db["tickets"].count_documents({"_id": ticket_id})

    def draft(self, raw: dict[str, Any]) -> TicketDraft:
        return draft_of(raw, self.directory)

    async def receive(self, ticket_id: str, raw: dict[str, Any]) -> TicketReceived:
        event = received(ticket_id, self.draft(raw))
        await self.publisher.publish(event)
        return event


def received(ticket_id: str, draft: TicketDraft) -> TicketReceived:
    return TicketReceived(ticket_id=ticket_id, actor=INTAKE, payload=ReceivedPayload(ticket=draft))


def rating(ticket_id: str, draft: TicketDraft, value: Rating) -> TicketFeedback:
    event = received(ticket_id, draft)
    return TicketFeedback(
        ticket_id=ticket_id,
        actor=CITIZEN,
        payload=FeedbackPayload(dims=event.dims(), rating=value, solved=value != "unsatisfied"),
    )


@pytest.fixture
async def router(settings: CommonSettings) -> AsyncIterator[RouterHarness]:
    """The router's consumer and command service, wired as in services/router/main.py."""
    directory = load_directory(settings.districts_file, settings.directory_file)
    engines = EngineHolder(shipped_engine(directory, WorkCalendar()))
    infra = await connect(settings, SERVICE)
    connection = None
    try:
        repo, refused = TicketRepository(infra.db), RefusedFeedbackRepository(infra.db)
        await repo.ensure_indexes()
        await refused.ensure_indexes()
        publisher = Publisher(infra.broker.exchange, SERVICE)
        commands = CommandService(repo, engines, publisher, utcnow, infra.broker.is_connected)
        handler = partial(handle_batch, commands=commands, refused=refused)
        await infra.consume_batches(
            SUBSCRIPTIONS.adapter, handler, max_batch=BATCH_MAX, max_wait_s=BATCH_WAIT_S
        )
        connection = await aio_pika.connect(settings.amqp_url)
        probe = Probe(await connection.channel(), infra)
        yield RouterHarness(
            settings, infra, directory, repo, engines, commands, publisher, probe, refused
        )
    finally:
        for consumer in infra.consumers:
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
        await router.receive(ticket_id, raw)

    events = await router.collect("notifier", len(expected))
    dispatched = [e for e in events if isinstance(e, TicketDispatched)]
    assert len(dispatched) == len(events) == len(expected)
    assert {e.ticket_id: e.payload.department for e in dispatched} == expected
    for event in dispatched:
        assert event.payload.deadline > started
        assert event.payload.response_deadline > started
        assert event.payload.round == 1
        assert event.payload.via == "rules"
        assert event.actor.id == "router"

    await router.handled_at_least("received", len(expected))
    for ticket_id, department in expected.items():
        stored = await router.repo.get(ticket_id)
        assert stored is not None
        assert (stored.state.status, stored.state.department) == (Status.DISPATCHED, department)
        assert stored.outbox == []  # published, so the outbox was cleared
    assert await router.probe.dead_letters("router") == 0


async def test_sample_dispatch_carries_the_request(router: RouterHarness) -> None:
    raw = samples()[0]  # the Guan County water-pipe case
    draft = router.draft(raw)
    await router.publisher.publish(received("LC-S001", draft))
    [event] = await router.collect("notifier", 1)
    assert isinstance(event, TicketDispatched)
    assert event.payload.department == raw["expected_department"] == "guanxian.water"
    assert event.payload.ticket == draft
    assert event.payload.dims.district == "guanxian"
    stored = await router.repo.get("LC-S001")
    assert stored is not None
    assert stored.state.draft == draft
    # Times are kept to the millisecond, so the stored state is what was published.
    assert stored.state.deadline == event.payload.deadline
    assert stored.state.response_deadline == event.payload.response_deadline
    assert stored.state.dispatched_at == event.occurred_at


async def test_redelivered_received_event_dispatches_once(router: RouterHarness) -> None:
    event = received("LC-TWICE", router.draft(samples()[1]))
    await router.publisher.publish(event)
    await router.publisher.publish(event)  # the broker redelivers: the same event_id

    await router.handled_at_least("received", 2)
    events = await router.probe.take("stats")
    # The router may dispatch before the copy reaches the stats queue: any order.
    assert sorted(e.event_type for e in events) == ["dispatched", "received", "received"]
    assert len(await router.probe.take("notifier")) == 1
    assert await router.tickets_in_store("LC-TWICE") == 1
    assert await router.probe.count_of("router") == 0
    assert await router.probe.dead_letters("router") == 0


async def test_ticket_matching_no_rule_is_unroutable(router: RouterHarness) -> None:
    router.engines.engine = RuleEngine(parse_rules(NARROW_RULES), router.directory, WorkCalendar())
    await router.receive("LC-NOWHERE", samples()[0])
    unicorn = {**samples()[0], "text": "公园里出现了一只独角兽，请派人看看。"}
    await router.receive("LC-UNICORN", unicorn)

    # The notifier hears of both (the unroutable one stops no clock, but is told).
    events = await router.collect("notifier", 2)
    [dispatched] = [e for e in events if isinstance(e, TicketDispatched)]
    assert dispatched.ticket_id == "LC-UNICORN"
    assert dispatched.payload.department == "city.platform"
    assert dispatched.payload.rule == "unicorns"
    [unroutable] = [e for e in events if isinstance(e, TicketUnroutable)]
    assert unroutable.ticket_id == "LC-NOWHERE"
    assert unroutable.payload.dims.district == "guanxian"

    # stats sees every event: two received, one dispatched, one unroutable
    events = await router.collect("stats", 4)
    assert sorted(e.event_type for e in events) == [
        "dispatched",
        "received",
        "received",
        "unroutable",
    ]
    stored = await router.repo.get("LC-NOWHERE")
    assert stored is not None
    assert stored.state.status == Status.UNROUTABLE
    assert stored.state.department is None
    assert await router.probe.count_of("notifier") == 0


async def test_crash_between_store_and_publish_is_repaired(router: RouterHarness) -> None:
    draft = router.draft(samples()[2])
    ctx = router.commands.context()
    # The handler stored its outcome with its events, then died before publishing.
    transition = new_ticket("LC-CRASH", draft, ctx)
    _, created = await router.repo.create(transition.state, transition.events, ctx.now)
    assert created
    [outgoing] = transition.events

    await router.publisher.publish(received("LC-CRASH", draft))  # the redelivery
    [event] = await router.collect("notifier", 1)
    assert event.event_id == outgoing.event_id
    assert isinstance(event, TicketDispatched)
    assert event.payload.department == "dongchangfu.housing"
    assert await router.tickets_in_store("LC-CRASH") == 1

    async def outbox_cleared() -> bool:
        stored = await router.repo.get("LC-CRASH")
        return stored is not None and stored.outbox == []

    await eventually(outbox_cleared)


async def test_poison_message_is_dead_lettered_and_does_not_block(router: RouterHarness) -> None:
    poison = aio_pika.Message(body=b'{"event_type": "received", "nonsense": true}')
    await router.infra.broker.exchange.publish(poison, routing_key="ticket.received")
    await router.receive("LC-AFTER", samples()[0])

    [event] = await router.collect("notifier", 1)
    assert event.ticket_id == "LC-AFTER"

    async def dead_lettered() -> bool:
        return await router.probe.dead_letters("router") == 1

    await eventually(dead_lettered)


async def test_every_accepted_action_is_published_exactly_once(router: RouterHarness) -> None:
    raw = samples()[0]
    await router.receive("LC-LIFE", raw)
    await router.reaches("LC-LIFE", Status.DISPATCHED)
    run = router.commands.run
    await run("LC-LIFE", "accept", lambda s, c: accept(s, WATER, c))
    # A refused action publishes nothing and stores nothing.
    with pytest.raises(WorkflowError):
        await run("LC-LIFE", "accept", lambda s, c: accept(s, WATER, c))
    await run("LC-LIFE", "extension", lambda s, c: request_extension(s, WATER, 3, "协调中", c))
    await run("LC-LIFE", "decide", lambda s, c: decide_extension(s, STAFF, True, "同意", c))
    state = await run("LC-LIFE", "resolve", lambda s, c: resolve(s, WATER, "补偿款已发放。", c))
    assert state.status == Status.RESOLVED
    assert state.version == 4
    await router.publisher.publish(rating("LC-LIFE", router.draft(raw), Rating.SATISFIED))
    await router.handled_at_least("feedback", 1)
    assert await router.status("LC-LIFE") == Status.CLOSED

    events = await router.collect("stats", 8)
    assert [e.event_type for e in events] == [
        "received",
        "dispatched",
        "accepted",
        "extension_requested",
        "extended",
        "resolved",
        "feedback",
        "closed",
    ]
    assert {e.ticket_id for e in events} == {"LC-LIFE"}
    assert len({e.event_id for e in events}) == len(events)
    assert await router.probe.count_of("stats") == 0  # nothing twice
    stored = await router.repo.get("LC-LIFE")
    assert stored is not None
    assert stored.outbox == []
    assert await router.probe.dead_letters("router") == 0


async def resolved_by_water(router: RouterHarness, ticket_id: str) -> TicketDraft:
    """The first sample, dispatched to the water company, accepted and resolved."""
    draft = router.draft(samples()[0])
    await router.commands.create(ticket_id, draft)
    await router.commands.run(ticket_id, "accept", lambda s, c: accept(s, WATER, c))
    await router.commands.run(ticket_id, "resolve", lambda s, c: resolve(s, WATER, "已修复", c))
    return draft


async def test_a_feedback_event_delivered_twice_applies_once(router: RouterHarness) -> None:
    draft = await resolved_by_water(router, "LC-AGAIN")
    unsatisfied = rating("LC-AGAIN", draft, Rating.UNSATISFIED)
    await router.publisher.publish(unsatisfied)
    await router.publisher.publish(unsatisfied)

    await router.handled_at_least("feedback", 2)
    stored = await router.repo.get("LC-AGAIN")
    assert stored is not None
    assert stored.state.status == Status.REOPENED
    assert stored.state.reopen_count == 1
    assert stored.state.feedback_ids == (str(unsatisfied.event_id),)
    events = [e for e in await router.probe.take("stats") if e.event_type != "feedback"]
    assert [e.event_type for e in events] == ["dispatched", "accepted", "resolved", "reopened"]
    assert isinstance(events[-1], TicketReopened)
    assert await router.probe.dead_letters("router") == 0


def repeat_call(ticket_id: str, draft: TicketDraft) -> TicketLinked:
    """Intake's link of the caller's repeat of a closed ticket, under the reopen policy."""
    payload = LinkedPayload(ticket=draft, similarity=98.0, reopen=True)
    return TicketLinked(ticket_id=ticket_id, actor=INTAKE, payload=payload)


async def test_a_repeat_call_delivered_twice_reopens_a_closed_ticket_once(
    router: RouterHarness,
) -> None:
    draft = await resolved_by_water(router, "LC-REPEAT")
    satisfied = rating("LC-REPEAT", draft, Rating.SATISFIED)
    await router.publisher.publish(satisfied)
    await router.reaches("LC-REPEAT", Status.CLOSED)

    repeat = repeat_call("LC-REPEAT", draft)
    await router.publisher.publish(repeat)
    await router.publisher.publish(repeat)  # a redelivery, a retry
    await router.handled_at_least("linked", 2)
    stored = await router.repo.get("LC-REPEAT")
    assert stored is not None
    state = stored.state
    assert (state.status, state.department, state.reopen_count) == (
        Status.REOPENED,
        WATER.id,
        0,
    )
    assert state.repeat_calls == (str(repeat.event_id),)
    events = [e for e in await router.probe.take("stats") if e.event_type == "reopened"]
    [reopened] = events
    assert isinstance(reopened, TicketReopened)
    assert reopened.payload.cause == ReopenCause.REPEAT_CALL
    assert reopened.payload.deadline == state.deadline
    assert await router.probe.dead_letters("router") == 0


async def test_feedback_the_workflow_cannot_take_is_kept_for_staff(router: RouterHarness) -> None:
    """A rating racing a state change (intake saw the ticket resolved a moment
    earlier) changes nothing, is listed to staff once, and is no dead letter."""
    draft = router.draft(samples()[0])
    await router.commands.create("LC-EARLY", draft)
    before = await router.repo.get("LC-EARLY")
    event = rating("LC-EARLY", draft, Rating.SATISFIED)
    await router.publisher.publish(event)
    await router.publisher.publish(event)  # redelivered: recorded once

    async def kept() -> bool:
        return len(await router.refused.list({}, 10, 0)) == 1

    await eventually(kept)
    await router.handled_at_least("feedback", 2)
    [shown] = await router.refused.list({"ticket_id": "LC-EARLY"}, 10, 0)
    assert (shown.event_id, shown.rating, shown.code) == (
        str(event.event_id),
        "satisfied",
        "ILLEGAL_TRANSITION",
    )
    assert "dispatched" in shown.reason
    assert await router.repo.get("LC-EARLY") == before
    assert await router.probe.dead_letters("router") == 0


async def test_the_relay_publishes_what_a_failed_publish_left_in_the_outbox(
    router: RouterHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await router.commands.create("LC-RELAY", router.draft(samples()[0]))
    [dispatched] = await router.collect("stats", 1)

    # A publisher whose broker connection is gone, while the service still
    # believes the broker is up: the change is stored, its event is not sent.
    broken = Broker(router.settings.amqp_url, router.infra.broker.topology, prefetch=1)
    await broken.connect()
    await broken.close()
    failing = CommandService(
        router.repo,
        router.engines,
        Publisher(broken.exchange, SERVICE, timeout_s=2.0),
        utcnow,
        lambda: True,
    )
    with pytest.raises(PublishPending):
        await failing.run("LC-RELAY", "accept", lambda s, c: accept(s, WATER, c))
    stored = await router.repo.get("LC-RELAY")
    assert stored is not None
    assert stored.state.status == Status.ACCEPTED
    [pending] = stored.outbox
    assert isinstance(pending, TicketAccepted)
    assert await router.probe.count_of("stats") == 0

    # The relay leaves outboxes younger than its grace period to their own writer.
    monkeypatch.setattr(services.router.commands, "RELAY_GRACE", timedelta(days=1))
    assert await router.commands.relay() == 0
    monkeypatch.setattr(services.router.commands, "RELAY_GRACE", timedelta(0))
    assert await router.commands.relay() == 1

    [event] = await router.collect("stats", 1)
    assert event.event_id == pending.event_id != dispatched.event_id
    after = await router.repo.get("LC-RELAY")
    assert after is not None
    assert after.outbox == []
    assert after.state == stored.state
    assert await router.commands.relay() == 0
    assert await router.probe.count_of("stats") == 0
