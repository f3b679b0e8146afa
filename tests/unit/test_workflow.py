"""The ticket workflow (services/router/workflow), one transition at a time.

A real RuleEngine (the shipped rules, the reference city's directory, China's
working-day calendar) and no I/O. Dates sit around the 2026 holidays; expected
deadlines are written out and, where working days are counted, checked against
chinese_calendar itself rather than WorkCalendar: Mid-Autumn 2026-09-25..27
(Sunday 09-20 is a make-up working day), National Day 2026-10-01..07 (Saturday
10-10 is a make-up working day).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TypeVar
from uuid import uuid4
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from services.router.engine import RuleEngine
from services.router.knowledge import shipped_engine
from services.router.rules import parse_rules
from services.router.workflow.context import ROUTER, Context, Transition, actor_of
from services.router.workflow.department import (
    accept,
    explain,
    request_extension,
    resolve,
    return_ticket,
    sub_dispatch,
)
from services.router.workflow.dispatch import new_ticket
from services.router.workflow.hotline import decide_extension, feedback, manual_dispatch
from services.router.workflow.state import Principal, Status, TicketState, WorkflowError
from shared.directory import load_directory
from shared.domain import (
    Actor,
    ActorKind,
    Category,
    Channel,
    Priority,
    TicketDims,
    TicketDraft,
)
from shared.events import (
    DepartmentStep,
    Envelope,
    FeedbackPayload,
    Rating,
    TicketAccepted,
    TicketClosed,
    TicketDispatched,
    TicketExplained,
    TicketExtended,
    TicketExtensionRefused,
    TicketExtensionRequested,
    TicketFeedback,
    TicketReopened,
    TicketResolved,
    TicketReturned,
    TicketUnroutable,
)
from shared.settings import DATA_DIR
from shared.workcalendar import WorkCalendar

SH = ZoneInfo("Asia/Shanghai")
E = TypeVar("E", bound=Envelope)
Step = Callable[[TicketState, Context], Transition]

STAFF = Principal(kind=ActorKind.STAFF, id="zhang.san")
WATER = Principal(kind=ActorKind.DEPARTMENT, id="guanxian.water")
NATRES = Principal(kind=ActorKind.DEPARTMENT, id="city.natres")
GUANXIAN = Principal(kind=ActorKind.DEPARTMENT, id="guanxian")
POLICE = Principal(kind=ActorKind.DEPARTMENT, id="city.police")
SHENXIAN = Principal(kind=ActorKind.DEPARTMENT, id="shenxian")
SHENXIAN_HOUSING = Principal(kind=ActorKind.DEPARTMENT, id="shenxian.housing")
CITIZEN = Actor(kind=ActorKind.CITIZEN, id="feedback")

# One rule only: whatever it does not match waits for a person.
NARROW_RULES = """
version: 1
time_limits:
  urgent: {hours: 2}
  general: {working_days: 5}
  consultation: {working_days: 1}
response_limits:
  default: {working_hours: 2}
  urgent: {hours: 0.5}
  slow: {working_days: 3}
rules:
  - id: unicorns
    when:
      keywords:
        any: [独角兽]
    then:
      department: city.platform
  - id: dragons
    when:
      keywords:
        any: [青龙]
    then:
      department: city.emergency
      response_limit: slow
"""


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    directory = load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")
    return shipped_engine(directory, WorkCalendar("Asia/Shanghai"))


@pytest.fixture(scope="module")
def narrow(engine: RuleEngine) -> RuleEngine:
    return RuleEngine(parse_rules(NARROW_RULES), engine.directory, engine.calendar)


def at(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


def working_days_after(start: datetime, n: int) -> datetime:
    """The same time on the n-th working day after start, by chinese_calendar."""
    day: date = start.date()
    while n:
        day += timedelta(days=1)
        if chinese_calendar.is_workday(day):
            n -= 1
    return datetime.combine(day, start.timetz())


def samples() -> dict[str, dict[str, str]]:
    lines = (DATA_DIR / "sample_requests.jsonl").read_text(encoding="utf-8").splitlines()
    return {raw["id"]: raw for raw in map(json.loads, filter(None, lines))}


def sample(sample_id: str, engine: RuleEngine) -> TicketDraft:
    raw = samples()[sample_id]
    district = engine.directory.district(raw["district"])
    assert district is not None
    return TicketDraft.model_validate(
        {
            **{k: v for k, v in raw.items() if k in TicketDraft.model_fields},
            "district": district.id,
            "external_id": raw["id"],
        }
    )


def check_events(transition: Transition, before: TicketState, actor: Actor) -> None:
    """An accepted transition: at least one event, of this ticket, by this actor
    (a re-dispatch by the rules that follows a return is the router's), carrying
    the ticket's dimensions."""
    assert transition.events
    for n, event in enumerate(transition.events):
        assert event.ticket_id == before.ticket_id
        follow_up = n > 0 and isinstance(event, TicketDispatched | TicketUnroutable)
        assert event.actor == (ROUTER if follow_up else actor)
        # A dispatch may change the priority (a rule's); every other step keeps it.
        assert event.dims() == (
            transition.state.dims if isinstance(event, TicketDispatched) else before.dims
        )
        assert event.dims() == TicketDims.of(before.draft).model_copy(
            update={"priority": event.dims().priority}
        )


@dataclass
class Flow:
    """One ticket driven through the workflow at a clock the test moves."""

    engine: RuleEngine
    state: TicketState
    now: datetime
    events: list[Envelope] = field(default_factory=list)

    @classmethod
    def start(
        cls, engine: RuleEngine, draft: TicketDraft, now: datetime, ticket_id: str = "LC-1"
    ) -> Flow:
        transition = new_ticket(ticket_id, draft, Context(engine, now))
        initial = TicketState(
            ticket_id=ticket_id, status=Status.UNROUTABLE, draft=draft, priority=draft.priority
        )
        check_events(transition, initial, ROUTER)
        return cls(engine, transition.state, now, list(transition.events))

    def ctx(self) -> Context:
        return Context(self.engine, self.now)

    def at(self, now: datetime) -> Flow:
        assert now >= self.now
        self.now = now
        return self

    def later(self, **delta: float) -> Flow:
        return self.at(self.now + timedelta(**delta))

    def do(self, step: Step, actor: Principal | Actor) -> list[Envelope]:
        before = self.state
        transition = step(before, self.ctx())
        check_events(transition, before, actor_of(actor) if isinstance(actor, Principal) else actor)
        self.state = transition.state
        self.events.extend(transition.events)
        return transition.events

    def refuse(self, step: Step, code: str, status: int) -> WorkflowError:
        """A refusal raises before producing anything and leaves the state as it was."""
        before = self.state.model_copy(deep=True)
        with pytest.raises(WorkflowError) as info:
            step(self.state, self.ctx())
        assert (info.value.code, info.value.status) == (code, status), info.value.message
        assert self.state == before
        return info.value

    # The usual steps, each by the lead department or staff.
    def lead(self) -> Principal:
        assert self.state.department is not None
        return Principal(kind=ActorKind.DEPARTMENT, id=self.state.department)

    def accept(self) -> list[Envelope]:
        who = self.lead()
        return self.do(lambda s, c: accept(s, who, c), who)

    def resolve(self, reply: str = "已处理完毕，已电话回复。") -> list[Envelope]:
        who = self.lead()
        return self.do(lambda s, c: resolve(s, who, reply, c), who)

    def rate(self, rating: Rating, solved: bool = True) -> list[Envelope]:
        event = feedback_event(self.state, rating, solved)
        return self.do(lambda s, c: feedback(s, event, c), CITIZEN)


def feedback_event(state: TicketState, rating: Rating, solved: bool = True) -> TicketFeedback:
    return TicketFeedback(
        ticket_id=state.ticket_id,
        actor=CITIZEN,
        payload=FeedbackPayload(dims=state.dims, rating=rating, solved=solved, comment="回访"),
    )


def one(events: list[Envelope], kind: type[E]) -> E:
    [event] = [e for e in events if isinstance(e, kind)]
    return event


@pytest.fixture
def guan(engine: RuleEngine) -> Flow:
    """S001, the Guan County water-pipe case, dispatched on Tuesday
    2026-09-22 at 10:00, before the Mid-Autumn and National Day holidays."""
    return Flow.start(engine, sample("S001", engine), at(9, 22))


# --- new_ticket ---------------------------------------------------------------------


def test_new_ticket_is_dispatched_by_the_rules(engine: RuleEngine) -> None:
    draft = sample("S001", engine)
    flow = Flow.start(engine, draft, at(9, 22))
    state = flow.state
    assert state.status == Status.DISPATCHED
    assert state.department == "guanxian.water"
    assert state.round == 1
    assert state.time_limit == "general"
    assert state.dispatched_at == at(9, 22)
    # 5 working days, the Mid-Autumn holiday not counted: Wednesday 2026-09-30.
    assert state.deadline == working_days_after(at(9, 22), 5) == at(9, 30)
    assert state.response_deadline == at(9, 22, 12)  # 2 working hours
    [event] = flow.events
    assert isinstance(event, TicketDispatched)
    assert event.actor == ROUTER
    assert event.payload.department == "guanxian.water"
    # No rule takes it; the lists know a water pipe: decided by the list, no rule.
    assert (event.payload.rule, event.payload.decided_by) == ("", "list")
    assert state.decided_by == "list"
    assert event.payload.ticket == draft
    assert event.payload.via == "rules"
    assert event.payload.round == 1
    assert event.payload.previous_department is None
    assert (event.payload.deadline, event.payload.response_deadline) == (
        state.deadline,
        state.response_deadline,
    )


@pytest.mark.parametrize(
    ("sample_id", "department", "time_limit", "priority", "deadline", "response_deadline"),
    [
        # urgent outage: 24 natural hours, 30 minutes to respond
        ("S004", "dongchangfu.water", "utility", "urgent", at(9, 23), at(9, 22, 10, 30)),
        # the gas-leak rule makes the ticket urgent whatever the citizen said
        ("S011", "city.gas-heat", "urgent", "urgent", at(9, 22, 12), at(9, 22, 10, 30)),
        # a consultation: one working day
        ("S010", "guanxian.education", "consultation", "normal", at(9, 23), at(9, 22, 12)),
        ("S024", "econ-zone", "general", "normal", at(9, 30), at(9, 22, 12)),
    ],
)
def test_new_ticket_limits_follow_the_rule(
    engine: RuleEngine,
    sample_id: str,
    department: str,
    time_limit: str,
    priority: str,
    deadline: datetime,
    response_deadline: datetime,
) -> None:
    flow = Flow.start(engine, sample(sample_id, engine), at(9, 22))
    state = flow.state
    assert (state.department, state.time_limit, state.priority) == (
        department,
        time_limit,
        priority,
    )
    assert (state.deadline, state.response_deadline) == (deadline, response_deadline)
    assert one(flow.events, TicketDispatched).payload.dims.priority == priority


def test_consultation_on_the_eve_of_a_holiday_is_due_after_it(engine: RuleEngine) -> None:
    flow = Flow.start(engine, sample("S010", engine), at(9, 24, 16))
    assert flow.state.deadline == working_days_after(at(9, 24, 16), 1) == at(9, 28, 16)


def test_new_ticket_matching_no_rule_waits_in_the_manual_queue(narrow: RuleEngine) -> None:
    draft = sample("S004", narrow)  # urgent, and no unicorn in it
    flow = Flow.start(narrow, draft, at(9, 22))
    assert flow.state.status == Status.UNROUTABLE
    assert flow.state.department is None
    assert flow.state.round == 0
    # What the defaults give this ticket stays with it for the manual dispatch.
    assert flow.state.time_limit == "urgent"
    [event] = flow.events
    assert isinstance(event, TicketUnroutable)
    assert event.actor == ROUTER
    assert event.payload.reason == "no rule matched"


def test_a_rules_response_limit_sets_the_response_deadline(narrow: RuleEngine) -> None:
    draft = sample("S001", narrow).model_copy(update={"text": "河边有一条青龙。"})
    flow = Flow.start(narrow, draft, at(9, 22))
    assert flow.state.department == "city.emergency"
    # 3 working days, Mid-Autumn not counted: Monday 09-28.
    assert flow.state.response_deadline == working_days_after(at(9, 22), 3) == at(9, 28)
    assert one(flow.events, TicketDispatched).payload.response_deadline == at(9, 28)


# --- accept -------------------------------------------------------------------------


def test_the_lead_department_accepts(guan: Flow) -> None:
    [event] = guan.later(minutes=30).accept()
    assert guan.state.status == Status.ACCEPTED
    assert guan.state.accepted_at == at(9, 22, 10, 30)
    assert isinstance(event, TicketAccepted)
    assert event.payload.department == "guanxian.water"
    assert event.payload.responded_in_time is True


@pytest.mark.parametrize(
    ("accepted_at", "in_time"),
    [
        (at(9, 19, 23), True),  # Saturday night: rest day, the clock is stopped
        (at(9, 20, 9, 30), True),  # the response deadline itself
        (at(9, 20, 9, 31), False),
        (at(9, 21, 9), False),
    ],
)
def test_responded_in_time_is_judged_on_the_response_deadline(
    engine: RuleEngine, accepted_at: datetime, in_time: bool
) -> None:
    # Friday 16:30: one working hour that day, the second on Sunday 09-20, a
    # make-up working day before Mid-Autumn.
    assert chinese_calendar.is_workday(date(2026, 9, 20))
    flow = Flow.start(engine, sample("S001", engine), at(9, 18, 16, 30))
    assert flow.state.response_deadline == at(9, 20, 9, 30)
    [event] = flow.at(accepted_at).accept()
    assert isinstance(event, TicketAccepted)
    assert event.payload.responded_in_time is in_time


def test_accept_refusals(guan: Flow) -> None:
    guan.refuse(lambda s, c: accept(s, POLICE, c), "NOT_YOUR_TICKET", 403)
    guan.refuse(lambda s, c: accept(s, STAFF, c), "DEPARTMENTS_ONLY", 403)
    guan.accept()
    guan.refuse(lambda s, c: accept(s, WATER, c), "ILLEGAL_TRANSITION", 409)


def test_nobody_accepts_a_ticket_in_the_manual_queue(narrow: RuleEngine) -> None:
    flow = Flow.start(narrow, sample("S001", narrow), at(9, 22))
    flow.refuse(lambda s, c: accept(s, WATER, c), "NOT_YOUR_TICKET", 403)


# --- return -------------------------------------------------------------------------


REASON = "供水工程占地补偿不属于本单位职责。"


def returned_by(who: Principal, reason: str = REASON) -> Step:
    return lambda s, c: return_ticket(s, who, reason, c)


@pytest.mark.parametrize(
    ("dispatched", "now", "allowed"),
    [
        # Friday 2026-11-13: the window runs over the weekend to Tuesday.
        (at(11, 13, 15), at(11, 16, 9), True),
        (at(11, 13, 15), at(11, 17, 15), True),
        (at(11, 13, 15), at(11, 17, 15, 1), False),
        # The day before National Day: the window runs to Friday 10-09.
        (at(9, 30), at(10, 5, 20), True),
        (at(9, 30), at(10, 9, 10), True),
        (at(9, 30), at(10, 9, 10, 1), False),
        (at(9, 30), at(10, 12, 9), False),
    ],
)
def test_return_only_within_two_working_days_of_dispatch(
    engine: RuleEngine, dispatched: datetime, now: datetime, allowed: bool
) -> None:
    window_end = working_days_after(dispatched, 2)
    assert (now <= window_end) is allowed
    flow = Flow.start(engine, sample("S001", engine), dispatched).at(now)
    if not allowed:
        error = flow.refuse(returned_by(WATER), "RETURN_WINDOW_PASSED", 409)
        assert window_end.isoformat() in error.message
        return
    returned, redispatched = flow.do(returned_by(WATER), WATER)
    assert isinstance(returned, TicketReturned)
    assert returned.payload.department == "guanxian.water"
    assert returned.payload.reason == REASON
    # The rules and lists choose again, without the department that returned
    # it: the farmland is the water project's (an exclusion of the lists), so
    # no other type claims it and the county's sub-centre takes it.
    assert isinstance(redispatched, TicketDispatched)
    assert redispatched.payload.department == "guanxian"
    assert redispatched.payload.rule == "county-local"
    assert redispatched.payload.round == 2
    assert redispatched.payload.previous_department == "guanxian.water"
    assert flow.state.status == Status.DISPATCHED
    assert flow.state.department == "guanxian"
    assert flow.state.returned_by == ("guanxian.water",)
    assert flow.state.dispatched_at == now
    assert flow.state.deadline is not None and flow.state.deadline > now


def test_returns_never_go_back_and_end_in_the_manual_queue(guan: Flow) -> None:
    chain = []
    while guan.state.status == Status.DISPATCHED:
        who = guan.lead()
        assert who.id not in guan.state.returned_by
        chain.append(who.id)
        guan.later(hours=1).do(returned_by(who), who)
    assert chain == ["guanxian.water", "guanxian"]
    assert guan.state.status == Status.UNROUTABLE
    assert guan.state.department is None
    assert guan.state.returned_by == tuple(chain)
    assert isinstance(guan.events[-1], TicketUnroutable)
    assert isinstance(guan.events[-2], TicketReturned)


def test_a_return_with_no_other_rule_goes_to_the_manual_queue(narrow: RuleEngine) -> None:
    draft = sample("S001", narrow).model_copy(update={"text": "公园里有一只独角兽。"})
    flow = Flow.start(narrow, draft, at(9, 22))
    platform = flow.lead()
    assert platform.id == "city.platform"
    returned, queued = flow.later(hours=2).do(returned_by(platform), platform)
    assert isinstance(returned, TicketReturned)
    assert isinstance(queued, TicketUnroutable)
    assert "city.platform" in queued.payload.reason
    assert flow.state.status == Status.UNROUTABLE
    assert flow.state.department is None


def test_only_staff_send_a_ticket_back_to_a_department_that_returned_it(
    narrow: RuleEngine,
) -> None:
    draft = sample("S001", narrow).model_copy(update={"text": "公园里有一只独角兽。"})
    platform = Principal(kind=ActorKind.DEPARTMENT, id="city.platform")
    flow = Flow.start(narrow, draft, at(9, 22))
    flow.do(returned_by(platform), platform)
    flow.refuse(
        lambda s, c: manual_dispatch(s, platform, "city.platform", (), None, c), "STAFF_ONLY", 403
    )
    [event] = flow.do(lambda s, c: manual_dispatch(s, STAFF, "city.platform", (), None, c), STAFF)
    assert isinstance(event, TicketDispatched)
    assert event.payload.via == "manual"
    assert flow.state.department == "city.platform"
    assert flow.state.returned_by == ("city.platform",)
    # Returned again: the rules still never choose it.
    flow.later(hours=1).do(returned_by(platform), platform)
    assert flow.state.status == Status.UNROUTABLE


def test_return_refusals(guan: Flow) -> None:
    guan.refuse(returned_by(POLICE), "NOT_YOUR_TICKET", 403)
    guan.refuse(returned_by(STAFF), "DEPARTMENTS_ONLY", 403)
    guan.refuse(returned_by(WATER, "  "), "INVALID_TEXT", 422)
    guan.refuse(returned_by(WATER, "x" * 2001), "INVALID_TEXT", 422)
    guan.accept()
    guan.refuse(returned_by(WATER), "ILLEGAL_TRANSITION", 409)


# --- extension ----------------------------------------------------------------------


def asks(who: Principal, days: int, reason: str = "需要协调村委会和施工方。") -> Step:
    return lambda s, c: request_extension(s, who, days, reason, c)


def decides(who: Principal, approve: bool, note: str = "同意") -> Step:
    return lambda s, c: decide_extension(s, who, approve, note, c)


@pytest.mark.parametrize("days", [-1, 0, 11, 30])
def test_an_extension_is_one_to_ten_working_days(guan: Flow, days: int) -> None:
    guan.accept()
    guan.refuse(asks(WATER, days), "EXTENSION_TOO_LONG", 422)


@pytest.mark.parametrize("days", [1, 10])
def test_an_extension_request_waits_for_staff(guan: Flow, days: int) -> None:
    guan.accept()
    [event] = guan.later(days=1).do(asks(WATER, days), WATER)
    assert isinstance(event, TicketExtensionRequested)
    assert (event.payload.days, event.payload.department) == (days, "guanxian.water")
    assert guan.state.status == Status.EXTENSION_REQUESTED
    assert guan.state.pending_extension_days == days


def test_an_extension_only_of_an_accepted_ticket(guan: Flow) -> None:
    guan.refuse(asks(WATER, 3), "ILLEGAL_TRANSITION", 409)
    guan.accept()
    guan.refuse(asks(POLICE, 3), "NOT_YOUR_TICKET", 403)
    guan.refuse(asks(STAFF, 3), "DEPARTMENTS_ONLY", 403)
    guan.refuse(asks(WATER, 3, ""), "INVALID_TEXT", 422)
    guan.do(asks(WATER, 3), WATER)
    guan.refuse(asks(WATER, 3), "ILLEGAL_TRANSITION", 409)


def test_an_approved_extension_moves_the_deadline_by_working_days(guan: Flow) -> None:
    assert guan.state.deadline == at(9, 30)
    guan.accept()
    guan.later(days=1).do(asks(WATER, 3), WATER)
    [event] = guan.later(hours=1).do(decides(STAFF, True, "同意延期"), STAFF)
    # Three working days after Wednesday 09-30: Thursday 10-08, Friday 10-09 and
    # the make-up Saturday 10-10.
    expected = working_days_after(at(9, 30), 3)
    assert expected == at(10, 10)
    assert isinstance(event, TicketExtended)
    assert (event.payload.days, event.payload.deadline) == (3, expected)
    assert event.payload.department == "guanxian.water"
    assert event.payload.note == "同意延期"
    assert guan.state.status == Status.ACCEPTED
    assert guan.state.deadline == expected
    assert guan.state.extensions_granted == 1
    assert guan.state.pending_extension_days is None
    # Once.
    guan.refuse(asks(WATER, 2), "EXTENSION_LIMIT", 409)


def test_a_refused_extension_keeps_the_deadline(guan: Flow) -> None:
    guan.accept()
    guan.do(asks(WATER, 5), WATER)
    guan.refuse(decides(STAFF, False, " "), "INVALID_TEXT", 422)  # a refusal says why
    [event] = guan.do(decides(STAFF, False, "理由不充分"), STAFF)
    assert isinstance(event, TicketExtensionRefused)
    assert event.payload.reason == "理由不充分"
    assert guan.state.status == Status.ACCEPTED
    assert guan.state.deadline == at(9, 30)
    assert guan.state.extensions_granted == 0
    assert guan.state.pending_extension_days is None
    # One request per dispatch, the refused one included (issue #17, point 6).
    guan.refuse(asks(WATER, 2), "EXTENSION_LIMIT", 409)


def test_only_staff_decide_an_extension(guan: Flow) -> None:
    guan.accept()
    guan.refuse(decides(STAFF, True), "ILLEGAL_TRANSITION", 409)  # nothing asked yet
    guan.do(asks(WATER, 3), WATER)
    guan.refuse(decides(WATER, True), "STAFF_ONLY", 403)
    guan.refuse(decides(POLICE, False, "no"), "STAFF_ONLY", 403)


# --- resolve ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resolved_at", "on_time"),
    [(at(9, 29, 18), True), (at(9, 30), True), (at(9, 30, 10, 1), False), (at(10, 8), False)],
)
def test_resolve_records_whether_it_was_on_time(
    guan: Flow, resolved_at: datetime, on_time: bool
) -> None:
    guan.accept()
    [event] = guan.at(resolved_at).resolve("补偿款已发放。")
    assert isinstance(event, TicketResolved)
    assert event.payload.on_time is on_time
    assert event.payload.deadline == at(9, 30)
    assert event.payload.dispatched_at == at(9, 22)
    assert event.payload.reply == "补偿款已发放。"
    assert guan.state.status == Status.RESOLVED
    assert (guan.state.resolved_at, guan.state.reply) == (resolved_at, "补偿款已发放。")


def test_resolve_only_an_accepted_ticket(guan: Flow) -> None:
    def resolves(who: Principal, reply: str = "已处理。") -> Step:
        return lambda s, c: resolve(s, who, reply, c)

    guan.refuse(resolves(WATER), "ILLEGAL_TRANSITION", 409)
    guan.accept()
    guan.refuse(resolves(POLICE), "NOT_YOUR_TICKET", 403)
    guan.refuse(resolves(STAFF), "DEPARTMENTS_ONLY", 403)
    guan.refuse(resolves(WATER, ""), "INVALID_TEXT", 422)
    guan.do(asks(WATER, 3), WATER)
    guan.refuse(resolves(WATER), "ILLEGAL_TRANSITION", 409)
    guan.do(decides(STAFF, True), STAFF)
    guan.resolve()
    guan.refuse(resolves(WATER), "ILLEGAL_TRANSITION", 409)


# --- sub-dispatch -------------------------------------------------------------------


@pytest.fixture
def shen(engine: RuleEngine) -> Flow:
    """S014, a village road in Shen County: no bureau's rule claims it, so it goes
    to the county's 12345 sub-centre."""
    flow = Flow.start(engine, sample("S014", engine), at(11, 16))
    assert flow.state.department == "shenxian"
    return flow


def passes_to(who: Principal, unit: str) -> Step:
    return lambda s, c: sub_dispatch(s, who, unit, c)


@pytest.mark.parametrize("accepted_first", [False, True])
def test_a_sub_centre_passes_the_ticket_to_its_unit(shen: Flow, accepted_first: bool) -> None:
    deadline, time_limit = shen.state.deadline, shen.state.time_limit
    if accepted_first:
        shen.accept()
    [event] = shen.later(hours=3).do(passes_to(SHENXIAN, "shenxian.housing"), SHENXIAN)
    assert isinstance(event, TicketDispatched)
    assert event.payload.via == "sub_dispatch"
    assert event.payload.department == "shenxian.housing"
    assert event.payload.previous_department == "shenxian"
    assert event.payload.round == 2
    assert event.payload.deadline == deadline  # the clock keeps running
    state = shen.state
    assert (state.status, state.department) == (Status.DISPATCHED, "shenxian.housing")
    assert (state.deadline, state.time_limit) == (deadline, time_limit)
    assert state.accepted_at is None
    # The unit now owns it; the sub-centre does not any more.
    shen.refuse(lambda s, c: accept(s, SHENXIAN, c), "NOT_YOUR_TICKET", 403)
    shen.accept()


def test_sub_dispatch_refusals(shen: Flow) -> None:
    shen.refuse(passes_to(SHENXIAN, "guanxian.housing"), "NOT_YOUR_UNIT", 422)
    shen.refuse(passes_to(SHENXIAN, "shenxian.nowhere"), "NOT_YOUR_UNIT", 422)
    shen.refuse(passes_to(SHENXIAN, "city.housing"), "NOT_YOUR_UNIT", 422)
    shen.refuse(passes_to(SHENXIAN_HOUSING, "shenxian.water"), "NOT_YOUR_TICKET", 403)
    shen.refuse(passes_to(GUANXIAN, "guanxian.housing"), "NOT_YOUR_TICKET", 403)
    shen.refuse(passes_to(STAFF, "shenxian.housing"), "DEPARTMENTS_ONLY", 403)
    shen.accept()
    shen.resolve()
    shen.refuse(passes_to(SHENXIAN, "shenxian.housing"), "ILLEGAL_TRANSITION", 409)


def test_a_sub_centre_cannot_send_it_back_to_a_unit_that_returned_it(shen: Flow) -> None:
    shen.do(passes_to(SHENXIAN, "shenxian.housing"), SHENXIAN)
    _, again = shen.later(hours=1).do(returned_by(SHENXIAN_HOUSING), SHENXIAN_HOUSING)
    assert isinstance(again, TicketDispatched)
    assert again.payload.department == "shenxian"  # the rules, without the unit
    shen.refuse(passes_to(SHENXIAN, "shenxian.housing"), "RETURNED_BY_UNIT", 409)
    shen.do(passes_to(SHENXIAN, "shenxian.urban-mgmt"), SHENXIAN)
    # The hotline centre may still insist.
    shen.do(lambda s, c: manual_dispatch(s, STAFF, "shenxian.housing", (), None, c), STAFF)
    assert shen.state.department == "shenxian.housing"


# --- manual dispatch ----------------------------------------------------------------


def dispatches(
    who: Principal,
    department: str,
    co: tuple[str, ...] = (),
    time_limit: str | None = None,
) -> Step:
    return lambda s, c: manual_dispatch(s, who, department, co, time_limit, c)


def test_manual_dispatch_from_the_queue(narrow: RuleEngine) -> None:
    flow = Flow.start(narrow, sample("S002", narrow), at(9, 22))
    assert flow.state.status == Status.UNROUTABLE
    [event] = flow.later(hours=1).do(dispatches(STAFF, "yanggu.urban-mgmt", ("yanggu.env",)), STAFF)
    assert isinstance(event, TicketDispatched)
    assert event.actor == Actor(kind=ActorKind.STAFF, id="zhang.san")
    assert event.payload.via == "manual"
    assert event.payload.rule == "manual"
    assert event.payload.round == 1
    assert event.payload.co_departments == ("yanggu.env",)
    state = flow.state
    assert (state.status, state.department, state.time_limit) == (
        Status.DISPATCHED,
        "yanggu.urban-mgmt",
        "general",
    )
    assert state.deadline == working_days_after(at(9, 22, 11), 5)
    assert state.response_deadline == at(9, 22, 13)


def test_manual_dispatch_of_an_urgent_ticket_keeps_the_urgent_limit(narrow: RuleEngine) -> None:
    flow = Flow.start(narrow, sample("S004", narrow), at(9, 22))
    flow.do(dispatches(STAFF, "dongchangfu.water"), STAFF)
    assert flow.state.time_limit == "urgent"
    assert flow.state.deadline == at(9, 22, 12)
    assert flow.state.response_deadline == at(9, 22, 10, 30)


def test_manual_dispatch_corrects_a_dispatch(guan: Flow) -> None:
    [event] = guan.later(hours=1).do(dispatches(STAFF, "city.natres", (), "consultation"), STAFF)
    assert isinstance(event, TicketDispatched)
    assert event.payload.previous_department == "guanxian.water"
    assert event.payload.round == 2
    assert guan.state.department == "city.natres"
    assert guan.state.time_limit == "consultation"
    assert guan.state.deadline == working_days_after(at(9, 22, 11), 1)


def test_manual_dispatch_refusals(guan: Flow) -> None:
    guan.refuse(dispatches(WATER, "city.natres"), "STAFF_ONLY", 403)
    guan.refuse(dispatches(STAFF, "city.nowhere"), "UNKNOWN_DEPARTMENT", 422)
    guan.refuse(dispatches(STAFF, "city.natres", ("city.nowhere",)), "UNKNOWN_DEPARTMENT", 422)
    guan.refuse(dispatches(STAFF, "city.natres", (), "forever"), "UNKNOWN_TIME_LIMIT", 422)
    guan.accept()
    guan.refuse(dispatches(STAFF, "city.natres"), "ILLEGAL_TRANSITION", 409)


# --- feedback -----------------------------------------------------------------------


@pytest.fixture
def resolved(guan: Flow) -> Flow:
    # Accepted on Tuesday, resolved on Wednesday, rated on Thursday 09-24.
    guan.later(hours=1).accept()
    guan.later(days=1).resolve()
    guan.later(days=1)
    return guan


@pytest.mark.parametrize("rating", [Rating.SATISFIED, Rating.BASICALLY_SATISFIED])
def test_a_satisfied_citizen_closes_the_ticket(resolved: Flow, rating: Rating) -> None:
    [event] = resolved.rate(rating, solved=True)
    assert isinstance(event, TicketClosed)
    assert event.actor == CITIZEN
    assert (event.payload.rating, event.payload.solved) == (rating, True)
    assert event.payload.explained is False
    assert event.payload.department == "guanxian.water"
    assert resolved.state.status == Status.CLOSED
    assert resolved.state.closed_at == resolved.now


def test_unsatisfied_reopens_once_then_closes_with_the_explanation(resolved: Flow) -> None:
    rated_at = resolved.now
    [reopened] = resolved.rate(Rating.UNSATISFIED, solved=False)
    assert isinstance(reopened, TicketReopened)
    assert (reopened.payload.reopen_count, reopened.payload.comment) == (1, "回访")
    state = resolved.state
    assert (state.status, state.department, state.reopen_count) == (
        Status.REOPENED,
        "guanxian.water",
        1,
    )
    assert state.deadline == working_days_after(rated_at, 5)  # a new deadline
    assert state.response_deadline is not None and state.response_deadline > rated_at
    assert (state.resolved_at, state.accepted_at) == (None, None)

    resolved.later(hours=1).accept()
    resolved.refuse(lambda s, c: resolve(s, WATER, "已处理。", c), "EXPLANATION_REQUIRED", 409)
    resolved.refuse(lambda s, c: explain(s, POLICE, "说明", c), "NOT_YOUR_TICKET", 403)
    resolved.refuse(lambda s, c: explain(s, WATER, "", c), "INVALID_TEXT", 422)
    [explained] = resolved.do(lambda s, c: explain(s, WATER, "村委会拒绝配合。", c), WATER)
    assert isinstance(explained, TicketExplained)
    assert explained.payload.text == "村委会拒绝配合。"
    resolved.refuse(lambda s, c: explain(s, WATER, "again", c), "EXPLANATION_EXISTS", 409)
    resolved.later(days=1).resolve()

    [closed] = resolved.later(days=1).rate(Rating.UNSATISFIED, solved=False)
    assert isinstance(closed, TicketClosed)
    assert (closed.payload.rating, closed.payload.explained) == (Rating.UNSATISFIED, True)
    assert resolved.state.status == Status.CLOSED
    assert resolved.state.reopen_count == 1


def test_no_explanation_before_an_unsatisfied_rating(resolved: Flow) -> None:
    resolved.refuse(lambda s, c: explain(s, WATER, "说明", c), "NO_EXPLANATION_NEEDED", 409)


def test_feedback_only_on_a_resolved_ticket(guan: Flow) -> None:
    event = feedback_event(guan.state, Rating.SATISFIED)
    guan.refuse(lambda s, c: feedback(s, event, c), "ILLEGAL_TRANSITION", 409)
    guan.accept()
    guan.refuse(lambda s, c: feedback(s, event, c), "ILLEGAL_TRANSITION", 409)


def test_the_same_feedback_event_applies_once(resolved: Flow) -> None:
    event = feedback_event(resolved.state, Rating.UNSATISFIED)
    resolved.do(lambda s, c: feedback(s, event, c), CITIZEN)
    assert resolved.state.status == Status.REOPENED
    again = feedback(resolved.state, event, resolved.later(minutes=5).ctx())
    assert again.events == []
    assert again.state == resolved.state
    # Even once the ticket is resolved again, the redelivery does nothing.
    resolved.accept()
    resolved.do(lambda s, c: explain(s, WATER, "说明情况。", c), WATER)
    resolved.resolve()
    again = feedback(resolved.state, event, resolved.ctx())
    assert (again.events, again.state) == ([], resolved.state)


def closed_steps() -> Iterator[tuple[str, Step]]:
    rating = TicketFeedback(
        ticket_id="LC-1",
        event_id=uuid4(),
        actor=CITIZEN,
        payload=FeedbackPayload(
            dims=TicketDims(district="guanxian", category=Category.HELP, channel=Channel.PHONE),
            rating=Rating.SATISFIED,
            solved=True,
        ),
    )
    yield "accept", lambda s, c: accept(s, WATER, c)
    yield "return", returned_by(WATER)
    yield "extension", asks(WATER, 2)
    yield "decision", decides(STAFF, True)
    yield "resolve", lambda s, c: resolve(s, WATER, "again", c)
    yield "sub_dispatch", passes_to(WATER, "guanxian.water")
    yield "manual_dispatch", dispatches(STAFF, "city.natres")
    yield "explain", lambda s, c: explain(s, WATER, "说明", c)
    yield "feedback", lambda s, c: feedback(s, rating, c)


@pytest.mark.parametrize(
    ("name", "step"), [pytest.param(name, step, id=name) for name, step in closed_steps()]
)
def test_a_closed_ticket_takes_no_more_actions(resolved: Flow, name: str, step: Step) -> None:
    resolved.rate(Rating.SATISFIED)
    before = resolved.state
    with pytest.raises(WorkflowError) as info:
        step(before, resolved.later(days=1).ctx())
    assert info.value.status in (403, 409, 422), name
    assert resolved.state == before


# --- events -------------------------------------------------------------------------


def test_every_step_of_a_lifecycle_is_one_event_of_its_actor(guan: Flow) -> None:
    guan.later(hours=1).accept()
    guan.later(hours=1).do(asks(WATER, 2), WATER)
    guan.later(hours=1).do(decides(STAFF, True), STAFF)
    guan.later(days=1).resolve()
    guan.later(days=1).rate(Rating.SATISFIED)
    kinds = [type(e) for e in guan.events]
    assert kinds == [
        TicketDispatched,
        TicketAccepted,
        TicketExtensionRequested,
        TicketExtended,
        TicketResolved,
        TicketClosed,
    ]
    assert len({e.event_id for e in guan.events}) == len(guan.events)
    times = [e.occurred_at for e in guan.events]
    assert times == sorted(times)
    for event in guan.events:
        payload = getattr(event, "payload", None)
        if isinstance(payload, DepartmentStep):
            assert payload.department == "guanxian.water"
    assert all(e.dims().priority == Priority.NORMAL for e in guan.events)
