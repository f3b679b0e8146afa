"""Citizens' ratings the workflow could not take, kept for hotline staff.

Intake refuses a rating of a ticket that is not waiting for one (409), but it
decides on its own projection, which can be a moment behind the router: a
second rating racing the first, or a rating arriving just after a reopening.
Such a rating is a citizen's word about a real ticket, not a poison message:
it is recorded here, counted and listed to staff, instead of vanishing into a
dead-letter queue that only an operator reads.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.router.api import Who
from services.router.metrics import FEEDBACK_REFUSED
from services.router.workflow.context import require_staff
from shared.events import TicketFeedback
from shared.mongo import Document
from shared.params import Offset

logger = logging.getLogger(__name__)


class RefusedFeedback(BaseModel):
    event_id: str
    ticket_id: str
    received_at: datetime
    recorded_at: datetime
    rating: str
    solved: bool
    comment: str | None
    code: str
    reason: str


class RefusedFeedbackRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._docs = db["refused_feedback"]

    async def ensure_indexes(self) -> None:
        await self._docs.create_index([("recorded_at", -1)])

    async def record(self, event: TicketFeedback, code: str, reason: str, now: datetime) -> None:
        """Once per event: a redelivered rating is recorded and counted once."""
        doc = RefusedFeedback(
            event_id=str(event.event_id),
            ticket_id=event.ticket_id,
            received_at=event.occurred_at,
            recorded_at=now,
            rating=event.payload.rating.value,
            solved=event.payload.solved,
            comment=event.payload.comment,
            code=code,
            reason=reason,
        ).model_dump()
        try:
            await self._docs.insert_one({"_id": doc["event_id"], **doc})
        except DuplicateKeyError:
            return
        FEEDBACK_REFUSED.labels(code).inc()
        logger.warning("rating of ticket %s refused (%s): kept for staff", event.ticket_id, code)

    async def list(self, query: dict[str, Any], limit: int, offset: int) -> list[RefusedFeedback]:
        cursor = self._docs.find(query).sort("recorded_at", -1).skip(offset).limit(limit)
        return [RefusedFeedback.model_validate(doc) for doc in await cursor.to_list()]


def build_refused_routes(repo: RefusedFeedbackRepository) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["workflow"])

    @router.get("/feedback/refused")
    async def refused_feedback(
        principal: Who,
        ticket_id: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Offset = 0,
    ) -> list[RefusedFeedback]:
        """Ratings the workflow could not take (the ticket was no longer waiting
        for one when the router saw it), newest first. Staff only."""
        require_staff(principal)
        return await repo.list({"ticket_id": ticket_id} if ticket_id else {}, limit, offset)

    return router
