"""Router handlers for the events it consumes: plain async functions taking a
typed event and the router's dependencies, one per event type in SUBSCRIPTIONS."""

from __future__ import annotations

from dataclasses import dataclass

from services.router.commands import CommandService
from services.router.engine import RuleEngine
from services.router.ports import RefusedStore
from services.router.workflow.hotline import feedback
from services.router.workflow.reopening import repeat_call
from services.router.workflow.state import WorkflowError
from shared.domain import TicketDraft
from shared.events import Envelope, TicketFeedback, TicketLinked, TicketReceived
from shared.messaging.subscriptions import Subscriptions
from shared.messaging.topology import queue_spec


class EngineHolder:
    """The live rule engine; replaced whole when the rules are reloaded."""

    def __init__(self, engine: RuleEngine) -> None:
        self.engine = engine


@dataclass(frozen=True)
class Deps:
    commands: CommandService
    refused: RefusedStore


async def handle_received(event: TicketReceived, deps: Deps) -> None:
    """Dispatch a new ticket by the rules, exactly once whatever the redeliveries."""
    await deps.commands.create(event.ticket_id, event.payload.ticket)


async def handle_feedback(event: TicketFeedback, deps: Deps) -> None:
    """The citizen's rating closes or reopens a resolved ticket. A rating the
    workflow cannot take (intake's view was a moment behind) is kept for staff
    and acknowledged: it is the citizen's word, not a poison message."""
    commands = deps.commands
    try:
        await commands.run(event.ticket_id, "feedback", lambda s, ctx: feedback(s, event, ctx))
    except WorkflowError as exc:
        await deps.refused.record(event, exc.code, exc.message, commands.clock())


async def handle_linked(event: TicketLinked, deps: Deps) -> None:
    """A repeat call the centre's policy reopens the closed ticket for (重办);
    a plain link (并单 to an open ticket) changes nothing here. Should a repeat
    name a ticket the router never held (intake links none today: an answer on
    the spot is not in its repeat index), it is dispatched now, by the rules or
    to the manual queue, from the repeat's own request: never dropped."""
    if not event.payload.reopen:
        return
    commands = deps.commands
    try:
        await commands.run(
            event.ticket_id, "repeat_call", lambda s, ctx: repeat_call(s, event, ctx)
        )
    except WorkflowError as exc:
        if exc.code != "TICKET_NOT_FOUND":
            raise
        await commands.create(event.ticket_id, event.payload.ticket)


SUBSCRIPTIONS: Subscriptions[Deps] = Subscriptions(
    queue_spec("router"),
    {
        TicketReceived: handle_received,
        TicketFeedback: handle_feedback,
        TicketLinked: handle_linked,
    },
)


async def handle_event(event: Envelope, *, commands: CommandService, refused: RefusedStore) -> None:
    """The router queue's handler: each event to its subscription."""
    await SUBSCRIPTIONS.dispatch(event, Deps(commands, refused))


async def handle_batch(
    events: list[Envelope], *, commands: CommandService, refused: RefusedStore
) -> None:
    """The router queue's batch handler (shared.messaging.batch). The received
    tickets are created together, in one store write; then every other event
    (a rating, a repeat call), in the order it came. A ticket's received event is its first:
    a rating of it in the same batch (a redelivery) still comes after it."""
    received: dict[str, TicketDraft] = {}
    others: list[Envelope] = []
    for event in events:
        if isinstance(event, TicketReceived):
            # The same ticket twice (intake published it again): created once.
            received.setdefault(event.ticket_id, event.payload.ticket)
        else:
            others.append(event)
    if received:
        await commands.create_many(received)
    deps = Deps(commands, refused)
    for event in others:
        await SUBSCRIPTIONS.dispatch(event, deps)
