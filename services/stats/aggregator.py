"""Deriving the ticket views and the counters from the archive.

One aggregator at a time (it holds a lease) reads the archive in arrival order
from its checkpoint, in batches. For each batch it rewrites the views of the
tickets it touches and adds the batch's increments to the counters it touches,
then moves the checkpoint past the batch.

Exactly once without transactions: a counter records the last batch it took
(`applied_upto`, the batch's last seq), and a batch adds only to counters that
have not taken it; a view is recomputed from its steps, which are keyed by
event_id. So a batch repeated after a crash changes nothing twice. The archive
is read only up to a few seconds ago, so an event still being archived cannot
be skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.stats.measures import FIELDS, Bucket, increments
from services.stats.projection import build_view
from services.stats.repository import Counters, EventArchive, Meta, TicketViews
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
        upto = docs[-1]["seq"]
        events = [EVENT_ADAPTER.validate_python(doc["event"]) for doc in docs]
        await self._views(events)
        await self._counters(events, upto)
        await self.meta.set_checkpoint(upto)
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
        await _write_all(self.views.put, new)

    async def _counters(self, events: list[TicketEvent], upto: str) -> None:
        deltas: dict[Bucket, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for event in events:
            for bucket, counts in increments(event, self.tz):
                for target in bucket.rollups():
                    for name, value in counts.items():
                        deltas[target][name] += value
        old = await self.counters.get_many([b.key for b in deltas])
        docs = []
        for bucket, delta in deltas.items():
            doc = old.get(bucket.key) or _empty(bucket)
            if doc.get("applied_upto", "") >= upto:
                continue  # this batch reached the counter before a crash
            for name, value in delta.items():
                doc[name] = doc.get(name, 0) + value
            doc["applied_upto"] = upto
            docs.append(doc)
        await _write_all(self.counters.put, docs)


def _empty(bucket: Bucket) -> Document:
    return {
        "_id": bucket.key,
        **bucket._asdict(),
        "rollup": bucket.rollup,
        **dict.fromkeys(FIELDS, 0),
    }


async def _write_all(put: Callable[[Document], Awaitable[None]], docs: list[Document]) -> None:
    for start in range(0, len(docs), CHUNK):
        await asyncio.gather(*(put(doc) for doc in docs[start : start + CHUNK]))
