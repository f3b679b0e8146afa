"""What the hotline centre does: decide extensions, dispatch by hand, and apply
the citizen's feedback (回访)."""

from __future__ import annotations

from services.router.workflow.context import (
    Context,
    Transition,
    actor_of,
    before_deadline,
    require_staff,
    require_text,
)
from services.router.workflow.dispatch import Target, dispatch
from services.router.workflow.reopening import Why, reopen
from services.router.workflow.state import Principal, Status, TicketState, illegal
from shared.domain import Actor
from shared.events import (
    ClosedPayload,
    ExtendedPayload,
    ExtensionRefusedPayload,
    Rating,
    ReopenCause,
    TicketClosed,
    TicketExtended,
    TicketExtensionRefused,
    TicketFeedback,
)


def decide_extension(
    state: TicketState, who: Principal, approve: bool, note: str, ctx: Context
) -> Transition:
    require_staff(who)
    if state.status != Status.EXTENSION_REQUESTED:
        raise illegal("decide an extension of", state)
    days = state.pending_extension_days or 0
    department = state.lead()
    assert state.deadline is not None
    if approve:
        before_deadline(state, ctx)
    if not approve:
        require_text("note", note, 2000)  # a refusal says why
        refused = state.model_copy(
            update={"status": Status.ACCEPTED, "pending_extension_days": None}
        )
        return Transition(
            refused,
            [
                TicketExtensionRefused(
                    ticket_id=state.ticket_id,
                    occurred_at=ctx.now,
                    actor=actor_of(who),
                    payload=ExtensionRefusedPayload(
                        dims=state.dims, department=department, reason=note
                    ),
                )
            ],
        )
    deadline = ctx.calendar.add_working_days(state.deadline, days)
    new = state.model_copy(
        update={
            "status": Status.ACCEPTED,
            "pending_extension_days": None,
            "deadline": deadline,
            "extensions_granted": state.extensions_granted + 1,
        }
    )
    event = TicketExtended(
        ticket_id=state.ticket_id,
        occurred_at=ctx.now,
        actor=actor_of(who),
        payload=ExtendedPayload(
            dims=state.dims, department=department, days=days, deadline=deadline, note=note
        ),
    )
    return Transition(new, [event])


def manual_dispatch(
    state: TicketState,
    who: Principal,
    department: str,
    co_departments: tuple[str, ...],
    time_limit: str | None,
    ctx: Context,
) -> Transition:
    """A person at the hotline centre chooses the department: from the manual
    queue, or to correct a dispatch, even to a department that returned it."""
    require_staff(who)
    if state.status not in (Status.UNROUTABLE, Status.DISPATCHED):
        raise illegal("dispatch", state)
    limit = time_limit or state.time_limit or ctx.engine.ruleset.defaults.time_limit
    ctx.limit(limit)  # unknown names are refused before anything changes
    target = Target(department, co_departments, limit, "manual")
    return dispatch(state, ctx, actor_of(who), target, "manual")


def feedback(state: TicketState, event: TicketFeedback, ctx: Context) -> Transition:
    """Satisfied closes the ticket; unsatisfied reopens it (重办) to the same
    department once; after that it closes with the department's explanation."""
    if str(event.event_id) in state.feedback_ids:
        return Transition(state, [])  # a redelivery: applied already
    if state.status != Status.RESOLVED:
        raise illegal("rate", state)
    state = state.model_copy(update={"feedback_ids": (*state.feedback_ids, str(event.event_id))})
    rating = event.payload.rating
    department = state.lead()
    citizen: Actor = event.actor
    if rating == Rating.UNSATISFIED and state.reopen_count < ctx.policy.max_reopens:
        why = Why(ReopenCause.RATING, citizen, event.payload.comment, event.payload.solved)
        return reopen(state, ctx, why)
    new = state.model_copy(update={"status": Status.CLOSED, "closed_at": ctx.now})
    closed = TicketClosed(
        ticket_id=state.ticket_id,
        occurred_at=ctx.now,
        actor=citizen,
        payload=ClosedPayload(
            dims=state.dims,
            department=department,
            rating=rating,
            solved=event.payload.solved,
            explained=state.explanation is not None,
        ),
    )
    return Transition(new, [closed])
