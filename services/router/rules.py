"""Reading a dispatch rules file: YAML, its schema (services.router.schema) and
the references between its sections, with every problem at its line.

A file with any problem is refused whole; read_rules also keeps the rules that
passed the schema, so that `hotline rules check` can judge them against the
directory in the same run and report everything at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from services.router.lines import (
    Document,
    Loc,
    Problem,
    format_problems,
    parse,
)
from services.router.schema import (
    Action,
    Conditions,
    Defaults,
    Header,
    Keywords,
    Rule,
    RuleSet,
    TimeWindow,
    limit_name,
)
from services.router.text import normalize
from shared.workcalendar import TimeLimit

__all__ = [
    "SHIPPED_RULES",
    "Action",
    "Conditions",
    "Defaults",
    "Keywords",
    "Parsed",
    "Rule",
    "RuleSet",
    "RulesError",
    "TimeWindow",
    "load_rules",
    "parse_rules",
    "read_rules",
]

SHIPPED_RULES = Path(__file__).parent / "rules" / "liaocheng.yaml"
M = TypeVar("M", bound=BaseModel)


class RulesError(ValueError):
    """A rules file that cannot be used; the message lists every problem, one a line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass
class Parsed:
    """What could be read of a rules file."""

    document: Document
    header: Header | None = None
    # The rules that passed the schema, with their place in the file.
    rules: list[tuple[int, Rule]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ruleset: RuleSet | None = None  # only when there is no problem at all


def parse_as(text: str, model: type[M]) -> tuple[Document, list[Problem], M | None]:
    """A YAML file read as model: the document, its problems (YAML, duplicate
    keys, the schema's with their place) and the value if the schema took it."""
    document, problems = parse(text)
    if document.root is None and problems:
        return document, problems, None
    try:
        return document, problems, model.model_validate(document.data)
    except ValidationError as exc:
        return document, problems + schema_problems(exc), None


def read_rules(text: str) -> Parsed:
    document, problems, ruleset = parse_as(text, RuleSet)
    parsed = Parsed(document, problems=problems)
    if ruleset is None:
        if document.root is not None:
            _salvage(parsed, document.data)
    else:
        parsed.header, parsed.rules = ruleset, list(enumerate(ruleset.rules))
        parsed.ruleset = ruleset
    parsed.problems += structure_problems(parsed.header, parsed.rules)
    if parsed.problems:
        parsed.ruleset = None
    elif parsed.ruleset is not None:
        parsed.ruleset = with_inline_limits(parsed.ruleset)
    return parsed


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    parsed = read_rules(text)
    if parsed.ruleset is None:
        raise RulesError(format_problems(source, parsed.document, parsed.problems))
    return parsed.ruleset


def load_rules(path: Path | None = None) -> RuleSet:
    path = path or SHIPPED_RULES
    return parse_rules(path.read_text(encoding="utf-8"), str(path))


def schema_problems(exc: ValidationError, prefix: Loc = ()) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = prefix + tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing" and loc:
            # The field is not in the file: name it, at the line of its parent.
            loc, message = loc[:-1], f"missing {loc[-1]!r}"
        problems.append(Problem(loc, message, show_path=True))
    return problems


def _salvage(parsed: Parsed, data: Any) -> None:
    """The header and the rules that are valid on their own, to be checked further."""
    if not isinstance(data, dict):
        return
    with suppress(ValidationError):  # already reported
        parsed.header = Header.model_validate({k: v for k, v in data.items() if k != "rules"})
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list):
        return
    for index, raw in enumerate(raw_rules):
        with suppress(ValidationError):  # already reported
            parsed.rules.append((index, Rule.model_validate(raw)))


def structure_problems(header: Header | None, rules: Iterable[tuple[int, Rule]]) -> list[Problem]:
    """What the schema of one field cannot see: references, duplicates, emptiness."""
    problems = [] if header is None else _default_problems(header)
    first_of: dict[str, int] = {}
    for index, rule in rules:
        where: Loc = ("rules", index)
        if rule.id in first_of:
            message = f"duplicate id, rules[{first_of[rule.id]}] has it already"
            problems.append(Problem((*where, "id"), message))
        first_of.setdefault(rule.id, index)
        if rule.when.is_empty():
            problems.append(Problem((*where, "when"), "empty condition (would match everything)"))
        problems += _keyword_problems(where, rule.when.keywords)
        if header is not None:
            problems += _limit_problems(where, rule.then, header)
    return problems


def _default_problems(header: Header) -> list[Problem]:
    problems = []
    for key, name in header.defaults:
        table = header.response_limits if "response" in key else header.time_limits
        if name not in table:
            kind = "response limit" if "response" in key else "time limit"
            problems.append(Problem(("defaults", key), f"unknown {kind} {name!r}", show_path=True))
    return problems


def _keyword_problems(where: Loc, keywords: Keywords) -> list[Problem]:
    problems = []
    for kind, words in keywords:
        for i, word in enumerate(words):
            if not normalize(word):
                message = f"keyword {word!r} is empty without its spaces and punctuation"
                problems.append(Problem((*where, "when", "keywords", kind, i), message))
    return problems


def _limit_problems(where: Loc, action: Action, header: Header) -> list[Problem]:
    problems = []
    pairs = (
        ("time_limit", action.time_limit, header.time_limits),
        ("response_limit", action.response_limit, header.response_limits),
    )
    for key, ref, table in pairs:
        kind = key.replace("_", " ")
        if isinstance(ref, str) and ref not in table:
            problems.append(Problem((*where, "then", key), f"unknown {kind} {ref!r}"))
        elif isinstance(ref, TimeLimit) and table.get(limit_name(ref), ref) != ref:
            message = f"inline {kind} is called {limit_name(ref)!r}, a name taken by another"
            problems.append(Problem((*where, "then", key), message))
    return problems


def with_inline_limits(ruleset: RuleSet) -> RuleSet:
    """The ruleset with its inline limits also named in time_limits and
    response_limits, so that whoever looks a decision's limit up by name finds it."""
    time_limits, response_limits = dict(ruleset.time_limits), dict(ruleset.response_limits)
    for rule in ruleset.rules:
        for ref, table in (
            (rule.then.time_limit, time_limits),
            (rule.then.response_limit, response_limits),
        ):
            if isinstance(ref, TimeLimit):
                table.setdefault(limit_name(ref), ref)
    if (time_limits, response_limits) == (ruleset.time_limits, ruleset.response_limits):
        return ruleset
    return ruleset.model_copy(
        update={"time_limits": time_limits, "response_limits": response_limits}
    )
