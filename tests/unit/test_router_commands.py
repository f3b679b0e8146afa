"""The router's command service against in-memory stores (tests/fakes.py): the
outbox, redelivery and relay logic without servers. The same logic runs against
MongoDB and RabbitMQ in tests/integration/test_router_flow.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from services.router.commands import RELAY_GRACE, CommandService, PublishPending
from services.router.handlers import Deps, EngineHolder, handle_feedback, handle_received
from services.router.knowledge import shipped_engine
from services.router.repository import StaleState
from services.router.workflow.department import accept
from services.router.workflow.state import Principal, Status
from shared.clock import ManualClock
from shared.directory import Directory
from shared.domain import ActorKind, TicketDraft
from shared.errors import UnavailableError
from shared.events import Rating, TicketAccepted, TicketDispatched, TicketFeedback
from shared.workcalendar import WorkCalendar
from tests.fakes import FakePublisher, FakeRefusedStore, FakeTicketStore
from tests.stats_support import TicketStory

START = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
TICKET = "LC20260310000001"


@pytest.fixture(scope="module")
def engines(directory: Directory) -> EngineHolder:
    return EngineHolder(shipped_engine(directory, WorkCalendar("Asia/Shanghai")))


@dataclass
class Router:
    store: FakeTicketStore
    publisher: FakePublisher
    clock: ManualClock
    commands: CommandService
    story: TicketStory

    async def receive(self) -> None:
        await handle_received(self.story.received(START), Deps(self.commands, FakeRefusedStore()))

    async def accept(self) -> object:
        state = await self.store.get(TICKET)
        assert state is not None and state.state.department
        who = Principal(kind=ActorKind.DEPARTMENT, id=state.state.department)
        return await self.commands.run(TICKET, "accept", lambda s, ctx: accept(s, who, ctx))


@pytest.fixture
def router(engines: EngineHolder) -> Router:
    store, publisher, clock = FakeTicketStore(), FakePublisher(), ManualClock(START)
    commands = CommandService(store, engines, publisher, clock, lambda: True)
    return Router(store, publisher, clock, commands, TicketStory(TICKET, "yanggu"))


async def test_a_received_event_applied_twice_dispatches_once(router: Router) -> None:
    await router.receive()
    await router.receive()  # the broker redelivers it

    [dispatched] = router.publisher.published
    assert isinstance(dispatched, TicketDispatched)
    assert router.store.tickets[TICKET].state.status == Status.DISPATCHED
    assert router.store.tickets[TICKET].outbox == []


async def test_a_redelivery_republishes_what_a_failed_publish_left(router: Router) -> None:
    router.publisher.fail_next = 1
    with pytest.raises(UnavailableError):  # the consumer requeues the received event
        await router.receive()
    [left] = router.store.tickets[TICKET].outbox

    await router.receive()

    assert router.publisher.ids() == [left.event_id]
    assert router.store.tickets[TICKET].outbox == []


async def test_a_failed_publish_leaves_the_outbox_and_the_relay_sends_the_same_event(
    router: Router,
) -> None:
    await router.receive()
    router.publisher.fail_next = 1
    with pytest.raises(PublishPending):  # the API answers 202: stored, on its way
        await router.accept()
    [pending] = router.store.tickets[TICKET].outbox
    assert isinstance(pending, TicketAccepted)

    assert await router.commands.relay() == 0  # within the grace: its writer may still publish
    router.clock.advance(RELAY_GRACE + timedelta(seconds=1))
    assert await router.commands.relay() == 1

    assert router.publisher.ids()[-1] == pending.event_id
    assert router.store.tickets[TICKET].outbox == []
    assert await router.commands.relay() == 0  # nothing left: nothing published twice


async def test_a_relay_while_the_broker_is_down_keeps_the_outbox(router: Router) -> None:
    await router.receive()
    router.publisher.fail_next = 1
    with pytest.raises(PublishPending):
        await router.accept()
    router.clock.advance(RELAY_GRACE + timedelta(seconds=1))
    router.publisher.down = True

    with pytest.raises(UnavailableError):
        await router.commands.relay()

    assert len(router.store.tickets[TICKET].outbox) == 1


async def test_a_stale_write_changes_nothing_and_its_retry_applies_once(router: Router) -> None:
    await router.receive()
    router.store.race(TICKET)

    with pytest.raises(StaleState):  # the API answers 409, the consumer retries
        await router.accept()
    assert router.store.tickets[TICKET].outbox == []
    assert len(router.publisher.published) == 1  # only the dispatch

    await router.accept()
    assert [e.event_type for e in router.publisher.published] == ["dispatched", "accepted"]
    assert router.store.tickets[TICKET].state.status == Status.ACCEPTED


async def test_a_refused_rating_is_kept_for_staff_once(router: Router) -> None:
    await router.receive()
    rating = TicketFeedback.model_validate(
        {
            "ticket_id": TICKET,
            "occurred_at": START,
            "actor": {"kind": "citizen", "id": "c"},
            "payload": {"dims": router.story.dims, "rating": Rating.SATISFIED, "solved": True},
        }
    )
    refused = FakeRefusedStore()

    for _ in range(2):  # a redelivery
        await handle_feedback(rating, Deps(router.commands, refused))

    assert refused.refused == {str(rating.event_id): "ILLEGAL_TRANSITION"}
    assert len(router.publisher.published) == 1


def drafts(n: int) -> dict[str, TicketDraft]:
    """n received tickets of a batch: ticket number -> draft."""
    stories = [TicketStory(f"LC2026031000010{i}", "yanggu") for i in range(n)]
    return {s.ticket_id: s.received(START).payload.ticket for s in stories}


async def test_a_batch_of_received_tickets_applied_twice_dispatches_each_once(
    router: Router,
) -> None:
    batch = drafts(3)
    await router.commands.create_many(batch)
    await router.commands.create_many(batch)  # the whole batch redelivered

    assert sorted(e.ticket_id for e in router.publisher.published) == sorted(batch)
    assert all(router.store.tickets[t].outbox == [] for t in batch)


async def test_a_batch_publish_failing_for_one_ticket_clears_the_others(router: Router) -> None:
    batch = drafts(3)
    router.publisher.fail_next = 1
    with pytest.raises(UnavailableError):  # the consumer requeues the batch
        await router.commands.create_many(batch)
    # The one ticket whose publish failed keeps its outbox; the others are clear.
    [[event]] = [router.store.tickets[t].outbox for t in batch if router.store.tickets[t].outbox]
    published_first = router.publisher.ids()

    await router.commands.create_many(batch)

    assert router.publisher.ids() == [*published_first, event.event_id]
    assert all(router.store.tickets[t].outbox == [] for t in batch)
    assert sorted(e.ticket_id for e in router.publisher.published) == sorted(batch)
