"""What each event adds to the counters, and in which bucket (docs/DOMAIN.md §4).

A bucket is one day (in the city's time) x department x district x category x
channel. Most events count on the day they happened. Completion (办结率) counts
on the day a ticket was DUE: a resolution adds to "due_resolved" on its deadline's
day, an overdue notice (fired at the deadline, ticket unresolved) to
"due_overdue", and a late resolution to "due_late_resolved", so that
    due = due_resolved + due_overdue - due_late_resolved
are the tickets due that day, and due_resolved of them were resolved.
Handling time is kept as a histogram, never as a list of durations.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from shared.events import (
    Rating,
    ReopenCause,
    TicketAccepted,
    TicketClosed,
    TicketDispatched,
    TicketEvent,
    TicketLinked,
    TicketOverdue,
    TicketReceived,
    TicketReopened,
    TicketResolved,
    TicketReturned,
)

# Upper edges (hours) of the handling-time histogram; one more bucket is open-ended.
HANDLING_EDGES_H = (1, 2, 4, 8, 24, 48, 72, 120, 168, 240, 360, 720)
HIST_FIELDS = tuple(f"handling_h{i}" for i in range(len(HANDLING_EDGES_H) + 1))

# One counter per event kind, named as the measures call it.
EVENT_COUNTERS = {
    "received": "received",
    "resolved_on_spot": "resolved_on_spot",
    # Requests merged into an earlier ticket (并单): answered, not tickets of their own.
    "linked": "linked",
    "dispatched": "dispatched",
    "unroutable": "unroutable",
    "accepted": "accepted",
    "returned": "returned",
    "extension_requested": "extension_requested",
    "extended": "extended",
    "extension_refused": "extension_refused",
    "resolved": "resolved",
    "feedback": "feedback_received",
    "closed": "closed",
    "reopened": "reopened",
    "explained": "explained",
    "urged": "urged",
    "warning": "warnings",
    "overdue": "overdue_notices",
    "supervised": "supervised",
}

FIELDS: tuple[str, ...] = (
    *EVENT_COUNTERS.values(),
    "redispatched",
    # Requests repeating the caller's closed ticket (重复投诉): a new ticket each,
    # or, under the reopen policy, a linked request reopening it.
    "repeated",
    "accepted_in_time",
    # Answered otherwise within the response limit: returned (not ours), or passed
    # on (转派) by a sub-centre before accepting. Responses, as acceptances are.
    "returned_in_time",
    "passed_on_in_time",
    "resolved_on_time",
    "rated",
    "rated_solved",
    "rated_satisfied",
    "due_resolved",
    "due_overdue",
    "due_late_resolved",
    "handling_seconds_sum",
    *HIST_FIELDS,
)


DIMENSIONS = ("department", "district", "category", "channel")


class Bucket(NamedTuple):
    """Where an increment counts: a day and the ticket's dimensions."""

    day: str
    department: str
    district: str
    category: str
    channel: str


def day_of(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).date().isoformat()


def bucket_of(event: TicketEvent, day: str) -> Bucket:
    dims = event.dims()
    department = str(getattr(event.payload, "department", "") or "")
    return Bucket(day, department, dims.district, str(dims.category), str(dims.channel))


def histogram_field(seconds: float) -> str:
    return HIST_FIELDS[bisect_left(HANDLING_EDGES_H, seconds / 3600)]


def increments(event: TicketEvent, tz: ZoneInfo) -> Iterator[tuple[Bucket, dict[str, float]]]:
    """The counter increments one event makes, bucket by bucket."""
    here = bucket_of(event, day_of(event.occurred_at, tz))
    counts: dict[str, float] = {EVENT_COUNTERS[event.event_type]: 1}
    if event.event_type == "resolved_on_spot":
        counts["received"] = 1  # answered on the spot is received, too
    if _repeats_a_closed_ticket(event):
        counts["repeated"] = 1
    if isinstance(event, TicketDispatched) and event.payload.round > 1:
        counts["redispatched"] = 1
    if isinstance(event, TicketAccepted) and event.payload.responded_in_time:
        counts["accepted_in_time"] = 1
    if isinstance(event, TicketReturned) and event.payload.responded_in_time:
        counts["returned_in_time"] = 1
    if isinstance(event, TicketClosed) or (
        isinstance(event, TicketReopened) and event.payload.cause == ReopenCause.RATING
    ):
        counts.update(_rating(event))
    if isinstance(event, TicketResolved):
        yield from _resolved(event, here, counts, tz)
        return
    yield here, counts
    if isinstance(event, TicketDispatched) and event.payload.passed_on_in_time:
        # The sub-centre's response, in its own bucket, not its unit's.
        passer = here._replace(department=event.payload.previous_department or "")
        yield passer, {"passed_on_in_time": 1}
    if isinstance(event, TicketOverdue):
        yield bucket_of(event, day_of(event.payload.deadline, tz)), {"due_overdue": 1}


def _repeats_a_closed_ticket(event: TicketEvent) -> bool:
    """A repeat complaint (重复投诉): a new ticket recording the caller's closed one,
    or, under the reopen policy, the repeat call that reopens it."""
    if isinstance(event, TicketReceived):
        return event.payload.related_to is not None
    return isinstance(event, TicketLinked) and event.payload.reopen


def _rating(event: TicketClosed | TicketReopened) -> dict[str, float]:
    # The router turns each citizen rating into exactly one closed or reopened
    # event (cause "rating"), which carries the department the rating judges; a
    # reopening by a repeat call is no rating.
    rating = event.payload.rating if isinstance(event, TicketClosed) else Rating.UNSATISFIED
    return {
        "rated": 1,
        "rated_solved": 1 if event.payload.solved else 0,
        "rated_satisfied": 0 if rating == Rating.UNSATISFIED else 1,
    }


def _resolved(
    event: TicketResolved, here: Bucket, counts: dict[str, float], tz: ZoneInfo
) -> Iterator[tuple[Bucket, dict[str, float]]]:
    p = event.payload
    seconds = max(0.0, (event.occurred_at - p.dispatched_at).total_seconds())
    counts.update(
        {
            "resolved_on_time": 1 if p.on_time else 0,
            "handling_seconds_sum": seconds,
            histogram_field(seconds): 1,
        }
    )
    yield here, counts
    due: dict[str, float] = {"due_resolved": 1, "due_late_resolved": 0 if p.on_time else 1}
    yield bucket_of(event, day_of(p.deadline, tz)), due
