"""Checks of a rules file beyond its schema: names the directory does not know,
and rules that can never decide because an earlier one takes all their tickets.

check_file and check_text report every problem of a file at its line, as
`hotline rules check` prints them and the reload logs them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from services.router.conditions import normalized, window_minutes
from services.router.geo import area_covers
from services.router.lines import Loc, Problem, format_problems, read_file
from services.router.rules import Rule, RuleSet, read_rules
from shared.directory import Directory

_LISTS = ("districts", "district_kinds", "towns", "categories", "channels", "priorities")


def check_file(path: Path, directory: Directory) -> tuple[RuleSet | None, list[str]]:
    """The ruleset if the file has no problem, else None and its problems."""
    text, problems = read_file(path, "rules file")
    if text is None:
        return None, problems
    return check_text(text, str(path), directory)


def check_text(text: str, source: str, directory: Directory) -> tuple[RuleSet | None, list[str]]:
    parsed = read_rules(text)
    problems = parsed.problems + rule_problems(parsed.rules, directory)
    if problems:
        return None, format_problems(source, parsed.document, problems)
    return parsed.ruleset, []


def check_ruleset(ruleset: RuleSet, directory: Directory) -> list[str]:
    """The problems of a loaded ruleset against the directory, as
    `rules[3] (id): message` (no file, so no line)."""
    problems = rule_problems(enumerate(ruleset.rules), directory)
    ids = {index: rule.id for index, rule in enumerate(ruleset.rules)}
    return [f"rules[{p.loc[1]}] ({ids[int(p.loc[1])]}): {p.message}" for p in problems]


def rule_problems(rules: Iterable[tuple[int, Rule]], directory: Directory) -> list[Problem]:
    problems: list[Problem] = []
    earlier = _Earlier()
    for index, rule in rules:
        problems += _name_problems(("rules", index), rule, directory)
        shape = _Shape(rule, index)
        shadow = earlier.covering(shape)
        if shadow is not None:
            message = f"unreachable, rule {shadow} above matches everything it does"
            problems.append(Problem(("rules", index), message))
        # Only a rule whose department exists everywhere takes tickets from those
        # below it; one that names a missing department (or "{district}.x") falls
        # through. An empty condition is refused already: no second report.
        # A fallback rule is tried after all the others: it takes nothing from them.
        if directory.department(rule.then.department) and not (
            rule.when.is_empty() or rule.fallback
        ):
            earlier.add(shape)
    return problems


class _Earlier:
    """The rules above, by district: a rule for some districts can only be
    covered by one for all districts or for its own, so a file of many county
    rules is not compared pair by pair."""

    def __init__(self) -> None:
        self._anywhere: list[_Shape] = []
        self._by_district: dict[str, list[_Shape]] = {}

    def add(self, shape: _Shape) -> None:
        districts = shape.lists["districts"]
        for district in districts:
            self._by_district.setdefault(district, []).append(shape)
        if not districts:
            self._anywhere.append(shape)

    def covering(self, shape: _Shape) -> str | None:
        """The first rule above that takes every ticket of this one, if any."""
        districts = shape.lists["districts"]
        pool = self._anywhere + (self._by_district.get(min(districts), []) if districts else [])
        found = [other for other in pool if other.covers(shape)]
        return min(found, key=lambda other: other.index).rule.id if found else None


def _name_problems(where: Loc, rule: Rule, directory: Directory) -> list[Problem]:
    problems = []
    for i, district in enumerate(rule.when.districts):
        if directory.district(district) is None:
            loc = (*where, "when", "districts", i)
            problems.append(Problem(loc, f"unknown district {district!r}"))
    kinds = {d.kind for d in directory.districts.values()}
    for i, kind in enumerate(rule.when.district_kinds):
        if kind not in kinds:
            message = f"unknown district kind {kind!r} (known: {sorted(kinds)})"
            problems.append(Problem((*where, "when", "district_kinds", i), message))
    if not _resolvable(rule.then.department, directory):
        message = f"unknown department {rule.then.department!r}"
        problems.append(Problem((*where, "then", "department"), message))
    for i, template in enumerate(rule.then.co_departments):
        if not _resolvable(template, directory):
            loc = (*where, "then", "co_departments", i)
            problems.append(Problem(loc, f"unknown department {template!r}"))
    return problems


def _resolvable(template: str, directory: Directory) -> bool:
    if "{district}" not in template:
        return directory.department(template) is not None
    return any(
        directory.department(template.replace("{district}", d)) is not None
        for d in directory.districts
    )


@dataclass(frozen=True)
class _Shape:
    """A rule's conditions as sets, worked out once for the pairwise comparison."""

    rule: Rule
    index: int

    @cached_property
    def lists(self) -> dict[str, frozenset[str]]:
        return {name: frozenset(getattr(self.rule.when, name)) for name in _LISTS}

    @cached_property
    def words(self) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
        kw = self.rule.when.keywords
        return normalized(kw.any), normalized(kw.all), normalized(kw.none)

    @cached_property
    def window(self) -> int | None:
        window = self.rule.when.time_window
        return None if window is None else window_minutes(window)

    def covers(self, b: _Shape) -> bool:
        """Whether every ticket b matches is matched by this rule too (and so
        never reaches b). May say no when the answer is yes, never the reverse."""
        for name, mine in self.lists.items():
            if mine and not (b.lists[name] and b.lists[name] <= mine):
                return False
        return self._covers_words(b) and self._covers_extras(b)

    def _covers_words(self, b: _Shape) -> bool:
        any_a, all_a, none_a = self.words
        any_b, all_b, none_b = b.words
        if not (all_a <= all_b and none_a <= none_b):
            return False
        # With words to find, a covers b only if every way b matches hits one of them.
        b_hits_a = bool(all_b & any_a) or bool(any_b and any_b <= any_a)
        return not any_a or b_hits_a

    def _covers_extras(self, b: _Shape) -> bool:
        wa, wb = self.rule.when, b.rule.when
        if wa.regex is not None and wa.regex != wb.regex:
            return False
        if self.window is not None and (b.window is None or b.window & ~self.window):
            return False
        return wa.area is None or (wb.area is not None and area_covers(wa.area, wb.area))
