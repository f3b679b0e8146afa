"""The actions a ticket page offers, and the router call each one makes.

Which forms a page shows follows the ticket's state and the user's role; the
router still decides, and its refusal is shown next to the form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.directory import Directory


class BadField(ValueError):
    """A field the page can tell is wrong before asking the API."""


@dataclass(frozen=True)
class Action:
    path: str  # under /v1/tickets/{id}
    kinds: frozenset[str]
    body: Callable[[dict[str, str]], dict[str, Any]]
    done: str
    service: str = "router"


def _days(fields: dict[str, str]) -> int:
    try:
        return int(fields.get("days", ""))
    except ValueError:
        raise BadField("延期天数须为 1 到 10 的整数") from None


def _dispatch_body(fields: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"department": fields.get("department", "")}
    if fields.get("time_limit"):
        body["time_limit"] = fields["time_limit"]
    return body


def _feedback_body(fields: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "rating": fields.get("rating", ""),
        "solved": bool(fields.get("solved")),
    }
    if fields.get("comment"):
        body["comment"] = fields["comment"]
    return body


DEPARTMENT = frozenset({"department"})
STAFF = frozenset({"staff"})
CALL_CENTRE = frozenset({"agent", "staff"})
ACTIONS: dict[str, Action] = {
    "accept": Action("accept", DEPARTMENT, lambda f: {}, "已签收"),
    "return": Action("return", DEPARTMENT, lambda f: {"reason": f.get("reason", "")}, "已退单"),
    "extension": Action(
        "extension",
        DEPARTMENT,
        lambda f: {"days": _days(f), "reason": f.get("reason", "")},
        "已申请延期，等待热线审核",
    ),
    "resolve": Action("resolve", DEPARTMENT, lambda f: {"reply": f.get("reply", "")}, "已办结"),
    "sub-dispatch": Action(
        "sub-dispatch", DEPARTMENT, lambda f: {"department": f.get("department", "")}, "已转派"
    ),
    "explanation": Action(
        "explanation", DEPARTMENT, lambda f: {"text": f.get("text", "")}, "已提交一单一报说明"
    ),
    "dispatch": Action("dispatch", STAFF, _dispatch_body, "已派单"),
    "extension-decision": Action(
        "extension/decision",
        STAFF,
        lambda f: {"approve": f.get("decision") == "approve", "note": f.get("note", "")},
        "已审核延期申请",
    ),
    # The call-back (回访) goes to intake, which turns it into the rating event.
    "feedback": Action("feedback", CALL_CENTRE, _feedback_body, "已记录回访评价", "intake"),
}


def offered(ticket: dict[str, Any], kind: str, me: str, directory: Directory) -> list[str]:
    """The forms to show this user for this ticket, in page order."""
    status = ticket.get("status")
    call_back = ["feedback"] if status == "resolved" and kind in CALL_CENTRE else []
    if kind == "staff":
        shown = ["dispatch"] if status in ("unroutable", "dispatched", "accepted") else []
        return (
            (["extension-decision"] if status == "extension_requested" else []) + shown + call_back
        )
    if kind == "agent":
        return call_back
    if kind != "department" or ticket.get("department") != me:
        return []
    shown = []
    if status in ("dispatched", "reopened"):
        shown.append("accept")
    if status == "dispatched":
        shown.append("return")
    if status == "accepted":
        shown += ["extension", "resolve"]
    if ticket.get("reopen_count") and not ticket.get("explanation"):
        shown.append("explanation")
    if status in ("dispatched", "accepted") and units_of(me, directory):
        shown.append("sub-dispatch")
    return shown


def units_of(department: str, directory: Directory) -> list[tuple[str, str]]:
    """A sub-centre's own units (转派 targets): (id, name)."""
    return [(d.id, d.name) for d in directory.departments.values() if d.parent == department]


def dispatch_choices(district: str, directory: Directory) -> list[tuple[str, str]]:
    """Departments a dispatcher may pick for a ticket of the district: the
    district's own units first, then the city's."""
    place = directory.district(district)
    name = place.name if place else district
    local = [(d.id, d.name) for d in directory.departments.values() if d.district == name]
    city = [(d.id, d.name) for d in directory.departments.values() if d.district is None]
    return local + city
