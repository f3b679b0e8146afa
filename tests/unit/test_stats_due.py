"""Issue #17, point 3: a ticket is due once per time limit it was given
(docs/DOMAIN.md §4), worked by hand through the router's real transitions and
stats' real counting.

The ticket (S001, Guan County water) lives through two time limits: the
dispatch's (extended, then missed) and the reopening's (met). The 2026
holidays: Mid-Autumn 09-25..27, National Day 10-01..07, make-up Saturday 10-10.
"""

from __future__ import annotations

from collections import defaultdict
from typing import cast
from zoneinfo import ZoneInfo

from services.router.workflow.department import explain
from services.stats.measures import increments
from services.stats.rates import measures
from shared.domain import Actor, ActorKind
from shared.events import Envelope, OverduePayload, Rating, TicketEvent, TicketOverdue
from tests.unit.test_workflow import STAFF, WATER, Flow, asks, at, decides, engine, guan
from tests.unit.test_workflow_repeat import calls_again, repeat_of

__all__ = ["engine", "guan"]  # fixtures used below
SH = ZoneInfo("Asia/Shanghai")
NOTIFIER = Actor(kind=ActorKind.SYSTEM, id="notifier")


def red_card(flow: Flow) -> TicketOverdue:
    """What the notifier publishes at the deadline of an unresolved ticket."""
    assert flow.state.deadline is not None and flow.state.department is not None
    flow.at(flow.state.deadline)
    return TicketOverdue(
        ticket_id=flow.state.ticket_id,
        occurred_at=flow.now,
        actor=NOTIFIER,
        payload=OverduePayload(
            dims=flow.state.dims, department=flow.state.department, deadline=flow.state.deadline
        ),
    )


def due_by_day(events: list[Envelope]) -> dict[str, dict[str, int]]:
    """The completion figures summed over each day's buckets, as stats counts them."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for event in events:
        for bucket, counts in increments(cast(TicketEvent, event), SH):
            for name, value in counts.items():
                totals[bucket.day][name] += value
    result = {}
    for day, t in sorted(totals.items()):
        m = measures(t)
        if m["counts"]["due"] or m["rates"]["completion"]["numerator"]:
            result[day] = {"due": m["counts"]["due"], "done": m["rates"]["completion"]["numerator"]}
    return result


def test_a_ticket_is_due_once_per_time_limit(guan: Flow) -> None:
    events: list[Envelope] = list(guan.events)
    # Limit 1: dispatched Tuesday 09-22 10:00, 5 working days: 09-30 10:00.
    events += guan.later(hours=1).accept()
    # Extended by 3 working days before the deadline: 10-08, 10-09, 10-10 10:00.
    events += guan.at(at(9, 28)).do(asks(WATER, 3), WATER)
    events += guan.later(hours=1).do(decides(STAFF, True), STAFF)
    assert guan.state.deadline == at(10, 10)
    # Missed: the red card at 10-10 10:00, resolved late on Monday 10-12.
    events.append(red_card(guan))
    events += guan.at(at(10, 12)).resolve()
    # Limit 2: unsatisfied on Tuesday 10-13 10:00 reopens it with 5 working days
    # from then: 10-14, 15, 16, 19, 20 10:00. Met on Friday 10-16.
    events += guan.at(at(10, 13)).rate(Rating.UNSATISFIED, solved=False)
    assert guan.state.deadline == at(10, 20)
    events += guan.later(hours=1).accept()
    events += guan.later(hours=1).do(lambda s, c: explain(s, WATER, "已与村委会协调。", c), WATER)
    events += guan.at(at(10, 16)).resolve()
    events += guan.later(days=1).rate(Rating.SATISFIED)

    # By hand: limit 1 is due on 10-10 (its last deadline, not 09-30), overdue
    # then and resolved late; limit 2 is due on 10-20 and resolved. Two limits,
    # two due tickets, each once.
    assert due_by_day(events) == {
        "2026-10-10": {"due": 1, "done": 1},
        "2026-10-20": {"due": 1, "done": 1},
    }


def test_no_extension_once_the_deadline_has_passed(guan: Flow) -> None:
    # Else the red card counts the limit due on 09-30 and the resolution again on
    # the extended deadline's day: one limit, two due tickets.
    guan.later(hours=1).accept()
    guan.at(at(9, 30, 10, 1))
    guan.refuse(asks(WATER, 3), "EXTENSION_TOO_LATE", 409)


def test_no_approval_once_the_deadline_has_passed(guan: Flow) -> None:
    guan.later(hours=1).accept()
    guan.at(at(9, 30, 9)).do(asks(WATER, 3), WATER)
    guan.at(at(9, 30, 11))
    guan.refuse(decides(STAFF, True), "EXTENSION_TOO_LATE", 409)
    guan.do(decides(STAFF, False, "期限已过"), STAFF)  # a refusal is still recorded
    assert guan.state.deadline == at(9, 30)


def test_a_ticket_reopened_by_a_repeat_call_is_due_once_per_limit(guan: Flow) -> None:
    events: list[Envelope] = list(guan.events)
    # Limit 1: dispatched Tuesday 09-22 10:00, due 09-30 10:00; resolved on
    # Wednesday 09-23 and closed satisfied on Thursday.
    events += guan.later(hours=1).accept()
    events += guan.at(at(9, 23)).resolve()
    events += guan.at(at(9, 24)).rate(Rating.SATISFIED)
    # Limit 2: the caller calls again on Monday 09-28 10:00 (reopen policy): 5
    # working days from then, 09-29, 09-30, 10-08, 10-09, 10-10 (make-up day).
    repeat = repeat_of(guan.state)
    events.append(repeat)
    events += calls_again(guan.at(at(9, 28)), repeat)
    assert guan.state.deadline == at(10, 10)
    events += guan.later(hours=1).accept()
    events += guan.at(at(10, 9)).resolve()  # no explanation asked: no rating reopened it
    events += guan.later(days=1).rate(Rating.SATISFIED)

    # By hand: limit 1 due on 09-30 and done; limit 2 due on 10-10 and done.
    assert due_by_day(events) == {
        "2026-09-30": {"due": 1, "done": 1},
        "2026-10-10": {"due": 1, "done": 1},
    }
    totals: dict[str, float] = defaultdict(float)
    for event in events:
        for _, counts in increments(cast(TicketEvent, event), SH):
            for name, value in counts.items():
                totals[name] += value
    counts = measures(totals)["counts"]
    # One repeat complaint, one reopening, two ratings (both closings), no more.
    assert (counts["repeated"], counts["reopened"], counts["resolved"]) == (1, 1, 2)
    assert measures(totals)["rates"]["satisfaction"] == {
        "numerator": 2,
        "denominator": 2,
        "value": 1.0,
    }
