"""Events of a ticket's arrival and dispatch."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from shared.domain import Frozen, TicketDims, TicketDraft
from shared.events.envelope import Envelope


class ReceivedPayload(Frozen):
    ticket: TicketDraft
    # The caller's earlier, already closed ticket this request repeats: a new
    # ticket that records it (a repeat complaint), never linked to a closed one.
    related_to: str | None = None


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


class LinkedPayload(Frozen):
    # The new request as it came in (its channel, district and category are
    # counted); the ticket it joins is the envelope's ticket_id.
    ticket: TicketDraft
    similarity: float = Field(ge=0, le=100)
    # The earlier ticket is closed and the centre's policy reopens it on a repeat
    # call (HOTLINE_REPEAT_OF_CLOSED=reopen): the router reopens it (重办). False:
    # a repeat joining an open ticket, which changes nothing but the count.
    reopen: bool = False


class TicketLinked(Envelope):
    """A request merged into an earlier ticket (并单): answered, never dispatched
    on its own, counted by stats as a linked request; with `reopen`, also a
    repeat complaint that reopens the closed ticket it joins."""

    event_type: Literal["linked"] = "linked"
    payload: LinkedPayload

    def dims(self) -> TicketDims:
        return TicketDims.of(self.payload.ticket)


class Suggestion(Frozen):
    """A department the lists or a model name for a ticket, with its score
    (a list score, or a model's probability)."""

    department: str
    score: float
    source: str


DecidedBy = Literal["rule", "list", "model", "manual"]


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
    # What chose the department: a rule, the responsibility lists, a model
    # (with its probability), or a person. None in events of older routers.
    decided_by: DecidedBy | None = None
    probability: float | None = Field(default=None, ge=0, le=1)
    # A sub-centre that passed the ticket on (转派) before accepting it, within
    # its response limit, responded: its response rate counts it as such.
    passed_on_in_time: bool = False


class TicketDispatched(Envelope):
    event_type: Literal["dispatched"] = "dispatched"
    payload: DispatchedPayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class UnroutablePayload(Frozen):
    dims: TicketDims
    reason: str
    rule: str | None = None
    # The best three departments the lists and the model name, for the person
    # who dispatches it.
    candidates: tuple[Suggestion, ...] = ()


class TicketUnroutable(Envelope):
    event_type: Literal["unroutable"] = "unroutable"
    payload: UnroutablePayload

    def dims(self) -> TicketDims:
        return self.payload.dims
