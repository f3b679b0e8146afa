"""The dispatch rules file: its schema and its loading.

A rules file is YAML: named time limits, defaults, an ordered list of rules and
a fallback. A rule's conditions are all required (AND); each list inside a
condition is a choice (OR). The first rule that matches decides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.domain import Category, Channel, Priority
from shared.workcalendar import TimeLimit

SHIPPED_RULES = Path(__file__).parent / "rules" / "liaocheng.yaml"


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Keywords(Strict):
    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()


class Conditions(Strict):
    districts: tuple[str, ...] = ()
    district_kinds: tuple[str, ...] = ()
    towns: tuple[str, ...] = ()
    categories: tuple[Category, ...] = ()
    channels: tuple[Channel, ...] = ()
    priorities: tuple[Priority, ...] = ()
    keywords: Keywords = Field(default_factory=Keywords)

    def is_empty(self) -> bool:
        kw = self.keywords
        lists = (self.districts, self.district_kinds, self.towns, self.categories)
        return (
            not any(lists)
            and not (self.channels or self.priorities)
            and not (kw.any or kw.all or kw.none)
        )


class Action(Strict):
    # A department id; "{district}" stands for the ticket's district id, so one
    # rule serves every county's bureau of the same kind.
    department: str
    co_departments: tuple[str, ...] = ()
    time_limit: str | None = None
    response_limit: str | None = None
    priority: Priority | None = None


class Rule(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    when: Conditions
    then: Action


class Defaults(Strict):
    time_limit: str = "general"
    response_limit: str = "default"
    urgent_time_limit: str = "urgent"
    urgent_response_limit: str = "urgent"
    consultation_time_limit: str = "consultation"


class RuleSet(Strict):
    version: int = 1
    time_limits: dict[str, TimeLimit]
    response_limits: dict[str, TimeLimit]
    defaults: Defaults = Field(default_factory=Defaults)
    rules: tuple[Rule, ...]

    @model_validator(mode="after")
    def _references(self) -> RuleSet:
        d = self.defaults
        for name in (d.time_limit, d.urgent_time_limit, d.consultation_time_limit):
            if name not in self.time_limits:
                raise ValueError(f"defaults: unknown time limit {name!r}")
        for name in (d.response_limit, d.urgent_response_limit):
            if name not in self.response_limits:
                raise ValueError(f"defaults: unknown response limit {name!r}")
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule {rule.id}: duplicate id")
            seen.add(rule.id)
            if rule.when.is_empty():
                raise ValueError(f"rule {rule.id}: empty condition (would match everything)")
            tl, rl = rule.then.time_limit, rule.then.response_limit
            if tl is not None and tl not in self.time_limits:
                raise ValueError(f"rule {rule.id}: unknown time limit {tl!r}")
            if rl is not None and rl not in self.response_limits:
                raise ValueError(f"rule {rule.id}: unknown response limit {rl!r}")
        return self


class RulesError(ValueError):
    """A rules file that cannot be used; the message lists every problem."""


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from exc
    try:
        return RuleSet.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise RulesError(f"{source}: {problems}") from exc


def load_rules(path: Path | None = None) -> RuleSet:
    path = path or SHIPPED_RULES
    return parse_rules(path.read_text(encoding="utf-8"), str(path))
