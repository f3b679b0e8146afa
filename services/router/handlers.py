"""Router handlers for the events it consumes: plain async functions taking a
typed event and their dependencies."""

from __future__ import annotations

from services.router.commands import CommandService
from services.router.engine import RuleEngine
from services.router.ports import RefusedStore
from services.router.workflow.hotline import feedback
from services.router.workflow.state import WorkflowError
from shared.events import TicketFeedback, TicketReceived


class EngineHolder:
    """The live rule engine; replaced whole when the rules are reloaded."""

    def __init__(self, engine: RuleEngine) -> None:
        self.engine = engine


async def handle_received(event: TicketReceived, *, commands: CommandService) -> None:
    """Dispatch a new ticket by the rules, exactly once whatever the redeliveries."""
    await commands.create(event.ticket_id, event.payload.ticket)


async def handle_feedback(
    event: TicketFeedback, *, commands: CommandService, refused: RefusedStore
) -> None:
    """The citizen's rating closes or reopens a resolved ticket. A rating the
    workflow cannot take (intake's view was a moment behind) is kept for staff
    and acknowledged: it is the citizen's word, not a poison message."""
    try:
        await commands.run(event.ticket_id, "feedback", lambda s, ctx: feedback(s, event, ctx))
    except WorkflowError as exc:
        await refused.record(event, exc.code, exc.message, commands.clock())


async def handle_event(
    event: TicketReceived | TicketFeedback,
    *,
    commands: CommandService,
    refused: RefusedStore,
) -> None:
    if isinstance(event, TicketReceived):
        await handle_received(event, commands=commands)
    else:
        await handle_feedback(event, commands=commands, refused=refused)
