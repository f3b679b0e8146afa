"""The workbench's view logic without I/O: worklist tabs and their counts,
deadlines in city time with the working time left, the forms a ticket page
offers each role, the API bodies the forms make, and refusals in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.workbench import viewlogic as vl
from services.workbench.actions import ACTIONS, BadField, dispatch_choices, offered, units_of
from services.workbench.clients import message_of
from services.workbench.pages_agent import entry_of
from services.workbench.pages_citizen import submission_of
from services.workbench.sessions import seal, unseal
from shared.directory import Directory, load_directory
from shared.settings import DATA_DIR
from shared.workcalendar import WorkCalendar

# Wednesday 2026-12-02 10:00 in Liaocheng, a working day.
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")


def ticket(status: str, deadline: datetime | None, **extra: Any) -> dict[str, Any]:
    value = deadline.isoformat() if deadline else None
    return {"ticket_id": f"T-{status}-{value}", "status": status, "deadline": value, **extra}


def test_tabs_follow_status_and_deadline(cal: WorkCalendar) -> None:
    late = ticket("accepted", NOW - timedelta(hours=1))
    soon = ticket("dispatched", NOW + timedelta(hours=5))
    later = ticket("accepted", NOW + timedelta(days=6))
    done = ticket("resolved", NOW - timedelta(days=3))
    assert vl.tabs_of(late, NOW, cal) == {"working", "overdue"}
    assert vl.tabs_of(soon, NOW, cal) == {"pending", "soon"}
    assert vl.tabs_of(later, NOW, cal) == {"working"}
    assert vl.tabs_of(done, NOW, cal) == {"done"}
    assert vl.tabs_of(ticket("unroutable", None), NOW, cal) == set()


def test_soon_counts_working_days_not_calendar_days(cal: WorkCalendar) -> None:
    # Friday 16:00 with a deadline on Monday 10:00: one working day away.
    friday = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    monday = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    assert "soon" in vl.tabs_of(ticket("accepted", monday), friday, cal)
    assert "soon" not in vl.tabs_of(ticket("accepted", monday), NOW, cal)


def test_worklist_sorts_by_deadline_and_counts_every_tab(cal: WorkCalendar) -> None:
    first = ticket("dispatched", NOW + timedelta(days=1))
    second = ticket("dispatched", NOW + timedelta(days=9))
    no_deadline = ticket("dispatched", None)
    tickets = [second, no_deadline, first, ticket("closed", NOW)]
    shown, counts = vl.worklist(tickets, "pending", NOW, cal)
    assert shown == [first, second, no_deadline]
    assert counts == {"pending": 3, "working": 0, "soon": 1, "overdue": 0, "done": 1}


def test_remaining_working_time(cal: WorkCalendar) -> None:
    assert vl.remaining(NOW + timedelta(hours=2, minutes=5), NOW, cal) == "剩余 2 小时 5 分"
    # Wednesday 10:00 to next Wednesday 10:00 is five working days.
    assert vl.remaining(NOW + timedelta(days=7), NOW, cal) == "剩余 5 个工作日"
    assert vl.remaining(NOW - timedelta(days=1, hours=3), NOW, cal) == "已超期 1 天 3 小时"
    assert vl.remaining(None, NOW, cal) == "—"


def test_city_time_is_beijing_time(cal: WorkCalendar) -> None:
    assert vl.city_time("2026-12-02T02:00:00Z", cal.tz) == "2026-12-02 10:00"
    assert vl.city_time(None, cal.tz) == "—"


def test_department_forms_follow_the_state(directory: Directory) -> None:
    mine = "guanxian.water"
    dispatched = {"status": "dispatched", "department": mine}
    assert offered(dispatched, "department", mine, directory) == ["accept", "return"]
    accepted = {"status": "accepted", "department": mine}
    assert offered(accepted, "department", mine, directory) == ["extension", "resolve"]
    reopened = {"status": "reopened", "department": mine, "reopen_count": 1}
    assert offered(reopened, "department", mine, directory) == ["accept", "explanation"]
    assert offered(dispatched, "department", "guanxian.housing", directory) == []
    assert offered(dispatched, "agent", "seat-1", directory) == []
    resolved = {"status": "resolved", "department": mine}
    assert offered(resolved, "agent", "seat-1", directory) == ["feedback"]
    assert offered(resolved, "staff", "zhang", directory) == ["feedback"]
    assert offered(resolved, "department", mine, directory) == []


def test_sub_centre_may_pass_on_and_staff_decide(directory: Directory) -> None:
    sub = {"status": "accepted", "department": "guanxian"}
    assert "sub-dispatch" in offered(sub, "department", "guanxian", directory)
    assert "guanxian.water" in [dep for dep, _ in units_of("guanxian", directory)]
    assert units_of("guanxian.water", directory) == []
    pending = {"status": "extension_requested", "department": "guanxian.water"}
    assert offered(pending, "staff", "zhang", directory) == ["extension-decision"]
    assert offered({"status": "unroutable"}, "staff", "zhang", directory) == ["dispatch"]


def test_dispatch_choices_put_the_district_first(directory: Directory) -> None:
    choices = [dep for dep, _ in dispatch_choices("guanxian", directory)]
    assert choices[0].startswith("guanxian")
    assert "city.platform" in choices
    assert not any(dep.startswith("yanggu") for dep in choices)


def test_action_bodies() -> None:
    assert ACTIONS["extension"].body({"days": "3", "reason": "需勘察"}) == {
        "days": 3,
        "reason": "需勘察",
    }
    with pytest.raises(BadField):
        ACTIONS["extension"].body({"days": "三", "reason": "x"})
    decision = ACTIONS["extension-decision"].body({"decision": "approve", "note": ""})
    assert decision == {"approve": True, "note": ""}
    assert ACTIONS["extension-decision"].body({"decision": "refuse"})["approve"] is False
    feedback = ACTIONS["feedback"]
    assert feedback.service == "intake"
    assert feedback.body({"rating": "unsatisfied", "comment": "没修好"}) == {
        "rating": "unsatisfied",
        "solved": False,
        "comment": "没修好",
    }
    assert ACTIONS["dispatch"].body({"department": "guanxian.water"}) == {
        "department": "guanxian.water"
    }


def test_refusals_in_words() -> None:
    text = vl.refusal_text("RETURN_WINDOW_PASSED", "the return window closed")
    assert text.startswith("已超过退单时限") and "the return window closed" in text
    assert vl.refusal_text("SOMETHING_NEW", "as the API says") == "as the API says"


def test_error_bodies_of_every_service_shape() -> None:
    assert message_of({"code": "EXTENSION_LIMIT", "message": "once"}) == ("EXTENSION_LIMIT", "once")
    assert message_of({"detail": "no ticket X"}) == ("ERROR", "no ticket X")
    fields = {"detail": [{"loc": ["body", "reason"], "msg": "too short"}]}
    assert message_of(fields) == ("INVALID", "reason: too short")
    assert message_of("plain") == ("ERROR", "plain")


def test_history_lines_never_show_the_citizen() -> None:
    received = {
        "event_type": "received",
        "at": NOW,
        "actor": {"kind": "citizen", "id": "web"},
        "payload": {"ticket": {"citizen": {"name": "王五", "phone": "13912345678"}}},
    }
    line = vl.step_summary(received, {})
    assert line["label"] == "受理"
    assert "13912345678" not in str(line) and "王五" not in str(line)
    returned = {
        "event_type": "returned",
        "at": NOW,
        "actor": {"kind": "department", "id": "guanxian.water"},
        "payload": {"department": "guanxian.water", "reason": "不属于本单位"},
    }
    line = vl.step_summary(returned, {"guanxian.water": "冠县水务局"})
    assert line["actor"] == "冠县水务局"
    assert "理由：不属于本单位" in line["details"]


def test_similar_open_tickets() -> None:
    found = vl.similar(
        "小区门口路灯坏了好几天",
        [
            {"ticket_id": "A", "text": "小区门口路灯坏了好几天，晚上很黑"},
            {"ticket_id": "B", "text": "咨询社保卡补办"},
        ],
        60,
    )
    assert [t["ticket_id"] for t in found] == ["A"]
    assert found[0]["similarity"] >= 60


def test_agent_entry_and_citizen_submission() -> None:
    form = {
        "caller_number": "13912345678",
        "caller_name": "",
        "district": "guanxian",
        "category": "help",
        "text": "路灯不亮",
        "address": "贾镇东街",
        "call_id": "call-1",
    }
    entry = entry_of(form, "seat-7")
    assert entry["agent_id"] == "seat-7" and entry["call_id"] == "call-1"
    assert entry["text"] == "路灯不亮（地点：贾镇东街）"
    assert "caller_name" not in entry and entry["priority"] == "normal"
    body = submission_of({"district": "guanxian", "category": "help", "text": "x", "phone": "1391"})
    assert body["channel"] == "web" and body["citizen"] == {"phone": "1391"}
    assert "citizen" not in submission_of({"district": "d", "category": "help", "text": "x"})


def test_a_sealed_key_opens_only_with_its_session_id() -> None:
    sealed = seal("session-a", "hk_secret")
    assert b"hk_secret" not in sealed
    assert unseal("session-a", sealed) == "hk_secret"
    assert unseal("session-b", sealed) is None
    assert unseal("session-a", sealed[:-1] + bytes([sealed[-1] ^ 1])) is None


def test_a_notice_line_names_kind_unit_and_outcome_never_the_body() -> None:
    delivery = {
        "kind": "dispatch",
        "department": "guanxian.water",
        "channel": "webhook",
        "status": "delivered",
        "attempts": [{"n": 1}, {"n": 2}],
        "body": {"contact": {"phone": "13912345678"}},
    }
    line = vl.notice_summary(delivery, {"guanxian.water": "冠县水务集团"})
    assert line["kind"] == "派单通知" and line["department"] == "冠县水务集团"
    assert line["status"] == "已送达" and line["attempts"] == 2
    assert "13912345678" not in str(line)
