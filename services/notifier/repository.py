"""The notifier's deliveries, each with every attempt, and the claims that make
one attempt belong to one notifier replica.

A claim is an insert under the key "<delivery>:<attempt number>": a unique-key
insert is atomic on MongoDB and FerretDB alike, where a find-and-modify on
FerretDB is not. A claimer that dies leaves its claim to expire; whoever finds it
expired moves the delivery to the next attempt number, which is free to claim.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import Document


class DeliveryRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._deliveries = db["deliveries"]
        self._claims = db["delivery_claims"]

    async def ensure_indexes(self) -> None:
        await self._deliveries.create_index([("status", 1), ("next_attempt_at", 1)])
        await self._deliveries.create_index([("ticket_id", 1)])

    async def schedule(self, doc: Document) -> bool:
        """Store a new pending delivery; False if it was scheduled before."""
        try:
            await self._deliveries.insert_one(
                {**doc, "status": "pending", "attempt_no": 0, "attempts": []}
            )
        except DuplicateKeyError:
            return False
        return True

    async def due(self, now: datetime, limit: int) -> list[Document]:
        cursor = (
            self._deliveries.find({"status": "pending", "next_attempt_at": {"$lte": now}})
            .sort("next_attempt_at", 1)
            .limit(limit)
        )
        return await cursor.to_list()

    async def claim(self, delivery: Document, now: datetime, lease: timedelta) -> bool:
        """Take attempt number attempt_no of the delivery for this process."""
        key = f"{delivery['_id']}:{delivery['attempt_no']}"
        try:
            await self._claims.insert_one({"_id": key, "expires_at": now + lease})
        except DuplicateKeyError:
            existing = await self._claims.find_one({"_id": key})
            if existing is not None and existing["expires_at"] < now:
                # Its claimer died before starting: free the next attempt number.
                await self._advance(delivery, now)
            return False
        await self._advance(delivery, now + lease)
        return True

    async def _advance(self, delivery: Document, next_attempt_at: datetime) -> None:
        # After this, a claimer that dies mid-attempt leaves the delivery due again
        # at next_attempt_at, under an attempt number nobody has claimed.
        await self._deliveries.update_one(
            {"_id": delivery["_id"], "attempt_no": delivery["attempt_no"]},
            {
                "$set": {
                    "attempt_no": delivery["attempt_no"] + 1,
                    "next_attempt_at": next_attempt_at,
                }
            },
        )

    async def record_attempt(
        self, delivery_id: str, attempt: Document, status: str, next_attempt_at: datetime | None
    ) -> None:
        update: dict[str, Any] = {"$push": {"attempts": attempt}, "$set": {"status": status}}
        if next_attempt_at is not None:
            update["$set"]["next_attempt_at"] = next_attempt_at
        await self._deliveries.update_one({"_id": delivery_id}, update)

    async def for_ticket(self, ticket_id: str) -> list[Document]:
        cursor = self._deliveries.find({"ticket_id": ticket_id}).sort("created_at", 1)
        return await cursor.to_list()

    async def count_by_status(self) -> dict[str, int]:
        cursor = await self._deliveries.aggregate(
            [{"$group": {"_id": "$status", "n": {"$sum": 1}}}]
        )
        return {d["_id"]: int(d["n"]) for d in await cursor.to_list()}
