"""Sending a claimed delivery and recording the attempt: delivered, retried
later with exponential backoff and jitter, or dead after the last attempt."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.notifier.channels import DeliveryChannel, Outcome
from services.notifier.currency import is_current
from services.notifier.metrics import DELIVERIES
from services.notifier.notices import minimised
from services.notifier.records import Attempt, DeliveryStatus
from services.notifier.repository import DeliveryRepository
from shared.logthrottle import LogThrottle
from shared.mongo import Document

logger = logging.getLogger(__name__)


@dataclass
class DeliverySender:
    repo: DeliveryRepository
    channels: dict[str, DeliveryChannel]
    clock: Callable[[], datetime]
    backoff_base_s: float
    backoff_cap_s: float
    max_attempts: int
    lease: timedelta
    # Set once the worker that runs this sender exists: a retry due soon is
    # handed straight back to it instead of waiting for its next scan.
    offer: Callable[[Document], None] = lambda _job: None
    # Where the notifier last learnt a ticket stands (TimerRepository.standing);
    # None: every notice is current.
    standing: Callable[[str], Awaitable[Document | None]] | None = None
    throttle: LogThrottle = field(default_factory=LogThrottle)

    def backoff(self, attempt_no: int) -> timedelta:
        """Exponential with full jitter, so a recovering endpoint is not hit by
        every waiting delivery at the same instant."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt_no - 1))
        return timedelta(seconds=random.uniform(ceiling / 2, ceiling))

    async def attempt(self, delivery: Document) -> None:
        if not await self.repo.claim(delivery, self.clock(), self.lease):
            return
        if not await self._current(delivery):
            await self._supersede(delivery)
            return
        channel = self.channels.get(str(delivery["channel"]))
        if channel is None or not delivery.get("target"):
            outcome = Outcome(False, error="no channel reaches this department")
        else:
            outcome = await channel.send(delivery)
        await self._record(delivery, outcome, reachable=channel is not None)

    async def _current(self, delivery: Document) -> bool:
        if self.standing is None:
            return True
        return is_current(delivery, await self.standing(str(delivery["ticket_id"])))

    async def _supersede(self, delivery: Document) -> None:
        """Dropped before the attempt: the ticket moved on (returned, re-dispatched,
        resolved, closed, staff acted). Recorded as superseded, not sent."""
        error = "superseded: the ticket is no longer with this department at this step"
        record = Attempt(int(delivery["attempt_no"]) + 1, self.clock(), False, None, error)
        await self.repo.record_attempt(
            delivery["_id"], record, DeliveryStatus.SUPERSEDED, None, minimised(delivery)
        )
        DELIVERIES.labels(str(delivery["channel"]), DeliveryStatus.SUPERSEDED.value).inc()
        logger.info("delivery %s superseded", delivery["_id"])

    async def _record(self, delivery: Document, outcome: Outcome, reachable: bool) -> None:
        now = self.clock()
        attempt_no = int(delivery["attempt_no"]) + 1
        record = Attempt(attempt_no, now, outcome.ok, outcome.status_code, outcome.error)
        channel = str(delivery["channel"])
        if not outcome.ok:
            self._warn(delivery, attempt_no, outcome)
        if outcome.ok:
            await self.repo.record_attempt(
                delivery["_id"], record, DeliveryStatus.DELIVERED, None, minimised(delivery)
            )
            DELIVERIES.labels(channel, DeliveryStatus.DELIVERED.value).inc()
        elif attempt_no >= self.max_attempts or not reachable or not delivery.get("target"):
            await self.repo.record_attempt(
                delivery["_id"], record, DeliveryStatus.DEAD, None, minimised(delivery)
            )
            DELIVERIES.labels(channel, DeliveryStatus.DEAD.value).inc()
            logger.error("delivery %s dead after %d attempts", delivery["_id"], attempt_no)
        else:
            retry_at = now + self.backoff(attempt_no)
            await self.repo.record_attempt(
                delivery["_id"], record, DeliveryStatus.PENDING, retry_at
            )
            DELIVERIES.labels(channel, "failed").inc()
            self.offer({**delivery, "attempt_no": attempt_no, "next_attempt_at": retry_at})

    def _warn(self, delivery: Document, attempt_no: int, outcome: Outcome) -> None:
        """Every failed attempt, at most once a minute per department and channel.
        The target is the department's endpoint, never a citizen's contact."""
        held = self.throttle.admit((delivery.get("department"), delivery["channel"]))
        if held is None:
            return
        logger.warning(
            "delivery attempt %d failed: ticket %s, department %s, %s to %s: %s%s",
            attempt_no,
            delivery.get("ticket_id"),
            delivery.get("department"),
            delivery["channel"],
            delivery.get("target") or "no target",
            outcome.error,
            f" ({held} more failures of this department and channel since the last line)"
            if held
            else "",
        )
