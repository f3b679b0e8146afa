"""The notifier's timers: one document per warning, overdue notice, urging or
supervision due, claimed like any job (services.notifier.jobs)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from services.notifier.jobs import JobStore
from services.notifier.records import JobStatus, Kinds, TimerKind, timer_id
from services.notifier.schedule import Planned
from shared.groupcommit import in_commands
from shared.mongo import Document, insert_new

KINDS = tuple(TimerKind)


@dataclass(frozen=True)
class TicketTimers:
    """What accept_event read of a ticket: the generations whose timers it may
    have; None for a ticket recorded before generations were (cancel queries)."""

    ticket_id: str
    generations: list[str] | None


@dataclass(frozen=True)
class FirstEvent:
    """An event that may be the first the notifier hears of its ticket, as
    accept_new records it: what accept_event would."""

    ticket_id: str
    occurred_at: datetime
    generation: str | None
    standing: Document

    def record(self) -> Document:
        generations = [self.generation] if self.generation else []
        return {
            "_id": self.ticket_id,
            "last_at": self.occurred_at,
            **self.standing,
            "generations": generations,
        }


class TimerRepository(JobStore):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db["timers"], db["timer_claims"], "due_at")
        self._tickets = db["timer_tickets"]

    async def ensure_indexes(self) -> None:
        await self.ensure_job_indexes()
        await self.jobs.create_index([("kind", 1), ("status", 1)])

    async def schedule(
        self, ticket_id: str, generation: str, planned: list[Planned], context: Document
    ) -> list[Document]:
        """Insert the timers and return them; those inserted before (a
        redelivery) stay as they are and are not returned."""
        docs = [timer_doc(ticket_id, generation, timer, context) for timer in planned]
        return await self.insert_new(docs)

    async def cancel(
        self, known: TicketTimers, kinds: Kinds | None = None, keep: str | None = None
    ) -> int:
        """Cancel pending timers of the ticket (of these kinds; not of generation keep).

        Timer ids follow from the ticket's generations (recorded by accept_event,
        which hands what it read over as `known`), so each is read and written by
        _id: on the dev store a query by ticket_id reads every timer (seconds per
        event at a few thousand timers)."""
        ticket_id = known.ticket_id
        if known.generations is None:
            return await self._cancel_by_query(ticket_id, kinds, keep)
        cancelled = 0
        for generation in known.generations:
            if generation == keep:
                continue
            for candidate in await self._timer_ids(ticket_id, generation, kinds):
                cancelled += await self._cancel_if_pending(candidate)
        return cancelled

    async def _timer_ids(self, ticket_id: str, generation: str, kinds: Kinds | None) -> list[str]:
        wanted = KINDS if kinds is None else kinds
        ids = [timer_id(ticket_id, generation, k) for k in wanted if k != TimerKind.SUPERVISION]
        if TimerKind.SUPERVISION in wanted:
            # Each supervision is scheduled when the one before fires: they run
            # 1, 2, 3, ... without a gap.
            seq = 1
            while await self.jobs.find_one(
                {"_id": timer_id(ticket_id, generation, TimerKind.SUPERVISION, seq)}, {"_id": 1}
            ):
                ids.append(timer_id(ticket_id, generation, TimerKind.SUPERVISION, seq))
                seq += 1
        return ids

    async def _cancel_if_pending(self, timer: str) -> int:
        doc = await self.jobs.find_one({"_id": timer}, {"status": 1})
        if doc is None or doc["status"] != JobStatus.PENDING:
            return 0
        await self.jobs.update_one({"_id": timer}, {"$set": {"status": JobStatus.CANCELLED}})
        return 1

    async def _cancel_by_query(self, ticket_id: str, kinds: Kinds | None, keep: str | None) -> int:
        # Tickets whose timers were set before generations were recorded.
        query: dict[str, Any] = {"ticket_id": ticket_id, "status": JobStatus.PENDING}
        if kinds is not None:
            query["kind"] = {"$in": list(kinds)}
        if keep is not None:
            query["generation"] = {"$ne": keep}
        result = await self.jobs.update_many(query, {"$set": {"status": JobStatus.CANCELLED}})
        return result.modified_count

    async def get(self, timer: str) -> Document | None:
        return await self.jobs.find_one({"_id": timer})

    async def cancel_one(self, timer: str) -> None:
        await self.jobs.update_one(
            {"_id": timer, "status": JobStatus.PENDING}, {"$set": {"status": JobStatus.CANCELLED}}
        )

    async def mark_fired(self, timer: str, fired_at: datetime, lag_s: float) -> bool:
        """False if the timer was cancelled while it fired.

        Read, then written by _id alone: the dev store runs only an exact _id
        filter in SQL and any other filter over the whole collection. A cancel
        landing between the two is caught by the caller's order (it scheduled
        the next supervision first, which that cancel also stops)."""
        doc = await self.jobs.find_one({"_id": timer}, {"status": 1})
        pending = doc is not None and doc["status"] == JobStatus.PENDING
        if pending:
            fired = {"status": JobStatus.FIRED, "fired_at": fired_at, "lag_s": lag_s}
            await self.jobs.update_one({"_id": timer}, {"$set": fired})
        self._settled([timer])
        return pending

    async def mark_fired_many(self, fired: dict[str, float], fired_at: datetime) -> set[str]:
        """Mark the timers (id -> lag) fired, one update command per
        MAX_PER_COMMAND, sent together; the ids marked. One that is no longer
        pending (cancelled while it fired) is left as it is."""
        done = {"status": JobStatus.FIRED, "fired_at": fired_at}
        chunks = in_commands(list(fired))
        marked = await asyncio.gather(*(self._mark_chunk(c, fired, done) for c in chunks))
        self._settled(list(fired))
        return set().union(*marked) if marked else set()

    def _settled(self, timers: list[str]) -> None:
        # A timer has one attempt (number 0). Once its mark is written (or it
        # was found cancelled), a copy a scan read before is stale: claim() and
        # claim_many() drop it without a claim and a read. Not before: a batch
        # whose marks fail runs each timer again.
        for timer in timers:
            self.moved_on(timer, 1)

    async def _mark_chunk(
        self, ids: list[str], fired: dict[str, float], done: Document
    ) -> set[str]:
        marks = [
            UpdateOne(
                {"_id": t, "status": JobStatus.PENDING}, {"$set": {**done, "lag_s": fired[t]}}
            )
            for t in ids
        ]
        result = await self.jobs.bulk_write(marks, ordered=False)
        if result.matched_count == len(ids):
            return set(ids)
        # Some were cancelled while they fired; the store says how many, not
        # which (rare): this process holds their claims, so a timer fired now
        # is one of these marks.
        stand = await asyncio.gather(*(self.jobs.find_one({"_id": t}, {"status": 1}) for t in ids))
        return {
            t for t, doc in zip(ids, stand, strict=True) if doc and doc["status"] == JobStatus.FIRED
        }

    async def pending_summary(self, now: datetime) -> tuple[dict[str, int], float]:
        """Pending timers per kind, and how long the oldest due one has waited:
        one read of the pending timers (the dev store scans for each query)."""
        counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        oldest: datetime | None = None
        cursor = self.jobs.find({"status": JobStatus.PENDING}, {"kind": 1, "due_at": 1, "_id": 0})
        async for doc in cursor:
            counts[doc["kind"]] = counts.get(doc["kind"], 0) + 1
            if doc["due_at"] <= now and (oldest is None or doc["due_at"] < oldest):
                oldest = doc["due_at"]
        return counts, (now - oldest).total_seconds() if oldest else 0.0

    async def standing(self, ticket_id: str) -> Document | None:
        """Where the notifier last learnt the ticket stands (by _id)."""
        return await self._tickets.find_one({"_id": ticket_id})

    async def for_ticket(self, ticket_id: str) -> list[Document]:
        cursor = self.jobs.find({"ticket_id": ticket_id}).sort("original_due_at", 1)
        return await cursor.to_list()

    async def accept_new(self, first: list[FirstEvent]) -> set[str]:
        """The tickets of `first` the notifier did not know, now recorded as
        accept_event records them, in one write; the others are left unchanged
        (accept_event applies their event)."""
        taken = await insert_new(self._tickets, [event.record() for event in first])
        return {event.ticket_id for i, event in enumerate(first) if i not in taken}

    async def accept_event(
        self,
        ticket_id: str,
        occurred_at: datetime,
        generation: str | None = None,
        standing: Document | None = None,
    ) -> TicketTimers | None:
        """None for an event older than one already applied to the ticket: a late
        redelivery must not cancel the timers a newer event set. An event that
        sets timers records its generation, which cancel() needs: the
        generations from before this event are returned for it. `standing`:
        where the event leaves the ticket (services.notifier.currency)."""
        doc = await self._tickets.find_one({"_id": ticket_id})
        if doc is not None and doc["last_at"] > occurred_at:
            return None
        update: dict[str, Any] = {"$set": {"last_at": occurred_at, **(standing or {})}}
        if doc is None:
            update["$set"]["generations"] = [generation] if generation else []
        elif generation is not None and "generations" in doc:
            update["$addToSet"] = {"generations": generation}
        # else a ticket from before generations were recorded: cancel() queries.
        await self._tickets.update_one({"_id": ticket_id}, update, upsert=True)
        if doc is None:
            return TicketTimers(ticket_id, [])
        generations = list(doc["generations"]) if "generations" in doc else None
        return TicketTimers(ticket_id, generations)


def timer_doc(ticket_id: str, generation: str, timer: Planned, context: Document) -> Document:
    """A new timer's record; `context` carries what firing it needs (department,
    deadlines, dims) and when it was set."""
    return {
        "_id": timer_id(ticket_id, generation, timer.kind, timer.seq),
        "ticket_id": ticket_id,
        "generation": generation,
        "kind": timer.kind,
        "seq": timer.seq,
        "due_at": timer.due_at,
        "original_due_at": timer.due_at,
        "status": JobStatus.PENDING,
        "attempt_no": 0,
        **context,
    }
