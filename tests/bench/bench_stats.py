"""Stats ingestion throughput and report latency on the local servers.

Ingestion: about 30,000 realistic events of 6,000 tickets, shuffled as on a busy
day, published with confirms to the ticket exchange beforehand, then drained by
one BatchConsumer wired as services/stats/main.py wires it (archive_batch):
archived events per second, from the consumer's start to the last archived
event. Then one Aggregator folds the archive into views and counters, batch by
batch for AGGREGATE_BUDGET_S: events aggregated per second.

Summary latency: the counter documents a month of 200,000 tickets would produce
(30 days x the reference city's departments, districts, categories and channels,
plus the roll-ups; built directly, per ticket, with the measures' buckets), then
GET /v1/stats/summary over the month through the API in-process: no filter, one
filter (department or district), two filters (department and district); up to
QUERIES of each kind, fewer when they take longer than QUERY_BUDGET_S.

Everything lives in a namespace of its own, removed by name afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from services.stats.aggregator import SETTLE, Aggregator
from services.stats.api import StatsApi, build_router
from services.stats.handlers import archive_batch
from services.stats.measures import Bucket, histogram_field
from services.stats.repository import Counters, EventArchive, Meta, TicketViews
from shared.access import install_access, open_access
from shared.bootstrap import connect
from shared.directory import Directory, load_directory
from shared.domain import Category, Channel
from shared.events import EVENT_ADAPTER, Rating, TicketEvent, utcnow
from shared.keys import KeyKind
from shared.messaging.publisher import Publisher
from shared.mongo import Document, create_client
from shared.settings import StatsSettings
from tests.stats_support import TicketStory
from tests.support import ensure_servers, purge_namespace, unique_namespace

TICKETS = 6_000
MONTH_TICKETS = 200_000
MONTH_START = date(2025, 4, 1)
DAYS = 30
QUERIES = 60  # per kind of filter, at most
MIN_QUERIES = 3
QUERY_BUDGET_S = 40.0
AGGREGATE_BUDGET_S = 20.0
AGGREGATE_BATCH = 500
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


async def measure_ingestion(settings: StatsSettings, city: City) -> list[str]:
    events = generate_events(city, TICKETS)
    infra = await connect(settings, "stats")
    try:
        archive, views = EventArchive(infra.db), TicketViews(infra.db)
        counters, meta = Counters(infra.db), Meta(infra.db)
        for repo in (archive, views, counters):
            await repo.ensure_indexes()
        published_per_s = await publish_all(Publisher(infra.broker.exchange, "bench"), events)
        logger.info("published %d events, %.0f/s", len(events), published_per_s)

        archived, storing_s = 0, 0.0
        all_in = asyncio.Event()
        store = partial(archive_batch, archive=archive, clock=lambda: datetime.now(UTC))
        batches: list[int] = []

        async def handler(batch: list[TicketEvent]) -> None:
            nonlocal archived, storing_s
            before = time.perf_counter()
            await store(batch)
            storing_s += time.perf_counter() - before
            archived += len(batch)
            batches.append(len(batch))
            if archived >= len(events):
                all_in.set()

        started = time.perf_counter()
        await infra.consume_batches(EVENT_ADAPTER, handler)
        await asyncio.wait_for(all_in.wait(), timeout=120)
        archive_s = time.perf_counter() - started
        logger.info("archived in %.1f s, %.1f s of it in the store", archive_s, storing_s)
        for consumer in infra.consumers:
            await consumer.stop()
        assert await archive.count() == len(events), "every event archived once"

        aggregated, aggregate_s = await aggregate_for_a_while(infra.db, views, counters, meta)
        logger.info("aggregated %d events in %.1f s", aggregated, aggregate_s)
    finally:
        await infra.close()
    return [
        f"BENCH stats.events_per_s {len(events) / archive_s:.0f} 1/s",
        f"BENCH stats.aggregated_events_per_s {aggregated / aggregate_s:.0f} 1/s",
        f"BENCH stats.published_events_per_s {published_per_s:.0f} 1/s",
        f"BENCH stats.ingest_mean_batch {statistics.mean(batches):.1f} events",
    ]


class CountingArchive(EventArchive):
    """The archive, counting what the aggregator reads from it."""

    read = 0

    async def after(self, seq: str, before: str, limit: int) -> list[Document]:
        docs = await super().after(seq, before, limit)
        self.read += len(docs)
        return docs


async def aggregate_for_a_while(
    db: AsyncDatabase[Document], views: TicketViews, counters: Counters, meta: Meta
) -> tuple[int, float]:
    """Fold the archive into views and counters, batch by batch, for at most
    AGGREGATE_BUDGET_S (the rest is left: the figure is a rate)."""
    counting = CountingArchive(db)
    # Read the archive from a little ahead, so that everything has settled.
    aggregator = Aggregator(
        counting,
        views,
        counters,
        meta,
        CITY,
        lambda: datetime.now(UTC) + SETTLE * 2,
        "bench",
        batch=AGGREGATE_BATCH,
    )
    started = time.perf_counter()
    while await aggregator.step():
        if time.perf_counter() - started > AGGREGATE_BUDGET_S:
            break
    return counting.read, time.perf_counter() - started


# --- (b) summary latency --------------------------------------------------------------------


def month_counters(city: City) -> list[Document]:
    """The counter documents a month of MONTH_TICKETS tickets produces: each
    ticket's increments in its full buckets, then every roll-up."""
    rng = random.Random(2025)
    full: dict[Bucket, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for _ in range(MONTH_TICKETS):
        add_ticket(rng, city, full)
    every: dict[Bucket, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for bucket, counts in full.items():
        for target in bucket.rollups():
            for name, value in counts.items():
                every[target][name] += value
    # As the aggregator stores them: only the counters a bucket has.
    return [
        {
            "_id": bucket.key,
            **bucket._asdict(),
            "rollup": bucket.rollup,
            **{name: value for name, value in counts.items() if value},
            "applied_upto": "bench",
        }
        for bucket, counts in every.items()
    ]


def add_ticket(rng: random.Random, city: City, full: dict[Bucket, dict[str, float]]) -> None:
    """What measures.increments would add for one ticket's life, written directly
    (building a million event objects would take longer than the bench may)."""
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


async def insert_counters(counters: Counters, docs: list[Document]) -> float:
    started = time.perf_counter()
    await counters.insert_many(docs)
    return len(docs) / (time.perf_counter() - started)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


async def time_summaries(
    http: httpx.AsyncClient, queries: dict[str, list[dict[str, str]]]
) -> dict[str, list[float]]:
    """Milliseconds per query, kind by kind: all the queries of a kind, or as many
    as QUERY_BUDGET_S allows (at least MIN_QUERIES)."""
    end = (MONTH_START + timedelta(DAYS - 1)).isoformat()
    month = {"from": MONTH_START.isoformat(), "to": end}
    timings: dict[str, list[float]] = {}
    for kind, params in queries.items():
        timings[kind] = []
        budget_end = time.perf_counter() + QUERY_BUDGET_S
        for extra in params:
            started = time.perf_counter()
            response = await http.get("/v1/stats/summary", params={**month, **extra})
            timings[kind].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
            if len(timings[kind]) >= MIN_QUERIES and time.perf_counter() > budget_end:
                break
    return timings


async def measure_summary(settings: StatsSettings, city: City) -> list[str]:
    docs = month_counters(city)
    client = create_client(settings, timeout_ms=30_000)
    try:
        db = client[f"{settings.mongo_db_prefix}_stats_month"]
        counters = Counters(db)
        await counters.ensure_indexes()
        logger.info("%d counter documents", len(docs))
        inserted_per_s = await insert_counters(counters, docs)
        logger.info("inserted, %.0f/s", inserted_per_s)
        app = FastAPI()
        app.include_router(build_router(StatsApi(TicketViews(db), counters, CITY)))
        # Every call carries a staff key, verified as in production (cached briefly).
        access = open_access(client, settings, None)
        install_access(app, access)
        staff = (await access.store.issue(KeyKind.STAFF, "bench", utcnow()))[1]
        rng = random.Random(7)
        pairs = [(d, rng.choice(city.units.get(d) or [d])) for d in city.districts]
        queries: dict[str, list[dict[str, str]]] = {
            "no_filter": [{} for _ in range(QUERIES)],
            "one_filter": [
                {"department": rng.choice(city.city_departments)}
                if i % 2
                else {"district": rng.choice(city.districts)}
                for i in range(QUERIES)
            ],
            "two_filters": [
                {"district": d, "department": dep} for d, dep in rng.choices(pairs, k=QUERIES)
            ],
        }
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://stats", headers={"X-API-Key": staff}
        ) as http:
            await time_summaries(http, {"warm-up": [{}] * MIN_QUERIES})
            timings = await time_summaries(http, queries)
        await client.drop_database(db.name)
    finally:
        await client.close()
    every = [t for values in timings.values() for t in values]
    lines = [f"BENCH stats.summary_p99_ms {p99(every):.1f} ms"]
    for kind, values in timings.items():
        logger.info("%s: %d queries", kind, len(values))
        lines.append(f"BENCH stats.summary_p99_ms.{kind} {p99(values):.1f} ms")
        lines.append(f"BENCH stats.summary_p50_ms.{kind} {statistics.median(values):.1f} ms")
    lines.append(f"BENCH stats.month_counter_docs {len(docs)} docs")
    lines.append(f"BENCH stats.counter_docs_inserted_per_s {inserted_per_s:.0f} 1/s")
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
