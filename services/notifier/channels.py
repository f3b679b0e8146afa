"""Delivery channels: how a notice reaches a department.

Built in: webhook (signed), email (SMTP) and an SMS gateway (HTTP). More can be
plugged in through the entry point group ``hotline.delivery_channels``: a
factory taking (settings, http_client) and returning a DeliveryChannel.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from email.message import EmailMessage
from importlib.metadata import entry_points
from typing import Protocol

import aiosmtplib
import httpx

from shared.directory import Department
from shared.mongo import Document
from shared.settings import NotifierSettings
from shared.signing import sign

logger = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "hotline.delivery_channels"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None


class DeliveryChannel(Protocol):
    name: str

    def target(self, department: Department) -> str | None:
        """Where this channel reaches the department, or None if it cannot."""

    async def send(self, delivery: Document) -> Outcome: ...


class WebhookChannel:
    name = "webhook"

    def __init__(self, client: httpx.AsyncClient, secret: str) -> None:
        self._client = client
        self._secret = secret

    def target(self, department: Department) -> str | None:
        return department.contact.webhook

    async def send(self, delivery: Document) -> Outcome:
        body = json.dumps(delivery["body"], ensure_ascii=False, default=str).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Hotline-Delivery": str(delivery["_id"]),
            "X-Hotline-Event": str(delivery.get("kind", "notice")),
            "X-Hotline-Timestamp": timestamp,
            "X-Hotline-Signature": sign(self._secret, timestamp, body),
        }
        try:
            response = await self._client.post(delivery["target"], content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return Outcome(True, response.status_code)
        return Outcome(False, response.status_code, f"HTTP {response.status_code}")


class EmailChannel:
    name = "email"

    def __init__(self, settings: NotifierSettings) -> None:
        self._settings = settings

    def target(self, department: Department) -> str | None:
        return department.contact.email

    async def send(self, delivery: Document) -> Outcome:
        message = EmailMessage()
        message["From"] = self._settings.smtp_from
        message["To"] = delivery["target"]
        message["Subject"] = delivery["subject"]
        message["X-Hotline-Delivery"] = str(delivery["_id"])
        message.set_content(delivery["text"])
        try:
            await aiosmtplib.send(
                message,
                hostname=self._settings.smtp_host,
                port=self._settings.smtp_port,
                timeout=self._settings.webhook_timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}")
        return Outcome(True)


class SmsChannel:
    name = "sms"

    def __init__(self, client: httpx.AsyncClient, gateway_url: str | None) -> None:
        self._client = client
        self._url = gateway_url

    def target(self, department: Department) -> str | None:
        return department.contact.sms if self._url else None

    async def send(self, delivery: Document) -> Outcome:
        assert self._url is not None
        payload = {"to": delivery["target"], "text": delivery["text"], "ref": delivery["_id"]}
        try:
            response = await self._client.post(self._url, json=payload)
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return Outcome(True, response.status_code)
        return Outcome(False, response.status_code, f"HTTP {response.status_code}")


def load_channels(
    settings: NotifierSettings, client: httpx.AsyncClient
) -> dict[str, DeliveryChannel]:
    channels: dict[str, DeliveryChannel] = {
        "webhook": WebhookChannel(client, settings.webhook_secret),
        "email": EmailChannel(settings),
        "sms": SmsChannel(client, settings.sms_gateway_url),
    }
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        channel = entry.load()(settings, client)
        channels[channel.name] = channel
        logger.info("delivery channel %s from %s", channel.name, entry.value)
    return channels


def channel_for(department: Department, channels: dict[str, DeliveryChannel]) -> str | None:
    """The department's preferred channel that can reach it: the directory may
    list `channels` in order; otherwise webhook, then email, then SMS."""
    preferred = department.contact.channels or ["webhook", "email", "sms"]
    for name in preferred:
        channel = channels.get(name)
        if channel is not None and channel.target(department):
            return name
    return None
