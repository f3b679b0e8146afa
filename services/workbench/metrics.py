"""The workbench's own metrics. Labels are bounded sets: an outcome, a
service name of the four, a status class; never a key, user or ticket."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SIGN_INS = Counter(
    "hotline_workbench_sign_ins_total",
    "Sign-in attempts, by outcome (ok, refused) and, when ok, the key's kind",
    ["outcome", "kind"],
)
SIGNED_OUT = Counter(
    "hotline_workbench_signed_out_total",
    "Sessions ended, by reason (user, key_rejected)",
    ["reason"],
)
CALLS = Counter(
    "hotline_workbench_calls_total",
    "Calls to the other services, by service and outcome (ok, refused, key_rejected, down)",
    ["service", "outcome"],
)
CALL_DURATION = Histogram(
    "hotline_workbench_call_duration_seconds",
    "Time the other services took to answer the workbench",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
