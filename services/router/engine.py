"""Matching tickets against the rules.

All keywords of all rules go into one Aho-Corasick automaton, so a ticket's text
is scanned once whatever the number of rules; only the rules whose keywords were
found (and those without positive keywords) are then checked, in file order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import ahocorasick

from services.router.rules import Rule, RuleSet
from services.router.text import normalize
from shared.directory import Directory
from shared.domain import Priority, TicketDraft
from shared.workcalendar import TimeLimit, WorkCalendar


@dataclass(frozen=True)
class Decision:
    department: str | None
    co_departments: tuple[str, ...]
    rule: str | None
    time_limit: str
    response_limit: str
    priority: Priority
    deadline: datetime | None
    response_deadline: datetime | None
    also_matched: tuple[str, ...] = ()

    @property
    def routed(self) -> bool:
        return self.department is not None


@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    index: int
    any_kw: frozenset[str]
    all_kw: frozenset[str]
    none_kw: frozenset[str]
    district_ids: frozenset[str]


@dataclass
class RuleEngine:
    ruleset: RuleSet
    directory: Directory
    calendar: WorkCalendar
    _rules: list[_Compiled] = field(init=False)
    _kw_mask: dict[str, int] = field(init=False)
    _no_kw_mask: int = field(init=False)
    _district_mask: dict[str, int] = field(init=False)
    _any_district_mask: int = field(init=False)
    _automaton: ahocorasick.Automaton | None = field(init=False)

    def __post_init__(self) -> None:
        self._rules = [
            _compile(rule, i, self.directory) for i, rule in enumerate(self.ruleset.rules)
        ]
        # Candidate sets as bit masks over rule indices (bit i = rule i): a ticket's
        # candidates are one OR over its found keywords and one AND with its
        # district, both done in C on Python's big integers.
        self._kw_mask = {}
        self._no_kw_mask = 0
        self._district_mask = {}
        self._any_district_mask = 0
        keywords: set[str] = set()
        for c in self._rules:
            bit = 1 << c.index
            keywords |= c.any_kw | c.all_kw | c.none_kw
            if c.any_kw or c.all_kw:
                for kw in c.any_kw | c.all_kw:
                    self._kw_mask[kw] = self._kw_mask.get(kw, 0) | bit
            else:
                self._no_kw_mask |= bit
            if c.district_ids:
                for district in c.district_ids:
                    self._district_mask[district] = self._district_mask.get(district, 0) | bit
            else:
                self._any_district_mask |= bit
        self._automaton = _build_automaton(keywords)

    def found_keywords(self, text: str) -> set[str]:
        if self._automaton is None:
            return set()
        return {kw for _, kw in self._automaton.iter(normalize(text))}

    def _candidates(self, draft: TicketDraft, found: set[str]) -> Iterator[int]:
        """Indices of the rules worth checking, in file order."""
        by_keyword = self._no_kw_mask
        for kw in found:
            by_keyword |= self._kw_mask.get(kw, 0)
        mask = by_keyword & (self._any_district_mask | self._district_mask.get(draft.district, 0))
        while mask:
            lowest = mask & -mask
            yield lowest.bit_length() - 1
            mask ^= lowest

    def matching_rules(
        self, draft: TicketDraft, exclude: Iterable[str] = (), first_only: bool = False
    ) -> list[Rule]:
        """The rules that match, in file order (only the first with first_only)."""
        found = self.found_keywords(draft.text)
        excluded = set(exclude)
        result = []
        for index in self._candidates(draft, found):
            compiled = self._rules[index]
            if not _conditions_hold(compiled, draft, found, self.directory):
                continue
            department = self.resolve_department(compiled.rule.then.department, draft.district)
            if department is None or department in excluded:
                continue
            result.append(compiled.rule)
            if first_only:
                break
        return result

    def resolve_department(self, template: str, district_id: str) -> str | None:
        dep_id = template.replace("{district}", district_id)
        return dep_id if self.directory.department(dep_id) is not None else None

    def decide(
        self,
        draft: TicketDraft,
        at: datetime,
        exclude: Iterable[str] = (),
        explain: bool = False,
    ) -> Decision:
        """The first matching rule decides; with explain, also_matched lists the
        other rules that match too (slower: every candidate is checked)."""
        matches = self.matching_rules(draft, exclude, first_only=not explain)
        if not matches:
            return self._decision(draft, at, None)
        return self._decision(draft, at, matches[0], tuple(r.id for r in matches[1:]))

    def _decision(
        self, draft: TicketDraft, at: datetime, rule: Rule | None, others: tuple[str, ...] = ()
    ) -> Decision:
        defaults = self.ruleset.defaults
        action = rule.then if rule is not None else None
        priority = (action.priority if action else None) or draft.priority
        urgent = priority == Priority.URGENT
        time_limit = (action.time_limit if action else None) or (
            defaults.urgent_time_limit
            if urgent
            else defaults.consultation_time_limit
            if draft.category == "consultation"
            else defaults.time_limit
        )
        response_limit = (action.response_limit if action else None) or (
            defaults.urgent_response_limit if urgent else defaults.response_limit
        )
        if action is None or rule is None:
            return Decision(None, (), None, time_limit, response_limit, priority, None, None)
        department = self.resolve_department(action.department, draft.district)
        co = tuple(
            dep
            for dep in (self.resolve_department(t, draft.district) for t in action.co_departments)
            if dep is not None and dep != department
        )
        return Decision(
            department=department,
            co_departments=co,
            rule=rule.id,
            time_limit=time_limit,
            response_limit=response_limit,
            priority=priority,
            deadline=self._deadline(at, self.ruleset.time_limits[time_limit]),
            response_deadline=self._deadline(at, self.ruleset.response_limits[response_limit]),
            also_matched=others,
        )

    def _deadline(self, at: datetime, limit: TimeLimit) -> datetime:
        return self.calendar.deadline(at, limit)


def _compile(rule: Rule, index: int, directory: Directory) -> _Compiled:
    kw = rule.when.keywords
    districts = (directory.district(name) for name in rule.when.districts)
    return _Compiled(
        rule=rule,
        index=index,
        any_kw=frozenset(normalize(k) for k in kw.any),
        all_kw=frozenset(normalize(k) for k in kw.all),
        none_kw=frozenset(normalize(k) for k in kw.none),
        # A district the directory does not know matches no ticket; `rules check`
        # reports it. The impossible id keeps such a rule out of every district.
        district_ids=frozenset(d.id if d else "\0unknown" for d in districts),
    )


def _build_automaton(keywords: set[str]) -> ahocorasick.Automaton | None:
    keywords = {k for k in keywords if k}
    if not keywords:
        return None
    automaton = ahocorasick.Automaton()
    for kw in keywords:
        automaton.add_word(kw, kw)
    automaton.make_automaton()
    return automaton


def _conditions_hold(
    c: _Compiled, draft: TicketDraft, found: set[str], directory: Directory
) -> bool:
    when = c.rule.when
    if c.any_kw and not (c.any_kw & found):
        return False
    if c.all_kw and not c.all_kw <= found:
        return False
    if c.none_kw & found:
        return False
    if c.district_ids and draft.district not in c.district_ids:
        return False
    district = directory.district(draft.district)
    if when.district_kinds and (district is None or district.kind not in when.district_kinds):
        return False
    if when.towns and draft.town not in when.towns:
        return False
    if when.categories and draft.category not in when.categories:
        return False
    if when.channels and draft.channel not in when.channels:
        return False
    return not (when.priorities and draft.priority not in when.priorities)
