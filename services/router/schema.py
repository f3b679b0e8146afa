"""The schema of a dispatch rules file.

A rules file is YAML: named time limits, defaults and an ordered list of rules.
A rule's conditions are all required (AND); each list inside a condition is a
choice (OR). The first rule that matches decides; what no rule matches goes to
manual dispatch at the hotline centre.

Checks that need more than one field (references between sections, duplicate
ids) live in services.router.rules, so that every problem of a file is reported
with its line, not only the first.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from services.router.geo import polygon_problem
from services.router.text import compile_pattern
from shared.domain import Category, Channel, Priority
from shared.workcalendar import TimeLimit

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]
_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


def _limit_kind(value: Any) -> str:
    return "name" if isinstance(value, str) else "inline"


# A limit is named (a key of time_limits / response_limits) or written inline,
# e.g. {working_days: 3}; the tag keeps errors to the form the author used.
LimitRef = Annotated[
    Annotated[str, Tag("name")] | Annotated[TimeLimit, Tag("inline")],
    Discriminator(_limit_kind),
]


def limit_name(ref: str | TimeLimit) -> str:
    """The name a decision carries: an inline limit is named by its value ("3 working days")."""
    return ref if isinstance(ref, str) else ref.describe()


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Keywords(Strict):
    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()


class TimeWindow(Strict):
    """Local time of the decision in [from, to); a window whose end is before its
    start crosses midnight (22:00-06:00), and its early hours belong to the day
    it started: days: [fri] with 22:00-06:00 holds on Saturday 02:00."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    days: tuple[Weekday, ...] = ()  # none given: every day
    start: time = Field(alias="from")
    end: time = Field(alias="to")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> time:
        # Strings only: YAML reads an unquoted 8:30 as the base-60 number 510,
        # which pydantic would take for seconds (the rules loader keeps it a string).
        match = _CLOCK.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f'expected a time of day "HH:MM", got {value!r}')
        return time(int(match[1]), int(match[2]))

    @model_validator(mode="after")
    def _not_empty(self) -> TimeWindow:
        if self.start == self.end:
            raise ValueError("from and to are equal: the window is empty")
        return self


class Conditions(Strict):
    districts: tuple[str, ...] = ()
    district_kinds: tuple[str, ...] = ()
    towns: tuple[str, ...] = ()
    categories: tuple[Category, ...] = ()
    channels: tuple[Channel, ...] = ()
    priorities: tuple[Priority, ...] = ()
    keywords: Keywords = Field(default_factory=Keywords)
    # Matched (re.search) against the normalized text: simplified, lower case,
    # without spaces or punctuation.
    regex: str | None = None
    # [lat, lon] points; a ticket matches when its location lies inside.
    area: Annotated[tuple[tuple[Lat, Lon], ...], Field(min_length=3)] | None = None
    time_window: TimeWindow | None = None

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compile_pattern(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
        return value

    @field_validator("area")
    @classmethod
    def _area(
        cls, value: tuple[tuple[float, float], ...] | None
    ) -> tuple[tuple[float, float], ...] | None:
        problem = None if value is None else polygon_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    def is_empty(self) -> bool:
        kw = self.keywords
        lists = (self.districts, self.district_kinds, self.towns, self.categories)
        extra = (self.regex, self.area, self.time_window)
        return (
            not any(lists)
            and not (self.channels or self.priorities)
            and not (kw.any or kw.all or kw.none)
            and all(value is None for value in extra)
        )


class Action(Strict):
    # A department id; "{district}" stands for the ticket's district id, so one
    # rule serves every county's bureau of the same kind.
    department: str
    co_departments: tuple[str, ...] = ()
    time_limit: LimitRef | None = None
    response_limit: LimitRef | None = None
    priority: Priority | None = None


class Rule(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    when: Conditions
    then: Action
    # Tried only for a ticket the responsibility lists know nothing of (and no
    # model claims): "a local matter no bureau claims goes to the sub-centre".
    fallback: bool = False


class Defaults(Strict):
    time_limit: str = "general"
    response_limit: str = "default"
    urgent_time_limit: str = "urgent"
    urgent_response_limit: str = "urgent"
    consultation_time_limit: str = "consultation"


class Header(Strict):
    """Everything of a rules file but its rules."""

    version: Literal[1] = 1
    time_limits: dict[str, TimeLimit]
    response_limits: dict[str, TimeLimit]
    defaults: Defaults = Field(default_factory=Defaults)


class RuleSet(Header):
    """A rules file as the engine uses it. Load it with services.router.rules,
    which also checks the references between its sections."""

    rules: tuple[Rule, ...]
