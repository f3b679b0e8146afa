"""The web/app JSON channel: the form of the hotline's website and app, and the
generic JSON entry any trusted system can post (a sample request is valid)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse

from services.intake.channels import BaseChannel, ChannelContext
from services.intake.models import Receipt, TicketSubmission
from shared.domain import TicketDraft

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="retrying with the same key returns the same ticket",
    ),
]
SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no API key where the channel needs one, or an unknown key"},
    403: {"description": "the key belongs to another channel"},
    413: {"description": "body too large"},
    422: {"description": "invalid request, with the field errors"},
    429: {"description": "rate limit of the key exceeded; see Retry-After"},
    503: {"description": "broker or store unreachable; nothing was accepted"},
}


class WebChannel(BaseChannel):
    name = "web"

    def to_draft(self, raw: Any, ctx: ChannelContext) -> TicketDraft:
        return ctx.intake.draft_of(TicketSubmission.model_validate(raw))

    def routes(self, ctx: ChannelContext) -> APIRouter:
        router = APIRouter(prefix="/v1", tags=["tickets"])
        admit = Depends(ctx.guard.dependency(self.name))

        @router.post(
            "/tickets",
            status_code=202,
            response_model=Receipt,
            responses=SUBMIT_RESPONSES,
            dependencies=[admit],
        )
        async def submit_ticket(
            submission: TicketSubmission, idempotency_key: IdempotencyKey = None
        ) -> JSONResponse:
            """Accept a citizen's request. Answers 202 with the ticket number once the
            event is safely with the broker; a near-identical request of the same
            caller within 72 hours is linked to the earlier ticket instead (并单)."""
            receipt = await ctx.intake.submit(submission, idempotency_key)
            return JSONResponse(receipt.model_dump(), status_code=202)

        return router
