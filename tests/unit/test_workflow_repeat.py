"""Issue #17, point 1 under the reopen policy (HOTLINE_REPEAT_OF_CLOSED=reopen):
the caller's repeat of a closed ticket reopens it (重办) to its last department,
with a new time limit from the reopening; exactly once per repeat; a ticket with
no department to go back to is dispatched anew. The router's transition and its
handler, against the shipped rules and in-memory stores."""

from __future__ import annotations

from uuid import uuid4

import pytest

from services.router.commands import CommandService
from services.router.engine import RuleEngine
from services.router.handlers import Deps, EngineHolder, handle_linked
from services.router.workflow.context import ROUTER
from services.router.workflow.hotline import feedback
from services.router.workflow.reopening import repeat_call
from services.router.workflow.state import Status, TicketState
from shared.clock import ManualClock
from shared.domain import Actor, ActorKind, Channel
from shared.events import (
    Envelope,
    LinkedPayload,
    Rating,
    ReopenCause,
    TicketDispatched,
    TicketLinked,
    TicketReopened,
    TicketUnroutable,
)
from tests.fakes import FakePublisher, FakeRefusedStore, FakeTicketStore
from tests.unit.test_workflow import (
    WATER,
    Flow,
    at,
    engine,
    feedback_event,
    guan,
    narrow,
    one,
    resolved,
    sample,
    working_days_after,
)

__all__ = ["engine", "guan", "narrow", "resolved"]  # fixtures used below
CALLER = Actor(kind=ActorKind.CITIZEN, id="channel:phone")


def repeat_of(state: TicketState, reopen: bool = True) -> TicketLinked:
    """What intake publishes for the caller's near-identical repeat of the ticket."""
    draft = state.draft.model_copy(update={"channel": Channel.PHONE})
    return TicketLinked(
        event_id=uuid4(),
        ticket_id=state.ticket_id,
        actor=CALLER,
        payload=LinkedPayload(ticket=draft, similarity=97.0, reopen=reopen),
    )


def calls_again(flow: Flow, event: TicketLinked) -> list[Envelope]:
    """The repeat applied; a reopening is the caller's, a dispatch the router's."""
    transition = repeat_call(flow.state, event, flow.ctx())
    for step in transition.events:
        assert step.ticket_id == flow.state.ticket_id
        assert step.actor == (CALLER if isinstance(step, TicketReopened) else ROUTER)
    flow.state = transition.state
    flow.events.extend(transition.events)
    return transition.events


@pytest.fixture
def closed(resolved: Flow) -> Flow:
    """S001 closed satisfied on Thursday 09-24; the caller calls again on Monday 09-28."""
    resolved.rate(Rating.SATISFIED)
    assert resolved.state.status == Status.CLOSED
    return resolved.at(at(9, 28))


def test_a_repeat_of_a_closed_ticket_reopens_it_to_its_department(closed: Flow) -> None:
    called_at = closed.now
    [event] = calls_again(closed, repeat_of(closed.state))
    assert isinstance(event, TicketReopened)
    p = event.payload
    assert (p.cause, p.department, p.reopen_count) == (ReopenCause.REPEAT_CALL, WATER.id, 1)
    assert p.deadline == working_days_after(called_at, 5)  # from the reopening
    assert called_at < p.response_deadline <= p.deadline
    state = closed.state
    assert (state.status, state.department, state.deadline) == (
        Status.REOPENED,
        WATER.id,
        p.deadline,
    )
    assert (state.closed_at, state.resolved_at, state.accepted_at) == (None, None, None)
    [reopening] = state.reopens
    assert (reopening.cause, reopening.at, reopening.department) == (
        ReopenCause.REPEAT_CALL,
        called_at,
        WATER.id,
    )


def test_a_repeat_while_the_reply_awaits_its_rating_reopens_it_too(resolved: Flow) -> None:
    [event] = calls_again(resolved, repeat_of(resolved.state))
    assert isinstance(event, TicketReopened) and event.payload.cause == ReopenCause.REPEAT_CALL
    assert resolved.state.status == Status.REOPENED


def test_the_same_repeat_reopens_once(closed: Flow) -> None:
    event = repeat_of(closed.state)
    calls_again(closed, event)
    reopened = closed.state
    assert calls_again(closed.later(minutes=5), event) == []  # the broker redelivers it
    assert closed.state == reopened
    # Even once it is closed again, the redelivery reopens nothing.
    closed.later(hours=1).accept()
    closed.later(hours=1).resolve()
    closed.later(hours=1).rate(Rating.SATISFIED)
    assert calls_again(closed.later(minutes=5), event) == []
    assert closed.state.status == Status.CLOSED


def test_a_rating_in_flight_when_a_repeat_reopened_it_is_refused(resolved: Flow) -> None:
    # The citizen rated satisfied and called again; the router took the call first.
    rating = feedback_event(resolved.state, Rating.SATISFIED)
    calls_again(resolved, repeat_of(resolved.state))
    resolved.refuse(lambda s, c: feedback(s, rating, c), "ILLEGAL_TRANSITION", 409)
    assert resolved.state.status == Status.REOPENED  # kept for staff by the handler


def test_a_repeat_reaching_an_open_ticket_joins_it(closed: Flow) -> None:
    # Intake saw it closed, but another repeat (or a rating) reopened it meanwhile.
    calls_again(closed, repeat_of(closed.state))
    before = closed.state
    assert calls_again(closed.later(minutes=1), repeat_of(closed.state)) == []
    assert closed.state == before


def test_a_plain_link_changes_nothing(closed: Flow) -> None:
    before = closed.state
    assert calls_again(closed, repeat_of(closed.state, reopen=False)) == []
    assert closed.state == before


def test_repeat_calls_do_not_use_up_the_ratings_reopening(closed: Flow) -> None:
    calls_again(closed, repeat_of(closed.state))
    assert (closed.state.reopen_count, closed.state.reopenings) == (0, 1)
    closed.later(hours=1).accept()
    # No written explanation is asked (一单一报 answers an unsatisfied rating).
    closed.later(hours=1).resolve()
    [again] = closed.later(days=1).rate(Rating.UNSATISFIED, solved=False)
    assert isinstance(again, TicketReopened)
    assert (again.payload.cause, again.payload.reopen_count) == (ReopenCause.RATING, 2)
    assert closed.state.reopen_count == 1


def test_a_ticket_whose_department_is_gone_is_dispatched_anew(closed: Flow) -> None:
    closed.state = closed.state.model_copy(update={"department": "guanxian.dissolved"})
    [event] = calls_again(closed, repeat_of(closed.state))
    dispatched = one([event], TicketDispatched)
    assert dispatched.payload.department == WATER.id  # by the rules again
    assert dispatched.payload.round == 2
    assert closed.state.status == Status.DISPATCHED
    assert closed.state.reopens[-1].department is None


def test_with_no_rule_for_it_it_waits_in_the_manual_queue(narrow: RuleEngine) -> None:
    flow = Flow.start(narrow, sample("S001", narrow), at(9, 22))
    assert flow.state.status == Status.UNROUTABLE
    # Closed by hand through a department that no longer exists.
    flow.state = flow.state.model_copy(
        update={"status": Status.CLOSED, "department": "guanxian.dissolved"}
    )
    [event] = calls_again(flow.later(days=3), repeat_of(flow.state))
    assert isinstance(event, TicketUnroutable)
    assert "repeat call" in event.payload.reason
    assert flow.state.status == Status.UNROUTABLE


# --- the handler ----------------------------------------------------------------------


@pytest.fixture
def commands(engine: RuleEngine) -> CommandService:
    clock = ManualClock(at(9, 28))
    holder = EngineHolder(engine)
    return CommandService(FakeTicketStore(), holder, FakePublisher(), clock, lambda: True)


async def test_the_handler_reopens_once_whatever_the_redeliveries(
    closed: Flow, commands: CommandService
) -> None:
    store, publisher = commands.repo, commands.publisher
    assert isinstance(store, FakeTicketStore) and isinstance(publisher, FakePublisher)
    await store.create(closed.state, [], closed.now)
    event = repeat_of(closed.state)
    deps = Deps(commands, FakeRefusedStore())
    for _ in range(3):
        await handle_linked(event, deps)
    [reopened] = publisher.published
    assert isinstance(reopened, TicketReopened)
    assert reopened.payload.cause == ReopenCause.REPEAT_CALL
    assert store.tickets[closed.state.ticket_id].state.status == Status.REOPENED


async def test_the_handler_dispatches_a_ticket_it_never_held(
    engine: RuleEngine, commands: CommandService
) -> None:
    # Answered on the spot at intake: the router never held it.
    on_spot = Flow.start(engine, sample("S001", engine), at(9, 22), ticket_id="LC-ONSPOT")
    await handle_linked(repeat_of(on_spot.state), Deps(commands, FakeRefusedStore()))
    publisher = commands.publisher
    assert isinstance(publisher, FakePublisher)
    [dispatched] = publisher.published
    assert isinstance(dispatched, TicketDispatched) and dispatched.ticket_id == "LC-ONSPOT"
    assert dispatched.payload.department == WATER.id


async def test_the_handler_ignores_a_plain_link(closed: Flow, commands: CommandService) -> None:
    await handle_linked(repeat_of(closed.state, reopen=False), Deps(commands, FakeRefusedStore()))
    assert isinstance(commands.publisher, FakePublisher)
    assert commands.publisher.published == []
