"""The citizen's lookup: a ticket's progress for whoever knows its number and
the last four digits of the phone that reported it, and nothing more.

Four digits are only 10,000 guesses, so failed tries are throttled per client
and ticket together: ``lookup_failures_per_hour`` free misses, then each further
miss doubles the wait before that client may try that ticket again (from
``lookup_backoff_s`` up to an hour). Throttling by the ticket alone would let
anyone lock the citizen out of their own ticket with five wrong guesses; this
way another client's misses never delay the citizen, whose right number and
digits get an answer within the normal per-address rate.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field

from services.intake.progress import view_of
from services.intake.protection import RateLimited
from services.intake.repository import IntakeRepository
from services.intake.status import StatusProjection
from shared.directory import Directory
from shared.privacy import normalise_phone


class LookupResult(BaseModel):
    ticket_id: str
    status: str = Field(description="received, dispatched, accepted, resolved, closed, ...")
    status_label: str = Field(description="the status in words, in Chinese")
    received_at: datetime | None
    updated_at: datetime | None
    department: str | None = Field(description="the name of the unit handling it")
    expected_at: datetime | None = Field(description="the deadline, once dispatched")
    reply: str | None = Field(
        default=None, description="the answer to the citizen, once the ticket is resolved"
    )
    reopen_cause: str | None = Field(
        default=None,
        description="why the ticket was last reopened (重办): rating (the citizen was "
        "unsatisfied) or repeat_call (the citizen called again about it); null if never",
    )


MAX_TRACKED = 100_000
WINDOW_S = 3600.0


@dataclass
class FailureBackoff:
    """Misses per key (a client and a ticket): `free` of them in an hour, then a
    wait that doubles with each further miss, from base_s up to cap_s."""

    free: int
    base_s: float = 60.0
    cap_s: float = WINDOW_S
    clock: Callable[[], float] = time.monotonic
    _misses: dict[str, tuple[int, float]] = field(default_factory=dict)

    def wait(self, key: str) -> float:
        """Seconds before this key may try again (0: now)."""
        count, last = self._current(key)
        if count < self.free:
            return 0.0
        delay = min(self.cap_s, self.base_s * 2.0 ** (count - self.free))
        return max(0.0, last + delay - self.clock())

    def miss(self, key: str) -> None:
        count, _ = self._current(key)
        if len(self._misses) >= MAX_TRACKED and key not in self._misses:
            self._misses.clear()  # a flood of clients must not grow memory forever
        self._misses[key] = (count + 1, self.clock())

    def _current(self, key: str) -> tuple[int, float]:
        count, last = self._misses.get(key, (0, 0.0))
        if count and self.clock() - last > WINDOW_S:
            del self._misses[key]  # an hour without a miss: forgiven
            return 0, 0.0
        return count, last


@dataclass
class Lookups:
    repo: IntakeRepository
    status: StatusProjection
    directory: Directory
    misses: FailureBackoff

    async def find(self, ticket_id: str, phone_last4: str, client: str) -> LookupResult | None:
        key = f"{client}|{ticket_id}"
        wait = self.misses.wait(key)
        if wait > 0:
            raise RateLimited(math.ceil(wait))
        record = await self.repo.get(ticket_id)
        phone = normalise_phone(record.phone) if record and record.published else None
        # Compared in constant time, and the same answer for every kind of miss.
        if record is None or phone is None or not hmac.compare_digest(phone[-4:], phone_last4):
            self.misses.miss(key)
            return None
        view = await view_of(record, self.status, self.directory)
        return LookupResult(
            ticket_id=view.ticket_id,
            status=view.status,
            status_label=view.label,
            received_at=view.received_at,
            updated_at=view.updated_at,
            department=view.department,
            expected_at=view.deadline,
            reply=view.reply,
            reopen_cause=view.reopen_cause,
        )
