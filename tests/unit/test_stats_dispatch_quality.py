"""Dispatch quality from ticket views: first time right, by what decided,
returns by reason, misroutes; a sub-centre's own sub-dispatch is no misroute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.stats.dispatch_quality import quality, unit_type

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def step(n: int, kind: str, **payload: Any) -> dict[str, Any]:
    return {
        "event_id": f"e{n}",
        "event_type": kind,
        "at": T0 + timedelta(minutes=n),
        "payload": payload,
    }


def view(final: str, *steps: dict[str, Any]) -> dict[str, Any]:
    return {"department": final, "steps": {s["event_id"]: s for s in steps}}


def test_quality_of_a_few_tickets() -> None:
    views = [
        # Right the first time, by the lists.
        view(
            "guanxian.water", step(1, "dispatched", department="guanxian.water", decided_by="list")
        ),
        # Right: the sub-centre passed it to its own unit.
        view(
            "guanxian.env",
            step(1, "dispatched", department="guanxian", decided_by="rule"),
            step(2, "dispatched", department="guanxian.env", via="sub_dispatch"),
        ),
        # Returned by housing, then dispatched to urban management by a person.
        view(
            "guanxian.urban-mgmt",
            step(1, "dispatched", department="guanxian.housing", decided_by="list"),
            step(2, "returned", department="guanxian.housing", reason="不属于本单位职责"),
            step(3, "dispatched", department="guanxian.urban-mgmt", via="manual"),
        ),
        # A model's choice, returned, and the same department again by a person.
        view(
            "city.police",
            step(1, "dispatched", department="city.police", decided_by="model"),
            step(2, "returned", department="city.police", reason="地址不详"),
            step(3, "dispatched", department="city.police", via="manual"),
        ),
        # Never dispatched: not counted.
        view("", step(1, "unroutable", department=None)),
    ]
    result = quality(views)
    assert result["first_time_right"] == {"value": 0.5, "numerator": 2, "denominator": 4}
    assert result["by_decided_by"] == {
        "rule": {"value": 1.0, "numerator": 1, "denominator": 1},
        "list": {"value": 0.5, "numerator": 1, "denominator": 2},
        "model": {"value": 0.0, "numerator": 0, "denominator": 1},
    }
    assert result["returns_by_reason"] == [
        {"reason": "不属于本单位职责", "returns": 1},
        {"reason": "地址不详", "returns": 1},
    ]
    assert result["misroutes"] == [
        {"dispatched_to": "guanxian.housing", "finally": "guanxian.urban-mgmt", "tickets": 1}
    ]


def test_nothing_dispatched() -> None:
    assert quality([])["first_time_right"] == {"value": None, "numerator": 0, "denominator": 0}


def test_unit_types_are_bounded() -> None:
    assert [unit_type(d) for d in ("guanxian.water", "city.power", "guanxian", "econ-zone")] == [
        "water",
        "power",
        "sub-centre",
        "sub-centre",
    ]
