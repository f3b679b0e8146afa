"""Stats' ingestion against an in-memory archive (tests/fakes.py): a redelivered
batch, or an event in two batches, is archived once with its first record. The
same runs against the store in tests/integration/test_stats_store.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.stats.handlers import archive_batch
from shared.clock import ManualClock
from tests.fakes import FakeArchive
from tests.stats_support import TicketStory

START = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


async def test_a_redelivered_batch_is_archived_once_with_its_first_record() -> None:
    story = TicketStory("LC20260310000001", "yanggu")
    received = story.received(START)
    dispatched = story.dispatched(START, "yanggu.urban-mgmt", 24)
    archive, clock = FakeArchive(), ManualClock(START)

    await archive_batch([received, dispatched], archive=archive, clock=clock)
    clock.advance(timedelta(minutes=1))
    await archive_batch([dispatched, received], archive=archive, clock=clock)

    assert set(archive.records) == {str(received.event_id), str(dispatched.event_id)}
    assert {r["archived_at"] for r in archive.records.values()} == {START}
