"""The time limits of a decision: the action's, else the rules' defaults for
the ticket's priority and category, by name with the limit it names."""

from __future__ import annotations

from services.router.schema import Action, RuleSet, limit_name
from shared.domain import Priority, TicketDraft
from shared.workcalendar import TimeLimit


def time_limit_of(
    ruleset: RuleSet, action: Action | None, draft: TicketDraft, priority: Priority
) -> tuple[str, TimeLimit]:
    ref = action.time_limit if action else None
    if ref is None:
        defaults = ruleset.defaults
        ref = (
            defaults.urgent_time_limit
            if priority == Priority.URGENT
            else defaults.consultation_time_limit
            if draft.category == "consultation"
            else defaults.time_limit
        )
    return _named(ref, ruleset.time_limits)


def response_limit_of(
    ruleset: RuleSet, action: Action | None, priority: Priority
) -> tuple[str, TimeLimit]:
    ref = action.response_limit if action else None
    if ref is None:
        defaults = ruleset.defaults
        urgent = priority == Priority.URGENT
        ref = defaults.urgent_response_limit if urgent else defaults.response_limit
    return _named(ref, ruleset.response_limits)


def _named(ref: str | TimeLimit, table: dict[str, TimeLimit]) -> tuple[str, TimeLimit]:
    return (ref, table[ref]) if isinstance(ref, str) else (limit_name(ref), ref)
