"""From summed counters to the measures (services/stats/rates.py), the department
ranking (services/stats/ranking.py) and CSV answers (services/stats/csvout.py).

Every expected figure is worked out by hand in the comments next to it.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.stats.csvout import csv_response, to_csv
from services.stats.measures import FIELDS, HIST_FIELDS
from services.stats.ranking import rank_departments
from services.stats.rates import add_up, measures, p90_hours, rate

# A department's month, as the counters would hold it.
MONTH: dict[str, float] = {
    "received": 20,  # including the 4 answered on the spot
    "linked": 3,  # merged into earlier tickets (并单)
    "resolved_on_spot": 4,
    "dispatched": 16,
    "redispatched": 2,
    "returned": 2,
    "accepted": 15,
    "accepted_in_time": 12,
    "reopened": 1,
    "resolved": 10,
    "resolved_on_time": 8,
    "closed": 7,
    "rated": 8,  # 7 closings and 1 reopening
    "rated_solved": 6,
    "rated_satisfied": 7,
    "due_resolved": 9,
    "due_overdue": 3,
    "due_late_resolved": 2,
    "urged": 3,
    "supervised": 1,
    "repeated": 2,  # of the 20 received, repeating a closed ticket of theirs
    # 10 resolutions: 1 within an hour, 3 in (4, 8] h, 4 in (8, 24] h, 2 in (48, 72] h;
    # 20.5 hours each on average.
    "handling_seconds_sum": 10 * 20.5 * 3600,
    "handling_h0": 1,
    "handling_h3": 3,
    "handling_h4": 4,
    "handling_h6": 2,
}


def test_counts() -> None:
    counts = measures(MONTH)["counts"]
    assert counts == {
        "requests": 23,
        "received": 20,
        "linked": 3,
        "repeated": 2,
        "resolved_on_spot": 4,
        "dispatched": 16,
        "redispatched": 2,
        "unroutable": 0,
        "returned": 2,
        "accepted": 15,
        "resolved": 10,
        "closed": 7,
        "reopened": 1,
        # due = due_resolved + due_overdue - due_late_resolved = 9 + 3 - 2
        "due": 10,
        # overdue and never resolved: 3 red cards, 2 of them resolved late after all
        "overdue": 1,
        "urged": 3,
        "supervised": 1,
    }


@pytest.mark.parametrize(
    ("name", "numerator", "denominator", "value"),
    [
        ("completion", 9, 10, 0.9),  # due_resolved / due
        ("on_time", 8, 10, 0.8),  # resolved_on_time / resolved
        # accepted in time / (dispatched + reopened): a reopening asks for a response again
        ("response", 12, 17, 0.7059),  # 12 / 17 = 0.70588...
        ("resolution", 6, 8, 0.75),  # rated_solved / rated
        ("satisfaction", 7, 8, 0.875),  # (satisfied + basically satisfied) / rated
        ("return", 2, 16, 0.125),  # returned / dispatched
        ("reopen", 1, 10, 0.1),  # reopened / resolved
    ],
)
def test_rates_with_numerator_and_denominator(
    name: str, numerator: int, denominator: int, value: float
) -> None:
    assert measures(MONTH)["rates"][name] == {
        "numerator": numerator,
        "denominator": denominator,
        "value": value,
    }


def test_handling_time_mean_and_p90() -> None:
    # n = 10, the 90th percentile is the 9th value: cumulative counts 1 (h0), 4 (h3),
    # 8 (h4), 10 (h6): inside (48, 72] h, 1 of its 2 -> 48 + 24 * (9 - 8) / 2 = 60.
    assert measures(MONTH)["handling_time_hours"] == {"mean": 20.5, "p90": 60.0, "resolved": 10}


@pytest.mark.parametrize(
    ("histogram", "p90"),
    [
        ({"handling_h0": 1}, 0.9),  # one value in (0, 1]: 0 + 1 * 0.9 / 1
        ({"handling_h4": 10}, 22.4),  # (8, 24]: 8 + 16 * 9 / 10
        ({"handling_h0": 9, "handling_h1": 1}, 1.0),  # the 9th value is the last of (0, 1]
        ({"handling_h0": 5, "handling_h5": 5}, 43.2),  # (24, 48]: 24 + 24 * (9 - 5) / 5
        ({"handling_h12": 3}, 720.0),  # open-ended: at least its lower edge
        ({"handling_h0": 1, "handling_h12": 9}, 720.0),
    ],
)
def test_p90_from_a_known_histogram(histogram: dict[str, float], p90: float) -> None:
    assert p90_hours(histogram) == p90


def test_zero_denominators_give_no_value() -> None:
    result = measures({})
    for name, r in result["rates"].items():
        assert r == {"numerator": 0, "denominator": 0, "value": None}, name
    assert result["handling_time_hours"] == {"mean": None, "p90": None, "resolved": 0}
    assert set(result["counts"].values()) == {0}


def test_rates_of_a_day_with_receipts_only() -> None:
    result = measures({"received": 5, "resolved_on_spot": 2})
    assert result["rates"]["response"]["value"] is None
    assert result["rates"]["completion"]["value"] is None
    assert result["counts"]["received"] == 5


def test_rate_rounds_to_four_places_and_counts_are_whole() -> None:
    assert rate(2.0, 3.0) == {"numerator": 2, "denominator": 3, "value": 0.6667}
    assert rate(0, 5) == {"numerator": 0, "denominator": 5, "value": 0.0}
    assert rate(1, 0) == {"numerator": 1, "denominator": 0, "value": None}


def test_add_up_sums_counter_documents_per_group() -> None:
    docs: list[dict[str, Any]] = [
        {"day": "2025-03-10", "department": "a", "received": 2, "rollup": "department"},
        {"day": "2025-03-11", "department": "a", "received": 3, "dispatched": 1},
        {"day": "2025-03-11", "department": "b", "resolved": 4, "handling_h2": 4},
    ]
    per_department = add_up(docs, "department")
    assert set(per_department) == {"a", "b"}
    assert per_department["a"]["received"] == 5
    assert per_department["a"]["dispatched"] == 1
    assert per_department["b"]["handling_h2"] == 4
    assert set(per_department["a"]) == set(FIELDS)  # other keys are not summed
    assert add_up(docs)[""]["received"] == 5
    assert add_up([], "day") == {}
    assert set(HIST_FIELDS) <= set(FIELDS)


# --- the department ranking --------------------------------------------------------------


def row(dispatched: int, in_time: int, rated: int, solved: int, satisfied: int) -> dict[str, float]:
    return {
        "dispatched": dispatched,
        "accepted_in_time": in_time,
        "rated": rated,
        "rated_solved": solved,
        "rated_satisfied": satisfied,
    }


def test_ranking_orders_on_the_mean_of_the_three_rates() -> None:
    ranked = rank_departments(
        {
            # response 1, resolution 1, satisfaction 1: score 1
            "city.env": row(2, 2, 1, 1, 1),
            # 2/3 = 0.6667, 1/2 = 0.5, 2/2 = 1: (0.6667 + 0.5 + 1) / 3 = 0.7222
            "yanggu.urban-mgmt": row(3, 2, 2, 1, 2),
            # 3/4 = 0.75, 2/3 = 0.6667, 2/3 = 0.6667: 2.0834 / 3 = 0.6945
            "guanxian.water": row(4, 3, 3, 2, 2),
            # response 0 of 1, nothing rated: score 0 on the one rate known
            "city.housing": row(1, 0, 0, 0, 0),
            # nothing dispatched, nothing rated: no score, no rank
            "city.tax": {},
        },
        {"city.env": "市生态环境局"},
    )
    assert [(r["department"], r["score"], r["rank"]) for r in ranked] == [
        ("city.env", 1.0, 1),
        ("yanggu.urban-mgmt", 0.7222, 2),
        ("guanxian.water", 0.6945, 3),
        ("city.housing", 0.0, 4),
        ("city.tax", None, None),
    ]
    # Fewer than five departments with five tickets: nobody is judged a laggard.
    assert not any(r["laggard"] for r in ranked)
    assert ranked[1]["response_rate"] == 0.6667
    assert ranked[3]["resolution_rate"] is None
    # The Chinese name beside the id; the id where the directory has none.
    assert [r["department_name"] for r in ranked[:2]] == ["市生态环境局", "yanggu.urban-mgmt"]


def test_equal_scores_share_a_rank() -> None:
    ranked = rank_departments(
        {"b": row(1, 1, 0, 0, 0), "a": row(1, 1, 0, 0, 0), "c": row(5, 5, 0, 0, 0)}
        | {"d": row(2, 1, 0, 0, 0)}
    )
    # Shown by volume, then id; ranked 1, 1, 1, 4.
    assert [(r["department"], r["rank"]) for r in ranked] == [
        ("c", 1),
        ("a", 1),
        ("b", 1),
        ("d", 4),
    ]


def test_laggards_are_the_lowest_tenth_with_enough_tickets_ties_included() -> None:
    # Eleven departments with at least five tickets: the lowest ceil(1.1) = 2
    # scores are laggards' — 0.4 and the two tied at 0.5, all three; a
    # department with fewer tickets is never judged, however low its score.
    rows = {f"dep{i:02d}": row(10, 9, 0, 0, 0) for i in range(8)}
    rows |= {"low": row(10, 4, 0, 0, 0), "tie-b": row(10, 5, 0, 0, 0), "tie-a": row(10, 5, 0, 0, 0)}
    rows |= {"few": row(4, 0, 0, 0, 0)}
    ranked = rank_departments(rows)
    flagged = sorted(r["department"] for r in ranked if r["laggard"])
    assert flagged == ["low", "tie-a", "tie-b"]
    ties = [r["rank"] for r in ranked if r["department"].startswith("tie")]
    assert ties == [9, 9]


def test_nobody_lags_when_everyone_scores_the_same() -> None:
    ranked = rank_departments({f"dep{i}": row(10, 10, 0, 0, 0) for i in range(6)})
    assert {r["rank"] for r in ranked} == {1}
    assert not any(r["laggard"] for r in ranked)


# --- CSV ---------------------------------------------------------------------------------


ROWS: list[dict[str, Any]] = [
    {
        "ticket_id": "LC20250310-0002",
        "text": "阳谷县紫荆街一家店铺门口堆放建筑垃圾",
        "co_departments": ["yanggu.env", "yanggu.housing"],
        "received_at": datetime(2025, 3, 10, 2, 0, tzinfo=UTC),
        "day": date(2025, 3, 10),
        "rating": None,
    },
    {"ticket_id": "LC20250310-0003", "text": '他说:"噪音, 太大"', "extra": {"a": 1, "b": "二"}},
]


def parse(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_csv_response_begins_with_the_byte_order_mark() -> None:
    response = csv_response("tickets.csv", ROWS)
    body = bytes(response.body)
    assert body.startswith(b"\xef\xbb\xbf")
    assert body.count(b"\xef\xbb\xbf") == 1
    assert response.media_type == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="tickets.csv"'


def test_csv_round_trip_keeps_chinese_text_and_joins_lists() -> None:
    first, second = parse(bytes(csv_response("tickets.csv", ROWS).body))
    assert first["text"] == "阳谷县紫荆街一家店铺门口堆放建筑垃圾"
    assert first["co_departments"] == "yanggu.env;yanggu.housing"
    assert first["received_at"] == "2025-03-10T02:00:00+00:00"
    assert first["day"] == "2025-03-10"
    assert first["rating"] == ""
    assert first["extra"] == ""  # a column only the second row has
    assert second["text"] == '他说:"噪音, 太大"'  # quotes and commas survive
    assert second["extra"] == "a=1;b=二"
    assert second["co_departments"] == ""


def test_csv_columns_are_the_union_in_first_seen_order() -> None:
    header = to_csv(ROWS).splitlines()[0]
    assert header == "ticket_id,text,co_departments,received_at,day,rating,extra"


def test_csv_of_no_rows_is_just_the_mark() -> None:
    assert bytes(csv_response("empty.csv", []).body) == b"\xef\xbb\xbf\r\n"
