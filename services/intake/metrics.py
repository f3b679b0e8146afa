"""Intake's own metrics. Labels are channels and outcomes: never a phone number,
a key or a ticket number."""

from __future__ import annotations

from prometheus_client import Counter

SUBMISSIONS = Counter(
    "hotline_intake_submissions_total",
    "Requests taken in, by channel and outcome (received, resolved_on_spot, linked)",
    ["channel", "outcome"],
)
REFUSED = Counter(
    "hotline_intake_refused_total",
    "Requests refused before they became tickets, by channel and reason",
    ["channel", "reason"],
)
