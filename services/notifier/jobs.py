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
from collections import OrderedDict
from datetime import datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.notifier.records import JobStatus
from shared.mongo import Document, insert_new

logger = logging.getLogger(__name__)
MAX_TAKEOVERS = 100  # dead claimers of one attempt; beyond that something else is wrong
RECENT_MOVES = 10_000  # jobs whose last attempt this process recorded, remembered


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
        # Jobs this process created and claimed the first attempt of (claim_new):
        # claim() takes them without asking the store.
        self._claimed_new: set[str] = set()
        # job id -> the attempt number this process last recorded for it: a copy
        # read before that (a scan's, racing the attempt) has moved on.
        self._moved: OrderedDict[str, int] = OrderedDict()

    @property
    def due_field(self) -> str:
        return self._due

    async def ensure_job_indexes(self) -> None:
        await self.jobs.create_index([("status", 1), (self._due, 1)])
        await self.jobs.create_index([("ticket_id", 1)])

    async def insert_new(self, docs: list[Document]) -> list[Document]:
        """Insert new jobs in one write and return them; those inserted before
        (a redelivery) stay as they are and are not returned."""
        taken = await insert_new(self.jobs, docs)
        return [doc for i, doc in enumerate(docs) if i not in taken]

    async def claim_new(self, jobs: list[Document], now: datetime, lease: timedelta) -> None:
        """Claim the first attempt of jobs this process has just inserted, in one
        write, as claim() would one by one. Nobody else can have moved them: a
        job changes only under the claim of its attempt. A claim that was there
        already (another replica's) leaves the job to claim()."""
        claims = [
            {"_id": f"{job['_id']}:0:0", "owner": self._owner, "expires_at": now + lease}
            for job in jobs
        ]
        taken = await insert_new(self._claims, claims)
        self._claimed_new.update(str(job["_id"]) for i, job in enumerate(jobs) if i not in taken)

    async def upcoming(self, until: datetime, limit: int) -> list[Document]:
        """Pending jobs due by `until`, soonest first."""
        query: Document = {"status": JobStatus.PENDING, self._due: {"$lte": until}}
        cursor = self.jobs.find(query).sort(self._due, 1).limit(limit)
        return await cursor.to_list()

    async def claim(self, job: Document, now: datetime, lease: timedelta) -> bool:
        """Take the job's current attempt for this process; False if another
        process holds it, or the job moved on since it was read (fired,
        cancelled, attempted: it may have sat in memory for a minute)."""
        known = self._known_here(job)
        if known is not None:
            return known
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

    def _known_here(self, job: Document) -> bool | None:
        """claim()'s answer where this process knows it without the store: a
        first attempt it claimed with claim_new, or a copy older than an
        attempt it recorded. None: ask the store."""
        job_id = str(job["_id"])
        # First: a copy older than an attempt recorded here is stale, even of a
        # job claimed at creation (another copy may have run that attempt).
        if self._moved.get(job_id, -1) > job["attempt_no"]:
            return False
        if job["attempt_no"] == 0 and job_id in self._claimed_new:
            self._claimed_new.discard(job_id)
            return True
        return None

    def moved_on(self, job_id: str, attempt_no: int) -> None:
        """This process recorded the job's attempt `attempt_no`."""
        # Whichever copy ran it: a scan's copy can take the first attempt
        # through the store (its claim insert raced claim_new's and found this
        # process's own claim), leaving the creation's claim unused.
        self._claimed_new.discard(job_id)
        self._moved[job_id] = attempt_no
        self._moved.move_to_end(job_id)
        if len(self._moved) > RECENT_MOVES:
            self._moved.popitem(last=False)

    async def claim_many(
        self, jobs: list[Document], now: datetime, lease: timedelta
    ) -> list[Document]:
        """The jobs whose current attempt this process now holds, as claim()
        would say one by one: one insert of all first claims, one read by _id
        each of where the jobs stand, sent together. A copy this process knows
        to be stale (a scan's, racing the attempt that finished it here) is
        dropped without asking the store. An attempt claimed before (a claimer
        that died, or this process running it again) takes the single way,
        takeover included."""
        held: list[Document] = []
        unknown: list[Document] = []
        for job in jobs:
            known = self._known_here(job)
            if known is None:
                unknown.append(job)
            elif known:
                held.append(job)
        if not unknown:
            return held
        expires = now + lease
        claims = [
            {"_id": f"{j['_id']}:{j['attempt_no']}:0", "owner": self._owner, "expires_at": expires}
            for j in unknown
        ]
        # The reads go out with the claims, not after them: a job whose claim is
        # new was never run (running takes the claim), so its read only tells
        # whether it was cancelled since the copy was made; a cancel landing
        # after the read is caught by the conditional write that ends the run.
        taken, stand = await asyncio.gather(
            insert_new(self._claims, claims), asyncio.gather(*map(self._unchanged, unknown))
        )
        for i, job in enumerate(unknown):
            if i in taken:
                if await self.claim(job, now, lease):
                    held.append(job)
            elif stand[i]:
                held.append(job)
        return held

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
