"""From summed counters to the measures a hotline centre is judged by (docs/DOMAIN.md §4).

Every rate is given with its numerator and denominator, so any figure can be
traced and recomputed by hand."""

from __future__ import annotations

from typing import Any

from services.stats.measures import FIELDS, HANDLING_EDGES_H, HIST_FIELDS


def rate(numerator: float, denominator: float) -> dict[str, Any]:
    value = round(numerator / denominator, 4) if denominator else None
    return {"numerator": int(numerator), "denominator": int(denominator), "value": value}


def p90_hours(totals: dict[str, float]) -> float | None:
    """The 90th percentile of handling time, interpolated inside its histogram bucket."""
    counts = [totals.get(name, 0) for name in HIST_FIELDS]
    n = sum(counts)
    if not n:
        return None
    target, seen = 0.9 * n, 0.0
    for i, count in enumerate(counts):
        if count and seen + count >= target:
            low = HANDLING_EDGES_H[i - 1] if i else 0.0
            if i == len(HANDLING_EDGES_H):  # open-ended: at least its lower edge
                return float(low)
            high = HANDLING_EDGES_H[i]
            return round(low + (high - low) * (target - seen) / count, 2)
        seen += count
    return None


def measures(totals: dict[str, float]) -> dict[str, Any]:
    t = {name: totals.get(name, 0) for name in FIELDS}
    due = t["due_resolved"] + t["due_overdue"] - t["due_late_resolved"]
    resolved = t["resolved"]
    return {
        "counts": {
            # Every citizen request answered: a ticket of its own, or merged (并单).
            "requests": int(t["received"] + t["linked"]),
            "received": int(t["received"]),
            "linked": int(t["linked"]),
            # Requests about a matter of the caller's already closed ticket: a new
            # ticket each, or (reopen policy) a linked request reopening it.
            "repeated": int(t["repeated"]),
            "resolved_on_spot": int(t["resolved_on_spot"]),
            "dispatched": int(t["dispatched"]),
            "redispatched": int(t["redispatched"]),
            "unroutable": int(t["unroutable"]),
            "returned": int(t["returned"]),
            "accepted": int(t["accepted"]),
            "resolved": int(resolved),
            "closed": int(t["closed"]),
            "reopened": int(t["reopened"]),
            "due": int(due),
            # Due in the period and still not resolved: open past the deadline.
            "overdue": int(t["due_overdue"] - t["due_late_resolved"]),
            "urged": int(t["urged"]),
            "supervised": int(t["supervised"]),
        },
        "rates": {
            "completion": rate(t["due_resolved"], due),
            "on_time": rate(t["resolved_on_time"], resolved),
            # A reopened ticket must be accepted again within the response limit,
            # so each reopening asks for a response as a dispatch does.
            # A return or a sub-centre's pass-on within the limit answers the
            # dispatch too: not an ignored ticket.
            "response": rate(
                t["accepted_in_time"] + t["returned_in_time"] + t["passed_on_in_time"],
                t["dispatched"] + t["reopened"],
            ),
            "resolution": rate(t["rated_solved"], t["rated"]),
            "satisfaction": rate(t["rated_satisfied"], t["rated"]),
            "return": rate(t["returned"], t["dispatched"]),
            "reopen": rate(t["reopened"], resolved),
        },
        "handling_time_hours": {
            "mean": round(t["handling_seconds_sum"] / resolved / 3600, 2) if resolved else None,
            "p90": p90_hours(t),
            "resolved": int(resolved),
        },
    }


def add_up(docs: list[dict[str, Any]], group_by: str | None = None) -> dict[str, dict[str, float]]:
    """Counter documents summed field by field, per value of group_by (or "")."""
    sums: dict[str, dict[str, float]] = {}
    for doc in docs:
        key = str(doc.get(group_by, "")) if group_by else ""
        target = sums.setdefault(key, dict.fromkeys(FIELDS, 0.0))
        for name in FIELDS:
            target[name] += doc.get(name, 0)
    return sums
