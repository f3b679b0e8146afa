"""Turning a request from any channel into a ticket: validate, link or number,
store, publish, answer.

The answer (202) is given only after the broker confirmed the event. A failure
before that leaves an unpublished record that nothing counts; a retry with the
same Idempotency-Key publishes that same record, with the same event_id.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from services.intake.duplicates import Earlier
from services.intake.metrics import SUBMISSIONS
from services.intake.models import Receipt, TicketSubmission
from services.intake.ports import CallerStore, HotspotStore, IntakeStore, StatusReader
from services.intake.repository import IntakeRecord, KeyBinding, RecordMeta
from services.intake.textparse import caller_key
from shared.directory import Directory, District
from shared.domain import Actor, ActorKind, TicketDraft
from shared.events import (
    Envelope,
    FeedbackPayload,
    LinkedPayload,
    Rating,
    ReceivedPayload,
    ResolvedOnSpotPayload,
    TicketFeedback,
    TicketLinked,
    TicketReceived,
    TicketResolvedOnSpot,
)
from shared.events.catalogue import CLOSED_STATUSES
from shared.locks import KeyedLock
from shared.messaging.ports import EventPublisher
from shared.settings import RepeatOfClosed

logger = logging.getLogger(__name__)


class SubmissionError(ValueError):
    """A submission that is well-formed but names something unknown."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownTicket(LookupError):
    """No ticket with that number was accepted here."""


class FeedbackNotExpected(Exception):
    """A rating of a ticket that is not waiting for one (409)."""


class IdempotencyConflict(ValueError):
    """The same Idempotency-Key (or a seat's call_id) came with a different request."""

    def __init__(self, key: str) -> None:
        self.key_name = "call_id" if key.startswith(CALL_KEY_PREFIX) else "Idempotency-Key"
        given = key.removeprefix(CALL_KEY_PREFIX)
        super().__init__(f"{self.key_name} {given!r} was used for another request")


# The idempotency key of a call a seat records: its call_id (services.intake.channels.agent).
CALL_KEY_PREFIX = "agent-call:"


@dataclass(frozen=True)
class Submission:
    """What every channel hands the core: the common draft and how it came."""

    draft: TicketDraft
    actor: Actor
    # Identifies the request for its Idempotency-Key: same key, same fingerprint.
    fingerprint: str
    on_spot_answer: str | None = None
    # Identifies the caller for duplicates when there is no phone number.
    email: str | None = None
    # Channel-specific facts kept with the record (e.g. an Open311 service code).
    extra: Mapping[str, Any] = field(default_factory=dict)


def fingerprint(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Intake:
    repo: IntakeStore
    publisher: EventPublisher
    directory: Directory
    timezone: ZoneInfo
    clock: Callable[[], datetime]
    callers: CallerStore
    hotspots: HotspotStore
    status: StatusReader
    # What a repeat of the caller's closed ticket does (HOTLINE_REPEAT_OF_CLOSED).
    repeat_of_closed: RepeatOfClosed = "new"
    key_locks: KeyedLock = field(default_factory=KeyedLock)
    caller_locks: KeyedLock = field(default_factory=KeyedLock)

    async def submit(self, submission: TicketSubmission, key: str | None) -> Receipt:
        """The web/app JSON channel's submission."""
        draft = self.draft_of(submission)
        on_spot = submission.on_spot_answer is not None
        kind = ActorKind.AGENT if on_spot else ActorKind.CITIZEN
        return await self.accept(
            Submission(
                draft=draft,
                actor=Actor(kind=kind, id=f"channel:{draft.channel}"),
                fingerprint=fingerprint(submission.model_dump(mode="json")),
                on_spot_answer=submission.on_spot_answer,
            ),
            key,
        )

    async def accept(self, submission: Submission, key: str | None) -> Receipt:
        if key is None:
            return await self._accept(submission, None)
        # Retries with one key are serialised in this process, so a retry that
        # arrives while the first attempt awaits the broker's confirm waits for it
        # instead of publishing the same event again. Across replicas a race can
        # still publish it twice, with the same event_id, which consumers apply once.
        async with self.key_locks.hold(key):
            return await self._accept(submission, key)

    async def _accept(self, submission: Submission, key: str | None) -> Receipt:
        if key is not None:
            bound = await self.repo.find_key(key)
            if bound is not None:
                return await self._replay(key, submission.fingerprint, bound)
        citizen = submission.draft.citizen
        caller = caller_key(citizen.phone if citizen else None, submission.email)
        if caller is None or submission.on_spot_answer is not None:
            return await self._open(submission, key, caller)
        # One caller at a time: the check and the remembering of a new ticket must
        # not interleave, or two quick identical calls would both open tickets.
        async with self.caller_locks.hold(caller):
            similar = await self.callers.find(caller, submission.draft.text, self.clock())
            for earlier in similar:
                if await self._still_open(earlier.ticket_id):
                    return await self._link(submission, key, earlier)
            # A repeat of a closed matter is not lost in a closed ticket: the
            # router reopens it (重办) where the centre's policy says so, else a
            # new ticket records the earlier; a repeat complaint either way.
            if similar and self.repeat_of_closed == "reopen":
                return await self._link(submission, key, similar[0], reopen=True)
            related = similar[0].ticket_id if similar else None
            return await self._open(submission, key, caller, related)

    async def _still_open(self, ticket_id: str) -> bool:
        progress = await self.status.get(ticket_id)
        status = progress.status if progress is not None else None
        return status not in CLOSED_STATUSES

    async def _open(
        self,
        submission: Submission,
        key: str | None,
        caller: str | None,
        related_to: str | None = None,
    ) -> Receipt:
        now = self.clock()
        record = await self.repo.insert_new(
            now.astimezone(self.timezone).date(),
            lambda ticket_id: _event(ticket_id, submission, now, related_to),
            now,
            RecordMeta(submission.draft.channel.value, key, dict(submission.extra)),
        )
        if key is not None:
            earlier = await self.repo.claim_key(
                key, KeyBinding(submission.fingerprint, record.ticket_id, False), now
            )
            if earlier is not None:  # a concurrent retry with the same key won
                await self.repo.mark_abandoned(record.ticket_id)
                return await self._replay(key, submission.fingerprint, earlier)
        note = partial(self._note, record, submission, caller or f"ticket:{record.ticket_id}", now)
        await self._publish(record, note)
        return _receipt(record, replayed=False)

    async def _note(
        self, record: IntakeRecord, submission: Submission, caller: str, now: datetime
    ) -> None:
        """Remember a published ticket for duplicates and hotspots. The ticket is
        already on its way: a store failure here must not turn its 202 into an error."""
        if submission.on_spot_answer is not None:
            return
        draft = submission.draft
        try:
            if not caller.startswith("ticket:"):
                await self.callers.remember(caller, record.ticket_id, draft.text, now)
            await self.hotspots.add(draft, record.ticket_id, caller, now)
        except Exception as exc:
            logger.warning("ticket %s not indexed for duplicates: %r", record.ticket_id, exc)

    async def _link(
        self, submission: Submission, key: str | None, earlier: Earlier, reopen: bool = False
    ) -> Receipt:
        payload = LinkedPayload(
            ticket=submission.draft, similarity=round(earlier.similarity, 1), reopen=reopen
        )
        link = TicketLinked(
            event_id=_link_id(key),
            ticket_id=earlier.ticket_id,
            occurred_at=self.clock(),
            actor=submission.actor,
            payload=payload,
        )
        await self.callers.record_link(link)
        if key is not None:
            binding = KeyBinding(submission.fingerprint, earlier.ticket_id, True)
            bound = await self.repo.claim_key(key, binding, link.occurred_at)
            if bound is not None:
                return await self._replay(key, submission.fingerprint, bound)
        await self._publish_link(link)
        logger.info(
            "request %s %s (similarity %.0f)", _outcome(reopen), link.ticket_id, earlier.similarity
        )
        return _link_receipt(link.ticket_id, reopen, replayed=False)

    async def _publish_link(self, link: TicketLinked) -> None:
        await self.publisher.publish(link)
        await self.callers.mark_link_published(str(link.event_id))
        SUBMISSIONS.labels(link.payload.ticket.channel.value, _outcome(link.payload.reopen)).inc()

    async def feedback(
        self,
        ticket_id: str,
        rating: Rating,
        solved: bool,
        comment: str | None,
        actor: Actor,
    ) -> None:
        """Publish the citizen's rating for the router (close or reopen) and stats."""
        record = await self.repo.get(ticket_id)
        if record is None or not record.published:
            raise UnknownTicket(ticket_id)
        if not isinstance(record.event, TicketReceived):
            raise SubmissionError("ticket", f"{ticket_id} was answered on the spot")
        await self._expects_feedback(ticket_id)
        payload = FeedbackPayload(
            dims=record.event.dims(), rating=rating, solved=solved, comment=comment
        )
        await self.publisher.publish(
            TicketFeedback(
                ticket_id=ticket_id, occurred_at=self.clock(), actor=actor, payload=payload
            )
        )

    async def _expects_feedback(self, ticket_id: str) -> None:
        """Refuse, from the status intake knows, a rating the router would have to
        refuse: one that is accepted and then lost helps no citizen."""
        progress = await self.status.get(ticket_id)
        status = progress.status if progress is not None else None
        if status == "resolved":
            return
        if status == "closed":
            raise FeedbackNotExpected(f"ticket {ticket_id} was rated already and is closed")
        raise FeedbackNotExpected(
            f"ticket {ticket_id} is still being handled ({status or 'received'}); "
            "it can be rated once the department has replied"
        )

    async def _replay(self, key: str, request_hash: str, bound: KeyBinding) -> Receipt:
        if bound.fingerprint != request_hash:
            raise IdempotencyConflict(key)
        if bound.linked:
            return await self._replay_link(key, bound.ticket_id)
        record = await self.repo.get(bound.ticket_id)
        if record is None:
            raise RuntimeError(f"idempotency key {key!r} points at missing {bound.ticket_id}")
        if not record.published:
            await self._publish(record)
        return _receipt(record, replayed=True)

    async def _replay_link(self, key: str, ticket_id: str) -> Receipt:
        link_id = str(_link_id(key))
        # Its event may not have gone out (the broker failed, the process died).
        link = await self.callers.unpublished_link(link_id)
        if link is not None:
            await self._publish_link(link)
        link = link or await self.callers.stored_link(link_id)
        reopen = link is not None and link.payload.reopen
        return _link_receipt(ticket_id, reopen, replayed=True)

    async def _publish(
        self, record: IntakeRecord, note: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Publish, then mark the record published; the indexing (`note`) is
        sent beside the mark, so both ride in one group of writes."""
        await self.publisher.publish(record.event)
        marking = self.repo.mark_published(record.ticket_id)
        await (asyncio.gather(marking, note()) if note is not None else marking)
        SUBMISSIONS.labels(record.channel, record.event.event_type).inc()
        logger.info("ticket %s %s", record.ticket_id, record.event.event_type)

    def draft_of(self, submission: TicketSubmission) -> TicketDraft:
        district = self.directory.district(submission.district)
        if district is None:
            raise SubmissionError("district", f"unknown district {submission.district!r}")
        _check_town(district, submission.town)
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


def _check_town(district: District, town: str | None) -> None:
    """A town the directory does not list for the district is refused, with the
    ones it lists; a district listed without towns takes any, with a warning in
    the log (the dispatch then goes by the district alone)."""
    if not town:
        return
    if not district.towns:
        logger.warning("district %s lists no towns: town %r taken as given", district.id, town)
        return
    if town not in district.towns:
        raise SubmissionError(
            "town", f"{district.name} has no town {town!r}; its towns: {'、'.join(district.towns)}"
        )


LINK_IDS = uuid.UUID("5b0f5d3e-8a61-4c1e-9d1a-2f6c0e7b9a44")


def _link_id(key: str | None) -> uuid.UUID:
    """The linked event's id: one per Idempotency-Key, so every retry of a
    request publishes the same event, which stats counts once."""
    return uuid.uuid5(LINK_IDS, key) if key is not None else uuid.uuid4()


def _event(
    ticket_id: str, submission: Submission, now: datetime, related_to: str | None = None
) -> Envelope:
    draft = submission.draft
    if submission.on_spot_answer is not None:
        return TicketResolvedOnSpot(
            ticket_id=ticket_id,
            occurred_at=now,
            actor=submission.actor,
            payload=ResolvedOnSpotPayload(ticket=draft, answer=submission.on_spot_answer),
        )
    return TicketReceived(
        ticket_id=ticket_id,
        occurred_at=now,
        actor=submission.actor,
        payload=ReceivedPayload(ticket=draft, related_to=related_to),
    )


def _outcome(reopen: bool) -> str:
    """linked (并单 to an open ticket) or reopened (重办 of a closed one)."""
    return "reopened" if reopen else "linked"


def _link_receipt(ticket_id: str, reopen: bool, replayed: bool) -> Receipt:
    status = _outcome(reopen)
    return Receipt(ticket_id=ticket_id, status=status, duplicate_of=ticket_id, replayed=replayed)


def _receipt(record: IntakeRecord, replayed: bool) -> Receipt:
    event = record.event
    related = event.payload.related_to if isinstance(event, TicketReceived) else None
    return Receipt(
        ticket_id=record.ticket_id, status=event.event_type, replayed=replayed, related_to=related
    )
