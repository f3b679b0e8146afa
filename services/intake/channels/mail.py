"""Reading a citizen's email: subject and body as text, whatever the encoding
(base64 or quoted-printable, UTF-8 or GBK/GB18030, plain text or HTML)."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from html.parser import HTMLParser

MAX_TEXT = 4000


@dataclass(frozen=True)
class Letter:
    sender: str
    sender_name: str | None
    subject: str
    body: str
    message_id: str | None
    automatic: bool

    @property
    def text(self) -> str:
        parts = [p for p in (self.subject, self.body) if p]
        return "\n".join(parts)[:MAX_TEXT].strip()


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)


def _html_text(html: str) -> str:
    parser = _TextOnly()
    parser.feed(html)
    return " ".join(" ".join(parser.chunks).split())


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeDecodeError):  # an unknown or lying charset
        raw = part.get_payload(decode=True)
        content = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else ""
    text = str(content)
    return _html_text(text) if part.get_content_subtype() == "html" else text.strip()


def _automatic(message: EmailMessage) -> bool:
    """Auto-replies, bounces and list mail get no reply: no mail loops."""
    auto = str(message.get("auto-submitted", "no")).strip().lower()
    precedence = str(message.get("precedence", "")).strip().lower()
    return auto != "no" or precedence in {"bulk", "list", "junk"}


def read_letter(raw: bytes, envelope_sender: str | None) -> Letter:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    name, address = parseaddr(str(message.get("from", "")))
    return Letter(
        sender=(address or envelope_sender or "").strip(),
        sender_name=name.strip() or None,
        subject=str(message.get("subject", "")).strip(),
        body=_body(message),
        message_id=str(message["message-id"]).strip() if message["message-id"] else None,
        automatic=_automatic(message),
    )
