"""The department ranking (docs/DOMAIN.md §4), fair and readable:

- the score is the mean of the response, resolution and satisfaction rates a
  department has figures for;
- equal scores share a rank (1, 2, 2, 4), and order among them by volume and
  id only for display;
- a laggard is a department with at least LAGGARD_MIN_DISPATCHED tickets in the
  period whose score is among the lowest LAGGARD_SHARE of those departments'
  scores (rounded up, at least one) and below the best score, once at least
  LAGGARD_MIN_DEPARTMENTS departments have that volume: ties at the line are
  all laggards or none, never cut by the alphabet;
- each row carries the department's Chinese name beside its id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from services.stats.rates import measures

LAGGARD_SHARE = 0.10
LAGGARD_MIN_DISPATCHED = 5
LAGGARD_MIN_DEPARTMENTS = 5
COLUMNS = (
    "rank",
    "department",
    "department_name",
    "dispatched",
    "response_rate",
    "resolution_rate",
    "satisfaction_rate",
    "completion_rate",
    "score",
    "laggard",
)


def rank_departments(
    rows: dict[str, dict[str, float]], names: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    ranked = [_row(department, row, names or {}) for department, row in rows.items()]
    ranked.sort(
        key=lambda r: (r["score"] is None, -(r["score"] or 0), -r["dispatched"], r["department"])
    )
    scores = [r["score"] for r in ranked if r["score"] is not None]
    line = _laggard_line(ranked)
    for row in ranked:
        score = row["score"]
        row["rank"] = None if score is None else 1 + sum(1 for s in scores if s > score)
        row["laggard"] = (
            line is not None
            and score is not None
            and row["dispatched"] >= LAGGARD_MIN_DISPATCHED
            and score <= line
        )
    return [{column: row[column] for column in COLUMNS} for row in ranked]


def _row(department: str, row: dict[str, float], names: Mapping[str, str]) -> dict[str, Any]:
    m = measures(row)
    three = [m["rates"][k]["value"] for k in ("response", "resolution", "satisfaction")]
    known = [v for v in three if v is not None]
    return {
        "department": department,
        "department_name": names.get(department, department),
        "dispatched": m["counts"]["dispatched"],
        "response_rate": m["rates"]["response"]["value"],
        "resolution_rate": m["rates"]["resolution"]["value"],
        "satisfaction_rate": m["rates"]["satisfaction"]["value"],
        "completion_rate": m["rates"]["completion"]["value"],
        "score": round(sum(known) / len(known), 4) if known else None,
    }


def _laggard_line(ranked: list[dict[str, Any]]) -> float | None:
    """The highest score that is still a laggard's; None: nobody is flagged."""
    judged = sorted(
        r["score"]
        for r in ranked
        if r["score"] is not None and r["dispatched"] >= LAGGARD_MIN_DISPATCHED
    )
    if len(judged) < LAGGARD_MIN_DEPARTMENTS:
        return None
    line = judged[math.ceil(len(judged) * LAGGARD_SHARE) - 1]
    return line if line < judged[-1] else None
