"""The per-ticket view (services/stats/projection.py): built from the ticket's
steps, keyed by event_id and replayed in time order, so neither the arrival order
nor a redelivery changes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.stats.projection import (
    build_view,
    current_status,
    ordered_steps,
    step_of,
)
from shared.domain import Category
from shared.events import EVENT_TYPES, Rating, ReopenCause, TicketEvent
from shared.events.catalogue import CLOSED_STATUSES, NEUTRAL_EVENTS, STATUS_AFTER
from shared.mongo import Document
from tests.stats_support import TicketStory, city

TICKET = "LC20250310-0001"
HOUSING, WATER = "guanxian.housing", "guanxian.water"


def d(day: int, hh: int, mm: int = 0) -> datetime:
    return city(f"2025-03-{day:02d}", hh, mm)


def story() -> TicketStory:
    return TicketStory(TICKET, district="guanxian", town="贾镇", category=Category.HELP)


def whole_life() -> list[tuple[TicketEvent, dict[str, Any]]]:
    """Every kind of step of one ticket, in time order, with what the view says
    after it: status, open, deadline, department."""
    s = story()
    return [
        (s.received(d(10, 9)), {"status": "received", "open": 1}),
        (
            s.dispatched(d(10, 9, 5), HOUSING, hours=24),
            {"status": "dispatched", "deadline": d(11, 9, 5), "department": HOUSING},
        ),
        # The return and the dispatch it leads to carry the same instant.
        (s.returned(d(10, 10)), {"status": "returned", "returned_by": [HOUSING]}),
        (
            s.dispatched(d(10, 10), WATER, hours=24),
            {"status": "dispatched", "deadline": d(11, 10), "department": WATER},
        ),
        (s.urged(d(10, 12, 30)), {"status": "dispatched"}),
        (s.accepted(d(10, 13)), {"status": "accepted", "accepted_at": d(10, 13)}),
        # The same problem again by SMS, merged: counted, the ticket's own
        # dimensions (its channel) unchanged.
        (s.linked(d(10, 14)), {"status": "accepted", "linked": 1, "channel": s.channel.value}),
        (s.extension_requested(d(10, 15)), {"status": "extension_requested", "open": 1}),
        (s.extension_refused(d(10, 16)), {"status": "accepted", "deadline": d(11, 10)}),
        (s.extension_requested(d(10, 17)), {"status": "extension_requested"}),
        (s.extended(d(10, 18), d(12, 18)), {"status": "accepted", "deadline": d(12, 18)}),
        (s.warning(d(12, 9)), {"status": "accepted", "overdue_notified": False}),
        (s.overdue(), {"status": "accepted", "overdue_notified": True, "open": 1}),
        (s.supervised(d(13, 9)), {"status": "accepted"}),
        (
            s.resolved(d(13, 10), reply="已修复管道"),
            {"status": "resolved", "open": 0, "resolved_at": d(13, 10), "reply": "已修复管道"},
        ),
        (s.feedback(d(13, 12), Rating.UNSATISFIED, solved=False), {"status": "resolved"}),
        (
            s.reopened(d(13, 12), hours=24),  # the same instant as the rating
            {
                "status": "reopened",
                "open": 1,
                "deadline": d(14, 12),
                "reopen_count": 1,
                "resolved_at": None,
                "accepted_at": None,
                "overdue_notified": False,
            },
        ),
        (s.accepted(d(13, 13)), {"status": "accepted", "accepted_at": d(13, 13)}),
        (s.explained(d(13, 14), text="管道需整体更换"), {"explanation": "管道需整体更换"}),
        (s.resolved(d(14, 9)), {"status": "resolved", "open": 0}),
        (s.feedback(d(14, 10), Rating.BASICALLY_SATISFIED, solved=True), {"status": "resolved"}),
        (
            s.closed(d(14, 10), Rating.BASICALLY_SATISFIED, solved=True),
            {"status": "closed", "open": 0, "rating": "basically_satisfied"},
        ),
    ]


LIFE = [event for event, _ in whole_life()]
IN_ORDER = build_view(TICKET, None, LIFE)


def test_the_life_covers_every_status_changing_kind() -> None:
    kinds = {e.event_type for e in LIFE}
    assert kinds | {"resolved_on_spot", "unroutable"} == set(EVENT_TYPES)
    assert set(STATUS_AFTER) | NEUTRAL_EVENTS == set(EVENT_TYPES)


def test_view_after_each_step() -> None:
    view: Document | None = None
    for event, expected in whole_life():
        view = build_view(TICKET, view, [event])
        got = {key: view.get(key) for key in expected}
        assert got == expected, event.event_type
        assert view["open"] == (0 if view["status"] in CLOSED_STATUSES else 1)


def test_whole_view() -> None:
    view = IN_ORDER
    assert view["_id"] == TICKET
    assert set(view["steps"]) == {str(e.event_id) for e in LIFE}
    assert (view["district"], view["category"], view["channel"]) == ("guanxian", "help", "phone")
    assert view["town"] == "贾镇"
    assert view["received_at"] == d(10, 9)
    assert view["dispatched_at"] == d(10, 10)
    assert view["returned_by"] == [HOUSING]
    assert view["closed_at"] == d(14, 10)
    assert view["department"] == WATER


def test_history_is_the_life_in_order_causes_first_at_one_instant() -> None:
    assert [step["event_id"] for step in ordered_steps(IN_ORDER)] == [str(e.event_id) for e in LIFE]


@settings(max_examples=150, deadline=None)
@given(st.permutations(LIFE))
def test_any_arrival_order_gives_the_same_view(events: list[TicketEvent]) -> None:
    assert build_view(TICKET, None, events) == IN_ORDER


@settings(max_examples=150, deadline=None)
@given(st.integers(1, len(LIFE)).flatmap(lambda n: st.permutations(LIFE[:n])))
def test_any_arrival_order_of_a_life_so_far_gives_the_same_view(events: list[TicketEvent]) -> None:
    in_order = sorted(events, key=LIFE.index)
    assert build_view(TICKET, None, events) == build_view(TICKET, None, in_order)


@settings(max_examples=100, deadline=None)
@given(st.permutations(LIFE), st.lists(st.integers(0, len(LIFE)), max_size=6))
def test_any_batches_in_any_order_give_the_same_view(
    events: list[TicketEvent], cuts: list[int]
) -> None:
    view: Document | None = None
    edges = [0, *sorted(cuts), len(events)]
    for start, end in pairwise(edges):
        view = build_view(TICKET, view, events[start:end])
    assert view == IN_ORDER


def test_applying_an_event_twice_is_a_no_op() -> None:
    for event in LIFE:
        assert build_view(TICKET, IN_ORDER, [event]) == IN_ORDER
    assert build_view(TICKET, None, LIFE + LIFE[::-1]) == IN_ORDER


def test_a_return_and_its_dispatch_at_one_instant_in_either_order() -> None:
    s = story()
    received = s.received(d(10, 9))
    first = s.dispatched(d(10, 9, 5), HOUSING, hours=24)
    returned = s.returned(d(10, 10))
    again = s.dispatched(d(10, 10), WATER, hours=24)
    in_order: list[TicketEvent] = [received, first, returned, again]
    for events in (in_order, in_order[::-1]):
        view = build_view(TICKET, None, events)
        assert (view["status"], view["department"]) == ("dispatched", WATER)
        kinds = [step["event_type"] for step in ordered_steps(view)]
        assert kinds == ["received", "dispatched", "returned", "dispatched"]


def test_history_is_in_time_order_across_time_zones() -> None:
    s = story()
    received = s.received(d(10, 9))
    # 01:05 UTC is 09:05 in the city: after the receipt, though its hour is smaller.
    dispatched = s.dispatched(datetime(2025, 3, 10, 1, 5, tzinfo=UTC), WATER, hours=24)
    view = build_view(TICKET, None, [dispatched, received])
    assert [step["event_type"] for step in ordered_steps(view)] == ["received", "dispatched"]
    assert view["status"] == "dispatched"


def test_resolved_on_the_spot() -> None:
    s = story()
    view = build_view(TICKET, None, [s.resolved_on_spot(d(10, 9), answer="停水通知已发布")])
    assert (view["status"], view["open"], view["answer"]) == (
        "resolved_on_spot",
        0,
        "停水通知已发布",
    )
    assert view["received_at"] == d(10, 9)
    assert view["text"] == s.text


def test_unroutable_waits_without_a_department() -> None:
    s = story()
    s.dispatched(d(10, 9, 5), HOUSING, hours=24)
    view = build_view(TICKET, None, [s.received(d(10, 9)), s.unroutable(d(10, 9, 1))])
    assert (view["status"], view["open"], view["department"]) == ("unroutable", 1, None)


def test_steps_before_the_receipt_leave_the_status_known() -> None:
    s = story()
    s.dispatched(d(10, 9, 5), WATER, hours=24)
    view = build_view(TICKET, None, [s.accepted(d(10, 10))])
    assert (view["status"], view["open"]) == ("accepted", 1)
    only_notice = build_view(TICKET, None, [s.warning(d(10, 20))])
    assert (only_notice["status"], only_notice["open"]) == ("unknown", 1)


def test_free_text_that_looks_like_a_time_stays_text() -> None:
    s = story()
    s.dispatched(d(10, 9, 5), WATER, hours=24)
    view = build_view(TICKET, None, [s.resolved(d(10, 12), reply="20250310T1000")])
    assert view["reply"] == "20250310T1000"


def test_step_keeps_actor_and_payload() -> None:
    s = story()
    s.dispatched(d(10, 9, 5), WATER, hours=24)
    event = s.returned(d(10, 10), reason="不属于本单位职责")
    step = step_of(event)
    assert step["event_id"] == str(event.event_id)
    assert step["at"] == d(10, 10)
    assert step["actor"] == {"kind": "department", "id": WATER}
    assert step["payload"]["reason"] == "不属于本单位职责"
    assert step["payload"]["dims"]["district"] == "guanxian"


def test_current_status() -> None:
    assert current_status([]) == "unknown"
    history = ordered_steps(IN_ORDER)
    assert current_status(history) == "closed"
    assert current_status(history[::-1]) == "closed"
    notices = [s for s in history if s["event_type"] in NEUTRAL_EVENTS]
    assert current_status(notices) == "unknown"


def test_a_closed_ticket_reopened_by_a_repeat_call_is_open_again() -> None:
    s = story()
    life: list[TicketEvent] = [
        s.received(d(10, 9)),
        s.dispatched(d(10, 9, 5), WATER, hours=24),
        s.accepted(d(10, 10)),
        s.resolved(d(10, 12)),
        s.closed(d(11, 9), Rating.SATISFIED, True),
    ]
    view = build_view(TICKET, None, life)
    assert (view["status"], view["open"], view["closed_at"]) == ("closed", 0, d(11, 9))
    # The caller calls again (reopen policy): the link, then the router's reopening.
    repeat = s.linked(d(12, 9), reopen=True)
    reopened = s.reopened(d(12, 9, 1), hours=120, cause=ReopenCause.REPEAT_CALL)
    view = build_view(TICKET, view, [reopened, repeat])  # in any order
    assert (view["status"], view["open"], view["linked"]) == ("reopened", 1, 1)
    assert (view["reopen_cause"], view["closed_at"]) == ("repeat_call", None)
    assert view["deadline"] == d(12, 9, 1) + timedelta(hours=120)  # the reopening's
