"""Issue #17, point 1 in intake: the caller's near-identical repeat of a ticket
is linked (并单) to it while it is open; once it is closed, the centre's policy
(HOTLINE_REPEAT_OF_CLOSED) decides: a new ticket recording it (new, the
default) or a link that reopens it (reopen). In-memory stores; the same runs
against MongoDB and RabbitMQ in tests/integration/test_intake_duplicates.py."""

from __future__ import annotations

import pytest

from services.intake.models import Receipt
from shared.directory import Directory
from shared.errors import UnavailableError
from shared.events import TicketLinked, TicketReceived
from tests.fakes_intake import FakeStatus
from tests.unit.test_intake_replay import World, make_world, submission, world

__all__ = ["world"]  # the fixture of the default policy, used below


@pytest.fixture
def reopening(directory: Directory) -> World:
    return make_world(directory, repeat_of_closed="reopen")


def set_status(world: World, ticket_id: str, status: str) -> None:
    fake = world.intake.status
    assert isinstance(fake, FakeStatus)
    fake.set(ticket_id, status)


async def closed_ticket(world: World, key: str = "key-1", status: str = "closed") -> str:
    first = await world.intake.submit(submission(), key)
    set_status(world, first.ticket_id, status)
    return first.ticket_id


def links(world: World) -> list[TicketLinked]:
    return [e for e in world.publisher.published if isinstance(e, TicketLinked)]


async def test_by_default_a_repeat_of_a_closed_ticket_is_a_new_ticket(world: World) -> None:
    first = await closed_ticket(world)
    again = await world.intake.submit(submission(channel="app"), "key-2")
    assert (again.status, again.related_to) == ("received", first)
    assert again.ticket_id != first and links(world) == []
    received = world.publisher.published[-1]
    assert isinstance(received, TicketReceived) and received.payload.related_to == first


@pytest.mark.parametrize("status", ["closed", "resolved"])
async def test_under_reopen_a_repeat_of_a_closed_ticket_reopens_it(
    reopening: World, status: str
) -> None:
    first = await closed_ticket(reopening, status=status)
    again = await reopening.intake.submit(submission(channel="app"), "key-2")
    assert again == Receipt(ticket_id=first, status="reopened", duplicate_of=first)
    [link] = links(reopening)
    assert (link.ticket_id, link.payload.reopen) == (first, True)
    assert link.payload.ticket.channel.value == "app"  # the repeat as it came
    assert len(reopening.store.records) == 1  # no new ticket
    assert await reopening.callers.links_of(first) == 1  # recorded on the ticket


async def test_under_reopen_a_repeat_of_an_open_ticket_is_only_linked(reopening: World) -> None:
    first = await closed_ticket(reopening, status="accepted")
    again = await reopening.intake.submit(submission(channel="app"), "key-2")
    assert (again.status, again.duplicate_of) == ("linked", first)
    [link] = links(reopening)
    assert link.payload.reopen is False


async def test_a_retried_reopening_answers_the_same_and_publishes_once(
    reopening: World,
) -> None:
    first = await closed_ticket(reopening)
    reopening.publisher.fail_next = 1
    with pytest.raises(UnavailableError):  # the client is told 503 and retries
        await reopening.intake.submit(submission(channel="app"), "key-2")
    for _ in range(2):
        receipt = await reopening.intake.submit(submission(channel="app"), "key-2")
        assert (receipt.status, receipt.ticket_id, receipt.replayed) == ("reopened", first, True)
    [link] = links(reopening)
    assert link.payload.reopen is True


async def test_the_latest_closed_ticket_is_the_one_reopened(reopening: World) -> None:
    older = await closed_ticket(reopening, "key-1")
    # Closed too since: a new ticket was opened for it under the old policy.
    reopening.intake.repeat_of_closed = "new"
    newer = (await reopening.intake.submit(submission(), "key-2")).ticket_id
    assert newer != older
    set_status(reopening, newer, "closed")
    reopening.intake.repeat_of_closed = "reopen"
    again = await reopening.intake.submit(submission(), "key-3")
    assert (again.status, again.ticket_id) == ("reopened", newer)
