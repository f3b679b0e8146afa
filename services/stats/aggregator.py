"""Deriving the ticket views and the counters from the archive.

One aggregator at a time (it holds a lease) reads the archive in arrival order
from its checkpoint, in batches. For each batch it rewrites the views of the
tickets it touches and adds the batch's increments to the counters it touches,
then moves the checkpoint past the batch.

Exactly once without transactions: a counter records the last batch it took
(`applied_upto`, the batch's last seq) and takes from a batch only the events
after that mark; a view is recomputed from its steps, which are keyed by
event_id. So a batch repeated after a crash, even one that has grown by events
archived since, changes nothing twice. The archive is read only up to a few
seconds ago, so an event still being archived cannot be skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.stats.measures import Bucket, increments
from services.stats.projection import build_view
from services.stats.repository import Counters, Documents, EventArchive, Meta, TicketViews
from shared.events import EVENT_ADAPTER, TicketEvent
from shared.mongo import Document

logger = logging.getLogger(__name__)
SETTLE = timedelta(seconds=2)  # archive writes in flight are older than this
REBUILD_PAUSE = timedelta(hours=2)  # live aggregation stands aside at most this long
CHUNK = 40  # concurrent single-document writes (FerretDB: no large update batches)


def seq_of(archived_at: datetime, event_id: str) -> str:
    """Arrival order: archive time in ms, then the event id to break ties."""
    return f"{int(archived_at.timestamp() * 1000):013d}:{event_id}"


@dataclass
class Aggregator:
    archive: EventArchive
    views: TicketViews
    counters: Counters
    meta: Meta
    tz: ZoneInfo
    clock: Callable[[], datetime]
    holder: str
    batch: int = 2000
    lease: timedelta = timedelta(seconds=30)
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, poll_s: float = 0.5) -> None:
        while True:
            try:
                busy = await self.step()
            except Exception as exc:  # store down: keep the loop, try again
                logger.warning("aggregation round failed: %r", exc)
                busy = False
            if not busy:
                await asyncio.sleep(poll_s)

    async def step(self) -> bool:
        """Take one batch; False when there was nothing to do (or no lease)."""
        if await self.meta.paused_by_other(self.holder, self.clock()):
            await self.release()  # a rebuild is running
            return False
        if not await self.meta.take_lease(self.holder, self.clock(), self.lease):
            return False
        checkpoint = await self.meta.checkpoint()
        before = seq_of(self.clock() - SETTLE, "")
        docs = await self.archive.after(checkpoint, before, self.batch)
        if not docs:
            return False
        seqs = [str(doc["seq"]) for doc in docs]
        events = [EVENT_ADAPTER.validate_python(doc["event"]) for doc in docs]
        await self._views(events)
        await self._counters(seqs, events)
        await self.meta.set_checkpoint(seqs[-1])
        return len(docs) == self.batch

    async def release(self) -> None:
        """Let another aggregator take over at once (at shutdown)."""
        await self.meta.release_lease(self.holder)

    async def rebuild(self) -> int:
        """Recompute views and counters from the whole archive, as live
        aggregation would: the numbers equal the live ones by construction.
        Waits for the lease, so a running stats service pauses meanwhile."""
        await self.meta.pause(self.holder, self.clock() + REBUILD_PAUSE)
        try:
            for _ in range(int(self.lease.total_seconds()) + 5):
                if await self.meta.take_lease(self.holder, self.clock(), self.lease):
                    break
                await asyncio.sleep(1.0)
            else:
                raise RuntimeError("the aggregator lease was not given up in time")
            await self.views.clear()
            await self.counters.clear()
            await self.meta.set_checkpoint("")
            await self.catch_up()
        finally:
            await self.release()
            await self.meta.resume(self.holder)
        return await self.archive.count()

    async def catch_up(self) -> None:
        while await self.step():
            pass
        # A last round for what settled while catching up.
        await self.step()

    async def _views(self, events: list[TicketEvent]) -> None:
        by_ticket: dict[str, list[TicketEvent]] = defaultdict(list)
        for event in events:
            by_ticket[event.ticket_id].append(event)
        old = await self.views.get_many(list(by_ticket))
        new = [build_view(t, old.get(t), evs) for t, evs in by_ticket.items()]
        await _write_all(self.views, new, old)

    async def _counters(self, seqs: list[str], events: list[TicketEvent]) -> None:
        # Each counter's increments with the seq of the event making them: after a
        # crash the batch may be read again with more events in it, and a counter
        # written before the crash must take only the events after its mark.
        parts: dict[Bucket, list[tuple[str, dict[str, float]]]] = defaultdict(list)
        for seq, event in zip(seqs, events, strict=True):
            for bucket, counts in increments(event, self.tz):
                for target in bucket.rollups():
                    parts[target].append((seq, counts))
        old = await self.counters.get_many([b.key for b in parts])
        docs = []
        for bucket, items in parts.items():
            doc = old.get(bucket.key) or _empty(bucket)
            done = doc.get("applied_upto", "")
            fresh = [counts for seq, counts in items if seq > done]
            if not fresh:
                continue  # this batch reached the counter before a crash
            for counts in fresh:
                _add(doc, counts)
            doc["applied_upto"] = seqs[-1]
            docs.append(doc)
        await _write_all(self.counters, docs, old)


def _add(doc: Document, counts: dict[str, float]) -> None:
    for name, value in counts.items():
        if value:
            doc[name] = doc.get(name, 0) + value


def _empty(bucket: Bucket) -> Document:
    # Only the counters a bucket has are stored (most are zero in most buckets):
    # readers take a missing counter as zero, and a store that reads every
    # document of a query (FerretDB) reads a small one faster.
    return {"_id": bucket.key, **bucket._asdict(), "rollup": bucket.rollup}


async def _write_all(repo: Documents, docs: list[Document], old: dict[str, Document]) -> None:
    """New documents in bulk (an upsert that inserts costs the store a search
    first), the others replaced one at a time."""
    await repo.insert_many([doc for doc in docs if doc["_id"] not in old])
    changed = [doc for doc in docs if doc["_id"] in old]
    for start in range(0, len(changed), CHUNK):
        # Every write of the chunk ends before an error is raised: a write still in
        # flight when the next round rewrites its document would undo that round.
        results = await asyncio.gather(
            *(repo.put(doc) for doc in changed[start : start + CHUNK]), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
