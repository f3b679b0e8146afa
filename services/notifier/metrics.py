"""Notifier-specific metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "hotline_notifier_deliveries_total",
    "Delivery attempts by channel and outcome (delivered, failed, dead, superseded)",
    ["channel", "outcome"],
)
DELIVERIES_BY_STATUS = Gauge(
    "hotline_notifier_delivery_backlog",
    "Deliveries by status (pending, delivered, dead, superseded), as last counted",
    ["status"],
)
TIMERS_PENDING = Gauge("hotline_notifier_timers_pending", "Timers waiting to fire", ["kind"])
TIMERS_FIRED = Counter("hotline_notifier_timers_fired_total", "Timers fired", ["kind"])
TIMER_LAG = Histogram(
    "hotline_notifier_timer_lag_seconds",
    "How late a timer fired: fired minus due",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
TIMER_BACKLOG_AGE = Gauge(
    "hotline_notifier_timer_backlog_age_seconds",
    "How long the oldest due timer has waited to fire (0 when none is due): a stalled "
    "timer worker shows here before any lag is observed",
)
OVERDUE_TICKETS = Gauge(
    "hotline_notifier_overdue_tickets",
    "Tickets overdue and unresolved (each has a supervision pending)",
)
