"""The hotline centre's view: received, dispatched, overdue, rates per department.

Every stats replica reports the same business gauges (read from the store), so
they are combined with max, never summed over replicas.
"""

from __future__ import annotations

from typing import Any

from tools.grafana.panels import DATASOURCE, WIDTH, dashboard, panel, series, stat, table, target


def business() -> Any:
    counts = [
        stat(
            title,
            f'max(hotline_today_tickets{{measure="{measure}"}})',
            w=4,
        )
        for title, measure in (
            ("Received today", "received"),
            ("Answered on the spot", "resolved_on_spot"),
            ("Merged into a ticket (并单)", "linked"),
            ("Dispatched today", "dispatched"),
            ("Resolved today", "resolved"),
            ("Returned today", "returned"),
        )
    ]
    department = {
        "name": "department",
        "label": "Department",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": "label_values(hotline_department_rate, department)", "refId": "V"},
        "definition": "label_values(hotline_department_rate, department)",
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "current": {"text": "All", "value": "$__all"},
    }
    return dashboard(
        "hotline-business",
        "Hotline · tickets and departments",
        [
            *counts,
            stat("Overdue now", "sum(max by (department) (hotline_overdue_tickets))", w=4),
            panel(
                "bargauge",
                "Today's rates",
                [target("max by (rate) (hotline_today_rate)", "{{rate}}")],
                unit="percentunit",
                w=WIDTH,
                h=6,
            ),
            series(
                "Received, answered on the spot, merged and dispatched per hour",
                target(
                    "sum by (event_type) (increase(hotline_events_published_total"
                    '{service=~"intake|router", outcome="confirmed", '
                    # The label holds the event type as the envelope names it, without
                    # the routing key's "ticket." prefix.
                    'event_type=~"received|resolved_on_spot|linked|dispatched"}[1h]))',
                    "{{event_type}}",
                ),
            ),
            series(
                "Open and overdue tickets",
                target("sum(max by (department) (hotline_open_tickets))", "open"),
                target("sum(max by (department) (hotline_overdue_tickets))", "overdue"),
            ),
            series(
                "Overdue tickets, the 10 departments with most",
                target("topk(10, max by (department) (hotline_overdue_tickets))", "{{department}}"),
                w=WIDTH,
            ),
            table(
                "Rates per department, last 30 days",
                'max by (department, rate) (hotline_department_rate{department=~"$department"})',
                "department",
                "rate",
                unit="percentunit",
            ),
            table(
                "Today per department",
                "max by (department, measure) "
                '(hotline_department_today_tickets{department=~"$department"})',
                "department",
                "measure",
            ),
            series(
                "Response, resolution and satisfaction rates of the chosen departments",
                target(
                    "max by (department, rate) (hotline_department_rate"
                    '{department=~"$department", rate=~"response|resolution|satisfaction"})',
                    "{{department}} {{rate}}",
                ),
                unit="percentunit",
                w=WIDTH,
            ),
        ],
        [department],
    )
