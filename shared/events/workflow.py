"""Events of the departments' and citizens' steps after dispatch."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from shared.domain import Frozen, TicketDims
from shared.events.envelope import DepartmentStep, Envelope, Rating


class AcceptedPayload(DepartmentStep):
    # Accepted within the response limit (响应): the numerator of the response rate.
    responded_in_time: bool


class ReturnedPayload(DepartmentStep):
    reason: str = Field(min_length=1, max_length=2000)
    # Returned within the response limit: a response ("not ours"), counted in
    # the response rate as one, never as an ignored ticket.
    responded_in_time: bool = False


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


class ReopenCause(StrEnum):
    """Why a ticket was reopened (重办)."""

    # The citizen rated the result unsatisfied (回访): a rating, counted as one.
    RATING = "rating"
    # The citizen called again about the closed ticket and the centre's policy
    # reopens it (HOTLINE_REPEAT_OF_CLOSED=reopen): a repeat complaint, no rating.
    REPEAT_CALL = "repeat_call"


class ReopenedPayload(DepartmentStep):
    cause: ReopenCause = ReopenCause.RATING
    comment: str | None = None
    # A rating's reopening: whether the problem itself was solved still counts
    # for the resolution rate (the rating is always unsatisfied).
    solved: bool = False
    # How many times the ticket has been reopened, this time included, whatever the cause.
    reopen_count: int = Field(ge=1)
    # A reopened ticket gets a new time limit from the moment it reopens.
    deadline: AwareDatetime
    response_deadline: AwareDatetime


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
