"""What a department does with its ticket: accept, return, ask for more time,
resolve, pass it to one of its units, explain."""

from __future__ import annotations

from services.router.workflow.context import (
    Context,
    Transition,
    actor_of,
    before_deadline,
    require_department,
    require_text,
    responded_in_time,
)
from services.router.workflow.dispatch import Target, by_rules, dispatch
from services.router.workflow.state import (
    Principal,
    ReturnRecord,
    Status,
    TicketState,
    WorkflowError,
    illegal,
)
from shared.events import (
    AcceptedPayload,
    ExplanationPayload,
    ExtensionRequestedPayload,
    ResolvedPayload,
    ReturnedPayload,
    TicketAccepted,
    TicketExplained,
    TicketExtensionRequested,
    TicketResolved,
    TicketReturned,
)


def accept(state: TicketState, who: Principal, ctx: Context) -> Transition:
    department = require_department(state, who)
    if state.status not in (Status.DISPATCHED, Status.REOPENED):
        raise illegal("accept", state)
    in_time = responded_in_time(state, ctx)
    new = state.model_copy(update={"status": Status.ACCEPTED, "accepted_at": ctx.now})
    event = TicketAccepted(
        ticket_id=state.ticket_id,
        occurred_at=ctx.now,
        actor=actor_of(who),
        payload=AcceptedPayload(dims=new.dims, department=department, responded_in_time=in_time),
    )
    return Transition(new, [event])


def return_ticket(state: TicketState, who: Principal, reason: str, ctx: Context) -> Transition:
    """退单: not ours, within the return window; the rules then choose again,
    never this department, or the ticket waits for a person."""
    department = require_department(state, who)
    if state.status != Status.DISPATCHED:
        raise illegal("return", state)
    require_text("reason", reason, 2000)
    assert state.dispatched_at is not None
    window_end = ctx.calendar.add_working_days(state.dispatched_at, ctx.policy.return_window_days)
    if ctx.now > window_end:
        raise WorkflowError(
            "RETURN_WINDOW_PASSED",
            f"a ticket can be returned only within {ctx.policy.return_window_days} working days"
            f" of dispatch (until {window_end.isoformat()})",
        )
    record = ReturnRecord(department=department, reason=reason, at=ctx.now)
    returned = state.model_copy(
        update={
            "returned_by": (*state.returned_by, department),
            "returns": (*state.returns, record),
            "accepted_at": None,
        }
    )
    event = TicketReturned(
        ticket_id=state.ticket_id,
        occurred_at=ctx.now,
        actor=actor_of(who),
        payload=ReturnedPayload(
            dims=state.dims,
            department=department,
            reason=reason,
            responded_in_time=responded_in_time(state, ctx),
        ),
    )
    after = by_rules(returned, ctx, reason=f"returned by {department}; no other rule matched")
    return Transition(after.state, [event, *after.events])


def request_extension(
    state: TicketState, who: Principal, days: int, reason: str, ctx: Context
) -> Transition:
    department = require_department(state, who)
    if state.status != Status.ACCEPTED:
        raise illegal("ask for an extension of", state)
    if not 1 <= days <= ctx.policy.max_extension_days:
        raise WorkflowError(
            "EXTENSION_TOO_LONG",
            f"an extension is 1 to {ctx.policy.max_extension_days} working days",
            422,
        )
    require_text("reason", reason, 2000)
    if state.extensions_granted >= ctx.policy.max_extensions:
        raise WorkflowError("EXTENSION_LIMIT", "this ticket was extended already")
    before_deadline(state, ctx)
    if state.extension_requests >= ctx.policy.extension_requests_per_dispatch:
        raise WorkflowError(
            "EXTENSION_LIMIT",
            f"an extension may be asked {ctx.policy.extension_requests_per_dispatch} time(s)"
            " per dispatch, a refused request included",
        )
    new = state.model_copy(
        update={
            "status": Status.EXTENSION_REQUESTED,
            "pending_extension_days": days,
            "extension_requests": state.extension_requests + 1,
        }
    )
    event = TicketExtensionRequested(
        ticket_id=state.ticket_id,
        occurred_at=ctx.now,
        actor=actor_of(who),
        payload=ExtensionRequestedPayload(
            dims=new.dims, department=department, days=days, reason=reason
        ),
    )
    return Transition(new, [event])


def resolve(state: TicketState, who: Principal, reply: str, ctx: Context) -> Transition:
    department = require_department(state, who)
    if state.status != Status.ACCEPTED:
        raise illegal("resolve", state)
    require_text("reply", reply, 4000)
    if state.reopen_count > 0 and state.explanation is None:
        raise WorkflowError(
            "EXPLANATION_REQUIRED",
            "the citizen was unsatisfied: submit the written explanation (一单一报) first",
        )
    assert state.deadline is not None and state.dispatched_at is not None
    new = state.model_copy(
        update={"status": Status.RESOLVED, "resolved_at": ctx.now, "reply": reply}
    )
    event = TicketResolved(
        ticket_id=state.ticket_id,
        occurred_at=ctx.now,
        actor=actor_of(who),
        payload=ResolvedPayload(
            dims=new.dims,
            department=department,
            reply=reply,
            on_time=ctx.now <= state.deadline,
            deadline=state.deadline,
            dispatched_at=state.dispatched_at,
        ),
    )
    return Transition(new, [event])


def sub_dispatch(state: TicketState, who: Principal, unit: str, ctx: Context) -> Transition:
    """转派: a county sub-centre hands the ticket to one of its own units; the
    deadline keeps running."""
    require_department(state, who)
    if state.status not in (Status.DISPATCHED, Status.ACCEPTED):
        raise illegal("pass on", state)
    in_time = state.status == Status.DISPATCHED and responded_in_time(state, ctx)
    target = ctx.directory.department(unit)
    if target is None or target.parent != who.id:
        raise WorkflowError("NOT_YOUR_UNIT", f"{unit!r} is not a unit under {who.id}", 422)
    if unit in state.returned_by:
        # Never back to a department that returned it, unless the hotline centre
        # says so (manual dispatch); otherwise a unit and its sub-centre could pass
        # the ticket back and forth unseen.
        raise WorkflowError(
            "RETURNED_BY_UNIT", f"{unit} returned this ticket; ask the hotline centre", 409
        )
    return dispatch(
        state,
        ctx,
        actor_of(who),
        Target(unit, (), state.time_limit, "sub-dispatch", None, state.deadline),
        "sub_dispatch",
        passed_on_in_time=in_time,
    )


def explain(state: TicketState, who: Principal, text: str, ctx: Context) -> Transition:
    """一单一报: one written explanation for a ticket the citizen was unsatisfied with."""
    department = require_department(state, who)
    if state.reopen_count == 0:
        raise WorkflowError(
            "NO_EXPLANATION_NEEDED", "only a ticket the citizen was unsatisfied with needs one"
        )
    if state.explanation is not None:
        raise WorkflowError("EXPLANATION_EXISTS", "this ticket has its explanation already")
    require_text("text", text, 4000)
    new = state.model_copy(update={"explanation": text})
    event = TicketExplained(
        ticket_id=state.ticket_id,
        occurred_at=ctx.now,
        actor=actor_of(who),
        payload=ExplanationPayload(dims=new.dims, department=department, text=text),
    )
    return Transition(new, [event])
