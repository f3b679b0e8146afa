"""Stats ingestion throughput and report latency on the local servers.

Ingestion: about 30,000 realistic events of 6,000 tickets, shuffled as on a busy
day, published with confirms to the ticket exchange beforehand; then the
BatchConsumer archives them (archive_batch, which also fills the aggregator's
inbox) while an Aggregator folds the inbox into views and roll-ups, both
running as services/stats/main.py runs them: archived and aggregated events
per second, each from the consumer's start until the last event was archived,
or applied.

Summary latency: the roll-up documents a month of 200,000 tickets produces (30
days x the reference city's departments, districts, categories and channels;
built per ticket with the measures' buckets and laid out by
services.stats.rollups, inserted in bulk), then GET /v1/stats/summary over the
month through the API in-process, QUERIES times for each filter combination
the API accepts: none, each dimension, each pair, each triple, all four.

Store work: a PyMongo command listener (bench only) counts the commands and
the statements in them (an update command of 90 updates is 90) the consumer
and the aggregator send while ingesting, per event, and logs the split per
command and collection with the store's time for each.

Sizes: HOTLINE_BENCH_STATS_TICKETS, HOTLINE_BENCH_STATS_MONTH_TICKETS,
HOTLINE_BENCH_STATS_QUERIES. Everything lives in a namespace of its own,
removed by name afterwards.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import combinations
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from services.stats.aggregator import Aggregator
from services.stats.api import StatsApi, build_router
from services.stats.handlers import archive_batch
from services.stats.measures import DIMENSIONS, Bucket, histogram_field
from services.stats.repository import Counters, EventArchive, Meta, TicketViews
from services.stats.rollups import Increments, as_document, field
from shared.access import install_access, open_access
from shared.bootstrap import Infra, connect
from shared.directory import Directory, load_directory
from shared.domain import Category, Channel
from shared.events import EVENT_ADAPTER, Rating, TicketEvent, utcnow
from shared.keys import KeyKind
from shared.messaging.publisher import Publisher
from shared.mongo import Document, create_client, service_database
from shared.settings import StatsSettings
from tests.stats_support import TicketStory
from tests.storeops import HOUSEKEEPING, Commands
from tests.support import ensure_servers, purge_namespace, unique_namespace

TICKETS = int(os.environ.get("HOTLINE_BENCH_STATS_TICKETS", "6000"))
MONTH_TICKETS = int(os.environ.get("HOTLINE_BENCH_STATS_MONTH_TICKETS", "200000"))
MONTH_START = date(2025, 4, 1)
DAYS = 30
QUERIES = int(os.environ.get("HOTLINE_BENCH_STATS_QUERIES", "40"))  # per combination
RETURN_REASONS = ("不属于本单位职责", "地址不在辖区", "应由县级部门办理", "重复派单")
PUBLISH_WINDOW = 200
CITY = ZoneInfo("Asia/Shanghai")
logger = logging.getLogger("bench_stats")

CATEGORIES = {
    Category.COMPLAINT: 35,
    Category.HELP: 25,
    Category.CONSULTATION: 20,
    Category.REPORT: 10,
    Category.SUGGESTION: 7,
    Category.PRAISE: 3,
}
CHANNELS = {
    Channel.PHONE: 60,
    Channel.WECHAT: 12,
    Channel.APP: 8,
    Channel.WEB: 8,
    Channel.SMS: 5,
    Channel.OPEN311: 5,
    Channel.EMAIL: 2,
}


@dataclass
class City:
    """Who handles what where: each district's own units and the city departments."""

    districts: list[str]
    district_weights: list[int]
    units: dict[str, list[str]]
    city_departments: list[str]

    @classmethod
    def of(cls, directory: Directory) -> City:
        units: dict[str, list[str]] = defaultdict(list)
        city_departments = []
        for dep in directory.departments.values():
            if dep.id == "city.platform":
                continue
            district = directory.district(dep.district) if dep.district else None
            if district is None:
                city_departments.append(dep.id)
            else:
                units[district.id].append(dep.id)
        districts = sorted(directory.districts)
        weights = [4 if d == "dongchangfu" else 1 if d.endswith("zone") else 2 for d in districts]
        return cls(districts, weights, dict(units), sorted(city_departments))

    def ticket(self, rng: random.Random) -> tuple[str, str, Category, Channel]:
        district = rng.choices(self.districts, self.district_weights)[0]
        own = self.units.get(district) or [district]
        department = rng.choice(own) if rng.random() < 0.55 else rng.choice(self.city_departments)
        category = rng.choices(list(CATEGORIES), list(CATEGORIES.values()))[0]
        channel = rng.choices(list(CHANNELS), list(CHANNELS.values()))[0]
        return district, department, category, channel


# Where a bulk command lists its statements.
BULK = {"insert": "documents", "update": "updates", "delete": "deletes"}


class StoreWork(Commands):
    """Commands as tests.storeops counts them, and also the statements in each
    (the dev store spends its time per statement, bulk or not) and the store's
    time, per (command, collection)."""

    def __init__(self) -> None:
        super().__init__()
        self.statements: Counter[tuple[str, str]] = Counter()
        self.micros: Counter[tuple[str, str]] = Counter()
        self._keys: dict[int, tuple[str, str]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        super().started(event)
        key = (event.command_name, str(event.command.get(event.command_name)))
        self._keys[event.request_id] = key
        part = BULK.get(event.command_name)
        self.statements[key] += len(event.command.get(part) or [None]) if part else 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._finished(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._finished(event)

    def _finished(self, event: Any) -> None:
        key = self._keys.pop(event.request_id, None)
        if key is not None:
            self.micros[key] += event.duration_micros

    def reset(self) -> None:
        super().reset()
        self.statements.clear()
        self.micros.clear()

    def lines(self, events: int) -> list[str]:
        """BENCH lines per event, and the split logged (most store time first)."""
        work = [k for k in self.sent if k[0] not in HOUSEKEEPING]
        for key in sorted(work, key=lambda k: -self.micros[k]):
            logger.info(
                "%-8s %-10s %6d commands %7d statements %7.1f s",
                *key,
                self.sent[key],
                self.statements[key],
                self.micros[key] / 1e6,
            )
        statements = sum(self.statements[k] for k in work)
        return [
            f"BENCH stats.store_commands_per_event {self.operations() / events:.3f} ops",
            f"BENCH stats.store_statements_per_event {statements / events:.3f} ops",
        ]


# --- (a) ingestion --------------------------------------------------------------------------


def ticket_life(rng: random.Random, city: City, n: int, start: datetime) -> list[TicketEvent]:
    """One ticket's events, as the router and notifier would publish them."""
    district, department, category, channel = city.ticket(rng)
    s = TicketStory(
        f"LC{start:%Y%m%d}-{n:05d}", district, category, channel, "路灯不亮，晚上出行不便"
    )
    at = start + timedelta(seconds=rng.uniform(0, 86_400))
    if rng.random() < 0.08:
        return [s.resolved_on_spot(at)]
    events: list[TicketEvent] = [s.received(at)]
    at += timedelta(minutes=rng.uniform(1, 10))
    events.append(s.dispatched(at, department, hours=rng.choice([24, 48, 120])))
    if rng.random() < 0.05:
        at += timedelta(hours=1)
        events += [s.returned(at), s.dispatched(at, rng.choice(city.city_departments), hours=48)]
    at += timedelta(hours=rng.expovariate(1 / 1.5))
    events.append(s.accepted(at))
    at += timedelta(hours=rng.expovariate(1 / 20))
    events.append(s.resolved(at))
    if rng.random() < 0.6:  # the others are not rated yet
        at += timedelta(hours=rng.uniform(1, 24))
        rating = rng.choices(list(Rating), [70, 22, 8])[0]
        solved = rating != Rating.UNSATISFIED
        events += [s.feedback(at, rating, solved), s.closed(at, rating, solved)]
    return events


def generate_events(city: City, tickets: int) -> list[TicketEvent]:
    rng = random.Random(12345)
    start = datetime(2025, 3, 10, tzinfo=CITY)
    events = [e for n in range(tickets) for e in ticket_life(rng, city, n, start)]
    rng.shuffle(events)  # many tickets in flight at once, as on a busy day
    return events


async def publish_all(publisher: Publisher, events: list[TicketEvent]) -> float:
    started = time.perf_counter()
    for i in range(0, len(events), PUBLISH_WINDOW):
        await asyncio.gather(*(publisher.publish(e) for e in events[i : i + PUBLISH_WINDOW]))
    return len(events) / (time.perf_counter() - started)


@dataclass
class Stores:
    """The service's repositories on a client whose commands are counted, and
    the bench's own view of the store (polling it is not the service's work)."""

    archive: EventArchive
    views: TicketViews
    counters: Counters
    meta: Meta
    polled: tuple[EventArchive, Meta]

    @classmethod
    def of(cls, counted: AsyncDatabase[Document], plain: AsyncDatabase[Document]) -> Stores:
        polled = (EventArchive(plain), Meta(plain))
        return cls(
            EventArchive(counted), TicketViews(counted), Counters(counted), Meta(counted), polled
        )


async def measure_ingestion(settings: StatsSettings, city: City) -> list[str]:
    """The consumer archives and the aggregator folds, both running as
    services/stats/main.py runs them, on a queue filled beforehand."""
    events = generate_events(city, TICKETS)
    work = StoreWork()
    counted: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongo_url, tz_aware=True, uuidRepresentation="standard", event_listeners=[work]
    )
    infra = await connect(settings, "stats")
    try:
        stores = Stores.of(service_database(counted, settings, "stats"), infra.db)
        for repo in (stores.archive, stores.views, stores.counters):
            await repo.ensure_indexes()
        published_per_s = await publish_all(Publisher(infra.broker.exchange, "bench"), events)
        logger.info("published %d events, %.0f/s", len(events), published_per_s)
        work.reset()
        archive_s, aggregate_s, batches = await ingest(infra, stores, len(events))
        assert await stores.archive.count() == len(events), "every event archived once"
        assert await stores.views.collection.count_documents({}) == TICKETS, "every ticket viewed"
    finally:
        await infra.close()
        await counted.close()
    return [
        f"BENCH stats.events_per_s {len(events) / archive_s:.0f} 1/s",
        f"BENCH stats.aggregated_events_per_s {len(events) / aggregate_s:.0f} events/s",
        f"BENCH stats.published_events_per_s {published_per_s:.0f} 1/s",
        f"BENCH stats.ingest_mean_batch {statistics.mean(batches):.1f} events",
        *work.lines(len(events)),
    ]


async def ingest(infra: Infra, stores: Stores, total: int) -> tuple[float, float, list[int]]:
    """Seconds until every event was archived, and aggregated; the consumer's batches."""
    aggregator = Aggregator(
        stores.archive, stores.views, stores.counters, stores.meta, CITY, _now, "bench"
    )
    batches: list[int] = []

    async def handler(batch: list[TicketEvent]) -> None:
        await archive_batch(batch, archive=stores.archive, clock=_now)
        batches.append(len(batch))

    started = time.perf_counter()
    await infra.consume_batches(EVENT_ADAPTER, handler)
    folding = asyncio.create_task(aggregator.run())
    archive_s = await _until(lambda: _archived(batches, total), started)
    # Polled less often: reading the inbox's head costs the store a document
    # of hundreds of events, which would slow the aggregator it measures.
    aggregate_s = await _until(lambda: _aggregated(*stores.polled), started, poll_s=0.25)
    folding.cancel()
    logger.info("archived in %.1f s, aggregated in %.1f s", archive_s, aggregate_s)
    for consumer in infra.consumers:
        await consumer.stop()
    return archive_s, aggregate_s, batches


def _now() -> datetime:
    return datetime.now(UTC)


async def _archived(batches: list[int], total: int) -> bool:
    return sum(batches) >= total


async def _aggregated(archive: EventArchive, meta: Meta) -> bool:
    """(Once every event was archived:) the inbox drained and its last batch
    applied. The pin is read first: by _id, while a batch is being folded."""
    return await meta.pinned() is None and not await archive.inbox_head(1)


async def _until(
    done: Callable[[], Awaitable[bool]], started: float, poll_s: float = 0.05
) -> float:
    """Seconds from `started` until `done`, checked every poll_s (at most 10 min)."""
    deadline = started + 600
    while not await done():
        if time.perf_counter() > deadline:
            raise TimeoutError("the stats bench did not finish in 10 minutes")
        await asyncio.sleep(poll_s)
    return time.perf_counter() - started


# --- (b) summary latency --------------------------------------------------------------------


def month_rollups(city: City) -> list[Document]:
    """The roll-up documents a month of MONTH_TICKETS tickets produces: each
    ticket's increments in its buckets, then laid out as the aggregator lays
    them out (services.stats.rollups.Increments)."""
    rng = random.Random(2025)
    full: dict[Bucket, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for _ in range(MONTH_TICKETS):
        add_ticket(rng, city, full)
    merged = Increments()
    for bucket, counts in full.items():
        merged.add(bucket, counts)
    return [
        {"_id": key, **merged.about[key], **as_document(paths), "applied": "bench"}
        for key, paths in merged.docs.items()
    ]


def add_ticket(rng: random.Random, city: City, full: dict[Bucket, dict[str, float]]) -> None:
    """What measures.increments and the dispatch quality would add for one
    ticket's life, written directly (building a million event objects would
    take longer than the bench may)."""
    district, department, category, channel = city.ticket(rng)
    day = rng.randrange(DAYS)

    def at(offset: int, dep: str = department) -> dict[str, float]:
        when = (MONTH_START + timedelta(days=min(day + offset, DAYS - 1))).isoformat()
        return full[Bucket(when, dep, district, str(category), str(channel))]

    at(0, "")["received"] += 1
    if rng.random() < 0.08:
        at(0, "")["resolved_on_spot"] += 1
        return
    here = at(0)
    here["dispatched"] += 1
    here["accepted"] += 1
    here["accepted_in_time"] += rng.random() < 0.9
    add_quality(rng, city, here, department)
    handling = rng.expovariate(1 / 20) * 3600
    done, due = at(int(handling // 86_400)), at(rng.choice([1, 2, 5]))
    on_time = rng.random() < 0.92
    done["resolved"] += 1
    done["resolved_on_time"] += on_time
    done["handling_seconds_sum"] += handling
    done[histogram_field(handling)] += 1
    due["due_resolved"] += 1
    if not on_time:
        due["due_late_resolved"] += 1
        due["due_overdue"] += 1
        due["overdue_notices"] += 1
    if rng.random() < 0.6:
        satisfied = rng.random() < 0.92
        done["closed"] += 1
        done["rated"] += 1
        done["rated_satisfied"] += satisfied
        done["rated_solved"] += satisfied and rng.random() < 0.95


def add_quality(rng: random.Random, city: City, here: dict[str, float], department: str) -> None:
    """A dispatch's contribution to the dispatch quality, as contribution() makes it."""
    decider = field(rng.choices(("rule", "list", "model", "manual"), (70, 15, 10, 5))[0])
    here[f"q.d.{decider}"] += 1
    if rng.random() < 0.93:
        here[f"q.r.{decider}"] += 1
        return
    here[f"q.why.{field(rng.choice(RETURN_REASONS))}"] += 1
    final = rng.choice(city.city_departments)
    if final != department:
        here[f"q.mis.{field(department)}|{field(final)}"] += 1


async def insert_rollups(counters: Counters, docs: list[Document]) -> float:
    started = time.perf_counter()
    for start in range(0, len(docs), 1000):
        await counters.collection.insert_many(docs[start : start + 1000], ordered=False)
    return time.perf_counter() - started


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def combination_name(dims: tuple[str, ...]) -> str:
    return "_".join(dims) or "no_filter"


def month_queries(city: City) -> dict[str, list[dict[str, str]]]:
    """QUERIES summaries of each filter combination the API accepts: none, each
    dimension, each pair, each triple and all four."""
    rng = random.Random(7)

    def values() -> dict[str, str]:
        district, department, category, channel = city.ticket(rng)
        return {
            "department": department,
            "district": district,
            "category": str(category),
            "channel": str(channel),
        }

    return {
        combination_name(dims): [
            {d: v for d, v in values().items() if d in dims} for _ in range(QUERIES)
        ]
        for n in range(len(DIMENSIONS) + 1)
        for dims in combinations(DIMENSIONS, n)
    }


async def time_summaries(
    http: httpx.AsyncClient, queries: dict[str, list[dict[str, str]]]
) -> dict[str, list[float]]:
    """Milliseconds per query, combination by combination."""
    end = (MONTH_START + timedelta(DAYS - 1)).isoformat()
    month = {"from": MONTH_START.isoformat(), "to": end}
    timings: dict[str, list[float]] = {}
    for kind, params in queries.items():
        timings[kind] = []
        for extra in params:
            started = time.perf_counter()
            response = await http.get("/v1/stats/summary", params={**month, **extra})
            timings[kind].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    return timings


async def measure_summary(settings: StatsSettings, city: City) -> list[str]:
    started = time.perf_counter()
    docs = month_rollups(city)
    client = create_client(settings, timeout_ms=30_000)
    try:
        db = client[f"{settings.mongo_db_prefix}_stats_month"]
        counters = Counters(db)
        await counters.ensure_indexes()
        insert_s = await insert_rollups(counters, docs)
        seed_s = time.perf_counter() - started
        seeded = len(docs)
        logger.info("%d roll-up documents, seeded in %.1f s", seeded, seed_s)
        # The service holds no month of documents: nor does the bench while it
        # times, or a full collection of Python's memory would stall a query.
        del docs
        gc.collect()
        app = FastAPI()
        app.include_router(build_router(StatsApi(TicketViews(db), counters, CITY)))
        # Every call carries a staff key, verified as in production (cached briefly).
        access = open_access(client, settings, None)
        install_access(app, access)
        staff = (await access.store.issue(KeyKind.STAFF, "bench", utcnow()))[1]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://stats", headers={"X-API-Key": staff}
        ) as http:
            await time_summaries(http, {"warm-up": [{}] * 3})
            timings = await time_summaries(http, month_queries(city))
        await client.drop_database(db.name)
    finally:
        await client.close()
    every = [t for values in timings.values() for t in values]
    lines = [
        f"BENCH stats.summary_p99_ms {p99(every):.1f} ms",
        f"BENCH stats.summary_p50_ms {statistics.median(every):.1f} ms",
    ]
    lines += [f"BENCH stats.summary_p99_ms.{k} {p99(v):.1f} ms" for k, v in timings.items()]
    lines.append(f"BENCH stats.month_tickets {MONTH_TICKETS} tickets")
    lines.append(f"BENCH stats.month_rollup_docs {seeded} docs")
    lines.append(f"BENCH stats.month_seed_s {seed_s:.1f} s")
    lines.append(f"BENCH stats.rollup_docs_inserted_per_s {seeded / insert_s:.0f} 1/s")
    return lines


# --- the whole bench ------------------------------------------------------------------------


async def measure() -> list[str]:
    namespace = unique_namespace()
    settings = StatsSettings(amqp_namespace=namespace, mongo_db_prefix=namespace)
    city = City.of(load_directory(settings.districts_file, settings.directory_file))
    try:
        return [*await measure_ingestion(settings, city), *await measure_summary(settings, city)]
    finally:
        await purge_namespace(settings, ("stats_month",))


def run() -> Iterator[str]:
    ensure_servers()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logger.setLevel(logging.INFO)
    yield from asyncio.run(measure())


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
