"""A ticket's progress as a citizen may see it: intake's record of the request
joined with its own status projection. Used by the lookup and by Open311."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.intake.repository import IntakeRecord
from services.intake.status import StatusProjection
from shared.directory import Directory
from shared.events import TicketResolvedOnSpot
from shared.events.catalogue import CLOSED_STATUSES

LABELS = {
    "received": "已受理，等待派单",
    "unroutable": "已受理，等待人工派单",
    "dispatched": "已派单，等待承办单位签收",
    "accepted": "承办单位已签收，正在办理",
    "returned": "已退回热线，重新派单中",
    "reopened": "已重新交办（重办）",
    "resolved": "已办结，等待回访",
    "closed": "已办结",
    "resolved_on_spot": "已当场办结",
}
# Why a ticket was reopened, in the citizen's words (shared.events.ReopenCause).
REOPEN_LABELS = {
    "rating": "因回访不满意重新交办（重办）",
    "repeat_call": "因您再次来电重新交办（重办）",
}


@dataclass(frozen=True)
class TicketView:
    ticket_id: str
    status: str
    received_at: datetime | None
    updated_at: datetime | None
    department: str | None  # the department's name, never a contact
    deadline: datetime | None
    reply: str | None = None  # the answer, while the ticket stands resolved
    reopen_cause: str | None = None  # why it was last reopened, if ever

    @property
    def label(self) -> str:
        if self.status == "reopened" and self.reopen_cause in REOPEN_LABELS:
            return REOPEN_LABELS[self.reopen_cause]
        return LABELS.get(self.status, self.status)

    @property
    def closed(self) -> bool:
        return self.status in CLOSED_STATUSES


async def view_of(
    record: IntakeRecord, projection: StatusProjection, directory: Directory
) -> TicketView:
    if isinstance(record.event, TicketResolvedOnSpot):
        answer = record.event.payload.answer
        return TicketView(
            record.ticket_id,
            "resolved_on_spot",
            record.created_at,
            record.created_at,
            None,
            None,
            answer,
        )
    progress = await projection.get(record.ticket_id)
    if progress is None or progress.status is None:
        return TicketView(
            record.ticket_id, "received", record.created_at, record.created_at, None, None
        )
    department = directory.department(progress.department) if progress.department else None
    return TicketView(
        record.ticket_id,
        progress.status,
        record.created_at,
        progress.updated_at or record.created_at,
        department.name if department else None,
        progress.deadline,
        progress.reply if progress.status in CLOSED_STATUSES else None,
        progress.reopen_cause,
    )
