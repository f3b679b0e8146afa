"""Reopening (重办): a ticket goes back to the department that last handled it,
with a new time limit from the reopening. Two causes: the citizen's
unsatisfied rating (hotline.feedback), and, where the centre's policy says so
(HOTLINE_REPEAT_OF_CLOSED=reopen), the caller's repeat call about the closed
ticket (repeat_call, below)."""

from __future__ import annotations

from dataclasses import dataclass

from services.router.workflow.context import Context, Transition
from services.router.workflow.dispatch import by_rules, to_manual_queue
from services.router.workflow.state import Reopening, Status, TicketState, WorkflowError
from shared.domain import Actor
from shared.events import ReopenCause, ReopenedPayload, TicketLinked, TicketReopened

# What intake counts as closed once the department has replied: resolved
# (awaiting the rating) and closed. A repeat call reopens either.
REOPENABLE = frozenset({Status.RESOLVED, Status.CLOSED})


@dataclass(frozen=True)
class Why:
    cause: ReopenCause
    actor: Actor
    comment: str | None = None
    solved: bool = False


def reopen(state: TicketState, ctx: Context, why: Why) -> Transition:
    """To the lead department: a new time limit from the reopening (the centre's
    limit for reopenings, else the rule's), with a new response deadline within it."""
    department = state.lead()
    time_limit = ctx.policy.reopen_time_limit or state.time_limit
    deadline = ctx.deadline(time_limit, ctx.now)
    response = ctx.response_deadline(state.priority, ctx.now, deadline, state.response_limit)
    rating = 1 if why.cause == ReopenCause.RATING else 0
    new = _open_again(state, ctx, why.cause, department).model_copy(
        update={
            "status": Status.REOPENED,
            "reopen_count": state.reopen_count + rating,
            "time_limit": time_limit,
            "deadline": deadline,
            "response_deadline": response,
            "extension_requests": 0,
        }
    )
    reopened = TicketReopened(
        ticket_id=state.ticket_id,
        occurred_at=ctx.now,
        actor=why.actor,
        payload=ReopenedPayload(
            dims=state.dims,
            department=department,
            cause=why.cause,
            comment=why.comment,
            solved=why.solved,
            reopen_count=new.reopenings,
            deadline=deadline,
            response_deadline=response,
        ),
    )
    return Transition(new, [reopened])


def repeat_call(state: TicketState, event: TicketLinked, ctx: Context) -> Transition:
    """The caller's near-identical repeat of a ticket intake saw closed, under the
    reopen policy: the ticket is reopened to its last department. Repeat calls do
    not count against max_reopens (docs/DOMAIN.md §3): they are not ratings, and
    refusing one would leave the citizen's call without a handler."""
    event_id = str(event.event_id)
    if not event.payload.reopen or event_id in state.repeat_calls:
        return Transition(state, [])  # a plain link, or a redelivery: applied already
    if state.status not in REOPENABLE:
        # Open again already (intake's view was a moment behind: an unsatisfied
        # rating or another repeat reopened it): the call joins the open ticket.
        return Transition(state, [])
    state = state.model_copy(update={"repeat_calls": (*state.repeat_calls, event_id)})
    department = state.department
    if department is not None and ctx.directory.department(department) is not None:
        try:
            return reopen(state, ctx, Why(ReopenCause.REPEAT_CALL, event.actor))
        except WorkflowError as exc:  # e.g. its time limit is gone from the rules
            return _dispatch_anew(state, ctx, f"the repeat call could not reopen it: {exc}")
    gone = f"its department {department} is gone" if department else "it has no department"
    return _dispatch_anew(state, ctx, f"repeat call: {gone}")


def _dispatch_anew(state: TicketState, ctx: Context, reason: str) -> Transition:
    """No department to go back to: by the rules, or to the manual queue, as a
    new ticket would go, never lost."""
    again = _open_again(state, ctx, ReopenCause.REPEAT_CALL, None)
    try:
        return by_rules(again, ctx, reason=reason)
    except WorkflowError as exc:  # the rules name a unit the directory lacks
        return to_manual_queue(again, ctx, f"{reason}; {exc}")


def _open_again(
    state: TicketState, ctx: Context, cause: ReopenCause, department: str | None
) -> TicketState:
    """The handling so far (acceptance, resolution, closing) no longer stands."""
    reopening = Reopening(cause=cause, at=ctx.now, department=department)
    return state.model_copy(
        update={
            "resolved_at": None,
            "accepted_at": None,
            "closed_at": None,
            "reopens": (*state.reopens, reopening),
        }
    )
