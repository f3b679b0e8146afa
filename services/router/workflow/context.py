"""What a transition needs besides the state: the time, the rules in force and
the hotline's policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.router.engine import RuleEngine
from services.router.verdict import Decision
from services.router.workflow.state import Principal, TicketState, WorkflowError
from shared.directory import Directory
from shared.domain import Actor, ActorKind, Priority
from shared.events import Envelope
from shared.workcalendar import TimeLimit, WorkCalendar

ROUTER = Actor(kind=ActorKind.SYSTEM, id="router")


@dataclass(frozen=True)
class Policy:
    # docs/DOMAIN.md §3: a wrong dispatch is returned within 2 working days; one extension
    # request of up to 10 working days per dispatch, a refused one included; an
    # unsatisfied citizen reopens a ticket once.
    return_window_days: int = 2
    max_extensions: int = 1
    extension_requests_per_dispatch: int = 1
    max_extension_days: int = 10
    max_reopens: int = 1
    # The time limit a reopened ticket gets from the reopening; None: its rule's.
    reopen_time_limit: str | None = None


@dataclass(frozen=True)
class Context:
    engine: RuleEngine
    now: datetime
    policy: Policy = field(default_factory=Policy)

    @property
    def calendar(self) -> WorkCalendar:
        return self.engine.calendar

    @property
    def directory(self) -> Directory:
        return self.engine.directory

    def limit(self, name: str) -> TimeLimit:
        limits = self.engine.ruleset.time_limits
        if name not in limits:
            raise WorkflowError("UNKNOWN_TIME_LIMIT", f"no time limit named {name!r}", 422)
        return limits[name]

    def deadline(self, time_limit: str, start: datetime) -> datetime:
        return self.calendar.deadline(start, self.limit(time_limit))

    def response_deadline(
        self, priority: Priority, start: datetime, deadline: datetime, name: str | None = None
    ) -> datetime:
        """By the named response limit (a rule's), else the default for the priority;
        never later than the handling deadline: over a weekend a 24-hour ticket's 2
        working hours would otherwise end after it, and the urge (催办) would come
        after the red card."""
        defaults = self.engine.ruleset.defaults
        limits = self.engine.ruleset.response_limits
        if name is None:
            name = (
                defaults.urgent_response_limit
                if priority == Priority.URGENT
                else defaults.response_limit
            )
        return min(self.calendar.deadline(start, limits[name]), deadline)

    def decide(self, state: TicketState, exclude: tuple[str, ...] = ()) -> Decision:
        # The deadlines are set at the dispatch, from its time limit.
        return self.engine.decide(state.draft, self.now, exclude=exclude, deadlines=False)


@dataclass(frozen=True)
class Transition:
    state: TicketState
    events: list[Envelope]


def actor_of(principal: Principal) -> Actor:
    return Actor(kind=principal.kind, id=principal.id)


def require_department(state: TicketState, who: Principal) -> str:
    """Department actions belong to the ticket's lead department alone."""
    if who.kind != ActorKind.DEPARTMENT:
        raise WorkflowError("DEPARTMENTS_ONLY", "only a department can do this", 403)
    if state.department != who.id:
        raise WorkflowError("NOT_YOUR_TICKET", f"ticket {state.ticket_id} is not yours", 403)
    return who.id


def require_text(name: str, text: str, max_length: int) -> str:
    """Free text an event records (a reason, a reply): refused as bad input, like
    the API refuses it, rather than failing inside the event's validation."""
    if not text.strip() or len(text) > max_length:
        raise WorkflowError("INVALID_TEXT", f"{name}: give 1 to {max_length} characters", 422)
    return text


def require_staff(who: Principal) -> None:
    if who.kind != ActorKind.STAFF:
        raise WorkflowError("STAFF_ONLY", "only hotline staff can do this", 403)


def before_deadline(state: TicketState, ctx: Context) -> None:
    """An extension moves a deadline that has not passed: once it has, the ticket
    was due and overdue on that day, and each time limit is due once
    (docs/DOMAIN.md §4)."""
    assert state.deadline is not None
    if ctx.now > state.deadline:
        raise WorkflowError(
            "EXTENSION_TOO_LATE",
            f"the deadline ({state.deadline.isoformat()}) has passed: the ticket is overdue",
        )


def responded_in_time(state: TicketState, ctx: Context) -> bool:
    """A department's first answer (accept, return, pass on) within its response limit."""
    return state.response_deadline is None or ctx.now <= state.response_deadline
