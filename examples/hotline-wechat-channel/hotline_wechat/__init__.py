"""A Hotline intake channel for a WeChat mini-program backend.

The backend posts JSON; this channel turns it into Hotline's common ticket
draft and hands it to intake, which numbers, publishes and answers. Intake's
guard checks the API key issued to the "wechat" channel and its rate limit.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.intake.channels import BaseChannel, ChannelContext
from services.intake.intake import Submission, SubmissionError, fingerprint
from shared.domain import Actor, ActorKind, Category, Channel, Citizen, TicketDraft


class WeChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    openid: str = Field(min_length=1, max_length=64, pattern=r"^[\w-]+$")
    msg_id: str = Field(min_length=1, max_length=64, pattern=r"^[\w-]+$")
    district: str = Field(min_length=1, max_length=50)
    category: Category = Category.HELP
    text: str = Field(min_length=1, max_length=4000)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{5,20}$")


class WeChatChannel(BaseChannel):
    name = "wechat"

    def to_draft(self, raw: Any, ctx: ChannelContext) -> TicketDraft:
        message = WeChatMessage.model_validate(raw)
        district = ctx.directory.district(message.district)
        if district is None:
            raise SubmissionError("district", f"unknown district {message.district!r}")
        return TicketDraft(
            channel=Channel.WECHAT,
            district=district.id,
            category=message.category,
            text=message.text,
            citizen=Citizen(phone=message.phone) if message.phone else None,
            external_id=message.msg_id,
        )

    def routes(self, ctx: ChannelContext) -> APIRouter:
        router = APIRouter(prefix="/v1/channels/wechat", tags=["channels"])

        @router.post(
            "/messages", status_code=202, dependencies=[Depends(ctx.guard.dependency(self.name))]
        )
        async def wechat_message(message: WeChatMessage) -> JSONResponse:
            """A citizen's message from the mini-program; a repeated msg_id returns
            the same ticket."""
            raw = message.model_dump(mode="json")
            submission = Submission(
                draft=self.to_draft(raw, ctx),
                actor=Actor(kind=ActorKind.CITIZEN, id=f"wechat:{message.openid}"),
                fingerprint=fingerprint(raw),
            )
            receipt = await ctx.intake.accept(submission, f"wechat:{message.msg_id}")
            return JSONResponse(receipt.model_dump(), status_code=202)

        return router
