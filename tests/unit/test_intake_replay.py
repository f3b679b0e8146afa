"""Intake's idempotent replay against in-memory stores (tests/fakes_intake.py): a retry
with the same Idempotency-Key gets the same ticket and publishes a record a
failed publish left, once, with the same event id. The same logic runs against
MongoDB and RabbitMQ in tests/integration/test_intake_api.py and
test_intake_duplicates.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.intake.intake import IdempotencyConflict, Intake
from services.intake.models import TicketSubmission
from shared.clock import ManualClock
from shared.directory import Directory
from shared.errors import UnavailableError
from shared.events import TicketLinked, TicketReceived
from shared.settings import RepeatOfClosed
from tests.fakes import FakePublisher
from tests.fakes_intake import FakeCallers, FakeHotspots, FakeIntakeStore, FakeStatus

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
REQUEST: dict[str, Any] = {
    "district": "冠县",
    "category": "help",
    "text": "村里安装自来水管道占用了我家的耕地，补偿款至今未付",
    "citizen": {"phone": "13800138000"},
}


@dataclass
class World:
    store: FakeIntakeStore
    callers: FakeCallers
    publisher: FakePublisher
    intake: Intake


def make_world(directory: Directory, repeat_of_closed: RepeatOfClosed = "new") -> World:
    store, callers, publisher = FakeIntakeStore(), FakeCallers(), FakePublisher()
    intake = Intake(
        repo=store,
        publisher=publisher,
        directory=directory,
        timezone=ZoneInfo("Asia/Shanghai"),
        clock=ManualClock(NOW),
        callers=callers,
        hotspots=FakeHotspots(),
        status=FakeStatus(),
        repeat_of_closed=repeat_of_closed,
    )
    return World(store, callers, publisher, intake)


@pytest.fixture
def world(directory: Directory) -> World:
    return make_world(directory)


def submission(**changes: Any) -> TicketSubmission:
    return TicketSubmission.model_validate({**REQUEST, **changes})


async def test_a_retry_with_the_same_key_gets_the_same_ticket(world: World) -> None:
    first = await world.intake.submit(submission(), "key-1")
    again = await world.intake.submit(submission(), "key-1")

    assert again.ticket_id == first.ticket_id
    assert (first.replayed, again.replayed) == (False, True)
    [received] = world.publisher.published
    assert isinstance(received, TicketReceived) and received.ticket_id == first.ticket_id


async def test_a_retry_publishes_what_a_failed_publish_left_once(world: World) -> None:
    world.publisher.fail_next = 1
    with pytest.raises(UnavailableError):  # the client is told 503 and retries
        await world.intake.submit(submission(), "key-1")
    [record] = world.store.records.values()
    assert not record.published

    receipt = await world.intake.submit(submission(), "key-1")
    await world.intake.submit(submission(), "key-1")

    assert receipt.ticket_id == record.ticket_id and receipt.replayed
    assert world.publisher.ids() == [record.event.event_id]
    assert world.store.records[record.ticket_id].published


async def test_a_key_reused_for_another_request_is_refused(world: World) -> None:
    await world.intake.submit(submission(), "key-1")

    with pytest.raises(IdempotencyConflict):
        await world.intake.submit(submission(text="路灯不亮，晚上出行很不方便"), "key-1")

    assert len(world.publisher.published) == 1


async def test_a_linked_duplicate_left_unpublished_is_published_once_on_retry(
    world: World,
) -> None:
    first = await world.intake.submit(submission(), "key-1")
    world.publisher.fail_next = 1
    with pytest.raises(UnavailableError):
        await world.intake.submit(submission(channel="app"), "key-2")

    for _ in range(2):
        receipt = await world.intake.submit(submission(channel="app"), "key-2")
        assert receipt.duplicate_of == first.ticket_id and receipt.replayed

    links = [e for e in world.publisher.published if isinstance(e, TicketLinked)]
    assert len(links) == 1 and links[0].ticket_id == first.ticket_id
    assert await world.callers.links_of(first.ticket_id) == 1
