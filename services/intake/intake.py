"""Turning a submission into a ticket: validate, number, store, publish, answer.

The answer (202) is given only after the broker confirmed the event. A failure
before that leaves an unpublished record that nothing counts; a retry with the
same Idempotency-Key publishes that same record, with the same event_id.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from services.intake.models import FeedbackSubmission, Receipt, TicketSubmission
from services.intake.repository import IntakeRecord, IntakeRepository
from shared.directory import Directory
from shared.domain import Actor, ActorKind, TicketDraft
from shared.events import (
    Envelope,
    FeedbackPayload,
    ReceivedPayload,
    ResolvedOnSpotPayload,
    TicketFeedback,
    TicketReceived,
    TicketResolvedOnSpot,
)
from shared.locks import KeyedLock
from shared.messaging.publisher import Publisher

logger = logging.getLogger(__name__)


class SubmissionError(ValueError):
    """A submission that is well-formed but names something unknown."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownTicket(LookupError):
    """No ticket with that number was accepted here."""


class IdempotencyConflict(ValueError):
    """The same Idempotency-Key came with a different request."""


@dataclass
class Intake:
    repo: IntakeRepository
    publisher: Publisher
    directory: Directory
    timezone: ZoneInfo
    clock: Callable[[], datetime]
    key_locks: KeyedLock = field(default_factory=KeyedLock)

    async def submit(self, submission: TicketSubmission, key: str | None) -> Receipt:
        if key is None:
            return await self._submit(submission, None)
        # Retries with one key are serialised in this process, so a retry that
        # arrives while the first attempt awaits the broker's confirm waits for it
        # instead of publishing the same event again. Across replicas a race can
        # still publish it twice, with the same event_id, which consumers apply once.
        async with self.key_locks.hold(key):
            return await self._submit(submission, key)

    async def _submit(self, submission: TicketSubmission, key: str | None) -> Receipt:
        draft = self._draft(submission)
        request_hash = _hash(submission)
        if key is not None:
            bound = await self.repo.find_key(key)
            if bound is not None:
                return await self._replay(key, request_hash, bound)
        now = self.clock()
        record = await self.repo.insert_new(
            now.astimezone(self.timezone).date(),
            lambda ticket_id: _event(ticket_id, draft, submission, now),
            now,
            key,
        )
        if key is not None:
            earlier = await self.repo.claim_key(key, request_hash, record.ticket_id, now)
            if earlier is not None:  # a concurrent retry with the same key won
                await self.repo.mark_abandoned(record.ticket_id)
                return await self._replay(key, request_hash, earlier)
        await self._publish(record)
        return _receipt(record, replayed=False)

    async def feedback(self, ticket_id: str, submission: FeedbackSubmission) -> None:
        """Publish the citizen's rating for the router (close or reopen) and stats."""
        record = await self.repo.get(ticket_id)
        if record is None or not record.published:
            raise UnknownTicket(ticket_id)
        if not isinstance(record.event, TicketReceived):
            raise SubmissionError("ticket", f"{ticket_id} was answered on the spot")
        actor = (
            Actor(kind=ActorKind.AGENT, id=submission.agent_id)
            if submission.agent_id
            else Actor(kind=ActorKind.CITIZEN, id="feedback")
        )
        await self.publisher.publish(
            TicketFeedback(
                ticket_id=ticket_id,
                occurred_at=self.clock(),
                actor=actor,
                payload=FeedbackPayload(
                    dims=record.event.dims(),
                    rating=submission.rating,
                    solved=submission.solved,
                    comment=submission.comment,
                ),
            )
        )

    async def _replay(self, key: str, request_hash: str, bound: tuple[str, str]) -> Receipt:
        bound_hash, ticket_id = bound
        if bound_hash != request_hash:
            raise IdempotencyConflict(f"Idempotency-Key {key!r} was used for another request")
        record = await self.repo.get(ticket_id)
        if record is None:
            raise RuntimeError(f"idempotency key {key!r} points at missing {ticket_id}")
        if not record.published:
            await self._publish(record)
        return _receipt(record, replayed=True)

    async def _publish(self, record: IntakeRecord) -> None:
        await self.publisher.publish(record.event)
        await self.repo.mark_published(record.ticket_id)
        logger.info("ticket %s %s", record.ticket_id, record.event.event_type)

    def _draft(self, submission: TicketSubmission) -> TicketDraft:
        district = self.directory.district(submission.district)
        if district is None:
            raise SubmissionError("district", f"unknown district {submission.district!r}")
        return TicketDraft(
            channel=submission.channel,
            district=district.id,
            town=submission.town,
            category=submission.category,
            priority=submission.priority,
            text=submission.text,
            citizen=submission.citizen,
            location=submission.location,
            external_id=submission.id,
        )


def _event(
    ticket_id: str, draft: TicketDraft, submission: TicketSubmission, now: datetime
) -> Envelope:
    actor = Actor(kind=ActorKind.CITIZEN, id=f"channel:{draft.channel}")
    if submission.on_spot_answer is not None:
        return TicketResolvedOnSpot(
            ticket_id=ticket_id,
            occurred_at=now,
            actor=Actor(kind=ActorKind.AGENT, id=f"channel:{draft.channel}"),
            payload=ResolvedOnSpotPayload(ticket=draft, answer=submission.on_spot_answer),
        )
    return TicketReceived(
        ticket_id=ticket_id, occurred_at=now, actor=actor, payload=ReceivedPayload(ticket=draft)
    )


def _hash(submission: TicketSubmission) -> str:
    canonical = json.dumps(submission.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _receipt(record: IntakeRecord, replayed: bool) -> Receipt:
    return Receipt(ticket_id=record.ticket_id, status=record.event.event_type, replayed=replayed)
