"""Due jobs (deliveries, timers) that any number of notifier replicas share.

A job is a document with a status, a due time and an attempt number. Taking an
attempt is an insert of "<job id>:<attempt number>" into a claims collection: a
unique-key insert is atomic on MongoDB and FerretDB alike, where FerretDB's
find-and-modify is not. So each attempt has one owner, however many replicas
poll. A claimer that dies leaves its claim to expire; the job is then due again
under the next attempt number, which is free to claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.mongo import Document

logger = logging.getLogger(__name__)


class JobStore:
    def __init__(
        self,
        jobs: AsyncCollection[Document],
        claims: AsyncCollection[Document],
        due_field: str,
    ) -> None:
        self.jobs = jobs
        self._claims = claims
        self._due = due_field

    async def ensure_job_indexes(self) -> None:
        await self.jobs.create_index([("status", 1), (self._due, 1)])
        await self.jobs.create_index([("ticket_id", 1)])

    async def due(self, now: datetime, limit: int, skip_ids: set[str]) -> list[Document]:
        query: Document = {"status": "pending", self._due: {"$lte": now}}
        if skip_ids:
            query["_id"] = {"$nin": list(skip_ids)}
        cursor = self.jobs.find(query).sort(self._due, 1).limit(limit)
        return await cursor.to_list()

    async def claim(self, job: Document, now: datetime, lease: timedelta) -> bool:
        """Take the job's current attempt for this process."""
        key = f"{job['_id']}:{job['attempt_no']}"
        try:
            await self._claims.insert_one({"_id": key, "expires_at": now + lease})
        except DuplicateKeyError:
            existing = await self._claims.find_one({"_id": key})
            if existing is not None and existing["expires_at"] < now:
                # Its claimer died before starting: free the next attempt number.
                await self._advance(job, now)
            return False
        # The job was read a while ago: if it stopped being pending since (a timer
        # cancelled because its ticket was resolved), the claim is void.
        return await self._advance(job, now + lease)

    async def _advance(self, job: Document, due_again: datetime) -> bool:
        # Should this process die mid-attempt, the job is due again at due_again
        # under an attempt number nobody has claimed yet.
        result = await self.jobs.update_one(
            {"_id": job["_id"], "attempt_no": job["attempt_no"], "status": "pending"},
            {"$set": {"attempt_no": job["attempt_no"] + 1, self._due: due_again}},
        )
        return result.matched_count == 1

    async def count(self, query: Document) -> int:
        return await self.jobs.count_documents(query)


class JobWorker:
    """Polls a JobStore and runs each due job in its own task, so one slow or
    failing endpoint never holds up the others."""

    def __init__(
        self,
        store: JobStore,
        process: Callable[[Document], Awaitable[None]],
        clock: Callable[[], datetime],
        poll_s: float,
        concurrency: int = 50,
        batch: int = 200,
    ) -> None:
        self._store = store
        self._process = process
        self._clock = clock
        self._poll_s = poll_s
        self._slots = asyncio.Semaphore(concurrency)
        self._batch = batch
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                found = await self._round()
                if found < self._batch:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=self._poll_s)
        finally:
            for task in self._tasks:
                task.cancel()

    async def _round(self) -> int:
        try:
            due = await self._store.due(self._clock(), self._batch, set(self._in_flight))
        except Exception as exc:  # store down: keep the loop, try again
            logger.warning("polling %s failed: %r", self._store.jobs.name, exc)
            return 0
        for job in due:
            await self._slots.acquire()
            self._in_flight.add(str(job["_id"]))
            task = asyncio.create_task(self._run_one(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(due)

    async def _run_one(self, job: Document) -> None:
        try:
            await self._process(job)
        except Exception:
            logger.exception("job %s failed; it will be retried after its lease", job["_id"])
        finally:
            self._in_flight.discard(str(job["_id"]))
            self._slots.release()
