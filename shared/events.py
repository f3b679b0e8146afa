"""Versioned ticket events: the only messages the services exchange.

Every event is an envelope (event_id, event_type, schema_version, ticket_id,
occurred_at, actor) around a typed payload. The routing key is
``ticket.<event_type>``. A consumer that meets a schema_version it does not know
rejects the message to its dead-letter queue rather than guess.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, Field, TypeAdapter

from shared.domain import Actor, Frozen, TicketDims, TicketDraft

SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(Frozen):
    event_id: UUID = Field(default_factory=uuid4)
    schema_version: Literal[1] = 1
    ticket_id: str = Field(min_length=1, max_length=64)
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    actor: Actor

    @property
    def routing_key(self) -> str:
        return f"ticket.{self.event_type}"

    # Overridden by each event as a Literal field; declared here for typing.
    event_type: str

    def dims(self) -> TicketDims:
        raise NotImplementedError


class ReceivedPayload(Frozen):
    ticket: TicketDraft


class TicketReceived(Envelope):
    event_type: Literal["received"] = "received"
    payload: ReceivedPayload

    def dims(self) -> TicketDims:
        return TicketDims.of(self.payload.ticket)


class ResolvedOnSpotPayload(Frozen):
    ticket: TicketDraft
    answer: str = Field(min_length=1, max_length=4000)


class TicketResolvedOnSpot(Envelope):
    event_type: Literal["resolved_on_spot"] = "resolved_on_spot"
    payload: ResolvedOnSpotPayload

    def dims(self) -> TicketDims:
        return TicketDims.of(self.payload.ticket)


class DispatchedPayload(Frozen):
    dims: TicketDims
    # The request itself travels with the dispatch: the department acts on it.
    ticket: TicketDraft
    department: str
    co_departments: tuple[str, ...] = ()
    rule: str
    time_limit: str
    deadline: AwareDatetime
    response_deadline: AwareDatetime
    # 1 for the first dispatch, 2 after one return, ...
    round: int = Field(default=1, ge=1)
    # How the department was chosen: by the rules, by a person at the hotline
    # centre, or by a county sub-centre passing the ticket to one of its units.
    via: Literal["rules", "manual", "sub_dispatch"] = "rules"
    previous_department: str | None = None


class TicketDispatched(Envelope):
    event_type: Literal["dispatched"] = "dispatched"
    payload: DispatchedPayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class UnroutablePayload(Frozen):
    dims: TicketDims
    reason: str
    rule: str | None = None


class TicketUnroutable(Envelope):
    event_type: Literal["unroutable"] = "unroutable"
    payload: UnroutablePayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class Rating(StrEnum):
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    UNSATISFIED = "unsatisfied"


class DepartmentStep(Frozen):
    """What every step a department takes carries: the ticket's dimensions and
    the department that took it."""

    dims: TicketDims
    department: str


class AcceptedPayload(DepartmentStep):
    # Accepted within the response limit (响应): the numerator of the response rate.
    responded_in_time: bool


class ReturnedPayload(DepartmentStep):
    reason: str = Field(min_length=1, max_length=2000)


class ExtensionRequestedPayload(DepartmentStep):
    days: int = Field(ge=1, le=10)
    reason: str = Field(min_length=1, max_length=2000)


class ExtendedPayload(DepartmentStep):
    days: int = Field(ge=1, le=10)
    deadline: AwareDatetime
    note: str | None = None


class ExtensionRefusedPayload(DepartmentStep):
    reason: str = Field(min_length=1, max_length=2000)


class ResolvedPayload(DepartmentStep):
    reply: str = Field(min_length=1, max_length=4000)
    on_time: bool
    deadline: AwareDatetime
    dispatched_at: AwareDatetime


class FeedbackPayload(Frozen):
    """The citizen's rating (回访), collected by intake from an agent or an SMS."""

    dims: TicketDims
    rating: Rating
    # Whether the problem itself was solved: the resolution rate (解决率).
    solved: bool
    comment: str | None = Field(default=None, max_length=2000)


class ClosedPayload(DepartmentStep):
    rating: Rating
    solved: bool
    explained: bool = False


class ReopenedPayload(DepartmentStep):
    comment: str | None = None
    reopen_count: int = Field(ge=1)


class ExplanationPayload(DepartmentStep):
    text: str = Field(min_length=1, max_length=4000)


class TicketAccepted(Envelope):
    event_type: Literal["accepted"] = "accepted"
    payload: AcceptedPayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class TicketReturned(Envelope):
    event_type: Literal["returned"] = "returned"
    payload: ReturnedPayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class TicketExtensionRequested(Envelope):
    event_type: Literal["extension_requested"] = "extension_requested"
    payload: ExtensionRequestedPayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class TicketExtended(Envelope):
    event_type: Literal["extended"] = "extended"
    payload: ExtendedPayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class TicketExtensionRefused(Envelope):
    event_type: Literal["extension_refused"] = "extension_refused"
    payload: ExtensionRefusedPayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class TicketResolved(Envelope):
    event_type: Literal["resolved"] = "resolved"
    payload: ResolvedPayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class TicketFeedback(Envelope):
    event_type: Literal["feedback"] = "feedback"
    payload: FeedbackPayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class TicketClosed(Envelope):
    event_type: Literal["closed"] = "closed"
    payload: ClosedPayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class TicketReopened(Envelope):
    event_type: Literal["reopened"] = "reopened"
    payload: ReopenedPayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class TicketExplained(Envelope):
    event_type: Literal["explained"] = "explained"
    payload: ExplanationPayload

    def dims(self) -> TicketDims:
        return self.payload.dims


TicketEvent = Annotated[
    TicketReceived
    | TicketResolvedOnSpot
    | TicketDispatched
    | TicketUnroutable
    | TicketAccepted
    | TicketReturned
    | TicketExtensionRequested
    | TicketExtended
    | TicketExtensionRefused
    | TicketResolved
    | TicketFeedback
    | TicketClosed
    | TicketReopened
    | TicketExplained,
    Field(discriminator="event_type"),
]
EVENT_ADAPTER: TypeAdapter[TicketEvent] = TypeAdapter(TicketEvent)
EVENT_TYPES: tuple[str, ...] = (
    "received",
    "resolved_on_spot",
    "dispatched",
    "unroutable",
    "accepted",
    "returned",
    "extension_requested",
    "extended",
    "extension_refused",
    "resolved",
    "feedback",
    "closed",
    "reopened",
    "explained",
)


def parse_event(body: bytes | str) -> TicketEvent:
    """Parse and validate one event; raises pydantic.ValidationError on bad input."""
    return EVENT_ADAPTER.validate_json(body)


def dump_event(event: Envelope) -> bytes:
    return event.model_dump_json().encode()
