"""Router-specific metrics."""

from __future__ import annotations

from prometheus_client import Counter

TRANSITIONS = Counter(
    "hotline_router_transitions_total",
    "Workflow actions by name and outcome (ok, or the refusal code)",
    ["action", "outcome"],
)
FEEDBACK_REFUSED = Counter(
    "hotline_router_feedback_refused_total",
    "Citizens' ratings the workflow could not take, kept for staff, by refusal code",
    ["code"],
)
