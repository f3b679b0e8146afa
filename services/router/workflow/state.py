"""A ticket's workflow state as the router keeps it, and the errors of refused actions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from shared.domain import ActorKind, Priority, TicketDims, TicketDraft
from shared.events import DecidedBy, ReopenCause, Suggestion


class Status(StrEnum):
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    EXTENSION_REQUESTED = "extension_requested"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CLOSED = "closed"
    # Waiting in the hotline centre's manual dispatch queue.
    UNROUTABLE = "unroutable"


class ReturnRecord(BaseModel):
    """One return (退单): who, why and when, shown in the ticket's view."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    department: str
    reason: str
    at: datetime


class Reopening(BaseModel):
    """One reopening (重办): why, when, and the department it went back to
    (None: it had none to go back to and was dispatched anew)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cause: ReopenCause
    at: datetime
    department: str | None


class TicketState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_id: str
    status: Status
    draft: TicketDraft
    priority: Priority
    department: str | None = None
    co_departments: tuple[str, ...] = ()
    round: int = 0
    returned_by: tuple[str, ...] = ()
    returns: tuple[ReturnRecord, ...] = ()
    # Every unit the ticket was dispatched to (lead or co-handler) and every county
    # sub-centre that passed it on (转派): who may read it from then on.
    handlers: tuple[str, ...] = ()
    time_limit: str = ""
    # The rule's response limit of the current dispatch; None: the default.
    response_limit: str | None = None
    dispatched_at: datetime | None = None
    deadline: datetime | None = None
    response_deadline: datetime | None = None
    accepted_at: datetime | None = None
    pending_extension_days: int | None = None
    extensions_granted: int = 0
    # Extension requests in this dispatch, refused ones included (docs/DOMAIN.md §3).
    extension_requests: int = 0
    resolved_at: datetime | None = None
    reply: str | None = None
    # Reopenings by the citizen's unsatisfied rating: bounded by the policy's
    # max_reopens, and each asks for the written explanation (一单一报).
    reopen_count: int = 0
    # Every reopening, by a rating or by a repeat call, in order.
    reopens: tuple[Reopening, ...] = ()
    explanation: str | None = None
    # What chose the department (a model's probability with it), and what the
    # lists and the model suggest while it waits in the manual queue.
    decided_by: DecidedBy | None = None
    probability: float | None = None
    candidates: tuple[Suggestion, ...] = ()
    closed_at: datetime | None = None
    # Feedback events applied, so a redelivered rating changes nothing.
    feedback_ids: tuple[str, ...] = ()
    # Repeat calls (linked events) applied, so a redelivered one reopens once.
    repeat_calls: tuple[str, ...] = ()
    version: int = 0

    @property
    def dims(self) -> TicketDims:
        return TicketDims.of(self.draft).model_copy(update={"priority": self.priority})

    @property
    def reopenings(self) -> int:
        """Times reopened, whatever the cause (reopen_count counts ratings only)."""
        by_calls = sum(1 for r in self.reopens if r.cause == ReopenCause.REPEAT_CALL)
        return self.reopen_count + by_calls

    def lead(self) -> str:
        if self.department is None:
            raise WorkflowError("NOT_DISPATCHED", "the ticket has no department yet", 409)
        return self.department


class Principal(BaseModel):
    """Who acts: a department (by its directory id) or a hotline staff member."""

    model_config = ConfigDict(frozen=True)

    kind: ActorKind
    id: str


class WorkflowError(Exception):
    """A refused action: a machine-readable code, a message for people, and the
    HTTP status it maps to (403 not yours, 404 unknown, 409 illegal now, 422 bad
    input)."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def illegal(action: str, state: TicketState) -> WorkflowError:
    return WorkflowError(
        "ILLEGAL_TRANSITION", f"cannot {action} a ticket that is {state.status.value}", 409
    )
