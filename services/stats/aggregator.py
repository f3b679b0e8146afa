"""Deriving the ticket views and the counters from the events.

One aggregator at a time (it holds a lease) drains the inbox the consumer
fills beside the archive (services.stats.repository.EventArchive), in
batches. For each batch it rewrites the views of the tickets it touches (in
bulk), then adds the batch's increments to the counters
(services.stats.rollups: one $inc per document, in bulk), then deletes the
batch from the inbox.

Exactly once without transactions: before writing, the aggregator pins the
batch (its id and its inbox documents, in the checkpoint); until it is
unpinned, any aggregator applies exactly that batch again. A counter document
records the last batch it took (`applied`), so a batch applied again after a
crash skips the documents it reached; a view is recomputed from its steps,
which are keyed by event_id, and records what the counters held of it before
and which events the batch brought (COUNTED). An event whose step its
ticket's view already holds, brought by another batch, was counted: a
redelivery archived again is counted once. A ticket without a view has had
nothing counted (views go first), so the view of a ticket whose first event is
in the batch is inserted without a read; when the store finds one there after
all, it is read and rewritten before any counter moves.

A rebuild folds the whole archive instead, in arrival order (`seq`), pinning
each range as it goes (meta `rebuild`): an aggregator that takes the lease
while it is unfinished goes on with it before the inbox.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.stats.dispatch_quality import contribution
from services.stats.measures import Bucket, increments
from services.stats.projection import build_view
from services.stats.repository import INBOX_CHUNK, Counters, EventArchive, Meta, TicketViews
from services.stats.rollups import Increments
from services.stats.viewcache import ViewCache
from shared.events import EVENT_ADAPTER, TicketEvent
from shared.mongo import Document

logger = logging.getLogger(__name__)
REBUILD_PAUSE = timedelta(hours=2)  # live aggregation stands aside at most this long
# In each view: the batch that wrote it last, and the dispatch-quality
# contribution the counters held for the ticket before that batch. A batch
# applied again after a crash finds its own mark on the views it wrote, and
# moves the contribution from there, not from the view it already changed.
COUNTED = "_counted"
FIRST = frozenset({"received", "resolved_on_spot"})  # a ticket's first event


class LeaseLost(RuntimeError):
    """Another aggregator holds the lease now: this one stops writing."""


def _fresh(view: Document | None, batch: str, events: list[TicketEvent]) -> list[TicketEvent]:
    """Of a ticket's events in `batch`, those not counted by another batch."""
    if view is None:
        return events
    counted = view.get(COUNTED) or {}
    ours = set(counted.get("added") or []) if counted.get("batch") == batch else set()
    steps = view.get("steps") or {}
    return [e for e in events if str(e.event_id) not in steps or str(e.event_id) in ours]


def _prior(view: Document | None, batch: str, tz: ZoneInfo) -> Document | None:
    """What the counters hold for this ticket before `batch`, encoded."""
    if view is None:
        return None
    counted = view.get(COUNTED) or {}
    if counted.get("batch") == batch:
        return counted.get("prior")
    found = contribution(view, tz)
    if found is None:
        return None
    # Counter names are paths ("q.d.=rule"): kept as values, never as field names.
    counts = [{"name": name, "value": value} for name, value in found[1].items()]
    return {"bucket": list(found[0]), "counts": counts}


def _records(inbox: list[Document]) -> int:
    return sum(len(doc["records"]) for doc in inbox)


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
    batch: int = 20_000
    lease: timedelta = timedelta(seconds=30)
    # A batch that is not full waits this long once for more: after a burst the
    # store folds a few large batches, whose increments to one roll-up document
    # merge into one statement, instead of many small ones.
    linger_s: float = 2.0
    # While the inbox fills faster than this (a burst), a batch that is not full
    # waits again, up to linger_max_s in all: each view and roll-up document is
    # then rewritten once for many events, not once for each of a few batches.
    burst_per_s: float = 500.0
    linger_max_s: float = 10.0
    cache: ViewCache = field(default_factory=ViewCache)

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
        try:
            return await self._batch()
        except BaseException:
            self.cache.forget()  # views may be written in part
            raise

    async def _batch(self) -> bool:
        rebuilding = await self.meta.rebuilding()
        if rebuilding is not None:
            return await self._archive_batch(*rebuilding)
        pinned = await self.meta.pinned()
        self.cache.valid_at(await self.meta.last(), pinned is not None)
        if pinned is not None:  # a batch was being applied: apply exactly it
            batch, inbox = pinned
            docs = await self.archive.inbox_get(inbox)
        else:
            docs = await self._next_batch(max(1, self.batch // INBOX_CHUNK))
            if not docs:
                return False
            batch, inbox = f"inbox:{uuid.uuid4().hex}", [doc["_id"] for doc in docs]
            await self.meta.pin(batch, inbox)
        await self._fold([r for doc in docs for r in doc["records"]], batch, pinned is not None)
        await self.archive.inbox_remove(inbox)
        await self.meta.unpin(batch)
        return True

    async def _next_batch(self, documents: int) -> list[Document]:
        docs = await self.archive.inbox_head(documents)
        waited = 0.0
        while docs and len(docs) < documents and self.linger_s > 0 and waited < self.linger_max_s:
            await asyncio.sleep(self.linger_s)
            waited += self.linger_s
            await self._hold()
            had, docs = _records(docs), await self.archive.inbox_head(documents)
            if _records(docs) - had < self.burst_per_s * self.linger_s:
                break
        return docs

    async def _archive_batch(self, checkpoint: str, pending: str | None) -> bool:
        """One range of the archive, for a rebuild."""
        self.cache.forget()
        if pending is not None:
            docs = await self.archive.upto(checkpoint, pending)
        else:
            docs = await self.archive.after(checkpoint, "~", self.batch)
            if not docs:
                await self.meta.rebuilt()
                return True  # on to the inbox
            await self.meta.set_rebuild(checkpoint, str(docs[-1]["seq"]))
        last = str(docs[-1]["seq"]) if docs else str(pending)
        await self._fold(docs, f"archive:{last}", pending is not None)
        await self.meta.set_rebuild(last)
        return True

    async def _fold(self, records: list[Document], batch: str, again: bool) -> None:
        unique = {str(r["_id"]): r for r in records}
        events = [EVENT_ADAPTER.validate_python(r["event"]) for r in unique.values()]
        by_ticket: dict[str, list[TicketEvent]] = defaultdict(list)
        for event in events:
            by_ticket[event.ticket_id].append(event)
        # Views first: once a ticket is counted, its view can be read.
        old = await self._known_views(by_ticket, guess=not again)
        new = self._new_views(by_ticket, old, batch)
        await self._hold()
        there = await self.views.put_many(list(new.values()), set(old))
        if there:  # guessed new, but written before: as known views
            found = await self.views.get_many(sorted(there))
            old.update(found)
            again_new = self._new_views({t: by_ticket[t] for t in there}, old, batch)
            await self.views.put_many(list(again_new.values()), set(found))
            new.update(again_new)
        await self._hold()
        counted = [e for t, evs in by_ticket.items() for e in _fresh(old.get(t), batch, evs)]
        await self._counters(batch, counted, list(new.values()), again=again)
        self.cache.keep(list(new.values()), batch)

    async def _hold(self) -> None:
        """Renew the lease between a batch's writes: a batch on a slow store may
        take longer than the lease, and another aggregator must not take it
        over while this one still writes."""
        if not await self.meta.take_lease(self.holder, self.clock(), self.lease):
            raise LeaseLost(f"{self.holder} lost the aggregator lease mid-batch")

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
            self.cache.forget()
            await self.views.clear()
            await self.counters.clear()
            await self.meta.set_rebuild("")
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

    async def _known_views(
        self, by_ticket: dict[str, list[TicketEvent]], guess: bool
    ) -> dict[str, Document]:
        """The batch's tickets' views as they were: kept in memory, or read. A
        ticket whose first event is in the batch is taken to have none (it is
        inserted without a read; the insert says if it had one after all),
        unless the batch is being applied again."""
        cached = self.cache.views
        old = {t: cached[t] for t in by_ticket if t in cached}
        unknown = [t for t in by_ticket if t not in cached]
        if guess:
            unknown = [t for t in unknown if not any(e.event_type in FIRST for e in by_ticket[t])]
        old.update(await self.views.get_many(unknown))
        return old

    def _new_views(
        self, by_ticket: dict[str, list[TicketEvent]], old: dict[str, Document], batch: str
    ) -> dict[str, Document]:
        """The views as the batch leaves them, each marked with the batch, the
        contribution the counters held before and the events it counts."""
        new = {}
        for ticket, events in by_ticket.items():
            view = build_view(ticket, old.get(ticket), events)
            ids = [str(e.event_id) for e in _fresh(old.get(ticket), batch, events)]
            prior = _prior(old.get(ticket), batch, self.tz)
            view[COUNTED] = {"batch": batch, "prior": prior, "added": ids}
            new[ticket] = view
        return new

    async def _counters(
        self, batch: str, events: list[TicketEvent], views: list[Document], again: bool
    ) -> None:
        """The batch's increments, merged per document, with each changed view's
        dispatch-quality contribution moved. Applied again (after a crash), the
        documents that took the batch already are left alone."""
        merged = Increments()
        for event in events:
            for bucket, counts in increments(event, self.tz):
                merged.add(bucket, counts)
        for view in views:
            prior = view[COUNTED]["prior"]
            if prior is not None:
                counts = {c["name"]: -c["value"] for c in prior["counts"]}
                merged.add(Bucket(*prior["bucket"]), counts)
            now = contribution(view, self.tz)
            if now is not None:
                merged.add(*now)
        done = await self.counters.applied(list(merged.docs), batch) if again else set()
        await self.counters.add(batch, merged, done)
