"""Versioned ticket events: the only messages the services exchange.

Every event is an envelope (event_id, event_type, schema_version, ticket_id,
occurred_at, actor) around a typed payload. The routing key is
``ticket.<event_type>``. A consumer that meets a schema_version it does not know
rejects the message to its dead-letter queue rather than guess.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter

from shared.events.catalogue import EVENT_TYPES
from shared.events.envelope import (
    SCHEMA_VERSION,
    DepartmentStep,
    Envelope,
    Rating,
    utcnow,
)
from shared.events.routing import (
    DecidedBy,
    DispatchedPayload,
    LinkedPayload,
    ReceivedPayload,
    ResolvedOnSpotPayload,
    Suggestion,
    TicketDispatched,
    TicketLinked,
    TicketReceived,
    TicketResolvedOnSpot,
    TicketUnroutable,
    UnroutablePayload,
)
from shared.events.timers import (
    OverduePayload,
    SupervisedPayload,
    TicketOverdue,
    TicketSupervised,
    TicketUrged,
    TicketWarning,
    UrgedPayload,
    WarningPayload,
)
from shared.events.workflow import (
    AcceptedPayload,
    ClosedPayload,
    ExplanationPayload,
    ExtendedPayload,
    ExtensionRefusedPayload,
    ExtensionRequestedPayload,
    FeedbackPayload,
    ReopenCause,
    ReopenedPayload,
    ResolvedPayload,
    ReturnedPayload,
    TicketAccepted,
    TicketClosed,
    TicketExplained,
    TicketExtended,
    TicketExtensionRefused,
    TicketExtensionRequested,
    TicketFeedback,
    TicketReopened,
    TicketResolved,
    TicketReturned,
)

TicketEvent = Annotated[
    TicketReceived
    | TicketResolvedOnSpot
    | TicketLinked
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
    | TicketExplained
    | TicketUrged
    | TicketWarning
    | TicketOverdue
    | TicketSupervised,
    Field(discriminator="event_type"),
]
EVENT_ADAPTER: TypeAdapter[TicketEvent] = TypeAdapter(TicketEvent)


def parse_event(body: bytes | str) -> TicketEvent:
    """Parse and validate one event; raises pydantic.ValidationError on bad input."""
    return EVENT_ADAPTER.validate_json(body)


def dump_event(event: Envelope) -> bytes:
    return event.model_dump_json().encode()


__all__ = [
    "EVENT_ADAPTER",
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "AcceptedPayload",
    "ClosedPayload",
    "DecidedBy",
    "DepartmentStep",
    "DispatchedPayload",
    "Envelope",
    "ExplanationPayload",
    "ExtendedPayload",
    "ExtensionRefusedPayload",
    "ExtensionRequestedPayload",
    "FeedbackPayload",
    "LinkedPayload",
    "OverduePayload",
    "Rating",
    "ReceivedPayload",
    "ReopenCause",
    "ReopenedPayload",
    "ResolvedOnSpotPayload",
    "ResolvedPayload",
    "ReturnedPayload",
    "Suggestion",
    "SupervisedPayload",
    "TicketAccepted",
    "TicketClosed",
    "TicketDispatched",
    "TicketEvent",
    "TicketExplained",
    "TicketExtended",
    "TicketExtensionRefused",
    "TicketExtensionRequested",
    "TicketFeedback",
    "TicketLinked",
    "TicketOverdue",
    "TicketReceived",
    "TicketReopened",
    "TicketResolved",
    "TicketResolvedOnSpot",
    "TicketReturned",
    "TicketSupervised",
    "TicketUnroutable",
    "TicketUrged",
    "TicketWarning",
    "UnroutablePayload",
    "UrgedPayload",
    "WarningPayload",
    "dump_event",
    "parse_event",
    "utcnow",
]
