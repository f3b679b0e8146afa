"""Intake's citizen progress and stats' ticket view agree on a ticket's status,
whatever order the events arrive in and even when two share a timestamp (both
order steps by shared.events.catalogue)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from itertools import permutations

import pytest

from services.intake.status import StatusProjection
from services.stats.projection import build_view
from shared.events import TicketEvent
from shared.mongo import create_client, service_database
from shared.settings import CommonSettings
from tests.stats_support import TicketStory, utc

pytestmark = pytest.mark.asyncio(loop_scope="function")


@pytest.fixture
async def projection(settings: CommonSettings) -> AsyncIterator[StatusProjection]:
    client = create_client(settings)
    try:
        yield StatusProjection(service_database(client, settings, "intake"))
    finally:
        await client.close()


def returned_and_redispatched(ticket_id: str) -> list[TicketEvent]:
    """A department returns the ticket and the router re-dispatches it to
    another in the same millisecond (the router does both in one command)."""
    story = TicketStory(ticket_id, "guanxian")
    first = story.dispatched(utc("2026-03-02", 2), "guanxian.water", 24)
    same_instant = utc("2026-03-02", 3)
    back = story.returned(same_instant)
    again = story.dispatched(same_instant, "guanxian.housing", 24)
    return [first, back, again]


@pytest.mark.parametrize("order", list(permutations(range(3))), ids=str)
async def test_return_and_redispatch_at_one_instant(
    projection: StatusProjection, order: tuple[int, ...]
) -> None:
    ticket_id = f"LC-TIE-{''.join(map(str, order))}"
    events = returned_and_redispatched(ticket_id)
    for i in order:
        await projection.apply(events[i])
    progress = await projection.get(ticket_id)
    assert progress is not None
    assert (progress.status, progress.department) == ("dispatched", "guanxian.housing")

    view = build_view(ticket_id, None, [events[i] for i in order])
    assert (view["status"], view["department"]) == (progress.status, progress.department)
