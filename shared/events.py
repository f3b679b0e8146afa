"""Versioned ticket events: the only messages the services exchange.

Every event is an envelope (event_id, event_type, schema_version, ticket_id,
occurred_at, actor) around a typed payload. The routing key is
``ticket.<event_type>``. A consumer that meets a schema_version it does not know
rejects the message to its dead-letter queue rather than guess.
"""

from __future__ import annotations

from datetime import UTC, datetime
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


TicketEvent = Annotated[
    TicketReceived | TicketResolvedOnSpot | TicketDispatched | TicketUnroutable,
    Field(discriminator="event_type"),
]
EVENT_ADAPTER: TypeAdapter[TicketEvent] = TypeAdapter(TicketEvent)
EVENT_TYPES: tuple[str, ...] = ("received", "resolved_on_spot", "dispatched", "unroutable")


def parse_event(body: bytes | str) -> TicketEvent:
    """Parse and validate one event; raises pydantic.ValidationError on bad input."""
    return EVENT_ADAPTER.validate_json(body)


def dump_event(event: Envelope) -> bytes:
    return event.model_dump_json().encode()
