"""The timer/delivery worker's own logic, over an in-memory job list (the
claim and the store are the integration tests' business)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from services.notifier.worker import JobWorker
from shared.clock import ManualClock
from shared.mongo import Document
from shared.waiting import wait_event
from tests.support import eventually

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


class Jobs:
    """What the worker asks of a JobStore: due jobs by a time, soonest first."""

    due_field = "due_at"

    def __init__(self, docs: list[Document]) -> None:
        self.docs = docs
        self.scans = 0
        self.jobs: Any = type("Named", (), {"name": "jobs"})()

    async def upcoming(self, until: datetime, limit: int) -> list[Document]:
        self.scans += 1
        await asyncio.sleep(0)  # a store's answer always comes later
        due = [d for d in self.docs if d["status"] == "pending" and d["due_at"] <= until]
        return sorted(due, key=lambda d: d["due_at"])[:limit]


def job(name: str, due: datetime, attempt: int = 0) -> Document:
    return {"_id": name, "due_at": due, "status": "pending", "attempt_no": attempt}


class Recorder:
    def __init__(self, jobs: Jobs, clock: ManualClock) -> None:
        self.runs: list[tuple[str, datetime]] = []
        self._jobs = jobs
        self._clock = clock

    async def __call__(self, doc: Document) -> None:
        self.runs.append((str(doc["_id"]), self._clock()))
        for stored in self._jobs.docs:  # what firing does: the job is done
            if stored["_id"] == doc["_id"]:
                stored["status"] = "fired"


@asynccontextmanager
async def running(worker: JobWorker) -> AsyncIterator[None]:
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(predicate: Any) -> None:
    async def check() -> bool:
        return bool(predicate())

    await eventually(check, timeout_s=5.0, interval_s=0.01)


async def test_jobs_run_when_due_not_before() -> None:
    clock = ManualClock(T0)
    jobs = Jobs([job("a", T0 + timedelta(seconds=30)), job("b", T0 + timedelta(hours=3))])
    recorder = Recorder(jobs, clock)
    worker = JobWorker(jobs, recorder, clock, refresh_s=0.05)  # type: ignore[arg-type]
    async with running(worker):
        await until(lambda: jobs.scans >= 2)
        assert recorder.runs == [] and worker.held == 1  # "b" is beyond the look-ahead
        clock.advance(timedelta(seconds=31))
        await until(lambda: len(recorder.runs) == 1)
        assert recorder.runs[0][0] == "a"
        clock.advance(timedelta(hours=3))
        await until(lambda: len(recorder.runs) == 2)
        await asyncio.sleep(0.2)  # rescans return nothing pending
        assert [name for name, _ in recorder.runs] == ["a", "b"]


async def test_offered_job_runs_without_a_scan_and_once() -> None:
    clock = ManualClock(T0)
    jobs = Jobs([])
    recorder = Recorder(jobs, clock)
    worker = JobWorker(jobs, recorder, clock, refresh_s=3600)  # type: ignore[arg-type]
    async with running(worker):
        await until(lambda: jobs.scans == 1)
        doc = job("new", T0)
        jobs.docs.append(doc)
        worker.offer(doc)
        worker.offer(dict(doc))  # offered twice (a redelivery): held once
        await until(lambda: len(recorder.runs) == 1)
        await asyncio.sleep(0.1)
        assert recorder.runs == [("new", T0)] and jobs.scans == 1


async def test_a_later_attempt_replaces_the_held_one() -> None:
    clock = ManualClock(T0)
    jobs = Jobs([])
    recorder = Recorder(jobs, clock)
    worker = JobWorker(jobs, recorder, clock, refresh_s=3600)  # type: ignore[arg-type]
    async with running(worker):
        worker.offer(job("d", T0 + timedelta(seconds=10), attempt=1))
        worker.offer(job("d", T0 + timedelta(seconds=20), attempt=2))  # a retry, moved
        clock.advance(timedelta(seconds=15))
        await asyncio.sleep(0.2)
        assert recorder.runs == []  # the first entry is stale
        clock.advance(timedelta(seconds=10))
        await until(lambda: len(recorder.runs) == 1)


async def test_a_backlog_larger_than_one_scan_is_fetched_in_turns() -> None:
    clock = ManualClock(T0)
    jobs = Jobs([job(f"j{i:03d}", T0 - timedelta(seconds=i)) for i in range(50)])
    recorder = Recorder(jobs, clock)
    worker = JobWorker(jobs, recorder, clock, refresh_s=3600, batch=10)  # type: ignore[arg-type]
    async with running(worker):
        await until(lambda: len(recorder.runs) == 50)
        assert len({name for name, _ in recorder.runs}) == 50


async def test_cancelling_a_busy_worker_ends_it() -> None:
    """Offers arriving all the time must not swallow the cancellation (the
    Python 3.11 wait_for race that once hung a teardown)."""
    clock = ManualClock(T0)
    jobs = Jobs([])
    worker = JobWorker(jobs, Recorder(jobs, clock), clock, refresh_s=0.01)  # type: ignore[arg-type]

    async def offering() -> None:
        for i in range(100_000):
            worker.offer(job(f"far{i}", T0 + timedelta(seconds=50)))
            await asyncio.sleep(0)

    for _ in range(20):
        task = asyncio.create_task(worker.run())
        feeder = asyncio.create_task(offering())
        await asyncio.sleep(0.02)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2.0)
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        assert task in done, "the worker did not end after cancel()"


async def test_wait_event_reports_set_or_timeout() -> None:
    event = asyncio.Event()
    assert not await wait_event(event, 0.01)
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5.0)


class Batches(Recorder):
    """Takes the due jobs as batches; fails the first batch once if told to."""

    def __init__(self, jobs: Jobs, clock: ManualClock, fail_first: bool = False) -> None:
        super().__init__(jobs, clock)
        self.batches: list[list[str]] = []
        self._fail = fail_first

    async def batch(self, docs: list[Document]) -> None:
        self.batches.append([str(d["_id"]) for d in docs])
        if self._fail:
            self._fail = False
            raise RuntimeError("the store refused the batch")
        for doc in docs:
            await self(doc)


async def test_jobs_due_together_run_as_batches() -> None:
    clock = ManualClock(T0)
    jobs = Jobs([job(f"b{i:02d}", T0 + timedelta(seconds=5)) for i in range(25)])
    batches = Batches(jobs, clock)
    worker = JobWorker(
        jobs,  # type: ignore[arg-type]
        batches,
        clock,
        refresh_s=3600,
        process_batch=batches.batch,
        batch_max=10,
    )
    async with running(worker):
        await until(lambda: worker.held == 25)
        clock.advance(timedelta(seconds=5))
        await until(lambda: len(batches.runs) == 25)
        assert [len(b) for b in batches.batches] == [10, 10, 5]


async def test_a_failed_batch_runs_each_of_its_jobs_alone() -> None:
    clock = ManualClock(T0)
    jobs = Jobs([job(f"f{i}", T0) for i in range(4)])
    batches = Batches(jobs, clock, fail_first=True)
    worker = JobWorker(
        jobs,  # type: ignore[arg-type]
        batches,
        clock,
        refresh_s=3600,
        process_batch=batches.batch,
    )
    async with running(worker):
        await until(lambda: len(batches.runs) == 4)
        await asyncio.sleep(0.1)
        assert len(batches.batches) == 1  # then one by one, each once
        assert sorted(name for name, _ in batches.runs) == ["f0", "f1", "f2", "f3"]


async def test_a_full_scan_of_jobs_running_is_not_scanned_for_again_until_they_end() -> None:
    """A burst of a scan's worth runs as one batch; until its jobs are recorded
    a scan returns them again, so rescanning meanwhile only loads the store."""
    clock = ManualClock(T0)
    jobs = Jobs([job(f"s{i:02d}", T0) for i in range(10)] + [job("late", T0)])
    release = asyncio.Event()
    batches = Batches(jobs, clock)

    async def slow_batch(docs: list[Document]) -> None:
        await release.wait()
        await batches.batch(docs)

    worker = JobWorker(
        jobs,  # type: ignore[arg-type]
        batches,
        clock,
        refresh_s=3600,
        batch=10,
        process_batch=slow_batch,
    )
    async with running(worker):
        await until(lambda: len(batches.batches) == 0 and jobs.scans >= 1 and worker.held == 0)
        await asyncio.sleep(0.1)
        assert jobs.scans == 1  # the ten are running: no scan until they end
        release.set()
        await until(lambda: len(batches.runs) == 11)  # then the one beyond the first scan
        assert jobs.scans >= 2
