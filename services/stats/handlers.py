"""Stats handler: apply one event to the archive, the ticket view and the counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from services.stats.projection import archive_record, bucket, history_step, view_fields
from services.stats.repository import DailyCounters, EventArchive, TicketViews
from shared.events import TicketEvent
from shared.locks import KeyedLock


@dataclass
class StatsStore:
    archive: EventArchive
    views: TicketViews
    counters: DailyCounters
    tz: ZoneInfo
    # One writer per document at a time (see shared.locks).
    ticket_locks: KeyedLock = field(default_factory=KeyedLock)
    bucket_locks: KeyedLock = field(default_factory=KeyedLock)


async def handle_event(event: TicketEvent, *, store: StatsStore) -> None:
    """Idempotent: a redelivered event changes nothing. Each step is idempotent on
    its own, so a crash between steps is repaired by the redelivery."""
    await store.archive.add(archive_record(event, store.tz))
    async with store.ticket_locks.hold(event.ticket_id):
        await store.views.apply(
            event.ticket_id, str(event.event_id), view_fields(event), history_step(event)
        )
    where = bucket(event, store.tz)
    key = "|".join(str(v) for v in where.values())
    async with store.bucket_locks.hold(key):
        count = await store.archive.count_bucket(where)
        await store.counters.raise_to(where, count)
