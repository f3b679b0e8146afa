"""The envelope every ticket event shares, and the parts of payloads many share."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, Field

from shared.domain import Actor, Frozen, TicketDims

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


class Rating(StrEnum):
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    UNSATISFIED = "unsatisfied"


class DepartmentStep(Frozen):
    """What every step a department takes carries: the ticket's dimensions and
    the department that took it."""

    dims: TicketDims
    department: str
