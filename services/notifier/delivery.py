"""Delivering notices: the worker that claims due deliveries and sends them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from services.notifier.metrics import DELIVERIES
from services.notifier.repository import DeliveryRepository
from shared.mongo import Document

logger = logging.getLogger(__name__)
BATCH = 50


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None


class WebhookSender:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(self, delivery: Document) -> Outcome:
        if not delivery.get("target"):
            return Outcome(False, error="department has no webhook")
        try:
            response = await self._client.post(
                delivery["target"],
                json=delivery["body"],
                headers={
                    "X-Hotline-Delivery": str(delivery["_id"]),
                    "X-Hotline-Event": str(delivery["body"]["kind"]),
                },
            )
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return Outcome(True, response.status_code)
        return Outcome(False, response.status_code, f"HTTP {response.status_code}")


@dataclass
class DeliveryWorker:
    repo: DeliveryRepository
    sender: WebhookSender
    clock: Callable[[], datetime]
    backoff: list[float]
    max_attempts: int
    poll_s: float
    lease: timedelta
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                due = await self.repo.due(self.clock(), BATCH)
                await asyncio.gather(*(self._attempt(d) for d in due))
            except Exception as exc:  # store down: keep the loop, try again
                logger.warning("delivery round failed: %r", exc)
                due = []
            if len(due) < BATCH:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)

    async def _attempt(self, delivery: Document) -> None:
        if not await self.repo.claim(delivery, self.clock(), self.lease):
            return
        outcome = await self.sender.send(delivery)
        now = self.clock()
        attempt_no = int(delivery["attempt_no"]) + 1
        record = {
            "n": attempt_no,
            "at": now,
            "ok": outcome.ok,
            "status_code": outcome.status_code,
            "error": outcome.error,
        }
        channel = str(delivery["channel"])
        if outcome.ok:
            await self.repo.record_attempt(delivery["_id"], record, "delivered", None)
            DELIVERIES.labels(channel, "delivered").inc()
        elif attempt_no >= self.max_attempts or not delivery.get("target"):
            await self.repo.record_attempt(delivery["_id"], record, "dead", None)
            DELIVERIES.labels(channel, "dead").inc()
            logger.error("delivery %s dead after %d attempts", delivery["_id"], attempt_no)
        else:
            delay = self.backoff[min(attempt_no - 1, len(self.backoff) - 1)]
            retry_at = now + timedelta(seconds=delay)
            await self.repo.record_attempt(delivery["_id"], record, "pending", retry_at)
            DELIVERIES.labels(channel, "failed").inc()
