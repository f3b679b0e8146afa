"""Email: a real SMTP listener (aiosmtpd) inside intake. Each message becomes a
ticket, and the sender gets a reply with the ticket number.

The SMTP answer waits for the broker's confirm like an HTTP 202 does: 250 only
once the ticket is on its way, 451 (try again) when the broker or store is down,
so the sending server keeps the message and retries. The Message-ID is the
idempotency key: a retried delivery gets the same ticket, not a second one.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import ValidationError

from services.intake.channels import BaseChannel, ChannelContext, free_text_draft
from services.intake.channels.mail import Letter, read_letter
from services.intake.intake import Submission, fingerprint
from services.intake.models import Receipt
from shared.domain import Actor, ActorKind, Channel, Citizen, TicketDraft
from shared.errors import is_unavailable

logger = logging.getLogger(__name__)
SIZE_FACTOR = 16  # an email carries headers and base64: allow more than an HTTP body
REPLY_TIMEOUT_S = 10.0


class EmailChannel(BaseChannel):
    name = "email"

    def __init__(self) -> None:
        self.bound_port: int | None = None  # the port the listener got (0 = any free one)
        self.ready = asyncio.Event()

    def to_draft(self, raw: Any, ctx: ChannelContext) -> TicketDraft:
        letter = raw if isinstance(raw, Letter) else read_letter(bytes(raw), None)
        citizen = Citizen(name=letter.sender_name[:100]) if letter.sender_name else None
        message_id = (letter.message_id or "")[:100] or None
        return free_text_draft(Channel.EMAIL, letter.text, ctx, citizen, message_id)

    def background(self, ctx: ChannelContext) -> Any:
        if ctx.settings.email_listen_port is None:
            return None
        return self._listen(ctx)

    async def _listen(self, ctx: ChannelContext) -> None:
        settings = ctx.settings
        handler = _Handler(self, ctx)
        limit = settings.max_body_bytes * SIZE_FACTOR
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(handler, data_size_limit=limit, enable_SMTPUTF8=True, hostname="hotline"),
            host=settings.email_listen_host,
            port=settings.email_listen_port,
        )
        self.bound_port = int(server.sockets[0].getsockname()[1])
        self.ready.set()
        logger.info("email channel listening on %s:%d", settings.email_listen_host, self.bound_port)
        async with server:
            await server.serve_forever()

    async def take(self, letter: Letter, ctx: ChannelContext) -> Receipt:
        submission = Submission(
            draft=self.to_draft(letter, ctx),
            actor=Actor(kind=ActorKind.CITIZEN, id="channel:email"),
            fingerprint=fingerprint([letter.sender, letter.subject, letter.body]),
            email=letter.sender,
            extra={"reply_to": letter.sender},
        )
        key = f"email:{letter.message_id}" if letter.message_id else None
        return await ctx.intake.accept(submission, key)


class _Handler:
    """aiosmtpd calls handle_DATA once a whole message has arrived."""

    def __init__(self, channel: EmailChannel, ctx: ChannelContext) -> None:
        self._channel = channel
        self._ctx = ctx

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        letter = read_letter(raw, envelope.mail_from)
        if not letter.text or not letter.sender:
            return "550 5.6.0 an empty message or no sender; nothing was accepted"
        try:
            receipt = await self._channel.take(letter, self._ctx)
        except ValidationError:
            return "550 5.6.0 the message cannot be read as a request"
        except Exception as exc:
            if is_unavailable(exc):
                return "451 4.3.0 the hotline cannot accept mail right now; try again later"
            logger.exception("email not accepted")
            return "451 4.3.0 temporary failure; try again later"
        if not letter.automatic and not receipt.replayed:
            await _reply(self._ctx, letter, receipt)
        return f"250 OK ticket {receipt.ticket_id}"


def _reply_text(receipt: Receipt) -> str:
    if receipt.duplicate_of:
        return (
            f"您好！您反映的问题已在工单 {receipt.duplicate_of} 中办理，"
            "本次来信已并入该工单，请勿重复反映。\n\n12345政务服务便民热线"
        )
    return (
        f"您好！您的来信已受理，工单号：{receipt.ticket_id}。"
        "我们将按规定时限转交有关部门办理并答复您。\n\n12345政务服务便民热线"
    )


async def _reply(ctx: ChannelContext, letter: Letter, receipt: Receipt) -> None:
    """Best effort: the ticket stands whether or not the reply gets through."""
    message = EmailMessage()
    message["From"] = ctx.settings.smtp_from
    message["To"] = letter.sender
    message["Subject"] = f"【12345】已受理 {receipt.ticket_id}"
    message["Auto-Submitted"] = "auto-replied"
    if letter.message_id:
        message["In-Reply-To"] = letter.message_id
    message.set_content(_reply_text(receipt))
    try:
        await aiosmtplib.send(
            message,
            hostname=ctx.settings.smtp_host,
            port=ctx.settings.smtp_port,
            timeout=REPLY_TIMEOUT_S,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        logger.warning("reply for %s not sent: %r", receipt.ticket_id, exc)
