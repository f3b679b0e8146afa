"""The call-centre agent's entry (坐席受理): a call becomes a ticket, or is
answered on the spot and closed at intake (当场办结); and the agent's call-back
to the citizen (回访) brings the rating the router closes or reopens on."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from services.intake.channels import BaseChannel, ChannelContext
from services.intake.channels.web import SUBMIT_RESPONSES
from services.intake.intake import CALL_KEY_PREFIX, Submission, fingerprint
from services.intake.models import (
    AgentEntry,
    FeedbackSubmission,
    Receipt,
    RequestForm,
    TicketSubmission,
)
from shared.domain import Actor, ActorKind, Channel, Citizen, TicketDraft


class AgentChannel(BaseChannel):
    name = "agent"

    def to_draft(self, raw: Any, ctx: ChannelContext) -> TicketDraft:
        entry = AgentEntry.model_validate(raw)
        form = TicketSubmission(
            **{name: getattr(entry, name) for name in RequestForm.model_fields},
            channel=Channel.PHONE,
            citizen=Citizen(name=entry.caller_name, phone=entry.caller_number),
            id=entry.call_id,
        )
        return ctx.intake.draft_of(form)

    def routes(self, ctx: ChannelContext) -> APIRouter:
        router = APIRouter(prefix="/v1", tags=["call centre"])
        admit = Depends(ctx.guard.dependency(self.name))

        @router.post(
            "/agent/tickets",
            status_code=202,
            response_model=Receipt,
            responses=SUBMIT_RESPONSES,
            dependencies=[admit],
        )
        async def agent_ticket(entry: AgentEntry) -> JSONResponse:
            """A call the agent took: received for dispatch, or with on_spot_answer
            resolved on the spot. A repeated call_id returns the same ticket."""
            submission = Submission(
                draft=self.to_draft(entry.model_dump(mode="json"), ctx),
                actor=Actor(kind=ActorKind.AGENT, id=entry.agent_id),
                fingerprint=fingerprint(entry.model_dump(mode="json")),
                on_spot_answer=entry.on_spot_answer,
            )
            key = f"{CALL_KEY_PREFIX}{entry.call_id}" if entry.call_id else None
            receipt = await ctx.intake.accept(submission, key)
            return JSONResponse(receipt.model_dump(), status_code=202)

        self._feedback_route(router, ctx)
        return router

    def _feedback_route(self, router: APIRouter, ctx: ChannelContext) -> None:
        admit = Depends(ctx.guard.dependency(self.name))

        @router.post(
            "/tickets/{ticket_id}/feedback",
            status_code=202,
            tags=["tickets"],
            responses={
                404: {"description": "no such ticket"},
                422: {"description": "invalid rating, or a ticket answered on the spot"},
                503: {"description": "retry"},
            },
            dependencies=[admit],
        )
        async def submit_feedback(
            ticket_id: Annotated[str, Path(max_length=64)], feedback: FeedbackSubmission
        ) -> dict[str, str]:
            """The citizen's rating after the department replied (回访), as the agent
            who called back records it: satisfied or basically satisfied closes the
            ticket, unsatisfied reopens it."""
            actor = (
                Actor(kind=ActorKind.AGENT, id=feedback.agent_id)
                if feedback.agent_id
                else Actor(kind=ActorKind.CITIZEN, id="feedback")
            )
            await ctx.intake.feedback(
                ticket_id, feedback.rating, feedback.solved, feedback.comment, actor
            )
            return {"ticket_id": ticket_id, "status": "feedback_received"}
