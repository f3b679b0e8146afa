"""Matching tickets against the rules.

The keywords of the rules go into Aho-Corasick automatons (services.router.index),
so a ticket's text is scanned once whatever the number of rules; only the rules
of the ticket's district whose keywords were found (and those without positive
keywords) are then tested, in file order, with their other conditions
(services.router.conditions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.router.conditions import Check, Facts, compile_checks, normalized
from services.router.index import KeywordIndex, bits
from services.router.schema import Action, Rule, RuleSet, limit_name
from services.router.text import normalize
from shared.directory import Directory
from shared.domain import Priority, TicketDraft
from shared.workcalendar import TimeLimit, WorkCalendar


@dataclass(frozen=True)
class Decision:
    department: str | None  # None: manual dispatch at the hotline centre
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
    positive_kw: frozenset[str]  # any and all: a rule is a candidate when one is found
    negative_kw: frozenset[str]  # none
    district_ids: frozenset[str]
    checks: tuple[Check, ...]


@dataclass
class RuleEngine:
    ruleset: RuleSet
    directory: Directory
    calendar: WorkCalendar
    _rules: list[_Compiled] = field(init=False)
    _indexes: dict[str, KeywordIndex] = field(init=False)  # by district id
    _elsewhere: KeywordIndex = field(init=False)  # for a district the directory lacks
    _everywhere: KeywordIndex | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._rules = [
            _compile(rule, i, self.directory) for i, rule in enumerate(self.ruleset.rules)
        ]
        # One index per district: a ticket's text is scanned only for the words
        # of the rules that apply in its district.
        self._indexes = {d: KeywordIndex() for d in self.directory.districts}
        self._elsewhere = KeywordIndex()
        for c in self._rules:
            targets = (
                [self._indexes[d] for d in c.district_ids if d in self._indexes]
                if c.district_ids
                else [*self._indexes.values(), self._elsewhere]
            )
            for index in targets:
                index.add(c.index, c.positive_kw, c.negative_kw)
        for index in (*self._indexes.values(), self._elsewhere):
            index.build()

    def found_keywords(self, text: str) -> set[str]:
        """The keywords of any rule in a text (for explanations and tests)."""
        if self._everywhere is None:
            self._everywhere = KeywordIndex()
            for c in self._rules:
                self._everywhere.add(c.index, c.positive_kw, c.negative_kw)
            self._everywhere.build()
        return self._everywhere.scan(normalize(text))[0]

    def _scan(self, draft: TicketDraft, at: datetime) -> tuple[Facts, int]:
        """The ticket's facts and its candidate rules as a bit mask."""
        text = normalize(draft.text)
        found, candidates = self._indexes.get(draft.district, self._elsewhere).scan(text)
        district = self.directory.district(draft.district)
        kind = district.kind if district is not None else None
        return Facts(draft, text, found, at.astimezone(self.calendar.tz), kind), candidates

    def matching_rules(
        self,
        draft: TicketDraft,
        exclude: Iterable[str] = (),
        first_only: bool = False,
        at: datetime | None = None,
    ) -> list[Rule]:
        """The rules that match, in file order (only the first with first_only);
        a time window is judged at `at`, by default now."""
        facts, candidates = self._scan(draft, at or datetime.now(UTC))
        excluded = set(exclude)
        result = []
        for index in bits(candidates):
            compiled = self._rules[index]
            if not all(check(facts) for check in compiled.checks):
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
        other rules that match too (slower: every candidate is tested)."""
        matches = self.matching_rules(draft, exclude, first_only=not explain, at=at)
        if not matches:
            return self.decision_for(draft, at, None)
        return self.decision_for(draft, at, matches[0], tuple(r.id for r in matches[1:]))

    def decision_for(
        self, draft: TicketDraft, at: datetime, rule: Rule | None, others: tuple[str, ...] = ()
    ) -> Decision:
        """What a rule decides for a ticket (None: manual dispatch)."""
        action = rule.then if rule is not None else None
        priority = (action.priority if action else None) or draft.priority
        time_limit, limit = self._time_limit(action, draft, priority)
        response_name, response = self._response_limit(action, priority)
        if action is None or rule is None:
            return Decision(None, (), None, time_limit, response_name, priority, None, None)
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
            response_limit=response_name,
            priority=priority,
            deadline=self.calendar.deadline(at, limit),
            response_deadline=self.calendar.deadline(at, response),
            also_matched=others,
        )

    def _time_limit(
        self, action: Action | None, draft: TicketDraft, priority: Priority
    ) -> tuple[str, TimeLimit]:
        ref = action.time_limit if action else None
        if ref is None:
            defaults = self.ruleset.defaults
            ref = (
                defaults.urgent_time_limit
                if priority == Priority.URGENT
                else defaults.consultation_time_limit
                if draft.category == "consultation"
                else defaults.time_limit
            )
        return _named(ref, self.ruleset.time_limits)

    def _response_limit(self, action: Action | None, priority: Priority) -> tuple[str, TimeLimit]:
        ref = action.response_limit if action else None
        if ref is None:
            defaults = self.ruleset.defaults
            urgent = priority == Priority.URGENT
            ref = defaults.urgent_response_limit if urgent else defaults.response_limit
        return _named(ref, self.ruleset.response_limits)


def _named(ref: str | TimeLimit, table: dict[str, TimeLimit]) -> tuple[str, TimeLimit]:
    return (ref, table[ref]) if isinstance(ref, str) else (limit_name(ref), ref)


def _compile(rule: Rule, index: int, directory: Directory) -> _Compiled:
    kw = rule.when.keywords
    districts = (directory.district(name) for name in rule.when.districts)
    return _Compiled(
        rule=rule,
        index=index,
        positive_kw=normalized(kw.any) | normalized(kw.all),
        negative_kw=normalized(kw.none),
        # A district the directory does not know matches no ticket; `rules check`
        # reports it. The impossible id keeps such a rule out of every district.
        district_ids=frozenset(d.id if d else "\0unknown" for d in districts),
        checks=compile_checks(rule.when),
    )
