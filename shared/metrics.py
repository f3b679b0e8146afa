"""Prometheus metrics shared by every service.

Label values are bounded sets (service, queue, event type, outcome, exception
class, route template); never a ticket number, phone number or free text.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from shared.events import EVENT_TYPES

OTHER = "other"
# Methods a client may send are unbounded (any token is legal HTTP); these are
# the ones our routes answer, everything else is counted as "other".
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_EVENT_TYPES = frozenset(EVENT_TYPES)


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else OTHER


def event_type_label(message_type: str | None) -> str:
    """The AMQP `type` property is set by whoever published the message, before
    anything validated it: only the known event types become label values."""
    return message_type if message_type in _EVENT_TYPES else OTHER


MESSAGES = Counter(
    "hotline_messages_total",
    "Messages handled by consumers, by outcome (ok, retried, requeued, dead_lettered)",
    ["service", "queue", "event_type", "outcome"],
)
HANDLER_ERRORS = Counter(
    "hotline_handler_errors_total",
    "Exceptions raised by message handlers, by exception type",
    ["service", "queue", "error"],
)
IN_FLIGHT = Gauge(
    "hotline_handler_in_flight",
    "Messages being handled right now",
    ["service", "queue"],
)
HANDLER_DURATION = Histogram(
    "hotline_handler_duration_seconds",
    "Time spent in a message handler",
    ["service", "queue"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PUBLISHED = Counter(
    "hotline_events_published_total",
    "Events published, by outcome (confirmed, failed)",
    ["service", "event_type", "outcome"],
)
QUEUE_DEPTH = Gauge(
    "hotline_queue_messages",
    "Messages ready in a queue of this service (its main queue and its dead-letter queue)",
    ["service", "queue"],
)
HTTP_REQUESTS = Counter(
    "hotline_http_requests_total",
    "HTTP requests served, by route template and status",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "hotline_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["service", "method", "route"],
)
DEPENDENCY_UP = Gauge(
    "hotline_dependency_up",
    "1 when the last readiness probe reached the dependency",
    ["service", "dependency"],
)
