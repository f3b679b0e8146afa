"""The SMS gateway's webhook: a citizen's text message becomes a ticket, or, when
it answers the satisfaction survey (回访短信), a rating for the router.

The gateway signs each call: ``X-Hotline-Signature: sha256=HMAC(secret,
X-Hotline-Timestamp + "." + body)``; a wrong signature or a timestamp older than
``sms_max_skew_s`` is refused, so a captured call cannot be replayed later.
"""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.intake.channels import BaseChannel, ChannelContext, free_text_draft
from services.intake.channels.web import SUBMIT_RESPONSES
from services.intake.intake import Submission, UnknownTicket, fingerprint
from services.intake.metrics import REFUSED
from services.intake.protection import Unauthorized
from shared.domain import Actor, ActorKind, Channel, Citizen, TicketDraft
from shared.events import Rating
from shared.privacy import normalise_phone
from shared.problems import invalid_input
from shared.signing import verify

TICKET = re.compile(r"[A-Z]{1,6}\d{14}")
# Longest first: 基本满意 and 不满意 both contain 满意.
RATING_WORDS = (
    ("基本满意", Rating.BASICALLY_SATISFIED),
    ("不满意", Rating.UNSATISFIED),
    ("满意", Rating.SATISFIED),
)
RATING_DIGITS = {"1": Rating.SATISFIED, "2": Rating.BASICALLY_SATISFIED, "3": Rating.UNSATISFIED}


class SmsInbound(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)

    message_id: str = Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")
    sender: str = Field(alias="from", pattern=r"^\+?[0-9]{5,20}$")
    text: str = Field(min_length=1, max_length=1000)
    # The reference our survey message carried (the ticket number), if the
    # gateway links replies to what they answer.
    ref: str | None = Field(default=None, max_length=64)


def rating_of(text: str) -> Rating | None:
    """A survey answer: 1/2/3 or the words, possibly after the ticket number."""
    rest = TICKET.sub("", text).strip(" ：:，,。.\n")
    if rest in RATING_DIGITS:
        return RATING_DIGITS[rest]
    for word, rating in RATING_WORDS:
        if rest == word:
            return rating
    return None


class SmsChannel(BaseChannel):
    name = "sms"

    def to_draft(self, raw: Any, ctx: ChannelContext) -> TicketDraft:
        sms = raw if isinstance(raw, SmsInbound) else SmsInbound.model_validate(raw)
        citizen = Citizen(phone=sms.sender)
        return free_text_draft(Channel.SMS, sms.text, ctx, citizen, sms.message_id)

    def routes(self, ctx: ChannelContext) -> APIRouter:
        router = APIRouter(prefix="/v1/channels/sms", tags=["channels"])

        @router.post(
            "/inbound",
            status_code=202,
            responses=SUBMIT_RESPONSES,
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": SmsInbound.model_json_schema(by_alias=True)}
                    },
                }
            },
        )
        async def sms_inbound(request: Request) -> JSONResponse:
            """A text message from a citizen, signed by the SMS gateway."""
            body = await request.body()
            problem = verify(
                ctx.settings.sms_webhook_secret,
                request.headers.get("x-hotline-timestamp"),
                request.headers.get("x-hotline-signature"),
                body,
                time.time(),
                ctx.settings.sms_max_skew_s,
            )
            if problem is not None:
                REFUSED.labels(self.name, "bad_signature").inc()
                raise Unauthorized(f"SMS webhook refused: {problem}")
            ctx.guard.limit("sms-gateway", self.name)
            try:
                sms = SmsInbound.model_validate_json(body)
            except ValidationError as exc:
                return invalid_input(exc.errors(include_url=False))
            answer = await self._feedback(sms, ctx)
            if answer is not None:
                return answer
            return await self._ticket(sms, ctx)

        return router

    async def _feedback(self, sms: SmsInbound, ctx: ChannelContext) -> JSONResponse | None:
        rating = rating_of(sms.text)
        found = TICKET.search(sms.text)
        ticket_id = found.group(0) if found else sms.ref
        if rating is None or ticket_id is None:
            return None
        record = await ctx.intake.repo.get(ticket_id)
        # Only the number that reported the ticket may rate it; any other sender
        # learns nothing, not even that the ticket exists.
        if record is None or normalise_phone(record.phone) != normalise_phone(sms.sender):
            raise UnknownTicket(ticket_id)
        actor = Actor(kind=ActorKind.CITIZEN, id="sms")
        solved = rating is not Rating.UNSATISFIED
        await ctx.intake.feedback(ticket_id, rating, solved, None, actor)
        return JSONResponse({"ticket_id": ticket_id, "status": "feedback_received"}, 202)

    async def _ticket(self, sms: SmsInbound, ctx: ChannelContext) -> JSONResponse:
        submission = Submission(
            draft=self.to_draft(sms, ctx),
            actor=Actor(kind=ActorKind.CITIZEN, id="channel:sms"),
            fingerprint=fingerprint(sms.model_dump(mode="json")),
        )
        receipt = await ctx.intake.accept(submission, f"sms:{sms.message_id}")
        return JSONResponse(receipt.model_dump(), status_code=202)
