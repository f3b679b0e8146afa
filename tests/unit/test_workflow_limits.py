"""Issue #17 in the router's workflow: the response deadline never after the
handling deadline (5), one extension request per dispatch, refusal included (6),
and a reopened ticket's new time limit (2). Same fixtures as test_workflow."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.router.engine import RuleEngine
from services.router.workflow.context import Context, Policy, actor_of
from services.router.workflow.dispatch import Target, dispatch
from services.router.workflow.state import Status
from shared.domain import Priority
from shared.events import Rating, TicketReopened
from tests.unit.test_workflow import (
    STAFF,
    WATER,
    Flow,
    asks,
    at,
    decides,
    engine,
    guan,
    one,
    resolved,
    sample,
    working_days_after,
)

__all__ = ["engine", "guan", "resolved"]  # fixtures used below
STAFF_ACTOR = actor_of(STAFF)

LIMITS = ("urgent", "utility", "consultation", "general", "complex")
STARTS = (
    at(11, 21, 10),  # Saturday
    at(11, 22, 23, 30),  # Sunday night
    at(11, 20, 17, 45),  # Friday, after hours
    at(9, 30, 16),  # the eve of National Day
    at(10, 3, 9),  # inside National Day
    at(10, 9, 23),  # Friday night before the make-up Saturday 10-10
    at(12, 31, 20),  # New Year's Eve
)


@pytest.mark.parametrize("time_limit", LIMITS)
@pytest.mark.parametrize("priority", [Priority.NORMAL, Priority.URGENT])
@pytest.mark.parametrize("start", STARTS)
def test_the_response_deadline_is_never_after_the_deadline(
    engine: RuleEngine, time_limit: str, priority: Priority, start: datetime
) -> None:
    draft = sample("S004", engine).model_copy(update={"priority": priority})
    flow = Flow.start(engine, draft, start)
    target = Target("city.power", (), time_limit)
    state = dispatch(flow.state, Context(engine, start), STAFF_ACTOR, target, "manual").state
    assert state.deadline is not None and state.response_deadline is not None
    assert start < state.response_deadline <= state.deadline


def test_a_utility_ticket_on_saturday_is_urged_no_later_than_its_red_card(
    engine: RuleEngine,
) -> None:
    # 24 hours from Saturday 10:00 end on Sunday 10:00; 2 working hours would end
    # on Monday 10:00, 24 hours after the overdue notice.
    draft = sample("S004", engine).model_copy(update={"priority": Priority.NORMAL})
    saturday = at(11, 21, 10)
    flow = Flow.start(engine, draft, saturday)
    target = Target("city.power", (), "utility")
    state = dispatch(flow.state, Context(engine, saturday), STAFF_ACTOR, target, "manual").state
    assert state.deadline == at(11, 22, 10)
    assert state.response_deadline == at(11, 22, 10)


def test_a_refused_extension_was_the_one_request_of_this_dispatch(guan: Flow) -> None:
    guan.accept()
    guan.do(asks(WATER, 5), WATER)
    guan.do(decides(STAFF, False, "理由不充分"), STAFF)
    error = guan.refuse(asks(WATER, 2), "EXTENSION_LIMIT", 409)
    assert "refused" in error.message


def test_the_number_of_extension_requests_is_the_centres_policy(engine: RuleEngine) -> None:
    flow = Flow.start(engine, sample("S001", engine), at(9, 22))
    policy = Policy(extension_requests_per_dispatch=2)
    flow.ctx = lambda: Context(flow.engine, flow.now, policy)  # type: ignore[method-assign]
    flow.accept()
    flow.do(asks(WATER, 5), WATER)
    flow.do(decides(STAFF, False, "理由不充分"), STAFF)
    flow.do(asks(WATER, 2), WATER)
    flow.do(decides(STAFF, False, "仍不充分"), STAFF)
    flow.refuse(asks(WATER, 1), "EXTENSION_LIMIT", 409)


def test_a_new_dispatch_may_ask_again(guan: Flow) -> None:
    guan.accept()
    guan.do(asks(WATER, 5), WATER)
    guan.do(decides(STAFF, False, "理由不充分"), STAFF)
    guan.do(
        lambda s, c: dispatch(s, c, STAFF_ACTOR, Target("guanxian.water", (), "general"), "manual"),
        STAFF,
    )
    guan.accept()
    guan.do(asks(WATER, 2), WATER)
    assert guan.state.status == Status.EXTENSION_REQUESTED


def test_a_reopened_ticket_gets_its_new_limit_from_the_reopening(resolved: Flow) -> None:
    rated_at = resolved.now
    [reopened] = resolved.rate(Rating.UNSATISFIED, solved=False)
    assert isinstance(reopened, TicketReopened)
    assert reopened.payload.deadline == working_days_after(rated_at, 5)
    assert reopened.payload.response_deadline == at(9, 24, 13)  # 2 working hours
    assert resolved.state.deadline == reopened.payload.deadline


def test_a_reopening_limit_configured_by_the_centre(engine: RuleEngine) -> None:
    flow = Flow.start(engine, sample("S001", engine), at(9, 22))
    policy = Policy(reopen_time_limit="consultation")
    flow.ctx = lambda: Context(flow.engine, flow.now, policy)  # type: ignore[method-assign]
    flow.later(hours=1).accept()
    flow.later(days=1).resolve()
    flow.later(days=1)  # Thursday 09-24 11:00
    reopened = one(flow.rate(Rating.UNSATISFIED, solved=False), TicketReopened)
    # One working day from Thursday 09-24: Mid-Autumn (09-25..27) not counted.
    assert reopened.payload.deadline == at(9, 28, 11) == flow.state.deadline
    assert flow.state.time_limit == "consultation"


def test_a_reopened_ticket_keeps_its_rules_response_limit(engine: RuleEngine) -> None:
    draft = sample("S001", engine)
    flow = Flow.start(engine, draft, at(9, 22))
    target = Target("guanxian.water", (), "complex", response_limit="urgent")
    flow.do(lambda s, c: dispatch(s, c, STAFF_ACTOR, target, "manual"), STAFF)
    assert flow.state.response_deadline == at(9, 22, 10, 30)
    flow.later(minutes=10).accept()
    flow.later(days=1).resolve()
    flow.later(days=1)
    reopened = one(flow.rate(Rating.UNSATISFIED, solved=False), TicketReopened)
    assert reopened.payload.response_deadline == at(9, 24, 10, 40)  # 30 minutes
