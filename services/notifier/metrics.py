"""Notifier-specific metrics."""

from __future__ import annotations

from prometheus_client import Counter

DELIVERIES = Counter(
    "hotline_notifier_deliveries_total",
    "Delivery attempts by channel and outcome (delivered, failed, dead)",
    ["channel", "outcome"],
)
