"""Stats ingestion: archive each batch of events once; the aggregator derives
views and counters from the archive (services.stats.aggregator)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from services.stats.aggregator import seq_of
from services.stats.ports import ArchiveSink
from shared.events import TicketEvent
from shared.mongo import Document


def archive_record(event: TicketEvent, archived_at: datetime) -> Document:
    event_id = str(event.event_id)
    return {
        "_id": event_id,
        "seq": seq_of(archived_at, event_id),
        "ticket_id": event.ticket_id,
        "event_type": event.event_type,
        "occurred_at": event.occurred_at,
        "archived_at": archived_at,
        "event": event.model_dump(mode="json"),
    }


async def archive_batch(
    events: list[TicketEvent], *, archive: ArchiveSink, clock: Callable[[], datetime]
) -> None:
    """Idempotent: an event archived before keeps its first record."""
    now = clock()
    await archive.add_many([archive_record(event, now) for event in events])
