"""What the pages show, computed without I/O: worklist tabs, deadlines in city
time with the working time left, labels, and the words of a refusal."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz

from shared.timefmt import deadline_label
from shared.workcalendar import WorkCalendar

TABS = (
    ("pending", "待签收"),
    ("working", "办理中"),
    ("soon", "即将超期"),
    ("overdue", "已超期"),
    ("done", "已办结"),
)
OPEN = frozenset({"dispatched", "accepted", "extension_requested", "reopened"})
STATUS_LABELS = {
    "dispatched": "待签收",
    "accepted": "办理中",
    "extension_requested": "延期审核中",
    "reopened": "重办",
    "resolved": "已办结",
    "closed": "已办结（已回访）",
    "unroutable": "待人工派单",
    "received": "已受理",
    "resolved_on_spot": "当场办结",
}
CATEGORY_LABELS = {
    "complaint": "投诉",
    "help": "求助",
    "consultation": "咨询",
    "suggestion": "建议",
    "report": "举报",
    "praise": "表扬",
}
PRIORITY_LABELS = {"normal": "一般", "urgent": "紧急"}
# Why the hotline refused, in the words of the people using the pages; the
# API's own message is shown beside it.
REFUSAL_HINTS = {
    "RETURN_WINDOW_PASSED": "已超过退单时限（派单后 2 个工作日内可退单）",
    "EXTENSION_LIMIT": "延期次数已用完",
    "EXPLANATION_REQUIRED": "重办工单须先提交一单一报说明",
    "ILLEGAL_TRANSITION": "工单当前状态不允许此操作",
    "NOT_YOUR_TICKET": "这不是本单位的工单",
    "FORBIDDEN": "无权执行此操作",
    "UNKNOWN_DEPARTMENT": "没有这个单位",
    "CONFLICT": "工单刚被他人修改，请刷新后重试",
    "INVALID": "填写有误",
    "TICKET_NOT_FOUND": "没有这个工单",
}
WINDOW_DAYS = 60  # more working days than any time limit plus extensions


def is_open(ticket: dict[str, Any]) -> bool:
    return ticket.get("status") in OPEN


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def tabs_of(ticket: dict[str, Any], now: datetime, calendar: WorkCalendar) -> set[str]:
    """The worklist tabs a ticket appears under (a ticket near its deadline is
    also still 待签收 or 办理中)."""
    status = ticket.get("status")
    if status in ("resolved", "closed"):
        return {"done"}
    if status not in OPEN:
        return set()
    tabs = {"pending"} if status == "dispatched" else {"working"}
    deadline = parse_time(ticket.get("deadline"))
    if deadline is not None and deadline <= now:
        tabs.add("overdue")
    elif deadline is not None and deadline <= calendar.add_working_days(now, 1):
        tabs.add("soon")
    return tabs


def worklist(
    tickets: Iterable[dict[str, Any]], tab: str, now: datetime, calendar: WorkCalendar
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The tickets of one tab sorted by deadline (none last), and every tab's count."""
    counts = {key: 0 for key, _ in TABS}
    shown = []
    for ticket in tickets:
        tabs = tabs_of(ticket, now, calendar)
        for key in tabs:
            counts[key] += 1
        if tab in tabs:
            shown.append(ticket)
    far = datetime.max.replace(tzinfo=now.tzinfo)
    shown.sort(key=lambda t: parse_time(t.get("deadline")) or far)
    return shown, counts


def city_time(value: Any, tz: ZoneInfo) -> str:
    moment = parse_time(value)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else "—"


def deadline_time(value: Any, calendar: WorkCalendar) -> str:
    """A deadline: at midnight, the previous working day's 24:00."""
    moment = parse_time(value)
    return deadline_label(moment, calendar) if moment else "—"


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} 天"] if days else []
    parts += [f"{hours} 小时"] if hours else []
    parts += [f"{mins} 分"] if mins and not days else []
    return " ".join(parts) or "不到 1 分"


def remaining(deadline_value: Any, now: datetime, calendar: WorkCalendar) -> str:
    """The working time left before the deadline, or how long it is overdue."""
    deadline = parse_time(deadline_value)
    if deadline is None:
        return "—"
    if deadline <= now:
        return f"已超期 {_span((now - deadline).total_seconds())}"
    days = 0
    while days < WINDOW_DAYS and calendar.add_working_days(now, days + 1) <= deadline:
        days += 1
    rest = (deadline - calendar.add_working_days(now, days)).total_seconds()
    if days == 0:
        return f"剩余 {_span(rest)}"
    hours = int(rest // 3600)
    return f"剩余 {days} 个工作日" + (f" {hours} 小时" if hours else "")


def refusal_text(code: str, message: str) -> str:
    hint = REFUSAL_HINTS.get(code)
    return f"{hint}：{message}" if hint else message


def similar(
    text: str, candidates: Iterable[dict[str, Any]], threshold: float, limit: int = 5
) -> list[dict[str, Any]]:
    """Open tickets whose text resembles this one, most alike first (并单 offers)."""
    scored = []
    for ticket in candidates:
        score = fuzz.partial_ratio(text, str(ticket.get("text") or ""))
        if score >= threshold:
            scored.append((score, ticket))
    scored.sort(key=lambda pair: -pair[0])
    return [{**t, "similarity": round(s)} for s, t in scored[:limit]]


EVENT_LABELS = {
    "received": "受理",
    "resolved_on_spot": "当场办结",
    "linked": "并单（同一诉求再次来电）",
    "dispatched": "派单",
    "unroutable": "转人工派单",
    "accepted": "签收",
    "returned": "退单",
    "extension_requested": "申请延期",
    "extended": "延期获批",
    "extension_refused": "延期未获批",
    "resolved": "办结",
    "feedback": "回访",
    "closed": "结单",
    "reopened": "重办",
    "explained": "一单一报说明",
    "urged": "催办",
    "warning": "黄牌预警",
    "overdue": "红牌超期",
    "supervised": "督办",
}
# Payload fields a history line shows, with their labels; never the citizen's
# name, number or address (the received event carries them).
STEP_FIELDS = (
    ("department", "单位"),
    ("days", "天数"),
    ("reason", "理由"),
    ("note", "说明"),
    ("reply", "答复"),
    ("text", "说明"),
    ("rating", "评价"),
    ("comment", "意见"),
)
RATINGS = {"satisfied": "满意", "basically_satisfied": "基本满意", "unsatisfied": "不满意"}


def step_summary(step: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """One line of a ticket's history: what happened, who did it, the details."""
    kind = str(step.get("event_type", ""))
    payload = step.get("payload") or {}
    details = []
    for field, label in STEP_FIELDS:
        value = payload.get(field)
        if value in (None, "") or (kind == "received" and field == "text"):
            continue
        if field == "department":
            value = names.get(str(value), value)
        elif field == "rating":
            value = RATINGS.get(str(value), value)
        details.append(f"{label}：{value}")
    actor = step.get("actor") or {}
    who = names.get(str(actor.get("id")), actor.get("id") or "")
    return {
        "at": step.get("at"),
        "label": EVENT_LABELS.get(kind, kind),
        "actor": who,
        "details": details,
    }


NOTICE_KINDS = {
    "dispatch": "派单通知",
    "urge": "催办",
    "warning": "黄牌预警",
    "overdue": "红牌超期",
    "supervision": "督办",
}
DELIVERY_STATES = {"pending": "发送中", "delivered": "已送达", "dead": "未送达"}


def notice_summary(delivery: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """One notice the notifier sent about a ticket: what, to whom, how it went
    (never its body: it may carry the citizen's contact)."""
    department = str(delivery.get("department", ""))
    return {
        "at": delivery.get("created_at"),
        "kind": NOTICE_KINDS.get(str(delivery.get("kind")), delivery.get("kind")),
        "department": names.get(department, department),
        "channel": delivery.get("channel"),
        "status": DELIVERY_STATES.get(str(delivery.get("status")), delivery.get("status")),
        "attempts": len(delivery.get("attempts") or []),
    }
