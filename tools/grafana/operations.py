"""Dashboards for the IT team: message flow, errors and dead letters, timers.

Counters of work done (messages, requests, timers fired) are summed over
replicas; queue depths, which every replica reads from the broker, with max.
"""

from __future__ import annotations

from typing import Any

from tools.grafana.panels import RANGE, WIDTH, dashboard, series, stat, target


def flow() -> Any:
    return dashboard(
        "hotline-flow",
        "Hotline · message flow",
        [
            stat("Replicas up", 'count by (service) (up{job="hotline"} == 1)', "{{service}}", w=12),
            stat(
                "Consumers per queue",
                "sum by (queue) (rabbitmq_detailed_queue_consumers"
                '{queue!~".+\\\\.dlq|.+\\\\.retry\\\\..+"})',
                "{{queue}}",
                w=12,
            ),
            series(
                "Messages handled per second, by service and outcome",
                target(
                    f"sum by (service, outcome) (rate(hotline_messages_total[{RANGE}]))",
                    "{{service}} {{outcome}}",
                ),
                unit="ops",
            ),
            series(
                "Events published per second (confirmed by the broker)",
                target(
                    "sum by (service, event_type) "
                    f'(rate(hotline_events_published_total{{outcome="confirmed"}}[{RANGE}]))',
                    "{{service}} {{event_type}}",
                ),
                unit="ops",
            ),
            series(
                "Messages ready, per queue (from the services)",
                target('max by (queue) (hotline_queue_messages{queue!~".+\\\\.dlq"})', "{{queue}}"),
            ),
            series(
                "Messages ready and unacknowledged, per queue (from the broker)",
                target(
                    "sum by (queue) "
                    '(rabbitmq_detailed_queue_messages_ready{queue=~".+\\\\.events"})',
                    "{{queue}} ready",
                ),
                target(
                    "sum by (queue) "
                    '(rabbitmq_detailed_queue_messages_unacked{queue=~".+\\\\.events"})',
                    "{{queue}} unacked",
                ),
            ),
            series(
                "Handler time, 95th percentile",
                target(
                    "histogram_quantile(0.95, sum by (service, le) "
                    f"(rate(hotline_handler_duration_seconds_bucket[{RANGE}])))",
                    "{{service}}",
                ),
                unit="s",
            ),
            series(
                "Messages in flight",
                target("sum by (service) (hotline_handler_in_flight)", "{{service}}"),
            ),
            series(
                "HTTP requests per second, by service and status",
                target(
                    f"sum by (service, status) (rate(hotline_http_requests_total[{RANGE}]))",
                    "{{service}} {{status}}",
                ),
                unit="reqps",
            ),
            series(
                "HTTP latency, 95th percentile",
                target(
                    "histogram_quantile(0.95, sum by (service, le) "
                    f"(rate(hotline_http_request_duration_seconds_bucket[{RANGE}])))",
                    "{{service}}",
                ),
                unit="s",
            ),
        ],
    )


def errors() -> Any:
    return dashboard(
        "hotline-errors",
        "Hotline · errors and dead letters",
        [
            stat(
                "Dead letters waiting",
                'sum(max by (queue) (hotline_queue_messages{queue=~".+\\\\.dlq"}))',
                w=6,
            ),
            stat("Rules file valid (1 = yes)", "min(hotline_router_rules_valid)", w=6),
            stat(
                "Deliveries dead",
                'max(hotline_notifier_delivery_backlog{status="dead"})',
                w=6,
            ),
            stat(
                "Publishes failed, last hour",
                'sum(increase(hotline_events_published_total{outcome="failed"}[1h])) or vector(0)',
                w=6,
            ),
            series(
                "Dead letters waiting, per queue",
                target('max by (queue) (hotline_queue_messages{queue=~".+\\\\.dlq"})', "{{queue}}"),
                target(
                    'sum by (queue) (rabbitmq_detailed_queue_messages{queue=~".+\\\\.dlq"})',
                    "{{queue}} (broker)",
                ),
            ),
            series(
                "Messages dead-lettered and retried per minute",
                target(
                    "60 * sum by (service, outcome) "
                    f'(rate(hotline_messages_total{{outcome=~"dead_lettered|retried|requeued"}}[{RANGE}]))',
                    "{{service}} {{outcome}}",
                ),
            ),
            series(
                "Handler errors per minute, by type",
                target(
                    f"60 * sum by (service, error) (rate(hotline_handler_errors_total[{RANGE}]))",
                    "{{service}} {{error}}",
                ),
            ),
            series(
                "Publishes failed per minute",
                target(
                    "60 * sum by (service) "
                    f'(rate(hotline_events_published_total{{outcome="failed"}}[{RANGE}]))',
                    "{{service}}",
                ),
            ),
            series(
                "HTTP server errors per minute",
                target(
                    "60 * sum by (service, route, status) "
                    f'(rate(hotline_http_requests_total{{status=~"5.."}}[{RANGE}]))',
                    "{{service}} {{route}} {{status}}",
                ),
            ),
            series(
                "Notices not delivered per minute, by channel",
                target(
                    "60 * sum by (channel, outcome) "
                    f'(rate(hotline_notifier_deliveries_total{{outcome!="delivered"}}[{RANGE}]))',
                    "{{channel}} {{outcome}}",
                ),
            ),
            series(
                "Workflow actions refused per minute",
                target(
                    "60 * sum by (action, outcome) "
                    f'(rate(hotline_router_transitions_total{{outcome!="ok"}}[{RANGE}]))',
                    "{{action}} {{outcome}}",
                ),
            ),
            series(
                "Rules reloads per hour",
                target(
                    f"3600 * sum by (outcome) (rate(hotline_router_rules_reloads_total[{RANGE}]))",
                    "{{outcome}}",
                ),
            ),
        ],
    )


def timers() -> Any:
    quantiles = [
        target(
            f"histogram_quantile({q}, sum by (le) "
            f"(rate(hotline_notifier_timer_lag_seconds_bucket[{RANGE}])))",
            f"p{round(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    ]
    return dashboard(
        "hotline-timers",
        "Hotline · deadline timers",
        [
            stat(
                "Oldest due timer waiting",
                "max(hotline_notifier_timer_backlog_age_seconds)",
                unit="s",
                w=8,
            ),
            stat("Tickets under supervision", "max(hotline_notifier_overdue_tickets)", w=8),
            stat(
                "Timers fired in the last hour",
                "sum(increase(hotline_notifier_timers_fired_total[1h]))",
                w=8,
            ),
            series("Timer lag: fired minus due", *quantiles, unit="s", w=WIDTH),
            series(
                "Oldest due timer waiting",
                target("max(hotline_notifier_timer_backlog_age_seconds)", "age"),
                unit="s",
            ),
            series(
                "Timers fired per minute, by kind",
                target(
                    f"60 * sum by (kind) (rate(hotline_notifier_timers_fired_total[{RANGE}]))",
                    "{{kind}}",
                ),
            ),
            series(
                "Timers pending, by kind",
                target("max by (kind) (hotline_notifier_timers_pending)", "{{kind}}"),
            ),
            series(
                "Deliveries by status",
                target("max by (status) (hotline_notifier_delivery_backlog)", "{{status}}"),
            ),
        ],
    )
