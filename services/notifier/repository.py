"""The notifier's deliveries, each with every attempt; claimed like any job
(services.notifier.jobs), so one attempt belongs to one notifier replica."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.notifier.jobs import JobStore
from services.notifier.records import Attempt, DeliveryStatus
from shared.mongo import Document

DELIVERY_STATUSES = tuple(DeliveryStatus)


class DeliveryRepository(JobStore):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db["deliveries"], db["delivery_claims"], "next_attempt_at")

    async def ensure_indexes(self) -> None:
        await self.ensure_job_indexes()

    async def schedule(self, doc: Document) -> Document | None:
        """Store a new pending delivery; None if it was scheduled before."""
        job = pending_delivery(doc)
        try:
            await self.jobs.insert_one(job)
        except DuplicateKeyError:
            return None
        return job

    async def schedule_many(self, docs: list[Document]) -> list[Document]:
        """Store new pending deliveries in one write; those scheduled before
        are not returned."""
        return await self.insert_new([pending_delivery(doc) for doc in docs])

    async def record_attempt(
        self,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: datetime | None,
        replace: Document | None = None,
    ) -> None:
        """The attempt's number becomes the delivery's: the next one is claimed
        under the next number. `replace`: fields rewritten with it (a finished
        delivery keeps the citizen's contact masked only)."""
        update: dict[str, Any] = {
            "$push": {"attempts": attempt.doc()},
            "$set": {"status": status.value, "attempt_no": attempt.n, **(replace or {})},
        }
        if next_attempt_at is not None:
            update["$set"]["next_attempt_at"] = next_attempt_at
        await self.jobs.update_one({"_id": delivery_id}, update)
        self.moved_on(delivery_id, attempt.n)

    async def find(
        self,
        ticket_id: str | None,
        status: DeliveryStatus | None,
        limit: int = 200,
        department: str | None = None,
    ) -> list[Document]:
        query: Document = {}
        for field, value in (
            ("ticket_id", ticket_id),
            ("status", status.value if status is not None else None),
            ("department", department),
        ):
            if value is not None:
                query[field] = value
        cursor = self.jobs.find(query).sort("created_at", 1).limit(limit)
        return await cursor.to_list()

    async def get(self, delivery_id: str) -> Document | None:
        return await self.jobs.find_one({"_id": delivery_id})

    async def for_ticket(self, ticket_id: str) -> list[Document]:
        return await self.find(ticket_id, None)

    async def count_by_status(self) -> dict[str, int]:
        """Every status, 0 included: a status nobody is in any more must read 0,
        not keep the gauge's last value (a backlog that never drains)."""
        cursor = await self.jobs.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}])
        counts = {status.value: 0 for status in DeliveryStatus}
        counts.update({d["_id"]: int(d["n"]) for d in await cursor.to_list()})
        return counts


def pending_delivery(doc: Document) -> Document:
    """A new delivery's record, before its first attempt."""
    return {**doc, "status": DeliveryStatus.PENDING.value, "attempt_no": 0, "attempts": []}
