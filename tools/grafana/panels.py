"""Building blocks of the Grafana dashboards: queries, panels, a laid-out dashboard."""

from __future__ import annotations

from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
RANGE = "$__rate_interval"
WIDTH = 24

Panel = dict[str, Any]


def target(expr: str, legend: str = "", *, instant: bool = False) -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
    if instant:
        t.update(instant=True, range=False, format="table")
    return t


def panel(
    kind: str,
    title: str,
    targets: list[dict[str, Any]],
    unit: str = "short",
    w: int = 12,
    h: int = 8,
) -> Panel:
    for ref, t in zip("ABCDEFGH", targets, strict=False):
        t["refId"] = ref
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "gridPos": {"w": w, "h": h},
    }


def series(title: str, *targets: dict[str, Any], unit: str = "short", w: int = 12) -> Panel:
    return panel("timeseries", title, list(targets), unit, w)


def stat(title: str, expr: str, legend: str = "", unit: str = "short", w: int = 4) -> Panel:
    return panel("stat", title, [target(expr, legend)], unit, w, h=4)


def table(title: str, expr: str, rows: str, columns: str, unit: str = "short") -> Panel:
    """An instant query laid out as rows × columns (e.g. department × rate)."""
    p = panel("table", title, [target(expr, instant=True)], unit, w=WIDTH, h=10)
    p["transformations"] = [
        {
            "id": "groupingToMatrix",
            "options": {"rowField": rows, "columnField": columns, "valueField": "Value"},
        }
    ]
    return p


def dashboard(uid: str, title: str, panels: list[Panel], variables: list[Any] | None = None) -> Any:
    x = y = row_h = 0
    for number, p in enumerate(panels, start=1):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > WIDTH:
            x, y, row_h = 0, y + row_h, 0
        p["id"] = number
        p["gridPos"].update(x=x, y=y)
        x, row_h = x + w, max(row_h, h)
    return {
        "uid": uid,
        "title": title,
        "tags": ["hotline"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables or []},
        "annotations": {"list": []},
        "panels": panels,
    }
