"""Issue #17, point 9: a department that answers a dispatch within its response
limit by returning it (not ours) or, as a county sub-centre, by passing it on
(转派) has responded; only an ignored ticket counts against its response rate.
Through the router's real transitions and stats' real counting."""

from __future__ import annotations

from collections import defaultdict
from typing import cast
from zoneinfo import ZoneInfo

from services.router.workflow.department import return_ticket
from services.stats.measures import increments
from services.stats.rates import measures
from shared.events import Envelope, TicketEvent
from tests.unit.test_workflow import (
    SHENXIAN,
    WATER,
    Flow,
    engine,
    guan,
    passes_to,
    sample,
    shen,
)

__all__ = ["engine", "guan", "shen"]  # fixtures used below
SH = ZoneInfo("Asia/Shanghai")


def response_of(events: list[Envelope], department: str) -> tuple[int, int]:
    totals: dict[str, float] = defaultdict(float)
    for event in events:
        for bucket, counts in increments(cast(TicketEvent, event), SH):
            if bucket.department == department:
                for name, value in counts.items():
                    totals[name] += value
    response = measures(totals)["rates"]["response"]
    return response["numerator"], response["denominator"]


def test_a_sub_centre_passing_on_in_time_has_responded(shen: Flow) -> None:
    shen.later(hours=1).do(passes_to(SHENXIAN, "shenxian.housing"), SHENXIAN)
    assert response_of(shen.events, "shenxian") == (1, 1)
    # The unit it passed to must still answer on its own.
    assert response_of(shen.events, "shenxian.housing") == (0, 1)


def test_passing_on_after_the_response_limit_is_a_late_response(shen: Flow) -> None:
    shen.later(hours=3).do(passes_to(SHENXIAN, "shenxian.housing"), SHENXIAN)
    assert response_of(shen.events, "shenxian") == (0, 1)


def test_passing_on_an_accepted_ticket_is_not_a_second_response(shen: Flow) -> None:
    shen.later(hours=1).accept()
    shen.later(hours=1).do(passes_to(SHENXIAN, "shenxian.housing"), SHENXIAN)
    assert response_of(shen.events, "shenxian") == (1, 1)


def test_a_return_in_time_has_responded_an_ignored_ticket_has_not(guan: Flow) -> None:
    guan.later(hours=1).do(lambda s, c: return_ticket(s, WATER, "不属于本单位。", c), WATER)
    assert response_of(guan.events, "guanxian.water") == (1, 1)
    ignored = Flow.start(guan.engine, sample("S001", guan.engine), guan.now, "LC-2")
    assert response_of(ignored.events, "guanxian.water") == (0, 1)
