"""The stats projection against the real store: idempotence, order independence,
concurrent counting and the whole path from the broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.stats.handlers import StatsStore, handle_event
from services.stats.projection import current_status
from services.stats.repository import DailyCounters, EventArchive, TicketViews
from shared.domain import Actor, ActorKind, Category, Channel, TicketDims, TicketDraft
from shared.events import (
    EVENT_ADAPTER,
    DispatchedPayload,
    ReceivedPayload,
    TicketDispatched,
    TicketEvent,
    TicketReceived,
)
from shared.messaging.broker import Broker
from shared.messaging.consumer import Consumer
from shared.messaging.publisher import Publisher
from shared.messaging.topology import Topology
from shared.mongo import Document, create_client, service_database
from shared.settings import CommonSettings
from tests.support import eventually

pytestmark = pytest.mark.integration

# 10:00 in the city (UTC+8): well inside one city day.
MORNING = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)
DAY = date(2025, 3, 10)


@dataclass
class Stats:
    store: StatsStore
    db: AsyncDatabase[Document]

    async def archived(self) -> int:
        return await self.db["events"].count_documents({})

    async def totals(
        self, where: dict[str, str] | None = None, start: date = DAY, end: date = DAY
    ) -> dict[str, int]:
        return await self.store.counters.totals(start, end, where or {})


@pytest.fixture
async def stats(settings: CommonSettings) -> AsyncIterator[Stats]:
    client = create_client(settings)
    try:
        db = service_database(client, settings, "stats")
        store = StatsStore(
            EventArchive(db), TicketViews(db), DailyCounters(db), ZoneInfo(settings.timezone)
        )
        for repo in (store.archive, store.views, store.counters):
            await repo.ensure_indexes()
        yield Stats(store, db)
    finally:
        await client.close()


def draft(district: str = "dongchangfu", channel: Channel = Channel.PHONE) -> TicketDraft:
    return TicketDraft(
        channel=channel,
        district=district,
        category=Category.COMPLAINT,
        town="古楼街道" if district == "dongchangfu" else None,
        text="小区门口夜间施工噪音扰民",
    )


def received(
    ticket_id: str,
    at: datetime = MORNING,
    district: str = "dongchangfu",
    channel: Channel = Channel.PHONE,
) -> TicketReceived:
    return TicketReceived(
        ticket_id=ticket_id,
        occurred_at=at,
        actor=Actor(kind=ActorKind.AGENT, id="agent-3"),
        payload=ReceivedPayload(ticket=draft(district, channel)),
    )


def dispatched(ticket_id: str, at: datetime, district: str = "dongchangfu") -> TicketDispatched:
    ticket = draft(district)
    return TicketDispatched(
        ticket_id=ticket_id,
        occurred_at=at,
        actor=Actor(kind=ActorKind.SYSTEM, id="router"),
        payload=DispatchedPayload(
            dims=TicketDims.of(ticket),
            ticket=ticket,
            department="city-management",
            co_departments=("ecology-environment",),
            rule="noise.construction",
            time_limit="5 working days",
            deadline=at + timedelta(days=7),
            response_deadline=at + timedelta(days=1),
        ),
    )


async def view(stats: Stats, ticket_id: str) -> Document:
    doc = await stats.store.views.get(ticket_id)
    assert doc is not None, f"no view of {ticket_id}"
    return doc


async def test_replayed_event_changes_nothing(stats: Stats) -> None:
    event = received("LC-1")
    await handle_event(event, store=stats.store)
    await handle_event(event, store=stats.store)

    assert await stats.archived() == 1
    doc = await view(stats, "LC-1")
    assert [step["event_id"] for step in doc["history"]] == [str(event.event_id)]
    assert await stats.totals() == {"received": 1}


async def test_view_and_counters_do_not_depend_on_arrival_order(stats: Stats) -> None:
    later = MORNING + timedelta(minutes=5)
    in_order: list[TicketEvent] = [
        received("LC-A", district="linqing"),
        dispatched("LC-A", later, "linqing"),
    ]
    reversed_: list[TicketEvent] = [
        dispatched("LC-B", later, "yanggu"),
        received("LC-B", district="yanggu"),
    ]
    for event in (*in_order, *reversed_):
        await handle_event(event, store=stats.store)

    def comparable(doc: Document) -> Document:
        return {k: v for k, v in doc.items() if k not in {"_id", "district", "history"}}

    doc_a, doc_b = await view(stats, "LC-A"), await view(stats, "LC-B")
    for doc in (doc_a, doc_b):
        assert doc["department"] == "city-management"
        assert current_status(doc["history"]) == "dispatched"
        assert sorted(step["event_type"] for step in doc["history"]) == ["dispatched", "received"]
    assert comparable(doc_a) == comparable(doc_b)
    for district in ("linqing", "yanggu"):
        assert await stats.totals({"district": district}) == {"received": 1, "dispatched": 1}
    assert await stats.totals({"department": "city-management"}) == {"dispatched": 2}


async def test_concurrent_events_of_one_bucket_are_all_counted(stats: Stats) -> None:
    events = [received(f"LC-{n}") for n in range(50)]
    await asyncio.gather(*(handle_event(e, store=stats.store) for e in events))

    assert await stats.archived() == 50
    assert await stats.totals() == {"received": 50}


async def test_concurrent_replays_of_one_event_count_once(stats: Stats) -> None:
    event = received("LC-1")
    await asyncio.gather(*(handle_event(event, store=stats.store) for _ in range(10)))

    assert await stats.archived() == 1
    assert len((await view(stats, "LC-1"))["history"]) == 1
    assert await stats.totals() == {"received": 1}


async def test_events_through_the_broker_are_counted_once(
    settings: CommonSettings, stats: Stats
) -> None:
    events = [received(f"LC-{n}") for n in range(20)]
    handled: list[TicketEvent] = []

    async def handler(event: TicketEvent) -> None:
        await handle_event(event, store=stats.store)
        handled.append(event)

    topology = Topology.from_settings(settings)
    broker = Broker(settings.amqp_url, topology, settings.prefetch)
    await broker.connect()
    try:
        queue = topology.queue_name(topology.spec("stats"))
        consumer = Consumer(broker, "stats", queue, EVENT_ADAPTER, handler)
        await consumer.start()
        try:
            publisher = Publisher(broker.exchange, "test")
            for event in [*events, *events[:5]]:  # 5 redelivered with the same event_id
                await publisher.publish(event)

            async def all_handled() -> bool:
                return len(handled) == 25

            await eventually(all_handled)
        finally:
            await consumer.stop()
    finally:
        await broker.close()

    assert await stats.archived() == 20
    assert await stats.totals() == {"received": 20}
    assert {e.event_id for e in handled} == {e.event_id for e in events}


async def test_totals_filter_by_district_channel_and_city_day(stats: Stats) -> None:
    evening = datetime(2025, 3, 10, 17, 30, tzinfo=UTC)  # 01:30 on 11 March in the city
    events = [
        received("LC-1", district="linqing", channel=Channel.PHONE),
        received("LC-2", district="linqing", channel=Channel.WEB),
        received("LC-3", district="linqing", channel=Channel.WEB),
        received("LC-4", district="gaotang", channel=Channel.WEB),
        received("LC-5", district="gaotang", channel=Channel.APP),
        received("LC-6", at=evening, district="linqing", channel=Channel.WEB),
    ]
    for event in events:
        await handle_event(event, store=stats.store)

    assert await stats.totals() == {"received": 5}
    assert await stats.totals({"district": "linqing"}) == {"received": 3}
    assert await stats.totals({"channel": "web"}) == {"received": 3}
    assert await stats.totals({"district": "linqing", "channel": "web"}) == {"received": 2}
    assert await stats.totals({"district": "gaotang", "channel": "phone"}) == {}
    assert await stats.totals({"district": "nowhere"}) == {}
    next_day = DAY + timedelta(days=1)
    assert await stats.totals(start=next_day, end=next_day) == {"received": 1}
    assert await stats.totals({"district": "linqing"}, end=next_day) == {"received": 4}
