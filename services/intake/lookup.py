"""The citizen's lookup: a ticket's progress for whoever knows its number and
the last four digits of the phone that reported it, and nothing more.

Four digits are only 10,000 guesses, so failed tries are limited per ticket
(``lookup_failures_per_hour``) on top of the per-address rate limit.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field

from services.intake.progress import view_of
from services.intake.protection import RateLimited, TokenBuckets
from services.intake.repository import IntakeRepository
from services.intake.status import StatusProjection
from services.intake.textparse import normalise_phone
from shared.directory import Directory


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


@dataclass
class Lookups:
    repo: IntakeRepository
    status: StatusProjection
    directory: Directory
    failures: TokenBuckets

    async def find(self, ticket_id: str, phone_last4: str) -> LookupResult | None:
        bucket = f"ticket:{ticket_id}"
        wait = self.failures.wait(bucket)
        if wait > 0:
            raise RateLimited(int(wait) + 1)
        record = await self.repo.get(ticket_id)
        phone = normalise_phone(record.phone) if record and record.published else None
        # Compared in constant time, and the same answer for every kind of miss.
        if record is None or phone is None or not hmac.compare_digest(phone[-4:], phone_last4):
            self.failures.take(bucket)
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
        )
