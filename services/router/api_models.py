"""Bodies of the router's HTTP API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.router.workflow.state import Reopening, ReturnRecord, Status, TicketState
from shared.events import DecidedBy, Suggestion
from shared.logmask import mask_phones
from shared.privacy import Contact, contact_of


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReturnBody(Body):
    reason: str = Field(min_length=2, max_length=2000, description="why it is not yours")


class ExtensionBody(Body):
    days: int = Field(ge=1, le=10, description="working days more")
    reason: str = Field(min_length=2, max_length=2000)


class ExtensionDecisionBody(Body):
    approve: bool
    note: str = Field(default="", max_length=2000)


class ResolveBody(Body):
    reply: str = Field(min_length=2, max_length=4000, description="the answer to the citizen")


class SubDispatchBody(Body):
    department: str = Field(min_length=1, max_length=100, description="one of your units")


class DispatchBody(Body):
    department: str = Field(min_length=1, max_length=100)
    co_departments: list[str] = Field(default_factory=list, max_length=10)
    time_limit: str | None = Field(default=None, max_length=50)


class ExplanationBody(Body):
    text: str = Field(min_length=2, max_length=4000)


# Bookkeeping of the state a reader has no use for (applied event ids, versions).
HIDDEN_STATE = {"draft", "version", "feedback_ids", "repeat_calls", "handlers"}


class TicketView(BaseModel):
    ticket_id: str
    status: Status
    department: str | None
    co_departments: list[str]
    round: int
    returned_by: list[str]
    returns: list[ReturnRecord] = Field(
        default=[], description="every return (退单): the department, its reason and when"
    )
    extension_requests: int = Field(
        default=0, description="extension requests in this dispatch, refused ones included"
    )
    time_limit: str
    dispatched_at: datetime | None
    deadline: datetime | None
    response_deadline: datetime | None
    accepted_at: datetime | None
    pending_extension_days: int | None
    extensions_granted: int
    resolved_at: datetime | None
    reply: str | None
    reopen_count: int = Field(
        description="reopenings by the citizen's unsatisfied rating (each asks for the "
        "written explanation, 一单一报)"
    )
    reopens: list[Reopening] = Field(
        default=[],
        description="every reopening (重办) in order: its cause (rating: the citizen was "
        "unsatisfied; repeat_call: the caller called again about the closed ticket), "
        "when, and the department it went back to (null: dispatched anew)",
    )
    explanation: str | None
    decided_by: DecidedBy | None
    probability: float | None
    # In the manual queue: the best three departments the lists and the model name.
    candidates: list[Suggestion]
    closed_at: datetime | None
    district: str
    category: str
    priority: str
    text: str
    contact: Contact = Field(
        description="the citizen's contact: in full for staff, agents and the lead "
        "department while the ticket is in its hands; masked for everyone else"
    )

    @classmethod
    def of(cls, state: TicketState, with_contact: bool) -> TicketView:
        data = state.model_dump(exclude=HIDDEN_STATE)
        contact = contact_of(state.draft.model_dump(mode="json"))
        if not with_contact:  # a reason may quote the citizen's number
            data["returns"] = [{**r, "reason": mask_phones(r["reason"])} for r in data["returns"]]
        return cls(
            **data,
            district=state.draft.district,
            category=state.draft.category.value,
            text=state.draft.text if with_contact else mask_phones(state.draft.text),
            contact=contact if with_contact else contact.masked(),
        )


class Refusal(BaseModel):
    code: str
    message: str
