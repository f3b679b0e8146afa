"""The one catalogue of ticket event types: for each, where it stands in the
lifecycle, the status it leads to and whether that status ends the handling.

Every service that orders steps, shows a status or counts open tickets derives
its tables from here (intake's citizen progress, stats' per-ticket view, the
metrics' known event types), so no two services can disagree about what a
ticket's status is after the same events. The lifecycle is described in
docs/DOMAIN.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventKind:
    name: str
    # Steps recorded at the same instant are ordered by stage, a cause before
    # its effect: a return before the dispatch it leads to, a rating before the
    # closing or reopening. What is left of a tie is broken by event id.
    stage: int
    # The ticket's status after the event; None for an event that records
    # something (a notice, a rating, a linked repeat) without moving the ticket.
    status_after: str | None = None
    # The status ends the handling: the ticket is no longer open.
    closes: bool = False
    # In this status no department holds the ticket: the hotline centre does
    # (a return before the next dispatch, the manual queue). The notifier drops
    # the departments' notices then (services/notifier/currency.py).
    with_centre: bool = False


CATALOGUE: tuple[EventKind, ...] = (
    EventKind("received", 0, "received"),
    EventKind("resolved_on_spot", 1, "resolved_on_spot", closes=True),
    EventKind("linked", 1),
    EventKind("returned", 1, "returned", with_centre=True),
    EventKind("feedback", 1),
    EventKind("dispatched", 2, "dispatched"),
    EventKind("unroutable", 2, "unroutable", with_centre=True),
    EventKind("accepted", 3, "accepted"),
    EventKind("extension_requested", 4, "extension_requested"),
    EventKind("extended", 5, "accepted"),
    EventKind("extension_refused", 5, "accepted"),
    EventKind("explained", 5),
    EventKind("resolved", 6, "resolved", closes=True),
    EventKind("closed", 7, "closed", closes=True),
    EventKind("reopened", 7, "reopened"),
    EventKind("urged", 8),
    EventKind("warning", 8),
    EventKind("overdue", 8),
    EventKind("supervised", 8),
)
KINDS = {kind.name: kind for kind in CATALOGUE}
EVENT_TYPES: tuple[str, ...] = tuple(kind.name for kind in CATALOGUE)
STATUS_AFTER = {k.name: k.status_after for k in CATALOGUE if k.status_after is not None}
NEUTRAL_EVENTS = frozenset(k.name for k in CATALOGUE if k.status_after is None)
CLOSED_STATUSES = frozenset(k.status_after for k in CATALOGUE if k.closes and k.status_after)
CENTRE_STATUSES = frozenset(k.status_after for k in CATALOGUE if k.with_centre and k.status_after)
UNKNOWN_STAGE = max(k.stage for k in CATALOGUE) + 1


def stage_of(event_type: str) -> int:
    kind = KINDS.get(event_type)
    return kind.stage if kind is not None else UNKNOWN_STAGE
