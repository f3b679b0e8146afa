"""Words of the hotline shared by every service: channels, categories, the ticket draft."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

# What people write between a phone number's digits.
PHONE_SEPARATORS = re.compile(r"[\s\-.()（）]")


class Channel(StrEnum):
    PHONE = "phone"
    WEB = "web"
    APP = "app"
    WECHAT = "wechat"
    SMS = "sms"
    EMAIL = "email"
    OPEN311 = "open311"


class Category(StrEnum):
    COMPLAINT = "complaint"
    HELP = "help"
    CONSULTATION = "consultation"
    SUGGESTION = "suggestion"
    REPORT = "report"
    PRAISE = "praise"


class Priority(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"


class ActorKind(StrEnum):
    CITIZEN = "citizen"
    AGENT = "agent"
    SYSTEM = "system"
    DEPARTMENT = "department"
    STAFF = "staff"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Actor(Frozen):
    kind: ActorKind
    id: str = Field(min_length=1, max_length=100)


class Location(Frozen):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str | None = Field(default=None, max_length=300)


class Citizen(Frozen):
    name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{5,20}$")

    @field_validator("phone", mode="before")
    @classmethod
    def _written_forms(cls, value: object) -> object:
        """A number as people write it (+86 136-0535-6789, (0635) 8888 123, with
        spaces, dashes, dots or brackets) is one number: stored as digits, a
        Chinese number without its country code, another with its + kept."""
        if not isinstance(value, str):
            return value
        compact = PHONE_SEPARATORS.sub("", value.strip())
        if compact.startswith(("+86", "0086")):
            return compact.removeprefix("+86").removeprefix("0086")
        return compact


class TicketDraft(Frozen):
    """What intake makes of a citizen's request, whatever the channel."""

    channel: Channel
    district: str = Field(description="district id from the directory, e.g. 'guanxian'")
    town: str | None = Field(default=None, max_length=50)
    category: Category
    priority: Priority = Priority.NORMAL
    text: str = Field(min_length=1, max_length=4000)
    citizen: Citizen | None = None
    location: Location | None = None
    external_id: str | None = Field(default=None, max_length=100)


class TicketDims(Frozen):
    """The dimensions every measure is cut by; carried on every event so that
    consumers need not look the ticket up."""

    district: str
    category: Category
    channel: Channel
    priority: Priority = Priority.NORMAL

    @classmethod
    def of(cls, draft: TicketDraft) -> TicketDims:
        return cls(
            district=draft.district,
            category=draft.category,
            channel=draft.channel,
            priority=draft.priority,
        )
