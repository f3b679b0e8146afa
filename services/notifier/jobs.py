"""Due jobs (deliveries, timers) that any number of notifier replicas share.

A job is a document with a status, a due time and an attempt number. Taking an
attempt is an insert of "<job id>:<attempt number>:<holder>" into a claims
collection: a unique-key insert is atomic on MongoDB and FerretDB alike, where
FerretDB's find-and-modify is not. So each attempt has one owner at a time,
however many replicas hold the job in memory. A claimer that dies leaves its
claim to expire; the next claimer then takes the attempt over under the next
holder number. Claims carry their owner, so a process that hit a transient
error can run the same attempt again under the claim it already holds.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.notifier.records import JobStatus
from shared.mongo import Document

logger = logging.getLogger(__name__)
MAX_TAKEOVERS = 100  # dead claimers of one attempt; beyond that something else is wrong
DUPLICATE_KEY = 11000
# From this many jobs on, one read of the whole collection (the dev store reads
# it all for any filter but an exact _id) costs less than a read by _id each.
SCAN_FROM = 200


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
        self._owner = uuid.uuid4().hex

    @property
    def due_field(self) -> str:
        return self._due

    async def ensure_job_indexes(self) -> None:
        await self.jobs.create_index([("status", 1), (self._due, 1)])
        await self.jobs.create_index([("ticket_id", 1)])

    async def upcoming(self, until: datetime, limit: int) -> list[Document]:
        """Pending jobs due by `until`, soonest first."""
        query: Document = {"status": JobStatus.PENDING, self._due: {"$lte": until}}
        cursor = self.jobs.find(query).sort(self._due, 1).limit(limit)
        return await cursor.to_list()

    async def claim(self, job: Document, now: datetime, lease: timedelta) -> bool:
        """Take the job's current attempt for this process; False if another
        process holds it, or the job moved on since it was read (fired,
        cancelled, attempted: it may have sat in memory for a minute)."""
        base = f"{job['_id']}:{job['attempt_no']}"
        for holder in range(MAX_TAKEOVERS):
            key = f"{base}:{holder}"
            try:
                await self._claims.insert_one(
                    {"_id": key, "owner": self._owner, "expires_at": now + lease}
                )
                break
            except DuplicateKeyError:
                existing = await self._claims.find_one({"_id": key})
                if existing is None or existing.get("owner") == self._owner:
                    break  # ours already: this process is running the attempt again
                if existing["expires_at"] >= now:
                    return False
                # Its claimer died before finishing: take over under the next holder.
        else:
            logger.error("job %s: %d dead claimers, leaving it", job["_id"], MAX_TAKEOVERS)
            return False
        return await self._unchanged(job)

    async def claim_many(
        self, jobs: list[Document], now: datetime, lease: timedelta
    ) -> list[Document]:
        """The jobs whose current attempt this process now holds, as claim()
        would say one by one: one insert of all first claims, one read of
        where the jobs stand. An attempt claimed before (a claimer that died, or
        this process running it again) takes the single way, takeover included."""
        if not jobs:
            return []
        expires = now + lease
        claims = [
            {"_id": f"{j['_id']}:{j['attempt_no']}:0", "owner": self._owner, "expires_at": expires}
            for j in jobs
        ]
        taken: set[int] = set()
        try:
            await self._claims.insert_many(claims, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            taken = {int(e["index"]) for e in errors}
        held = await self._still_current([j for i, j in enumerate(jobs) if i not in taken])
        for job in (j for i, j in enumerate(jobs) if i in taken):
            if await self.claim(job, now, lease):
                held.append(job)
        return held

    async def _still_current(self, jobs: list[Document]) -> list[Document]:
        if len(jobs) < SCAN_FROM:
            current = await asyncio.gather(*(self._unchanged(job) for job in jobs))
            return [job for job, ok in zip(jobs, current, strict=True) if ok]
        query = {"_id": {"$in": [job["_id"] for job in jobs]}}
        cursor = self.jobs.find(query, {"attempt_no": 1, "status": 1})
        stand = {doc["_id"]: doc for doc in await cursor.to_list()}
        return [job for job in jobs if _same_attempt(job, stand.get(job["_id"]))]

    async def _unchanged(self, job: Document) -> bool:
        # Read by _id: the dev store pushes down only an exact _id filter and runs
        # any other filter over the whole collection.
        current = await self.jobs.find_one({"_id": job["_id"]}, {"attempt_no": 1, "status": 1})
        return _same_attempt(job, current)

    async def count(self, query: Document) -> int:
        return await self.jobs.count_documents(query)


def _same_attempt(job: Document, current: Document | None) -> bool:
    return (
        current is not None
        and current["status"] == JobStatus.PENDING
        and current["attempt_no"] == job["attempt_no"]
    )
