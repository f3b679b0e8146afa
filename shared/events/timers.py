"""Events of the notifier's timers: urging, warnings, overdue, supervision."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from shared.domain import TicketDims
from shared.events.envelope import DepartmentStep, Envelope


class UrgedPayload(DepartmentStep):
    """催办: not accepted within the response limit."""

    response_deadline: AwareDatetime


class WarningPayload(DepartmentStep):
    """黄牌: the deadline is near."""

    deadline: AwareDatetime


class OverduePayload(DepartmentStep):
    """红牌: the deadline has passed with the ticket unresolved."""

    deadline: AwareDatetime


class SupervisedPayload(DepartmentStep):
    """督办: an overdue ticket escalated to a supervisor, repeated each working day."""

    deadline: AwareDatetime
    supervisor: str
    # 1 for the first working day overdue, 2 for the second, ...
    count: int = Field(ge=1)


class TicketUrged(Envelope):
    event_type: Literal["urged"] = "urged"
    payload: UrgedPayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class TicketWarning(Envelope):
    event_type: Literal["warning"] = "warning"
    payload: WarningPayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class TicketOverdue(Envelope):
    event_type: Literal["overdue"] = "overdue"
    payload: OverduePayload

    def dims(self) -> TicketDims:
        return self.payload.dims


class TicketSupervised(Envelope):
    event_type: Literal["supervised"] = "supervised"
    payload: SupervisedPayload

    def dims(self) -> TicketDims:
        return self.payload.dims
