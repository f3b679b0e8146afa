"""Dispatching: by the rules at intake and after a return, by a person from the
manual queue, and by a county sub-centre to one of its units."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.router.verdict import Decision
from services.router.workflow.context import ROUTER, Context, Transition
from services.router.workflow.state import Status, TicketState, WorkflowError
from shared.domain import Actor, Priority, TicketDraft
from shared.events import (
    DecidedBy,
    DispatchedPayload,
    Suggestion,
    TicketDispatched,
    TicketUnroutable,
    UnroutablePayload,
)

Via = Literal["rules", "manual", "sub_dispatch"]


@dataclass(frozen=True)
class Target:
    department: str
    co_departments: tuple[str, ...] = ()
    time_limit: str = "general"
    rule: str = ""
    priority: Priority | None = None
    # Given when the clock must not restart (a sub-dispatch keeps the deadline).
    deadline: datetime | None = None
    # A rule's response limit; None is the default for the priority.
    response_limit: str | None = None
    decided_by: DecidedBy = "manual"
    probability: float | None = None


def new_ticket(ticket_id: str, draft: TicketDraft, ctx: Context) -> Transition:
    """A received ticket, dispatched by the rules or queued for manual dispatch."""
    state = TicketState(
        ticket_id=ticket_id, status=Status.UNROUTABLE, draft=draft, priority=draft.priority
    )
    return by_rules(state, ctx, reason="no rule matched")


def by_rules(state: TicketState, ctx: Context, reason: str) -> Transition:
    """Dispatch by the rules, never to a department that returned the ticket."""
    decision = ctx.decide(state, exclude=state.returned_by)
    if decision.department is None:
        # Keep the limit the rules' defaults give this ticket (urgent, consultation,
        # general): a manual dispatch without one uses it.
        waiting = state.model_copy(
            update={
                "time_limit": state.time_limit or decision.time_limit,
                "candidates": tuple(
                    Suggestion(department=c.department, score=c.score, source=c.source)
                    for c in decision.candidates
                ),
            }
        )
        why = reason if decision.reason in ("", reason) else f"{reason}: {decision.reason}"
        return to_manual_queue(waiting, ctx, why)
    return dispatch(state, ctx, ROUTER, decision_target(decision), "rules")


def decision_target(decision: Decision) -> Target:
    assert decision.department is not None
    return Target(
        department=decision.department,
        co_departments=decision.co_departments,
        time_limit=decision.time_limit,
        rule=decision.rule or "",
        priority=decision.priority,
        response_limit=decision.response_limit,
        decided_by=decision.decided_by,
        probability=decision.probability,
    )


def dispatch(
    state: TicketState,
    ctx: Context,
    actor: Actor,
    target: Target,
    via: Via,
    passed_on_in_time: bool = False,
) -> Transition:
    for dep_id in (target.department, *target.co_departments):
        if ctx.directory.department(dep_id) is None:
            raise WorkflowError("UNKNOWN_DEPARTMENT", f"no department {dep_id!r}", 422)
    priority = target.priority or state.priority
    deadline = target.deadline or ctx.deadline(target.time_limit, ctx.now)
    response_deadline = ctx.response_deadline(priority, ctx.now, deadline, target.response_limit)
    passed_on_by = (state.department,) if via == "sub_dispatch" and state.department else ()
    handlers = (*state.handlers, *passed_on_by, target.department, *target.co_departments)
    new = state.model_copy(
        update={
            "handlers": tuple(dict.fromkeys(handlers)),
            "status": Status.DISPATCHED,
            "priority": priority,
            "department": target.department,
            "co_departments": target.co_departments,
            "round": state.round + 1,
            "time_limit": target.time_limit,
            "response_limit": target.response_limit,
            "dispatched_at": ctx.now,
            "deadline": deadline,
            "response_deadline": response_deadline,
            "accepted_at": None,
            "pending_extension_days": None,
            "extension_requests": 0,
            "decided_by": target.decided_by,
            "probability": target.probability,
            "candidates": (),
        }
    )
    event = TicketDispatched(
        ticket_id=state.ticket_id,
        occurred_at=ctx.now,
        actor=actor,
        payload=DispatchedPayload(
            dims=new.dims,
            ticket=state.draft,
            department=target.department,
            co_departments=target.co_departments,
            rule=target.rule,
            time_limit=target.time_limit,
            deadline=deadline,
            response_deadline=response_deadline,
            round=new.round,
            via=via,
            previous_department=state.department,
            decided_by=target.decided_by,
            probability=target.probability,
            passed_on_in_time=passed_on_in_time,
        ),
    )
    return Transition(new, [event])


def to_manual_queue(state: TicketState, ctx: Context, reason: str) -> Transition:
    new = state.model_copy(update={"status": Status.UNROUTABLE, "department": None})
    event = TicketUnroutable(
        ticket_id=state.ticket_id,
        occurred_at=ctx.now,
        actor=ROUTER,
        payload=UnroutablePayload(
            dims=new.dims, reason=reason, rule=None, candidates=state.candidates
        ),
    )
    return Transition(new, [event])
