"""The router's and the notifier's batch consumers (shared.messaging.batch)
against the real broker and store: a poison message in a batch, a store write
that fails halfway through a batch, two events of one ticket in one batch, and a
batch delivered again after its effects were stored but before its ack.

The messages of each test are published before the consumer starts and the
consumer waits long for a batch to fill, so that they arrive as one batch;
each test checks that they did (Batches records what the handler was given).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from pymongo.errors import OperationFailure

from services.notifier.batch import handle_batch as notifier_batch
from services.notifier.handlers import SUBSCRIPTIONS as NOTIFIER
from services.notifier.records import Attempt, DeliveryStatus
from services.notifier.repository import DeliveryRepository
from services.router.commands import CommandService
from services.router.handlers import SUBSCRIPTIONS as ROUTER
from services.router.handlers import EngineHolder
from services.router.handlers import handle_batch as router_batch
from services.router.knowledge import shipped_engine
from services.router.refused import RefusedFeedbackRepository
from services.router.repository import StoredTicket, TicketRepository
from services.router.workflow.state import TicketState
from shared.bootstrap import Infra, connect
from shared.directory import load_directory
from shared.domain import Actor, ActorKind, Category, Channel, TicketDraft
from shared.errors import UnavailableError
from shared.events import (
    AcceptedPayload,
    Envelope,
    ReceivedPayload,
    TicketAccepted,
    TicketDispatched,
    TicketReceived,
    parse_event,
    utcnow,
)
from shared.messaging.batch import BatchConsumer
from shared.messaging.broker import Broker
from shared.messaging.publisher import Publisher
from shared.mongo import Document
from shared.settings import CommonSettings
from shared.workcalendar import WorkCalendar
from tests.integration.test_notifier_delivery import (
    Receiver,
    Replica,
    delivery_id,
    directory_for,
    dispatched,
    notifiers_on,
)
from tests.support import dlq_bodies, eventually

pytestmark = pytest.mark.integration

INTAKE = Actor(kind=ActorKind.CITIZEN, id="channel:phone")
WATER_DEPARTMENT = Actor(kind=ActorKind.DEPARTMENT, id="guanxian.water")
POISON = b'{"event_type": "ticket.received", "ticket_id": "LC-POISON"'
# Long enough for every message published before the consumer starts to join
# the first batch.
FILL_S = 0.5


@dataclass
class Batches:
    """Wraps a batch handler: records the event ids of every batch it is given;
    `fail_after_first` makes the first batch raise after its effects are stored
    (the connection lost before the ack)."""

    handler: Callable[[list[Envelope]], Awaitable[None]]
    fail_after_first: BaseException | None = None
    seen: list[list[str]] = field(default_factory=list)

    async def __call__(self, events: list[Envelope]) -> None:
        self.seen.append([str(event.event_id) for event in events])
        await self.handler(events)
        if self.fail_after_first is not None and len(self.seen) == 1:
            raise self.fail_after_first


async def publish_raw(broker: Broker, body: bytes, key: str) -> None:
    await broker.exchange.publish(aio_pika.Message(body=body), routing_key=key)


async def start(infra: Infra, service: str, adapter: Any, batches: Batches) -> BatchConsumer[Any]:
    consumer: BatchConsumer[Any] = BatchConsumer(
        infra.broker, service, infra.queue(), adapter, batches, max_wait_s=FILL_S
    )
    await consumer.start()
    infra.consumers.append(consumer)
    return consumer


async def take(broker: Broker, queue: str) -> list[Envelope]:
    """Every message in a queue nobody consumes, taken out."""
    declared = await broker.channel.declare_queue(queue, passive=True)
    events: list[Envelope] = []
    while (message := await declared.get(no_ack=True, fail=False)) is not None:
        events.append(parse_event(message.body))
    return events


# --- the router ------------------------------------------------------------------------------


class HalfThenFail(TicketRepository):
    """Stores the first half of the first batch of new tickets, then fails as a
    store that refuses the write would."""

    failed = False

    async def create_many(
        self, new: list[tuple[TicketState, list[Envelope]]], now: Any
    ) -> list[tuple[StoredTicket, bool]]:
        if not self.failed and len(new) > 1:
            self.failed = True
            await super().create_many(new[: len(new) // 2], now)
            raise OperationFailure("simulated: the store refused the write")
        return await super().create_many(new, now)


@dataclass
class RouterWorld:
    infra: Infra
    repo: TicketRepository
    commands: CommandService
    refused: RefusedFeedbackRepository
    publisher: Publisher

    def handler(self) -> Callable[[list[Envelope]], Awaitable[None]]:
        return partial(router_batch, commands=self.commands, refused=self.refused)

    async def dispatches(self) -> list[Envelope]:
        """What the router published for the notifier (dispatched, unroutable)."""
        topology = self.infra.broker.topology
        return await take(self.infra.broker, topology.queue_name(topology.spec("notifier")))


@pytest.fixture
async def router_infra(settings: CommonSettings) -> AsyncIterator[Infra]:
    infra = await connect(settings, "router")
    try:
        yield infra
    finally:
        for consumer in infra.consumers:
            await consumer.stop()
        await infra.close()


async def router_world(
    settings: CommonSettings, infra: Infra, repo_type: type[TicketRepository] = TicketRepository
) -> RouterWorld:
    directory = load_directory(settings.districts_file, settings.directory_file)
    engines = EngineHolder(shipped_engine(directory, WorkCalendar()))
    repo, refused = repo_type(infra.db), RefusedFeedbackRepository(infra.db)
    await repo.ensure_indexes()
    publisher = Publisher(infra.broker.exchange, "router")
    commands = CommandService(repo, engines, publisher, utcnow, infra.broker.is_connected)
    return RouterWorld(infra, repo, commands, refused, publisher)


def received(ticket_id: str) -> TicketReceived:
    draft = TicketDraft(
        channel=Channel.PHONE,
        district="guanxian",
        category=Category.HELP,
        text="村里安装自来水管道占用了我家的耕地，没有支付补偿款",
    )
    return TicketReceived(ticket_id=ticket_id, actor=INTAKE, payload=ReceivedPayload(ticket=draft))


async def all_stored(world: RouterWorld, tickets: list[str]) -> None:
    async def stored() -> bool:
        found = await world.infra.db["tickets"].count_documents({"_id": {"$in": tickets}})
        return bool(found == len(tickets))

    await eventually(stored)


async def assert_each_dispatched_once(world: RouterWorld, tickets: list[str]) -> None:
    """One ticket document and one dispatch per ticket, outboxes empty."""
    await all_stored(world, tickets)
    published: list[Envelope] = []

    async def all_published() -> bool:
        published.extend(await world.dispatches())
        return {e.ticket_id for e in published} >= set(tickets)

    await eventually(all_published)
    await asyncio.sleep(FILL_S * 2)  # anything published twice would be there now
    published.extend(await world.dispatches())
    assert Counter(e.ticket_id for e in published) == dict.fromkeys(tickets, 1)
    docs = await world.infra.db["tickets"].find({"_id": {"$in": tickets}}).to_list()
    assert sorted(d["_id"] for d in docs) == sorted(tickets)
    assert all(d["outbox"] == [] for d in docs)


async def test_router_batch_dead_letters_the_poison_alone(
    settings: CommonSettings, router_infra: Infra
) -> None:
    world = await router_world(settings, router_infra)
    events = [received(f"LC-BP-{n}") for n in range(6)]
    for n, event in enumerate(events):
        if n == 3:
            await publish_raw(router_infra.broker, POISON, "ticket.received")
        await world.publisher.publish(event)
    batches = Batches(world.handler())
    await start(router_infra, "router", ROUTER.adapter, batches)

    tickets = [e.ticket_id for e in events]
    await assert_each_dispatched_once(world, tickets)
    assert batches.seen == [[str(e.event_id) for e in events]]
    assert await dlq_bodies(router_infra.broker, router_infra.queue()) == [POISON]


async def test_router_batch_whose_store_write_fails_is_retried_message_by_message(
    settings: CommonSettings, router_infra: Infra
) -> None:
    world = await router_world(settings, router_infra, HalfThenFail)
    events = [received(f"LC-BF-{n}") for n in range(6)]
    for event in events:
        await world.publisher.publish(event)
    batches = Batches(world.handler())
    await start(router_infra, "router", ROUTER.adapter, batches)

    tickets = [e.ticket_id for e in events]
    await assert_each_dispatched_once(world, tickets)
    ids = [str(e.event_id) for e in events]
    # The whole batch once (it failed), then each message alone.
    assert batches.seen == [ids, *([i] for i in ids)]
    assert await dlq_bodies(router_infra.broker, router_infra.queue()) == []


async def test_router_batch_delivered_again_is_applied_once(
    settings: CommonSettings, router_infra: Infra
) -> None:
    world = await router_world(settings, router_infra)
    events = [received(f"LC-BR-{n}") for n in range(5)]
    events.append(events[2])  # intake published one ticket twice: in the same batch
    for event in events:
        await world.publisher.publish(event)
    lost_ack = UnavailableError("connection lost before the ack")
    batches = Batches(world.handler(), fail_after_first=lost_ack)
    await start(router_infra, "router", ROUTER.adapter, batches)

    async def delivered_again() -> bool:
        return sum(len(batch) for batch in batches.seen) >= 2 * len(events)

    await eventually(delivered_again)
    await assert_each_dispatched_once(world, sorted({e.ticket_id for e in events}))
    assert batches.seen[0] == [str(e.event_id) for e in events]
    assert await dlq_bodies(router_infra.broker, router_infra.queue()) == []


# --- the notifier ----------------------------------------------------------------------------


@pytest.fixture
async def replica(
    settings: CommonSettings, receiver: Receiver, tmp_path: Path
) -> AsyncIterator[Replica]:
    directory = directory_for(receiver, tmp_path)
    async with notifiers_on(settings, receiver, directory, utcnow) as notifiers:
        n = await notifiers.replica()
        n.start_deliveries()
        try:
            yield n
        finally:
            for consumer in n.infra.consumers:
                await consumer.stop()


def accepted(event: TicketDispatched) -> TicketAccepted:
    return TicketAccepted(
        ticket_id=event.ticket_id,
        occurred_at=event.occurred_at + timedelta(seconds=1),
        actor=WATER_DEPARTMENT,
        payload=AcceptedPayload(
            dims=event.payload.dims, department="guanxian.water", responded_in_time=True
        ),
    )


def notifier_batches(n: Replica, **kwargs: Any) -> Batches:
    return Batches(partial(notifier_batch, notifier=n.notifier), **kwargs)


async def publish_all(n: Replica, events: list[Any]) -> None:
    router = Publisher(n.infra.broker.exchange, "router")
    for event in events:
        await router.publish(event)


async def timers_of(n: Replica, ticket_id: str) -> dict[str, str]:
    """kind -> status of the ticket's timers; each kind appears once."""
    timers = await n.timers.for_ticket(ticket_id)
    kinds = [t["kind"] for t in timers]
    assert len(kinds) == len(set(kinds)), kinds
    return {t["kind"]: t["status"] for t in timers}


async def notified_once(n: Replica, receiver: Receiver, events: list[TicketDispatched]) -> None:
    """Each dispatch's notice delivered, and sent once; three timers each."""
    wanted = {delivery_id(e.event_id, "guanxian.water") for e in events}

    async def delivered() -> bool:
        return set(receiver.per_delivery()) >= wanted

    await eventually(delivered)
    await asyncio.sleep(FILL_S * 2)  # a second send would have come by now
    sent = receiver.per_delivery()
    assert {d: sent[d] for d in wanted} == dict.fromkeys(wanted, 1)
    for event in events:
        assert [d["_id"] for d in await n.deliveries.for_ticket(event.ticket_id)] == [
            delivery_id(event.event_id, "guanxian.water")
        ]
        assert await timers_of(n, event.ticket_id) == {
            "urge": "pending",
            "warning": "pending",
            "overdue": "pending",
        }


async def test_notifier_applies_two_events_of_one_ticket_in_one_batch_in_order(
    replica: Replica, receiver: Receiver
) -> None:
    first, other = dispatched("LC-NO-1"), dispatched("LC-NO-2")
    events = [first, other, accepted(first)]
    await publish_all(replica, events)
    batches = notifier_batches(replica)
    await start(replica.infra, "notifier", NOTIFIER.adapter, batches)

    async def urging_stopped() -> bool:
        return (await timers_of(replica, first.ticket_id)).get("urge") == "cancelled"

    await eventually(urging_stopped)
    assert batches.seen == [[str(e.event_id) for e in events]]
    # Accepted after its dispatch: the dispatch's timers set, then its urging
    # stopped. (The other way round, the dispatch would be ignored as older.)
    assert await timers_of(replica, first.ticket_id) == {
        "urge": "cancelled",
        "warning": "pending",
        "overdue": "pending",
    }
    await notified_once(replica, receiver, [other])
    assert receiver.per_delivery()[delivery_id(first.event_id, "guanxian.water")] == 1
    record = await replica.timers.standing(first.ticket_id)
    assert record is not None and record["status"] == "accepted"


async def test_notifier_batch_dead_letters_the_poison_alone(
    replica: Replica, receiver: Receiver
) -> None:
    events = [dispatched(f"LC-NP-{n}") for n in range(4)]
    await publish_all(replica, events[:2])
    await publish_raw(replica.infra.broker, POISON, "ticket.dispatched")
    await publish_all(replica, events[2:])
    batches = notifier_batches(replica)
    await start(replica.infra, "notifier", NOTIFIER.adapter, batches)

    await notified_once(replica, receiver, events)
    assert batches.seen == [[str(e.event_id) for e in events]]
    assert await dlq_bodies(replica.infra.broker, replica.infra.queue()) == [POISON]


async def test_notifier_batch_whose_store_write_fails_is_retried_message_by_message(
    replica: Replica, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [dispatched(f"LC-NF-{n}") for n in range(4)]
    await publish_all(replica, events)
    stored = replica.deliveries.insert_new
    calls: list[int] = []

    async def half_then_fail(docs: list[Document]) -> list[Document]:
        calls.append(len(docs))
        if len(calls) == 1:
            await stored(docs[: len(docs) // 2])
            raise OperationFailure("simulated: the store refused the write")
        return await stored(docs)

    monkeypatch.setattr(replica.deliveries, "insert_new", half_then_fail)
    batches = notifier_batches(replica)
    await start(replica.infra, "notifier", NOTIFIER.adapter, batches)

    await notified_once(replica, receiver, events)
    ids = [str(e.event_id) for e in events]
    assert batches.seen == [ids, *([i] for i in ids)]
    assert calls[0] == len(events)
    assert await dlq_bodies(replica.infra.broker, replica.infra.queue()) == []


async def test_notifier_batch_delivered_again_is_applied_once(
    replica: Replica, receiver: Receiver
) -> None:
    events = [dispatched(f"LC-NR-{n}") for n in range(4)]
    await publish_all(replica, events)
    lost_ack = UnavailableError("connection lost before the ack")
    batches = notifier_batches(replica, fail_after_first=lost_ack)
    await start(replica.infra, "notifier", NOTIFIER.adapter, batches)

    async def delivered_again() -> bool:
        return len(batches.seen) >= 2

    await eventually(delivered_again)
    await notified_once(replica, receiver, events)
    ids = [str(e.event_id) for e in events]
    assert batches.seen[0] == ids
    assert sorted(i for batch in batches.seen[1:] for i in batch) == sorted(ids)
    records = await replica.infra.db["timer_tickets"].find({"_id": {"$regex": "^LC-NR-"}}).to_list()
    assert sorted(json.dumps(r["generations"]) for r in records) == sorted(
        json.dumps([i]) for i in ids
    )


async def test_a_batch_claims_its_new_deliveries_for_its_own_process(
    settings: CommonSettings, receiver: Receiver, tmp_path: Path
) -> None:
    """The first attempt of each delivery a batch creates is this replica's from
    the start: another replica cannot take it, this one sends it without a
    claim of its own."""
    directory = directory_for(receiver, tmp_path)
    async with notifiers_on(settings, receiver, directory, utcnow) as notifiers:
        n = await notifiers.replica()  # no delivery worker: nothing is sent yet
        event = dispatched("LC-NC-1")
        await notifier_batch([event], notifier=n.notifier)
        [doc] = await n.deliveries.for_ticket(event.ticket_id)
        other = DeliveryRepository(n.infra.db)
        assert not await other.claim(doc, utcnow(), timedelta(seconds=30))
        claims = n.infra.db["delivery_claims"]
        assert [c["_id"] for c in await claims.find({}).to_list()] == [f"{doc['_id']}:0:0"]
        assert await n.deliveries.claim(doc, utcnow(), timedelta(seconds=30))
        n.start_deliveries()
        await notified_once(n, receiver, [event])
        assert await claims.count_documents({}) == 1
        # The copy read before the attempt is stale now (a scan's, say).
        assert not await n.deliveries.claim(doc, utcnow(), timedelta(seconds=30))
        assert receiver.per_delivery() == {doc["_id"]: 1}


async def test_a_first_attempt_run_by_another_copy_is_not_run_again_from_memory(
    settings: CommonSettings, receiver: Receiver, tmp_path: Path
) -> None:
    """A scan's copy of a new delivery can take its first attempt through the
    store while the creator's claim is being written (its insert loses to that
    claim, which is this process's own), send it and record it. The creator's
    copy, offered after, must find the attempt over: before, the memory of the
    creation's claim let it send the notice a second time (seen in the timer
    burst test under load)."""
    directory = directory_for(receiver, tmp_path)
    async with notifiers_on(settings, receiver, directory, utcnow) as notifiers:
        n = await notifiers.replica()  # no delivery worker: the test plays the copies
        event = dispatched("LC-NC-2")
        await notifier_batch([event], notifier=n.notifier)
        [doc] = await n.deliveries.for_ticket(event.ticket_id)
        # The scan's copy sent it and recorded the attempt, as the sender does.
        sent = Attempt(1, utcnow(), True, 200, None)
        await n.deliveries.record_attempt(doc["_id"], sent, DeliveryStatus.DELIVERED, None)
        assert not await n.deliveries.claim(doc, utcnow(), timedelta(seconds=30))
