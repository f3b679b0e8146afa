"""Message texts, in Chinese, one per kind of notice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.timefmt import deadline_label
from shared.workcalendar import WorkCalendar

TEMPLATES: dict[str, tuple[str, str]] = {
    # kind: (subject, body)
    "dispatch": (
        "【12345派单】{ticket_id}",
        "{department_name}：12345热线向你单位派发工单{ticket_id}（{role_name}），"
        "请于{response_deadline_local}前签收，{deadline_local}前办结。诉求内容：{text}{contact_line}",
    ),
    # A reopening (重办), by an unsatisfied rating or a repeat call: {cause_text}.
    "reopen": (
        "【12345重办】{ticket_id}",
        "{department_name}：工单{ticket_id}{cause_text}，现重新交办你单位，"
        "请于{response_deadline_local}前签收，{deadline_local}前办结。",
    ),
    "urge": (
        "【12345催办】{ticket_id}",
        "{department_name}：工单{ticket_id}已超过签收时限（{response_deadline_local}）仍未签收，请立即签收办理。",
    ),
    "warning": (
        "【12345黄牌预警】{ticket_id}",
        "{department_name}：工单{ticket_id}将于{deadline_local}到期，请抓紧办理并及时答复市民。",
    ),
    "overdue": (
        "【12345红牌超期】{ticket_id}",
        "{department_name}：工单{ticket_id}已于{deadline_local}超期未办结，请立即办理并说明原因。",
    ),
    "supervision": (
        "【12345督办】{ticket_id}",
        "{department_name}：{handler_name}承办的工单{ticket_id}已超期{count}个工作日"
        "（期限{deadline_local}），请督促其尽快办结。",
    ),
    # To the hotline centre: staff must act.
    "manual_queue": (
        "【12345待人工派单】{ticket_id}",
        "{department_name}：工单{ticket_id}（{district_name}）无法自动派单，已进入人工派单队列，"
        "请尽快派单。原因：{reason}",
    ),
    "extension_request": (
        "【12345延期申请】{ticket_id}",
        "{department_name}：{handler_name}申请将工单{ticket_id}延期{days}个工作日"
        "，请审批。理由：{reason}",
    ),
}

ROLE_NAMES = {"lead": "主办", "co": "协办"}
# Why a ticket was reopened, as its notice says it (shared.events.ReopenCause).
REOPEN_CAUSES = {"rating": "经回访市民不满意", "repeat_call": "办结后市民再次来电反映同一问题"}


def render(kind: str, fields: dict[str, Any]) -> tuple[str, str]:
    """(subject, text) of a notice; a missing field shows as an empty string
    rather than failing the delivery."""
    subject, body = TEMPLATES[kind]
    values = _Lenient(fields)
    return subject.format_map(values), body.format_map(values)


class _Lenient(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def local_time(value: datetime | None, calendar: WorkCalendar) -> str:
    """A time as people in the city read it."""
    return deadline_label(value, calendar) if value else ""
