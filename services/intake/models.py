"""What the web/app channel accepts and answers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.domain import Category, Channel, Citizen, Location, Priority
from shared.events import Rating


class RequestForm(BaseModel):
    """What every channel's form asks of a request, checked alike everywhere."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    district: str = Field(min_length=1, max_length=50, description="district name or id")
    town: str | None = Field(default=None, max_length=50)
    category: Category
    priority: Priority = Priority.NORMAL
    text: str = Field(min_length=1, max_length=4000)
    location: Location | None = None
    on_spot_answer: str | None = Field(
        default=None,
        min_length=1,
        max_length=4000,
        description="the agent answered at intake (当场办结): the ticket closes without dispatch",
    )


class TicketSubmission(RequestForm):
    """A citizen's request as the web form or app sends it. A line of the
    reference city's sample requests is a valid submission."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "channel": "web",
                    "district": "冠县",
                    "town": "贾镇",
                    "category": "help",
                    "text": "村里安装自来水管道占用了我家的耕地，补偿款至今未付",
                    "citizen": {"phone": "13800138000"},
                }
            ]
        },
    )

    channel: Channel = Channel.WEB
    citizen: Citizen | None = None
    id: str | None = Field(default=None, max_length=100, description="the sender's own reference")
    expected_department: str | None = Field(
        default=None,
        max_length=100,
        description="a dispatcher's expectation, kept for rule backtests; never used to route",
    )


class Receipt(BaseModel):
    ticket_id: str
    status: str = Field(
        description="received, resolved_on_spot, linked (a duplicate of an open ticket), "
        "or reopened (a repeat of a closed ticket, reopened under the centre's policy)"
    )
    replayed: bool = Field(default=False, description="true for a retried Idempotency-Key")
    duplicate_of: str | None = Field(
        default=None,
        description="set when the request repeats the caller's earlier ticket (并单): "
        "it was linked to that ticket and no new one was opened (with status reopened: "
        "that ticket was closed and is reopened)",
    )
    related_to: str | None = Field(
        default=None,
        description="set when the request repeats the caller's earlier ticket that is "
        "already closed: a new ticket was opened, recording the earlier one",
    )


class FeedbackSubmission(BaseModel):
    """The citizen's rating of the result (回访), as an agent or an SMS reply gives it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    rating: Rating
    solved: bool = Field(description="was the problem itself solved")
    comment: str | None = Field(default=None, max_length=2000)
    agent_id: str | None = Field(default=None, max_length=100, description="who called back")


class AgentEntry(RequestForm):
    """A call taken by a call-centre agent (坐席): who took it, who called, and,
    when the agent could answer at once, the answer that closes it (当场办结)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "agent_id": "seat-042",
                    "caller_number": "13912345678",
                    "call_id": "call-0001",
                    "district": "阳谷县",
                    "category": "consultation",
                    "text": "咨询社保卡补办需要带什么材料",
                    "on_spot_answer": "携带身份证到各区政务服务大厅办理。",
                }
            ]
        },
    )

    agent_id: str = Field(min_length=1, max_length=100, pattern=r"^[\w.\-]+$")
    caller_number: str = Field(pattern=r"^\+?[0-9]{5,20}$", description="the calling number")
    caller_name: str | None = Field(default=None, max_length=100)
    call_id: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[\x21-\x7e]+$",
        description="the telephony system's call id; a repeat of it returns the same ticket",
    )
