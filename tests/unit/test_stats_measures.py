"""What each event adds to the counters, and in which bucket (services/stats/measures.py).

Buckets are city days (Asia/Shanghai, UTC+8): 17:30 UTC is 01:30 the next day.
The due_* counters land on the day of the DEADLINE, whatever day the step was.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import combinations

import pytest

from services.stats.measures import (
    DIMENSIONS,
    EVENT_COUNTERS,
    FIELDS,
    HIST_FIELDS,
    Bucket,
    day_of,
    histogram_field,
    increments,
)
from services.stats.rollups import Increments as Merged
from services.stats.rollups import (
    Place,
    as_document,
    field,
    place_of,
    places,
    read_path,
    read_place,
    unfield,
)
from shared.domain import Category, Channel
from shared.events import EVENT_TYPES, Rating, ReopenCause, TicketEvent
from tests.stats_support import CITY, TicketStory, city, utc

D1 = "2025-03-10"
WATER = "yanggu.water"
Increments = list[tuple[Bucket, dict[str, float]]]


def story() -> TicketStory:
    """A ticket from Yanggu over WeChat, dispatched at 10:00 on D1 with 72 hours
    (deadline 10:00 on 13 March) and 2 hours to respond."""
    return TicketStory(
        "LC20250310-0001", district="yanggu", category=Category.COMPLAINT, channel=Channel.WECHAT
    )


def dispatched_story() -> TicketStory:
    s = story()
    s.dispatched(city(D1, 10), WATER, hours=72)
    return s


def on(day: str, department: str = WATER) -> Bucket:
    return Bucket(day, department, "yanggu", "complaint", "wechat")


def counted(event: TicketEvent) -> Increments:
    """The increments without the zeros, to compare meaning, not representation."""
    return [
        (bucket, {k: v for k, v in counts.items() if v})
        for bucket, counts in increments(event, CITY)
    ]


# Each kind of event: how to make it on D1 at 11:00, and what it adds.
CASES: dict[str, tuple[Callable[[TicketStory], TicketEvent], Increments]] = {
    "received": (lambda s: s.received(city(D1, 11)), [(on(D1, ""), {"received": 1})]),
    "resolved_on_spot": (
        lambda s: s.resolved_on_spot(city(D1, 11)),
        [(on(D1, ""), {"resolved_on_spot": 1, "received": 1})],
    ),
    # Counted in the new request's own channel (SMS), before any department.
    "linked": (
        lambda s: s.linked(city(D1, 11)),
        [(Bucket(D1, "", "yanggu", "complaint", "sms"), {"linked": 1})],
    ),
    "dispatched": (
        lambda s: s.dispatched(city(D1, 11), "yanggu.housing", hours=24),
        [(on(D1, "yanggu.housing"), {"dispatched": 1, "redispatched": 1})],
    ),
    "unroutable": (lambda s: s.unroutable(city(D1, 11)), [(on(D1, ""), {"unroutable": 1})]),
    "accepted": (
        lambda s: s.accepted(city(D1, 11)),
        [(on(D1), {"accepted": 1, "accepted_in_time": 1})],
    ),
    "returned": (lambda s: s.returned(city(D1, 11)), [(on(D1), {"returned": 1})]),
    "extension_requested": (
        lambda s: s.extension_requested(city(D1, 11)),
        [(on(D1), {"extension_requested": 1})],
    ),
    "extended": (
        lambda s: s.extended(city(D1, 11), city("2025-03-18", 10)),
        [(on(D1), {"extended": 1})],
    ),
    "extension_refused": (
        lambda s: s.extension_refused(city(D1, 11)),
        [(on(D1), {"extension_refused": 1})],
    ),
    "resolved": (
        lambda s: s.resolved(city(D1, 11)),
        [
            (
                on(D1),
                {
                    "resolved": 1,
                    "resolved_on_time": 1,
                    "handling_seconds_sum": 3600,
                    "handling_h0": 1,
                },
            ),
            (on("2025-03-13"), {"due_resolved": 1}),
        ],
    ),
    "feedback": (
        lambda s: s.feedback(city(D1, 11), Rating.SATISFIED, solved=True),
        [(on(D1, ""), {"feedback_received": 1})],
    ),
    "closed": (
        lambda s: s.closed(city(D1, 11), Rating.SATISFIED, solved=True),
        [(on(D1), {"closed": 1, "rated": 1, "rated_solved": 1, "rated_satisfied": 1})],
    ),
    "reopened": (
        lambda s: s.reopened(city(D1, 11), hours=24),
        [(on(D1), {"reopened": 1, "rated": 1})],
    ),
    "explained": (lambda s: s.explained(city(D1, 11)), [(on(D1), {"explained": 1})]),
    "urged": (lambda s: s.urged(city(D1, 11)), [(on(D1), {"urged": 1})]),
    "warning": (lambda s: s.warning(city(D1, 11)), [(on(D1), {"warnings": 1})]),
    "overdue": (
        lambda s: s.overdue(city(D1, 11)),
        [(on(D1), {"overdue_notices": 1}), (on("2025-03-13"), {"due_overdue": 1})],
    ),
    "supervised": (lambda s: s.supervised(city(D1, 11)), [(on(D1), {"supervised": 1})]),
}


def test_every_event_kind_has_a_case_and_a_counter() -> None:
    assert set(CASES) == set(EVENT_TYPES) == set(EVENT_COUNTERS)
    assert set(EVENT_COUNTERS.values()) <= set(FIELDS)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_increments_of_each_kind(kind: str) -> None:
    make, expected = CASES[kind]
    event = make(dispatched_story())
    assert event.event_type == kind
    assert counted(event) == expected
    for _, counts in increments(event, CITY):
        assert set(counts) <= set(FIELDS)


def test_a_repeat_of_a_closed_ticket_is_received_and_counted_as_a_repeat() -> None:
    event = story().received(city(D1, 11), related_to="LC20250301-0009")
    [(bucket, counts)] = counted(event)
    assert bucket == on(D1, "")
    assert counts == {"received": 1, "repeated": 1}


def test_first_dispatch_is_not_a_redispatch() -> None:
    event = story().dispatched(city(D1, 10), WATER, hours=72)
    assert counted(event) == [(on(D1), {"dispatched": 1})]


def test_late_acceptance_counts_without_the_response() -> None:
    s = dispatched_story()  # response limit 12:00
    assert counted(s.accepted(city(D1, 12))) == [(on(D1), {"accepted": 1, "accepted_in_time": 1})]
    assert counted(s.accepted(city(D1, 12, 1))) == [(on(D1), {"accepted": 1})]


@pytest.mark.parametrize(
    ("rating", "solved", "expected"),
    [
        (Rating.SATISFIED, True, {"rated_solved": 1, "rated_satisfied": 1}),
        (Rating.BASICALLY_SATISFIED, False, {"rated_satisfied": 1}),
        # Closed unsatisfied once the reopenings are used up: rated, not satisfied.
        (Rating.UNSATISFIED, True, {"rated_solved": 1}),
        (Rating.UNSATISFIED, False, {}),
    ],
)
def test_closing_rates_the_department(
    rating: Rating, solved: bool, expected: dict[str, float]
) -> None:
    event = dispatched_story().closed(city(D1, 11), rating, solved)
    assert counted(event) == [(on(D1), {"closed": 1, "rated": 1, **expected})]


def test_reopening_is_an_unsatisfied_rating_that_may_say_solved() -> None:
    event = dispatched_story().reopened(city(D1, 11), hours=24, solved=True)
    assert counted(event) == [(on(D1), {"reopened": 1, "rated": 1, "rated_solved": 1})]


def test_a_reopening_by_a_repeat_call_is_no_rating() -> None:
    cause = ReopenCause.REPEAT_CALL
    event = dispatched_story().reopened(city(D1, 11), hours=24, cause=cause)
    assert counted(event) == [(on(D1), {"reopened": 1})]


def test_a_repeat_call_reopening_a_closed_ticket_is_a_repeat_complaint() -> None:
    reopening = story().linked(city(D1, 11), channel=Channel.WECHAT, reopen=True)
    assert counted(reopening) == [(on(D1, ""), {"linked": 1, "repeated": 1})]
    plain = story().linked(city(D1, 11), channel=Channel.WECHAT)
    assert counted(plain) == [(on(D1, ""), {"linked": 1})]


# --- days in the city's time --------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "day"),
    [
        (utc("2025-03-10", 15, 59), "2025-03-10"),  # 23:59 in the city
        (utc("2025-03-10", 16, 0), "2025-03-11"),  # midnight in the city
        (utc("2025-03-10", 17, 30), "2025-03-11"),  # 01:30 in the city
        (city("2025-03-11", 0, 0), "2025-03-11"),
    ],
)
def test_day_is_the_city_day(at: datetime, day: str) -> None:
    assert day_of(at, CITY) == day
    (bucket, _), *_ = increments(story().received(at), CITY)
    assert bucket.day == day


def test_an_event_at_1730_utc_counts_on_the_next_city_day() -> None:
    event = story().received(utc("2025-03-10", 17, 30))
    assert counted(event) == [(on("2025-03-11", ""), {"received": 1})]


# --- due counters on the deadline's day ----------------------------------------------------


def test_on_time_resolution_is_due_on_the_deadline_day() -> None:
    s = story()
    s.dispatched(city(D1, 9), WATER, hours=50)  # deadline 11:00 on 12 March
    resolved = s.resolved(city(D1, 17))  # 8 hours: the (4, 8] bucket
    assert counted(resolved) == [
        (
            on(D1),
            {
                "resolved": 1,
                "resolved_on_time": 1,
                "handling_seconds_sum": 8 * 3600,
                "handling_h3": 1,
            },
        ),
        (on("2025-03-12"), {"due_resolved": 1}),
    ]


def test_late_resolution_is_due_and_late_on_the_deadline_day() -> None:
    s = story()
    # Deadline 17:30 UTC on 11 March: 01:30 on 12 March in the city.
    s.dispatched(utc("2025-03-10", 17, 30), WATER, hours=24)
    resolved = s.resolved(city("2025-03-14", 9))
    assert counted(resolved)[1] == (on("2025-03-12"), {"due_resolved": 1, "due_late_resolved": 1})
    overdue = s.overdue()
    assert counted(overdue) == [
        (on("2025-03-12"), {"overdue_notices": 1}),
        (on("2025-03-12"), {"due_overdue": 1}),
    ]


def test_overdue_notice_fired_late_still_counts_due_on_the_deadline_day() -> None:
    s = dispatched_story()  # deadline 10:00 on 13 March
    overdue = s.overdue(city("2025-03-15", 8))  # the notifier was down two days
    assert counted(overdue) == [
        (on("2025-03-15"), {"overdue_notices": 1}),
        (on("2025-03-13"), {"due_overdue": 1}),
    ]


def test_extended_deadline_moves_the_due_day() -> None:
    s = dispatched_story()
    s.extended(city("2025-03-12", 9), city("2025-03-20", 10))
    resolved = s.resolved(city("2025-03-19", 9))
    assert counted(resolved)[1] == (on("2025-03-20"), {"due_resolved": 1})


# --- department attribution ----------------------------------------------------------------


def test_steps_count_for_the_department_that_took_them() -> None:
    s = story()
    s.dispatched(city(D1, 9), "yanggu.housing", hours=24)
    returned = s.returned(city(D1, 10))
    redispatched = s.dispatched(city(D1, 10), WATER, hours=24)
    accepted = s.accepted(city(D1, 10, 30))
    assert [b.department for b, _ in increments(returned, CITY)] == ["yanggu.housing"]
    assert [b.department for b, _ in increments(redispatched, CITY)] == [WATER]
    assert [b.department for b, _ in increments(accepted, CITY)] == [WATER]


def test_steps_before_any_department_count_for_none() -> None:
    s = story()
    for event in (s.received(city(D1, 9)), s.unroutable(city(D1, 9, 1))):
        assert [b.department for b, _ in increments(event, CITY)] == [""]
    feedback = dispatched_story().feedback(city(D1, 12), Rating.SATISFIED, solved=True)
    assert [b.department for b, _ in increments(feedback, CITY)] == [""]


# --- handling time histogram ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "field"),
    [
        (0, "handling_h0"),
        (3600, "handling_h0"),  # exactly 1 h: upper edges are inclusive
        (3601, "handling_h1"),
        (2 * 3600, "handling_h1"),
        (4 * 3600 + 1, "handling_h3"),
        (24 * 3600, "handling_h4"),
        (24 * 3600 + 1, "handling_h5"),
        (720 * 3600, "handling_h11"),
        (720 * 3600 + 1, "handling_h12"),  # open-ended
        (10_000 * 3600, "handling_h12"),
    ],
)
def test_histogram_bucket_edges(seconds: float, field: str) -> None:
    assert histogram_field(seconds) == field
    assert field in HIST_FIELDS


def test_handling_time_runs_from_the_dispatch() -> None:
    s = dispatched_story()
    resolved = s.resolved(city(D1, 10) + timedelta(hours=30, minutes=30))
    here = counted(resolved)[0][1]
    assert here["handling_seconds_sum"] == 30.5 * 3600
    assert here["handling_h5"] == 1


def test_resolution_stamped_before_the_dispatch_counts_zero_hours() -> None:
    s = dispatched_story()
    resolved = s.resolved(city(D1, 9))  # clocks of two machines, a minute apart
    assert counted(resolved)[0][1]["handling_h0"] == 1
    assert "handling_seconds_sum" not in counted(resolved)[0][1]


# --- buckets and roll-ups ------------------------------------------------------------------


def test_a_bucket_counts_in_twelve_documents_totals_breakdowns_and_the_ranking() -> None:
    bucket = Bucket(D1, WATER, "yanggu", "complaint", "wechat")
    found = list(places(bucket))
    assert len(found) == len(set(found)) == 1 + 11 + 3
    assert len({p.doc_id for p in found}) == 12
    exact = {p.doc_id for p in found if p.path == "t"}
    assert {f"{D1}|all", f"{D1}|district=yanggu", f"{D1}|channel=wechat"} <= exact
    assert f"{D1}|department={WATER}|district=yanggu" in exact
    assert f"{D1}|category=complaint|channel=wechat" in exact
    assert len(exact) == 1 + 4 + 6  # none, each dimension, each pair
    pair = f"{D1}|department={WATER}|district=yanggu"
    assert Place(pair, "g.=complaint.=wechat") in found
    assert Place(f"{D1}|department={WATER}|category=complaint", "g.=wechat") in found
    assert Place(f"{D1}|district=yanggu|category=complaint", "g.=wechat") in found
    assert Place(f"{D1}|by=department", "s.=yanggu%2Ewater") in found  # for the ranking


def test_three_and_four_filters_read_a_breakdown_of_a_two_dimension_document() -> None:
    four = {"department": WATER, "district": "yanggu", "category": "complaint"}
    four["channel"] = "wechat"
    pair = f"{D1}|department={WATER}|district=yanggu"
    assert place_of(D1, four) == Place(pair, "g.=complaint.=wechat")
    without_channel = {k: v for k, v in four.items() if k != "channel"}
    assert place_of(D1, without_channel) == Place(pair, "g.=complaint", (None,))
    without_category = {k: v for k, v in four.items() if k != "category"}
    assert place_of(D1, without_category) == Place(pair, "g", (None, "=wechat"))
    without_district = {k: v for k, v in four.items() if k != "district"}
    assert place_of(D1, without_district) == Place(
        f"{D1}|department={WATER}|category=complaint", "g.=wechat"
    )
    assert place_of(D1, {"district": "yanggu", "category": "help", "channel": "sms"}) == Place(
        f"{D1}|district=yanggu|category=help", "g.=sms"
    )
    assert place_of(D1, {"department": WATER, "channel": "sms"}) == Place(
        f"{D1}|department={WATER}|channel=sms", "t"
    )


def test_every_filter_combination_reads_a_place_the_bucket_counts_in() -> None:
    bucket = Bucket(D1, WATER, "yanggu", "complaint", "wechat")
    merged = Merged()
    merged.add(bucket, {"received": 1})
    merged.add(Bucket(D1, "city.env", "guanxian", "help", "sms"), {"received": 10})
    values = {"department": WATER, "district": "yanggu", "category": "complaint"}
    values["channel"] = "wechat"
    for n in range(len(DIMENSIONS) + 1):
        for dims in combinations(DIMENSIONS, n):
            filters = {d: values[d] for d in dims}
            place = place_of(D1, filters)
            assert read_place(as_document(merged.docs.get(place.doc_id, {})), place) == {
                "received": 11 if not dims else 1
            }, dims
            other = place_of(D1, {d: "nowhere" for d in dims})
            assert (
                read_place(as_document(merged.docs.get(other.doc_id, {})), other) == {} or not dims
            )


def test_field_names_escape_what_a_path_cannot_hold() -> None:
    for value in ("", "guanxian.water", "$where", "a|b", "100%.x"):
        name = field(value)
        assert "." not in name and not name.startswith("$") and "|" not in name
        assert unfield(name) == value
    assert field("") != field("=")


def test_a_batch_merges_its_increments_per_document() -> None:
    merged = Merged()
    merged.add(Bucket(D1, WATER, "guanxian", "help", "phone"), {"received": 1, "urged": 0})
    merged.add(Bucket(D1, "city.env", "guanxian", "help", "sms"), {"received": 1})
    city_doc = merged.docs[f"{D1}|all"]
    assert city_doc["t.received"] == 2
    assert "t.urged" not in city_doc  # zeros are not written
    assert merged.docs[f"{D1}|district=guanxian|channel=sms"]["t.received"] == 1
    assert merged.docs[f"{D1}|district=guanxian"]["t.received"] == 2
    assert merged.docs[f"{D1}|by=department"]["s.=city%2Eenv.received"] == 1
    assert merged.about[f"{D1}|district=guanxian"] == {"day": D1, "dim": "district=guanxian"}
    assert merged.about[f"{D1}|all"] == {"day": D1, "dim": "all"}
    # 12 documents each; shared: all, by=department, district, category,
    # district+category.
    assert len(merged.docs) == 2 * 12 - 5


def test_a_breakdown_read_sums_the_groups_asked_nested_counters_too() -> None:
    doc = {
        "g": {
            "=help": {"=sms": {"received": 1, "q": {"d": {"=rule": 1}}}, "=app": {"received": 2}},
            "=complaint": {"=sms": {"received": 4, "q": {"d": {"=rule": 2, "=list": 1}}}},
        }
    }
    by_channel = read_place(doc, Place("x", "g", (None, "=sms")))
    assert by_channel == {"received": 5, "q": {"d": {"=rule": 3, "=list": 1}}}
    assert read_place(doc, Place("x", "g.=help", (None,))) == {
        "received": 3,
        "q": {"d": {"=rule": 1}},
    }
    assert read_place(doc, Place("x", "g.=help.=app")) == {"received": 2}
    assert read_place(doc, Place("x", "g", (None, "=web"))) == {}
    assert read_place(None, Place("x", "g.=help", (None,))) == {}


def test_read_path_finds_a_group_or_nothing() -> None:
    doc = {"t": {"received": 3}, "s": {"district": {"=guanxian": {"received": 2}}}}
    assert read_path(doc, "t") == {"received": 3}
    assert read_path(doc, "s.district.=guanxian") == {"received": 2}
    assert read_path(doc, "s.district.=yanggu") == {}
    assert read_path(None, "t") == {}
