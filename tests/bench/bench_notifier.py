"""Notifier timers and deliveries on the local store.

Timer lag: 10,000 pending timers in the store (urging, warnings, overdue
notices). DUE_IN_WINDOW of them fall due evenly over WINDOW_S seconds
(STREAM_RATE a second: the reference city fires a few thousand such notices a
day, well under one a second even in its busiest hour); the others are due
hours to days later and only weigh on the store. They are fired by one notifier
assembled as services/notifier/main.py assembles it (timer worker, delivery
worker, real broker, webhooks to a local receiver). Lag is fired_at minus the
due time, read from the timer documents.

Burst: BURST timers all due at the same instant (a backlog after an outage);
timers fired per second until the last has fired: the most one notifier fires
on this store.

The runs are bounded (make bench must end within minutes): timers still unfired
when a window closes count with the lag they have reached by then, so a
reported figure is then a lower bound, and a line on stderr says so.

Delivery rate: a backlog of pending deliveries, drained by one delivery worker
against the same receiver for at most DRAIN_WINDOW_S; deliveries completed per
second.

Everything lives in a namespace of its own on the local servers, removed after
by name (listing databases would touch every database on the shared store).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.notifier.assembly import NotifierParts, assemble
from shared.bootstrap import Infra, connect
from shared.clock import Clock
from shared.directory import Directory, load_directory
from shared.mongo import Document
from shared.settings import DATA_DIR, NotifierSettings
from shared.workcalendar import WorkCalendar
from tests.bench.notices import answer_ok
from tests.e2e.cluster import free_port
from tests.support import ensure_servers, purge_namespace, unique_namespace

TIMERS = 10_000
WINDOW_S = 60.0
STREAM_RATE = 20.0  # timers falling due per second within the window
DUE_IN_WINDOW = int(WINDOW_S * STREAM_RATE)
LEAD_S = 20.0  # from the end of the inserts to the first due time
LATER_S = (2 * 3600.0, 48 * 3600.0)  # when the rest fall due
BURST = 2_000
GRACE_S = 30.0  # after the last due time, before a window closes
BACKLOG = 2_000
DRAIN_WINDOW_S = 30.0
KINDS = ("urge", "warning", "overdue")
DEPARTMENTS = ("guanxian.water", "yanggu.urban-mgmt", "city.power", "dongchangfu.env")
INSERT_CHUNK = 1000
DIMS = {"district": "guanxian", "category": "help", "channel": "phone", "priority": "normal"}


# --- a department endpoint in a process of its own ----------------------------------------


def _serve(port: int) -> None:
    async def main() -> None:
        server = await asyncio.start_server(answer_ok, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@contextlib.contextmanager
def receiver() -> Iterator[int]:
    port = free_port()
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,))
    process.start()
    try:
        for _ in range(200):
            try:
                httpx.post(f"http://127.0.0.1:{port}/", content=b"{}")
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the bench's webhook receiver did not start")
        yield port
    finally:
        process.terminate()
        process.join()


def directory_at(port: int, folder: Path) -> Directory:
    raw = json.loads((DATA_DIR / "departments.json").read_text(encoding="utf-8"))
    for dep in raw["departments"]:
        dep["contact"] = {"webhook": f"http://127.0.0.1:{port}/hooks/{dep['id']}"}
    path = folder / "departments.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return load_directory(DATA_DIR / "districts.json", path)


# --- the notifier, wired as main.py wires it ---------------------------------------------


class Bench:
    """The notifier's parts, assembled as services/notifier/main.py assembles them."""

    def __init__(self, parts: NotifierParts, clock: Clock, http: httpx.AsyncClient) -> None:
        self.parts = parts
        self.clock = clock
        self.http = http
        self.deliveries = parts.deliveries
        self.timers = parts.timers
        self.delivery_worker = parts.delivery_worker
        self.timer_worker = parts.timer_worker

    @classmethod
    async def open(cls, settings: NotifierSettings, infra: Infra, directory: Directory) -> Bench:
        clock = Clock()
        http = httpx.AsyncClient(timeout=settings.webhook_timeout_s)
        calendar = WorkCalendar(settings.timezone)
        parts = await assemble(settings, infra, directory, calendar, clock, http)
        return cls(parts, clock, http)

    async def close(self) -> None:
        await self.http.aclose()


def timer_doc(i: int, due: datetime, now: datetime, prefix: str = "BENCH") -> Document:
    kind = KINDS[i % len(KINDS)]
    deadline = now + timedelta(days=5)
    ticket = f"{prefix}-{i:05d}"
    return {
        "_id": f"{ticket}:g1:{kind}:0",
        "ticket_id": ticket,
        "generation": "g1",
        "kind": kind,
        "seq": 0,
        "due_at": due,
        "original_due_at": due,
        "status": "pending",
        "attempt_no": 0,
        "department": DEPARTMENTS[i % len(DEPARTMENTS)],
        "deadline": deadline if kind != "overdue" else due,
        "response_deadline": due if kind == "urge" else now,
        "dims": DIMS,
        "created_at": now,
    }


def delivery_doc(i: int, port: int, now: datetime) -> Document:
    department = DEPARTMENTS[i % len(DEPARTMENTS)]
    text = f"{department}：工单BL-{i:05d}将于2026-12-01 10:00到期，请抓紧办理并及时答复市民。"
    return {
        "_id": f"backlog-{i:05d}:{department}:webhook",
        "ticket_id": f"BL-{i:05d}",
        "department": department,
        "kind": "warning",
        "channel": "webhook",
        "target": f"http://127.0.0.1:{port}/hooks/{department}",
        "subject": f"【12345黄牌预警】BL-{i:05d}",
        "text": text,
        "body": {"kind": "warning", "ticket_id": f"BL-{i:05d}", "text": text},
        "created_at": now,
        "next_attempt_at": now,
        "status": "pending",
        "attempt_no": 0,
        "attempts": [],
    }


async def insert(collection: Any, docs: list[Document]) -> None:
    for start in range(0, len(docs), INSERT_CHUNK):
        await collection.insert_many(docs[start : start + INSERT_CHUNK], ordered=False)


@dataclass
class Lags:
    values: list[float]  # fired timers: exact; unfired: the lag reached so far
    unfired: int
    fired_per_s: float


def due_times(now: datetime) -> list[datetime]:
    """DUE_IN_WINDOW evenly over the window, the rest spread over LATER_S."""
    first = now + timedelta(seconds=LEAD_S)
    soon = [first + timedelta(seconds=i / STREAM_RATE) for i in range(DUE_IN_WINDOW)]
    rest = TIMERS - DUE_IN_WINDOW
    low, high = LATER_S
    later = [now + timedelta(seconds=low + (high - low) * i / rest) for i in range(rest)]
    return soon + later


async def measure_timer_lag(bench: Bench) -> Lags:
    now = bench.clock()
    docs = [timer_doc(i, due, now) for i, due in enumerate(due_times(now))]
    await insert(bench.timers.jobs, docs)
    first = now + timedelta(seconds=LEAD_S)
    if bench.clock() >= first:
        raise RuntimeError("inserting the timers took longer than the lead time")
    ids = [str(d["_id"]) for d in docs[:DUE_IN_WINDOW]]
    close_at = first + timedelta(seconds=WINDOW_S + GRACE_S)
    return await run_until_fired(bench, ids, first, close_at)


async def measure_burst(bench: Bench) -> Lags:
    now = bench.clock()
    due = now + timedelta(seconds=LEAD_S)
    docs = [timer_doc(i, due, now, prefix="BURST") for i in range(BURST)]
    await insert(bench.timers.jobs, docs)
    ids = [str(d["_id"]) for d in docs]
    return await run_until_fired(bench, ids, due, due + timedelta(seconds=120))


async def run_until_fired(
    bench: Bench, ids: list[str], first: datetime, close_at: datetime
) -> Lags:
    workers = [
        asyncio.create_task(bench.timer_worker.run()),
        asyncio.create_task(bench.delivery_worker.run()),
    ]
    try:
        while bench.clock() < close_at:
            await asyncio.sleep(2.0)
            if bench.clock() > first and await fired_count(bench, ids) >= len(ids):
                break
    finally:
        await stop(workers)
    closed = bench.clock()
    values, unfired, last_fired = [], 0, first
    for timer_id in ids:
        doc = await bench.timers.jobs.find_one({"_id": timer_id})
        assert doc is not None
        if doc["status"] == "fired":
            values.append((doc["fired_at"] - doc["original_due_at"]).total_seconds())
            last_fired = max(last_fired, doc["fired_at"])
        else:
            values.append((closed - doc["original_due_at"]).total_seconds())
            unfired += 1
    span = max((last_fired - first).total_seconds(), 1.0)
    return Lags(values, unfired, (len(ids) - unfired) / span)


async def fired_count(bench: Bench, ids: list[str]) -> int:
    # The last one fired means (nearly) all did: read it before counting them all.
    last = await bench.timers.jobs.find_one({"_id": ids[-1]}, {"status": 1})
    if last is None or last["status"] != "fired":
        return 0
    return await bench.timers.count({"status": "fired"})


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def measure_delivery_rate(bench: Bench, port: int) -> float:
    now = bench.clock()
    await insert(bench.deliveries.jobs, [delivery_doc(i, port, now) for i in range(BACKLOG)])
    query: Document = {"status": "delivered", "ticket_id": {"$regex": "^BL-"}}
    started = time.perf_counter()
    worker = asyncio.create_task(bench.delivery_worker.run())
    try:
        while time.perf_counter() - started < DRAIN_WINDOW_S:
            if await bench.deliveries.count(query) >= BACKLOG:
                break
            await asyncio.sleep(0.5)
    finally:
        await stop([worker])
    elapsed = time.perf_counter() - started
    return await bench.deliveries.count(query) / elapsed


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


async def measure(port: int, folder: Path) -> list[str]:
    namespace = unique_namespace()
    settings = NotifierSettings(amqp_namespace=namespace, mongo_db_prefix=namespace)
    directory = directory_at(port, folder)
    infra = await connect(settings, "notifier")
    try:
        bench = await Bench.open(settings, infra, directory)
        try:
            lags = await measure_timer_lag(bench)
            burst = await measure_burst(bench)
            rate = await measure_delivery_rate(bench, port)
        finally:
            await bench.close()
    finally:
        await infra.close()
        await purge_namespace(settings)
    lines = [
        f"BENCH notifier.timer_lag_p99_s {p99(lags.values):.3f} s",
        f"BENCH notifier.deliveries_per_s {rate:.1f} 1/s",
        f"BENCH notifier.timer_lag_p50_s {statistics.median(lags.values):.3f} s",
        f"BENCH notifier.burst_timers_fired_per_s {burst.fired_per_s:.1f} 1/s",
        f"BENCH notifier.burst_timer_lag_p99_s {p99(burst.values):.3f} s",
    ]
    for name, result in (("stream", lags), ("burst", burst)):
        if result.unfired:
            print(
                f"bench_notifier: {result.unfired} {name} timers had not fired when the "
                "window closed; its figures are lower bounds",
                file=sys.stderr,
            )
    return lines


def run() -> Iterator[str]:
    ensure_servers()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with receiver() as port, tempfile.TemporaryDirectory() as folder:
        yield from asyncio.run(measure(port, Path(folder)))


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
