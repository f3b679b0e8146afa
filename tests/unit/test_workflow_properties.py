"""Properties of the ticket workflow under random sequences of actions.

A ticket from new_ticket takes random actions (accept, return, extension
request and decision, resolve, sub-dispatch, manual dispatch, explanation,
feedback) by random actors (its lead department, another department, hotline
staff) with random input, valid or not, while the clock moves forward by
minutes to days. After every step the invariants of the lifecycle must hold.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.router.engine import RuleEngine
from services.router.knowledge import shipped_engine
from services.router.rules import parse_rules
from services.router.workflow import department as dep
from services.router.workflow import hotline
from services.router.workflow.context import ROUTER, Context, Transition, actor_of
from services.router.workflow.dispatch import new_ticket
from services.router.workflow.state import Principal, Status, TicketState, WorkflowError
from shared.directory import load_directory
from shared.domain import Actor, ActorKind, Category, Channel, Priority, TicketDraft
from shared.events import (
    FeedbackPayload,
    Rating,
    TicketDispatched,
    TicketFeedback,
)
from shared.settings import DATA_DIR
from shared.workcalendar import WorkCalendar

SH = ZoneInfo("Asia/Shanghai")
STAFF = Principal(kind=ActorKind.STAFF, id="zhang.san")
OTHER = Principal(kind=ActorKind.DEPARTMENT, id="city.police")
CITIZEN = Actor(kind=ActorKind.CITIZEN, id="feedback")
WITH_A_LEAD = {
    Status.DISPATCHED,
    Status.ACCEPTED,
    Status.EXTENSION_REQUESTED,
    Status.RESOLVED,
    Status.REOPENED,
}
NARROW_RULES = """
version: 1
time_limits:
  urgent: {hours: 2}
  general: {working_days: 5}
  consultation: {working_days: 1}
response_limits:
  default: {working_hours: 2}
  urgent: {hours: 0.5}
rules:
  - id: roads
    when:
      keywords:
        any: [道路, 独角兽]
    then:
      department: "{district}"
"""
TICKETS = {
    # water -> land -> the county sub-centre -> the manual queue, as returned
    "water": ("guanxian", Category.HELP, Priority.NORMAL, "村里安装自来水管道占用了我家的耕地。"),
    # the Shen County sub-centre, which can pass it to its units
    "road": ("shenxian", Category.HELP, Priority.NORMAL, "村里通往镇上的道路坑坑洼洼。"),
    # a rule raises the priority
    "gas": ("dongchangfu", Category.HELP, Priority.NORMAL, "楼下闻到很浓的燃气味。"),
    "outage": ("linqing", Category.COMPLAINT, Priority.URGENT, "小区停水一天了。"),
    "question": ("guanxian", Category.CONSULTATION, Priority.NORMAL, "请问小学入学要什么材料？"),
}


@functools.cache
def engines() -> dict[str, RuleEngine]:
    directory = load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")
    calendar = WorkCalendar("Asia/Shanghai")
    return {
        "shipped": shipped_engine(directory, calendar),
        "narrow": RuleEngine(parse_rules(NARROW_RULES), directory, calendar),
    }


def draft(name: str) -> TicketDraft:
    district, category, priority, text = TICKETS[name]
    return TicketDraft(
        channel=Channel.PHONE, district=district, category=category, priority=priority, text=text
    )


# "next" is the step that moves the ticket on from its status (accept a
# dispatched ticket, resolve an accepted one, ...): weighted so that random runs
# reach the late states (resolved, reopened, closed) often.
ACTIONS = (
    *("next",) * 10,
    "accept",
    "resolve",
    "feedback",
    "extension",
    "decide",
    "explain",
    "return",
    "sub_dispatch",
    "manual_dispatch",
    "replay_feedback",
)
NEXT = {
    Status.DISPATCHED: ("accept", "accept", "return"),
    Status.ACCEPTED: ("resolve", "resolve", "extension", "explain", "sub_dispatch"),
    Status.EXTENSION_REQUESTED: ("decide",),
    Status.RESOLVED: ("feedback", "feedback", "replay_feedback"),
    Status.REOPENED: ("accept", "explain"),
    Status.UNROUTABLE: ("manual_dispatch",),
    Status.CLOSED: ACTIONS[10:],
}
# Mostly the one whose action it is (the lead department, staff for staff's
# actions); otherwise anyone.
ACTORS = ("right", "right", "right", "right", "lead", "other", "staff", "returner")
STAFF_ACTIONS = ("decide", "manual_dispatch")
TEXTS = st.one_of(
    st.sampled_from(
        ["理由充分，附说明。", "已处理完毕。", "村委会拒绝配合。", "", "  ", "x" * 4001]
    ),
    st.text(max_size=3),
)
# "mine": a unit under the lead department (a county sub-centre has some);
# "returner": a department that returned the ticket.
UNITS = ("mine", "mine", "returner", "returner", "guanxian.housing", "city.police", "nowhere")
DEPARTMENTS = ("returner", "returner", "city.platform", "guanxian.water", "shenxian", "nope")
TIME_LIMITS = (None, None, "general", "urgent", "consultation", "forever")


@dataclass(frozen=True)
class Move:
    action: str
    pick: int
    actor: str
    text: str
    days: int
    unit: str
    department: str
    time_limit: str | None
    approve: bool
    rating: Rating
    minutes: int


MOVES = st.builds(
    Move,
    action=st.sampled_from(ACTIONS),
    pick=st.integers(min_value=0, max_value=9),
    actor=st.sampled_from(ACTORS),
    text=TEXTS,
    days=st.integers(min_value=-1, max_value=12),
    unit=st.sampled_from(UNITS),
    department=st.sampled_from(DEPARTMENTS),
    time_limit=st.sampled_from(TIME_LIMITS),
    approve=st.booleans(),
    rating=st.sampled_from(list(Rating)),
    # minutes to days
    minutes=st.one_of(
        st.integers(min_value=1, max_value=180), st.integers(min_value=180, max_value=4 * 1440)
    ),
)


@dataclass
class Run:
    """The ticket under test and what the invariants need to remember."""

    state: TicketState
    now: datetime
    engine: RuleEngine
    last_via: str | None = None
    feedback_sent: list[TicketFeedback] = field(default_factory=list)

    def principal(self, actor: str, action: str) -> Principal:
        if actor == "right":
            actor = "staff" if action in STAFF_ACTIONS else "lead"
        if actor == "staff":
            return STAFF
        if actor == "other":
            return OTHER
        if actor == "returner" and self.state.returned_by:
            return Principal(kind=ActorKind.DEPARTMENT, id=self.state.returned_by[-1])
        return Principal(kind=ActorKind.DEPARTMENT, id=self.state.department or "guanxian.water")

    def unit(self, move: Move) -> str:
        if move.unit == "returner":
            return self.state.returned_by[-1] if self.state.returned_by else "nowhere"
        if move.unit != "mine":
            return move.unit
        units = self.units()
        return units[move.pick % len(units)] if units else "nowhere"

    def units(self) -> list[str]:
        departments = self.engine.directory.departments.values()
        return sorted(d.id for d in departments if d.parent == self.state.department)

    def step(self, move: Move) -> tuple[Transition, Actor]:
        if move.action == "next":
            options = NEXT[self.state.status]
            if self.state.status == Status.DISPATCHED and self.units():
                # A county sub-centre mostly passes it on; its units often return it.
                options = ("sub_dispatch", "sub_dispatch", "accept")
            move = replace(move, action=options[move.pick % len(options)])
        ctx = Context(self.engine, self.now)
        if move.action in ("feedback", "replay_feedback"):
            return hotline.feedback(self.state, self.rating(move), ctx), CITIZEN
        who = self.principal(move.actor, move.action)
        return self.department_or_staff(move, who, ctx), actor_of(who)

    def department_or_staff(self, move: Move, who: Principal, ctx: Context) -> Transition:
        s, text = self.state, move.text
        target = move.department
        if target == "returner":
            target = s.returned_by[0] if s.returned_by else "city.platform"
        steps: dict[str, Callable[[], Transition]] = {
            "accept": lambda: dep.accept(s, who, ctx),
            "return": lambda: dep.return_ticket(s, who, text, ctx),
            "extension": lambda: dep.request_extension(s, who, move.days, text, ctx),
            "decide": lambda: hotline.decide_extension(s, who, move.approve, text, ctx),
            "resolve": lambda: dep.resolve(s, who, text, ctx),
            "sub_dispatch": lambda: dep.sub_dispatch(s, who, self.unit(move), ctx),
            "manual_dispatch": lambda: hotline.manual_dispatch(
                s, who, target, (), move.time_limit, ctx
            ),
            "explain": lambda: dep.explain(s, who, text, ctx),
        }
        return steps[move.action]()

    def rating(self, move: Move) -> TicketFeedback:
        """A new rating, or (replay) one delivered before."""
        if move.action == "replay_feedback" and self.feedback_sent:
            return self.feedback_sent[-1]
        event = TicketFeedback(
            ticket_id=self.state.ticket_id,
            occurred_at=self.now,
            actor=CITIZEN,
            payload=FeedbackPayload(dims=self.state.dims, rating=move.rating, solved=move.approve),
        )
        self.feedback_sent.append(event)
        return event


def check_state(run: Run) -> None:
    state = run.state
    assert isinstance(state.status, Status)
    if state.status in WITH_A_LEAD:
        assert state.department is not None
        assert state.deadline is not None
        assert state.response_deadline is not None
        assert state.dispatched_at is not None
    if state.status == Status.UNROUTABLE:
        assert state.department is None
    if state.status == Status.EXTENSION_REQUESTED:
        assert state.pending_extension_days is not None
    if state.department in state.returned_by:
        # Only a person at the hotline centre sends it back to one that returned it.
        assert run.last_via == "manual"
    assert 0 <= state.extensions_granted <= 1
    assert 0 <= state.reopen_count <= 1
    if state.reopen_count and state.status in (Status.RESOLVED, Status.CLOSED):
        assert state.explanation is not None
    assert state.version == 0  # the pure workflow never stores anything


def check_events(transition: Transition, before: TicketState, actor: Actor, now: datetime) -> None:
    assert transition.events
    for n, event in enumerate(transition.events):
        assert event.ticket_id == before.ticket_id
        assert event.occurred_at == now
        assert event.actor == (ROUTER if n > 0 else actor)
        assert event.dims().district == before.draft.district
        assert event.dims().category == before.draft.category


def apply(run: Run, move: Move) -> None:
    before = run.state
    snapshot = before.model_copy(deep=True)
    try:
        transition, actor = run.step(move)
    except WorkflowError as refusal:
        assert refusal.status in (403, 409, 422), refusal.code
        assert run.state is before and before == snapshot
        return
    assert before.status != Status.CLOSED or not transition.events, "CLOSED is terminal"
    if not transition.events:  # a feedback event applied before: nothing happens
        assert move.action in ("next", "feedback", "replay_feedback")
        assert transition.state == before
        return
    check_events(transition, before, actor, run.now)
    for event in transition.events:
        if isinstance(event, TicketDispatched):
            run.last_via = event.payload.via
            assert event.payload.round == transition.state.round
            assert event.payload.department == transition.state.department
    run.state = transition.state


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    ticket=st.sampled_from(sorted(TICKETS)),
    rules=st.sampled_from(["shipped", "shipped", "narrow"]),
    start=st.datetimes(
        min_value=datetime(2026, 1, 5), max_value=datetime(2026, 9, 30), timezones=st.just(SH)
    ),
    moves=st.lists(MOVES, min_size=5, max_size=50),
)
def test_random_lifecycles_keep_the_invariants(
    ticket: str, rules: str, start: datetime, moves: list[Move]
) -> None:
    engine = engines()[rules]
    created = new_ticket("LC-P", draft(ticket), Context(engine, start))
    assert created.events
    first = created.events[0]
    run = Run(
        created.state,
        start,
        engine,
        last_via=first.payload.via if isinstance(first, TicketDispatched) else None,
    )
    check_state(run)
    for move in moves:
        run.now += timedelta(minutes=move.minutes)
        apply(run, move)
        check_state(run)
