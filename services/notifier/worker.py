"""Running due jobs on time without asking the store every instant.

The worker keeps the jobs due within a look-ahead window in memory, ordered by
due time, and starts each when it falls due. The window is filled by a scan of
the store every `refresh_s` and by `offer()` for jobs this process has just
created (a dispatch notice, a retry, the next supervision). Asking the store
for due jobs at every tick would cost a query per tick, and on the dev store
every query that is not by _id reads the whole collection. Each job still runs
only after its claim succeeded (services.notifier.jobs), so replicas holding
the same job in memory fire it once; a job another replica created is found by
the next scan, and one whose claimer died comes back due under its next attempt.

Jobs that fall due together can be run as batches (`process_batch`, up to
`batch_max` each: the timers of a Monday morning after a holiday), so the store
sees one bulk write per step instead of one write per job (their updates still
go at most 50 statements to a command: shared.groupcommit). A batch that fails
is run again job by job, each with its own retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from services.notifier.jobs import JobStore
from services.notifier.records import JobStatus
from shared.mongo import Document
from shared.waiting import wait_event

logger = logging.getLogger(__name__)
RETRY_PAUSES_S = (0.2, 1.0, 3.0)
FALLBACK_CONCURRENCY = 20  # a failed batch's jobs run alone, this many at a time


class JobWorker:
    """Each due job runs in its own task, so one slow or failing endpoint never
    holds up the others; at most `concurrency` at a time."""

    def __init__(
        self,
        store: JobStore,
        process: Callable[[Document], Awaitable[None]],
        clock: Callable[[], datetime],
        refresh_s: float,
        *,
        lookahead_s: float = 60.0,
        concurrency: int = 50,
        batch: int = 2000,
        process_batch: Callable[[list[Document]], Awaitable[None]] | None = None,
        batch_max: int = 50,
    ) -> None:
        self._store = store
        self._process = process
        self._process_batch = process_batch
        self._batch_max = batch_max
        self._clock = clock
        self._refresh_s = refresh_s
        self._lookahead = timedelta(seconds=max(lookahead_s, refresh_s * 2))
        self._slots = asyncio.Semaphore(concurrency)
        self._batch = batch
        self._heap: list[tuple[datetime, int, Document]] = []
        self._queued: dict[str, int] = {}  # job id -> attempt number held in the heap
        self._in_flight: set[str] = set()
        self._order = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._refresh_now = asyncio.Event()
        self._room = asyncio.Event()

    def offer(self, job: Document) -> None:
        """A job this process created or moved: run it when due, if that is soon."""
        if job.get("status", JobStatus.PENDING) != JobStatus.PENDING:
            return
        if job[self._store.due_field] > self._clock() + self._lookahead:
            return  # the scan that comes before it falls due will find it
        self._push(job)
        self._changed.set()

    def wake(self) -> None:
        """Scan the store now (the clock jumped, or jobs were written elsewhere)."""
        self._refresh_now.set()
        self._changed.set()

    @property
    def held(self) -> int:
        return len(self._queued)

    async def run(self) -> None:
        refresher = asyncio.create_task(self._refresh_loop())
        try:
            await self._dispatch_loop()
        finally:
            refresher.cancel()
            for task in [refresher, *self._tasks]:
                task.cancel()
            self._in_flight.clear()  # nothing runs any more; a restart may take them
            with contextlib.suppress(asyncio.CancelledError):
                await refresher

    def _taken(self) -> int:
        # Jobs running count too: until their run records them, a scan returns
        # them again (pending), and a burst of a full scan's worth would be
        # scanned for over and over while it fires (a read of the whole
        # collection each time on the dev store).
        return self.held + len(self._in_flight)

    def _finished(self, jobs: list[Document]) -> None:
        self._in_flight.difference_update(str(job["_id"]) for job in jobs)
        if self._taken() < self._batch // 2:
            self._room.set()

    def _push(self, job: Document) -> None:
        job_id, attempt = str(job["_id"]), int(job["attempt_no"])
        if job_id in self._in_flight or self._queued.get(job_id) == attempt:
            return
        self._queued[job_id] = attempt
        heapq.heappush(self._heap, (job[self._store.due_field], next(self._order), job))

    async def _refresh_loop(self) -> None:
        while True:
            self._refresh_now.clear()
            full = await self._refresh()
            if full:  # more are due than one scan returns: scan again once half ran
                self._room.clear()
                if self._taken() >= self._batch // 2:
                    await self._room.wait()
                continue
            await wait_event(self._refresh_now, self._refresh_s)

    async def _refresh(self) -> bool:
        try:
            jobs = await self._store.upcoming(self._clock() + self._lookahead, self._batch)
        except Exception as exc:  # store down: keep what we hold, try again
            logger.warning("scanning %s failed: %r", self._store.jobs.name, exc)
            return False
        for job in jobs:
            self._push(job)
        self._changed.set()
        return len(jobs) >= self._batch

    async def _dispatch_loop(self) -> None:
        while True:
            await self._start_due()
            self._changed.clear()
            await wait_event(self._changed, self._sleep_s())

    def _sleep_s(self) -> float:
        # Never longer than a refresh: the test clock can jump forward.
        if not self._heap:
            return self._refresh_s
        wait = (self._heap[0][0] - self._clock()).total_seconds()
        return max(0.0, min(wait, self._refresh_s))

    async def _start_due(self) -> None:
        due: list[Document] = []
        while self._heap and self._heap[0][0] <= self._clock():
            _, _, job = heapq.heappop(self._heap)
            job_id = str(job["_id"])
            if self._queued.get(job_id) != int(job["attempt_no"]):
                continue  # replaced by a later attempt of the same job
            del self._queued[job_id]
            self._in_flight.add(job_id)
            if self._process_batch is None:
                await self._start(self._run_one(job), [job])
            else:
                due.append(job)
        for start in range(0, len(due), self._batch_max):
            batch = due[start : start + self._batch_max]
            await self._start(self._run_batch(batch), batch)

    async def _start(self, run: Coroutine[Any, Any, None], jobs: list[Document]) -> None:
        try:
            await self._slots.acquire()
        except BaseException:  # stopped while waiting for a slot: the jobs never ran
            run.close()
            self._in_flight.difference_update(str(job["_id"]) for job in jobs)
            raise
        task = asyncio.create_task(run)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, jobs: list[Document]) -> None:
        try:
            assert self._process_batch is not None
            await self._process_batch(jobs)
        except Exception as exc:
            logger.warning("a batch of %d jobs failed (%r); running each alone", len(jobs), exc)
            alone = asyncio.Semaphore(FALLBACK_CONCURRENCY)

            async def one(job: Document) -> None:
                async with alone:
                    await self._run_alone(job)

            await asyncio.gather(*(one(job) for job in jobs))
        finally:
            self._finished(jobs)
            self._slots.release()

    async def _run_one(self, job: Document) -> None:
        try:
            await self._run_alone(job)
        finally:
            self._finished([job])
            self._slots.release()

    async def _run_alone(self, job: Document) -> None:
        try:
            for pause in (*RETRY_PAUSES_S, None):
                try:
                    await self._process(job)
                    return
                except Exception as exc:
                    if pause is None:
                        raise
                    # A busy or briefly unreachable store: every step is idempotent
                    # and the claim is still ours, so run the job again soon.
                    logger.warning("job %s failed (%r); running it again", job["_id"], exc)
                    await asyncio.sleep(pause)
        except Exception:
            logger.exception("job %s failed; another try after its claim expires", job["_id"])
