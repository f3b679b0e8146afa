"""Stats ingestion and aggregation on the real store and broker: the archive keeps
each event once, the aggregator derives views and counters exactly once whatever
crashes in between, one aggregator works at a time, and the batch consumer takes
events from the broker with duplicates and poison among them."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any

import aio_pika
import pymongo.errors
import pytest

from services.stats.aggregator import COUNTED, LeaseLost
from services.stats.handlers import archive_batch, archive_record
from services.stats.repository import Counters, EventArchive, TicketViews
from services.stats.rollups import Increments
from shared.domain import Category
from shared.events import EVENT_ADAPTER, TicketEvent
from shared.messaging.batch import BatchConsumer, BatchHandler
from shared.messaging.broker import Broker
from shared.messaging.consumer import Consumer, Handler
from shared.messaging.publisher import Publisher
from shared.messaging.topology import Topology
from shared.metrics import MESSAGES
from shared.mongo import Document
from shared.settings import CommonSettings
from tests.stats_support import D3, StatsHarness, TicketStory, city, stats_harness, three_days
from tests.support import dlq_bodies, eventually

pytestmark = pytest.mark.integration

NOW = city(D3, 20)
HISTORY = three_days()
EVENTS = [event for events in HISTORY.values() for event in events]
SHUFFLED = random.Random(11).sample(EVENTS, len(EVENTS))


@pytest.fixture
async def stats(settings: CommonSettings) -> AsyncIterator[StatsHarness]:
    async with stats_harness(settings, NOW, batch=8) as harness:
        yield harness


async def counter_docs(stats: StatsHarness) -> dict[str, Document]:
    """Every roll-up document without its batch mark, and without the zeros a
    dispatch-quality contribution leaves when it moves (a ticket whose later
    dispatch arrived first had that one as its first for a while): a zero
    counts as much as a counter never written."""
    found = await stats.counters.collection.find({}, {"applied": 0}).to_list()
    return {doc["_id"]: _without_zeros(doc) for doc in found}


def _without_zeros(doc: Document) -> Document:
    kept: Document = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            value = _without_zeros(value)
        if value != 0 and value != {}:
            kept[key] = value
    return kept


async def view_docs(stats: StatsHarness) -> dict[str, Document]:
    """Every view without the aggregator's batch mark."""
    found = await stats.views.collection.find({}, {COUNTED: 0}).to_list()
    return {doc["_id"]: doc for doc in found}


async def rebuilt(stats: StatsHarness) -> tuple[dict[str, Document], dict[str, Document]]:
    """Counters and views recomputed from the whole archive."""
    await stats.aggregator.release()
    await stats.aggregator_as("rebuild").rebuild()
    return await counter_docs(stats), await view_docs(stats)


async def total(stats: StatsHarness, field: str) -> float:
    docs = await stats.counters.collection.find({"dim": "all"}).to_list()
    return float(sum(doc["t"].get(field, 0) for doc in docs))


# --- the archive ---------------------------------------------------------------------------


async def test_archive_keeps_each_event_once_with_its_first_arrival(stats: StatsHarness) -> None:
    first = EVENTS[:5]
    assert await stats.archive.add_many([archive_record(e, NOW) for e in first]) == 5
    later = NOW + timedelta(minutes=1)
    again = [archive_record(e, later) for e in [*first, *EVENTS[5:7], EVENTS[5]]]
    assert await stats.archive.add_many(again) == 2
    assert await stats.archive.count() == 7
    records = await stats.archive.for_ticket(first[0].ticket_id)
    assert all(
        r["archived_at"] == NOW for r in records if r["_id"] in {str(e.event_id) for e in first}
    )
    stored = await stats.archive.after("", "~", 100)
    assert [EVENT_ADAPTER.validate_python(r["event"]) for r in stored[:5]] == sorted(
        first, key=lambda e: str(e.event_id)
    )


async def test_an_event_archived_again_after_it_was_folded_counts_once(
    stats: StatsHarness,
) -> None:
    """A redelivery reaches the inbox again (the archive keeps its first
    record): its ticket's view holds its step, so it is not counted twice,
    also when both copies come in one batch."""
    await stats.ingest(EVENTS[:12])
    first = await counter_docs(stats), await view_docs(stats)
    await stats.archive_events(EVENTS[:12])  # every one delivered again, folded before
    await stats.archive_events(EVENTS[12:14])
    await stats.archive_events(EVENTS[12:14])  # twice before the aggregator runs
    await stats.aggregator.catch_up()
    assert await stats.archive.inbox_size() == 0
    assert await stats.archive.count() == 14
    await stats.ingest(EVENTS[14:])
    assert await total(stats, "received") == 10
    live = await counter_docs(stats), await view_docs(stats)
    assert live != first
    assert await rebuilt(stats) == live


async def test_inbox_documents_written_before_records_were_packed_are_folded(
    stats: StatsHarness,
) -> None:
    """An upgrade finds the inbox as the previous version left it: records as
    they are, beside the packed ones the consumer writes now."""
    await stats.db["inbox"].insert_one({"records": [archive_record(e, NOW) for e in EVENTS[:6]]})
    await stats.archive_events(EVENTS[6:])
    [packed] = await stats.db["inbox"].find({"records": {"$exists": False}}).to_list()
    assert set(packed) == {"_id", "packed"}  # one binary field
    stats.settle()
    await stats.aggregator.catch_up()
    assert await stats.archive.inbox_size() == 0
    assert await total(stats, "received") == 10


async def test_a_request_merged_into_a_ticket_is_counted_once_and_leaves_the_ticket_as_is(
    stats: StatsHarness,
) -> None:
    story = TicketStory("LC20250312000099", district="guanxian", category=Category.HELP)
    received, linked = story.received(city(D3, 9)), story.linked(city(D3, 10))
    await stats.ingest([received, linked, linked])  # the link delivered twice
    assert await total(stats, "linked") == 1
    assert await total(stats, "received") == 1
    summary = await stats.get("/v1/stats/summary", **{"from": D3, "to": D3})
    assert (summary["counts"]["requests"], summary["counts"]["linked"]) == (2, 1)
    by_channel = await stats.get("/v1/stats/summary", **{"from": D3, "to": D3, "channel": "sms"})
    assert by_channel["counts"]["linked"] == 1  # the new request's own channel
    ticket = await stats.get(f"/v1/tickets/{story.ticket_id}")
    assert ticket["status"] == "received"
    assert ticket["channel"] == "phone"  # the ticket's dimensions, not the link's
    assert ticket["linked"] == 1
    assert [s["event_type"] for s in ticket["history"]] == ["received", "linked"]


# --- exactly once across crashes --------------------------------------------------------------


class Unremoved(EventArchive):
    """An archive whose inbox keeps what was folded (the crash came before)."""

    async def inbox_remove(self, ids: list[Any]) -> None:
        pass


async def test_crash_before_the_batch_is_unpinned_counts_once(stats: StatsHarness) -> None:
    await stats.ingest(SHUFFLED[:20], chunk=7)
    await stats.archive_events(SHUFFLED[20:26])
    crashing = stats.aggregator_as("live")
    crashing.archive = Unremoved(stats.db)
    inbox = [doc["_id"] for doc in await stats.archive.inbox_head(100)]
    assert await crashing.step()  # the whole batch applied...
    pinned = await stats.meta.last()
    assert pinned is not None
    await stats.meta.pin(pinned, inbox)  # ...neither removed nor unpinned
    # More events arrive before the replica comes back: the pinned batch comes
    # again as it was, then the new ones.
    await stats.archive_events(SHUFFLED[26:])
    assert await stats.aggregator.step()  # the pinned batch
    assert await stats.meta.pinned() is None
    assert await total(stats, "received") == sum(
        1 for e in SHUFFLED[:26] if e.event_type in ("received", "resolved_on_spot")
    )
    await stats.aggregator.catch_up()
    assert await total(stats, "received") == 10
    live = await counter_docs(stats), await view_docs(stats)
    assert await rebuilt(stats) == live


class FailingCounters(Counters):
    """Counters whose store goes away after `budget` more documents written."""

    budget = 10**9

    async def add(self, batch: str, increments: Increments, skip: set[str]) -> None:
        keys = [key for key in increments.docs if key not in skip]
        written, self.budget = keys[: self.budget], max(0, self.budget - len(keys))
        await super().add(batch, increments, skip | set(keys[len(written) :]))
        if len(written) < len(keys):
            raise pymongo.errors.AutoReconnect("store went away")


async def test_crash_while_writing_counters_counts_once(stats: StatsHarness) -> None:
    counters = FailingCounters(stats.db)
    crashing = stats.aggregator_as("live", batch=30)
    crashing.counters = counters
    await stats.ingest(SHUFFLED[:25], chunk=25)
    await stats.archive_events(SHUFFLED[25:45])
    stats.settle()
    counters.budget = 17  # a part of the batch's counters written, then the crash
    with pytest.raises(pymongo.errors.AutoReconnect):
        await crashing.step()
    pinned = await stats.meta.pinned()
    assert pinned is not None
    marks = [doc.get("applied") for doc in await stats.counters.collection.find({}).to_list()]
    assert marks.count(pinned[0]) == 17
    # The replica comes back; more events arrived meanwhile: the pinned batch is
    # applied again as it was (skipping the 17 documents it reached), then the rest.
    counters.budget = 10**9
    await stats.archive_events(SHUFFLED[45:])
    stats.settle()
    await crashing.catch_up()
    assert await total(stats, "received") == 10
    assert await total(stats, "resolved") == 6
    live = await counter_docs(stats), await view_docs(stats)
    assert await rebuilt(stats) == live


class FailingViews(TicketViews):
    """Views whose store goes away after `budget` more views written."""

    budget = 10**9

    async def put_many(self, docs: list[Document], existing: set[str]) -> set[str]:
        written, self.budget = docs[: self.budget], max(0, self.budget - len(docs))
        there = await super().put_many(written, existing)
        if len(written) < len(docs):
            raise pymongo.errors.AutoReconnect("store went away")
        return there


async def test_crash_while_writing_views_counts_once(stats: StatsHarness) -> None:
    """A part of the views took the batch, the counters did not: applied again,
    the batch adds nothing twice, and what the views contribute to the dispatch
    quality moves once (from what each view recorded as counted before)."""
    views = FailingViews(stats.db)
    crashing = stats.aggregator_as("live", batch=30)
    crashing.views = views
    await stats.ingest(SHUFFLED[:25], chunk=25)
    await stats.archive_events(SHUFFLED[25:])
    stats.settle()
    views.budget = 3
    with pytest.raises(pymongo.errors.AutoReconnect):
        await crashing.step()
    views.budget = 10**9
    await crashing.catch_up()
    assert await total(stats, "received") == 10
    live = await counter_docs(stats), await view_docs(stats)
    assert await rebuilt(stats) == live
    summary = await stats.get("/v1/stats/summary", **{"from": "2025-03-10", "to": D3})
    assert summary["dispatch_quality"]["first_time_right"] == {
        "value": 0.875,
        "numerator": 7,
        "denominator": 8,
    }


# --- views of tickets seen for the first time ----------------------------------------------


class WatchedViews(TicketViews):
    """The views on the real store, noting which tickets' views were read."""

    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self.read: list[str] = []

    async def get_many(self, ids: list[str]) -> dict[str, Document]:
        self.read += ids
        return await super().get_many(ids)


async def test_a_ticket_whose_first_event_is_in_the_batch_is_written_without_a_read(
    stats: StatsHarness,
) -> None:
    watched = stats.aggregator.views = WatchedViews(stats.db)
    firsts = [e for e in EVENTS if e.event_type in ("received", "resolved_on_spot")]
    later = [e for e in EVENTS if e not in firsts]
    await stats.ingest([*firsts[:5], *later[:3]])
    early = {e.ticket_id for e in later[:3]} - {e.ticket_id for e in firsts[:5]}
    assert set(watched.read) == early  # only tickets whose first event was not there
    assert await stats.views.collection.count_documents({}) == len(early) + 5
    await stats.ingest([*firsts[5:], *later[3:]])
    assert await total(stats, "received") == 10
    live = await counter_docs(stats), await view_docs(stats)
    assert await rebuilt(stats) == live


async def test_a_first_event_arriving_after_the_ticket_s_view_was_written_counts_once(
    stats: StatsHarness,
) -> None:
    """Taken for a new ticket, it is inserted; the store says the view is there
    (another replica wrote it, this one does not hold it in memory), so it is
    read and rewritten with the step added, counted once."""
    story = TicketStory("LC20250312000077", district="guanxian", category=Category.HELP)
    received = story.received(city(D3, 9))
    dispatched = story.dispatched(city(D3, 9, 5), "guanxian.water", hours=24)
    await stats.ingest([dispatched])
    await stats.aggregator.release()
    other = stats.aggregator_as("replica-2")
    other.views = watched = WatchedViews(stats.db)
    await stats.archive_events([received, dispatched])  # the dispatch delivered again
    stats.settle()
    await other.catch_up()
    assert watched.read == [story.ticket_id]  # after the insert found it there
    view = await stats.views.get(story.ticket_id)
    assert view is not None and len(view["steps"]) == 2
    assert (await total(stats, "received"), await total(stats, "dispatched")) == (1, 1)
    live = await counter_docs(stats), await view_docs(stats)
    await other.release()
    assert await rebuilt(stats) == live


# --- lingering for a fuller batch ----------------------------------------------------------


class Burst(EventArchive):
    """The real inbox, into which the consumer archives one more chunk before
    each of the aggregator's reads: a burst arriving while it waits."""

    def __init__(self, stats: StatsHarness, chunks: list[list[TicketEvent]]) -> None:
        super().__init__(stats.db)
        self.stats, self.chunks, self.reads = stats, chunks, 0

    async def inbox_head(self, documents: int) -> list[Document]:
        self.reads += 1
        if self.chunks:
            await self.stats.archive_events(self.chunks.pop(0))
        return await super().inbox_head(documents)


@pytest.mark.parametrize(("burst_per_s", "reads", "folded"), [(100.0, 5, 4), (1000.0, 2, 2)])
async def test_a_batch_waits_again_while_a_burst_fills_the_inbox(
    stats: StatsHarness, burst_per_s: float, reads: int, folded: int
) -> None:
    """Four chunks of eight events, 0.01 s apart: 800 a second. A burst of at
    least 100 a second keeps the batch waiting until the inbox stops growing,
    and the batch folds all four; at 1000 a second, it waits once, as for a
    trickle, and folds two."""
    lingering = stats.aggregator_as("live", batch=2000)
    lingering.linger_s, lingering.burst_per_s = 0.01, burst_per_s
    lingering.archive = burst = Burst(stats, [EVENTS[i : i + 8] for i in range(0, 32, 8)])
    assert await lingering.step()
    assert burst.reads == reads
    assert await stats.views.collection.count_documents({}) == len(
        {e.ticket_id for e in EVENTS[: 8 * folded]}
    )
    assert await stats.archive.inbox_size() == 0


# --- one aggregator at a time ---------------------------------------------------------------


async def test_a_second_aggregator_waits_for_the_lease(stats: StatsHarness) -> None:
    await stats.ingest(EVENTS[:10])
    other = stats.aggregator_as("replica-2")
    await stats.archive_events(EVENTS[10:20])
    stats.settle()
    assert not await other.step()  # the live one holds the lease
    assert await total(stats, "received") == 2
    stats.clock.advance(timedelta(seconds=31))  # the live one died: its lease runs out
    assert await other.step()  # took over: the ten in the inbox
    assert await stats.archive.inbox_size() == 0
    assert not await stats.aggregator.step()  # and now the first one waits
    await other.release()
    await stats.archive_events(EVENTS[20:])
    stats.settle()
    await stats.aggregator.catch_up()
    assert await total(stats, "received") == 10


async def test_an_aggregator_that_lost_its_lease_mid_batch_stops_writing(
    stats: StatsHarness,
) -> None:
    """A batch slower than the lease: another aggregator took over meanwhile, so
    the slow one writes no counters and leaves the pinned batch to the other."""
    slow, other = stats.aggregator_as("slow"), stats.aggregator_as("other")

    class SlowViews(TicketViews):
        async def put_many(self, docs: list[Document], existing: set[str]) -> set[str]:
            there = await super().put_many(docs, existing)
            stats.clock.advance(timedelta(seconds=31))  # the lease ran out meanwhile
            assert await stats.meta.take_lease("other", stats.clock(), other.lease)
            return there

    slow.views = SlowViews(stats.db)
    await stats.archive_events(EVENTS)
    stats.settle()
    with pytest.raises(LeaseLost):
        await slow.step()
    assert await counter_docs(stats) == {}
    assert await stats.meta.pinned() is not None  # still pinned
    await other.catch_up()
    assert await total(stats, "received") == 10
    live = await counter_docs(stats), await view_docs(stats)
    await other.release()
    assert await rebuilt(stats) == live


async def test_live_aggregation_stands_aside_during_a_rebuild(stats: StatsHarness) -> None:
    await stats.ingest(EVENTS[:10])
    await stats.meta.pause("rebuild-1", stats.clock() + timedelta(hours=1))
    await stats.archive_events(EVENTS[10:])
    stats.settle()
    assert not await stats.aggregator.step()
    assert "lease" not in await stats.meta.info()  # given up for the rebuild to take
    await stats.meta.resume("rebuild-1")
    await stats.aggregator.catch_up()
    assert await total(stats, "received") == 10


# --- from the broker ------------------------------------------------------------------------


async def queue_depth(broker: Broker, name: str) -> int:
    channel = await broker.channel.get_underlay_channel()
    return int((await channel.queue_declare(name, passive=True)).message_count or 0)


async def publish_raw(broker: Broker, body: bytes, key: str = "ticket.received") -> None:
    message = aio_pika.Message(body=body, content_type="application/json")
    await broker.exchange.publish(message, routing_key=key)


def settled_by_stats(queue: str) -> float:
    """Messages of this queue the stats consumer acked or dead-lettered."""
    return sum(
        sample.value
        for metric in MESSAGES.collect()
        for sample in metric.samples
        if sample.name == "hotline_messages_total"
        and sample.labels["queue"] == queue
        and sample.labels["outcome"] in ("ok", "dead_lettered")
    )


async def consume(
    settings: CommonSettings,
    handler: BatchHandler[TicketEvent],
    publish: list[TicketEvent],
    poison: list[bytes],
    done: Callable[[], Awaitable[bool]],
    dead: int,
    beside: Handler[TicketEvent] | None = None,
) -> tuple[list[bytes], dict[str, int]]:
    """Run a BatchConsumer on the stats queue (and a plain consumer with the
    handler `beside` on the router queue, on the same channel), publish (the
    poison halfway), wait until done() and `dead` dead letters. Returns them, and
    what is left in the stats and router queues once the connection is closed:
    a message that was not acked is back there."""
    broker = Broker(settings.amqp_url, Topology.from_settings(settings), settings.prefetch)
    await broker.connect()
    queue = broker.topology.queue_name(broker.topology.spec("stats"))
    router = broker.topology.queue_name(broker.topology.spec("router"))
    try:
        consumers: list[Consumer | BatchConsumer[TicketEvent]] = []
        if beside is not None:
            consumers.append(Consumer(broker, "router", router, EVENT_ADAPTER, beside))
        consumers.append(
            BatchConsumer(broker, "stats", queue, EVENT_ADAPTER, handler, max_wait_s=0.02)
        )
        for consumer in consumers:
            await consumer.start()
        try:
            publisher = Publisher(broker.exchange, "test")
            for i, event in enumerate(publish):
                if i == len(publish) // 2:
                    for body in poison:
                        await publish_raw(broker, body)
                await publisher.publish(event)

            async def dead_letters_arrived() -> bool:
                dlq = broker.topology.dlq_name(queue)
                # Also wait until the consumer settled every message: done() can
                # be true while duplicates are still queued or prefetched, and a
                # prefetched message not yet settled goes back to the queue when
                # the connection closes.
                return (
                    await queue_depth(broker, dlq) == dead
                    and await queue_depth(broker, queue) == 0
                    and settled_by_stats(queue) >= len(publish) + len(poison)
                    and await done()
                )

            await eventually(dead_letters_arrived)
        finally:
            for consumer in consumers:
                await consumer.stop()
        dead_letters = await dlq_bodies(broker, queue)
    finally:
        await broker.close()
    after = Broker(settings.amqp_url, Topology.from_settings(settings), settings.prefetch)
    await after.connect()
    try:
        return dead_letters, {
            "stats": await queue_depth(after, queue),
            "router": await queue_depth(after, router),
        }
    finally:
        await after.close()


def unknown_version(event: TicketEvent) -> bytes:
    return event.model_dump_json().replace('"schema_version":1', '"schema_version":2').encode()


async def test_batch_consumer_archives_once_and_dead_letters_poison(
    settings: CommonSettings, stats: StatsHarness
) -> None:
    duplicates = random.Random(5).sample(EVENTS, 15)
    poison = [b"{not json", unknown_version(EVENTS[0])]
    handler = partial(archive_batch, archive=stats.archive, clock=stats.clock)

    async def all_archived() -> bool:
        return await stats.archive.count() == len(EVENTS)

    dead, left = await consume(settings, handler, SHUFFLED + duplicates, poison, all_archived, 2)
    assert sorted(dead) == sorted(poison)
    assert left["stats"] == 0
    assert await stats.archive.count() == len(EVENTS)
    stats.settle()
    await stats.aggregator.catch_up()
    summary = await stats.get("/v1/stats/summary", **{"from": "2025-03-10", "to": D3})
    assert summary["counts"]["received"] == 10
    assert summary["counts"]["resolved"] == 6
    assert summary["rates"]["response"]["numerator"] == 7


async def test_a_batch_failing_for_one_event_dead_letters_only_that_one(
    settings: CommonSettings, stats: StatsHarness
) -> None:
    bad = EVENTS[7]

    async def handler(events: list[TicketEvent]) -> None:
        if bad in events:
            raise ValueError("this event cannot be stored")
        await archive_batch(events, archive=stats.archive, clock=stats.clock)

    async def others_archived() -> bool:
        return await stats.archive.count() == len(EVENTS) - 1

    dead, left = await consume(settings, handler, EVENTS, [], others_archived, 1)
    assert left["stats"] == 0
    assert [EVENT_ADAPTER.validate_json(body).event_id for body in dead] == [bad.event_id]
    archived = {r["_id"] for r in await stats.archive.for_ticket(bad.ticket_id)}
    assert str(bad.event_id) not in archived
    assert len(archived) == len(HISTORY[bad.ticket_id]) - 1


async def test_store_outage_requeues_the_batch_without_dead_letters(
    settings: CommonSettings, stats: StatsHarness
) -> None:
    outages = [pymongo.errors.AutoReconnect("store restarting")]

    async def handler(events: list[TicketEvent]) -> None:
        if outages:
            raise outages.pop()
        await archive_batch(events, archive=stats.archive, clock=stats.clock)

    async def all_archived() -> bool:
        return await stats.archive.count() == len(EVENTS)

    dead, left = await consume(settings, handler, EVENTS, [], all_archived, 0)
    assert (dead, left["stats"], outages) == ([], 0, [])


async def test_a_consumer_sharing_the_channel_keeps_its_messages(
    settings: CommonSettings, stats: StatsHarness
) -> None:
    """Another consumer takes delivery tags on the batch consumer's channel: the
    batch consumer then acks message by message, and never acks one of the
    other consumer's on its behalf (a multiple-ack would)."""

    async def router_never_done(event: TicketEvent) -> None:
        await asyncio.Event().wait()  # still at work when the connection closes

    handler = partial(archive_batch, archive=stats.archive, clock=stats.clock)

    async def all_archived() -> bool:
        return await stats.archive.count() == len(EVENTS)

    dead, left = await consume(
        settings, handler, EVENTS, [], all_archived, 0, beside=router_never_done
    )
    assert dead == []
    # Every router-bound event is back in its queue: none was acked for it.
    routed = sum(e.event_type in ("received", "feedback") for e in EVENTS)
    assert left == {"stats": 0, "router": routed}
