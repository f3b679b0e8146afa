"""Ticket numbers of a day, handed out from blocks taken off a counter.

One counter document per day; a replica takes BLOCK numbers with one `$inc`
and hands them out from memory, so numbering costs the store one write per
BLOCK tickets instead of a round trip each. On MongoDB `$inc` is atomic, so
two replicas never hold the same block; on the dev store it is not
(read-modify-write), and the unique `_id` of the record (the number) is what
keeps a number from being given twice: a collision costs a retry, never a
duplicate. The counter starts above the day's highest number already stored,
so records from before the counter existed are not collided with.

Gaps: numbers of a block a replica did not use before it stopped, or before
the day changed, are never given; nor is a number whose record insert failed.
A ticket number says which day and roughly in what order, not how many.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from shared.mongo import Document

BLOCK = 20


class NumberBlocks:
    def __init__(
        self,
        counters: AsyncCollection[Document],
        first_free: Callable[[date], Awaitable[int]],
        block: int = BLOCK,
    ) -> None:
        self._counters = counters
        self._first_free = first_free
        self._block = block
        self._free: dict[date, list[int]] = {}
        self._seeded: set[date] = set()
        self._lock = asyncio.Lock()

    async def take(self, day: date) -> int:
        """The next number of the day this replica holds (a new block if none)."""
        if not self._free.get(day):
            async with self._lock:  # one refill for all the requests waiting on it
                if not self._free.get(day):
                    self._free = {day: await self._next_block(day)}  # older days: dropped
        return self._free[day].pop(0)

    async def _next_block(self, day: date) -> list[int]:
        key = day.isoformat()
        if day not in self._seeded:
            floor = await self._first_free(day) - 1
            await self._counters.update_one({"_id": key}, {"$max": {"last": floor}}, upsert=True)
            self._seeded.add(day)
        doc = await self._counters.find_one_and_update(
            {"_id": key},
            {"$inc": {"last": self._block}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:  # an upsert always returns the document; this is for the type
            raise RuntimeError(f"no number counter for {key}")
        last = int(doc["last"])
        return list(range(last - self._block + 1, last + 1))
