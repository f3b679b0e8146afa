"""Deciding where a ticket goes: the rules, then the responsibility lists, then
the suggesters (a model trained on the city's history), then a person.

The keywords of the rules and the terms of the lists go into Aho-Corasick
automatons (services.router.index), so a ticket's text is scanned once whatever
the number of rules and terms; only the rules of the ticket's district whose
keywords were found (and those without positive keywords) are then tested, in
file order, with their other conditions (services.router.conditions). A ticket
no rule takes is scored against the lists from the same scan
(services.router.scoring); a rule marked fallback takes what the lists and the
suggesters know nothing of.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from services.router.conditions import Check, Facts, compile_checks, normalized
from services.router.index import KeywordIndex, Scan, bits
from services.router.schema import Action, Rule, RuleSet, limit_name
from services.router.scoring import CompiledLists, TypeScore
from services.router.text import normalize
from services.router.verdict import (
    Candidate,
    DecidedBy,
    Suggester,
    list_verdict,
    suggestions,
    top_candidates,
)
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
    decided_by: DecidedBy = "rule"
    probability: float | None = None  # a model's, when it decided
    # The best three departments the lists and suggesters name (the manual
    # queue shows them), the types as scored, and why this decision.
    candidates: tuple[Candidate, ...] = ()
    scores: tuple[TypeScore, ...] = ()
    reason: str = ""

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
    fallback: bool


@dataclass
class RuleEngine:
    ruleset: RuleSet
    directory: Directory
    calendar: WorkCalendar
    lists: CompiledLists | None = None
    suggesters: tuple[Suggester, ...] = ()
    # A suggester decides only from this probability on; below, a person does.
    min_probability: float = 0.6
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
            if self.lists is not None:
                index.add_terms(self.lists.ids, self.lists.context)
            index.build()

    def found_keywords(self, text: str) -> set[str]:
        """The keywords of any rule in a text (for explanations and tests)."""
        if self._everywhere is None:
            self._everywhere = KeywordIndex()
            for c in self._rules:
                self._everywhere.add(c.index, c.positive_kw, c.negative_kw)
            self._everywhere.build()
        return self._everywhere.scan(normalize(text)).found

    def _scan(self, draft: TicketDraft, at: datetime) -> tuple[Facts, Scan]:
        """The ticket's facts, its candidate rules and the list terms found."""
        text = normalize(draft.text)
        scan = self._indexes.get(draft.district, self._elsewhere).scan(text)
        district = self.directory.district(draft.district)
        kind = district.kind if district is not None else None
        return Facts(draft, text, scan.found, at.astimezone(self.calendar.tz), kind), scan

    def matching_rules(
        self,
        draft: TicketDraft,
        exclude: Iterable[str] = (),
        first_only: bool = False,
        at: datetime | None = None,
    ) -> list[Rule]:
        """The rules that match, in file order (only the first with first_only);
        a time window is judged at `at`, by default now."""
        facts, scan = self._scan(draft, at or datetime.now(UTC))
        return self._matching(facts, scan.candidates, set(exclude), first_only)

    def _matching(
        self,
        facts: Facts,
        candidates: int,
        excluded: set[str],
        first_only: bool,
        fallback: bool = False,
    ) -> list[Rule]:
        draft = facts.draft
        result = []
        for index in bits(candidates):
            compiled = self._rules[index]
            if compiled.fallback != fallback or not all(check(facts) for check in compiled.checks):
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
        """The first matching rule decides, else the lists, else a suggester sure
        enough, else a fallback rule for what nothing knows, else a person. With
        explain, also_matched lists the other rules that match too (slower:
        every candidate is tested)."""
        facts, scan = self._scan(draft, at)
        excluded = set(exclude)
        matches = self._matching(facts, scan.candidates, excluded, not explain)
        if matches:
            others = tuple(r.id for r in matches[1:])
            return self.decision_for(draft, at, matches[0], others)
        return self._beyond_rules(facts, scan, excluded, at)

    def _beyond_rules(self, facts: Facts, scan: Scan, excluded: set[str], at: datetime) -> Decision:
        draft = facts.draft
        ranked: tuple[Candidate, ...] = ()
        scores: tuple[TypeScore, ...] = ()
        reason = "no rule matched"
        if self.lists is not None:
            found = self.lists.score(scan.hits, scan.found)
            verdict = list_verdict(
                self.lists, found, draft.district, self.directory, excluded, scan.found
            )
            ranked, scores, reason = verdict.ranked, verdict.scores, verdict.reason
            if verdict.winner is not None:
                top = top_candidates(ranked)
                return self._to(draft, at, verdict.winner, "list", top, scores, reason)
        suggested = suggestions(self.suggesters, draft, excluded)
        top = top_candidates(ranked, suggested)
        if suggested and suggested[0].score >= self.min_probability:
            best = suggested[0]
            why = f"{reason}; {best.source} gives {best.department} p={best.score:.2f}"
            return self._to(draft, at, best, "model", top, scores, why, best.score)
        if not ranked:
            fallback = self._matching(facts, scan.candidates, excluded, True, fallback=True)
            if fallback:
                why = f"{reason}; fallback rule {fallback[0].id}"
                decision = self.decision_for(draft, at, fallback[0], (), why)
                return replace(decision, candidates=top)
        manual = self.decision_for(draft, at, None, (), reason)
        return replace(manual, candidates=top, scores=scores)

    def _to(
        self,
        draft: TicketDraft,
        at: datetime,
        winner: Candidate,
        by: DecidedBy,
        top: tuple[Candidate, ...],
        scores: tuple[TypeScore, ...],
        reason: str,
        probability: float | None = None,
    ) -> Decision:
        """A decision for a department the lists or a suggester chose: the
        rules' default limits for the ticket."""
        priority = draft.priority
        time_limit, limit = self._time_limit(None, draft, priority)
        response_name, response = self._response_limit(None, priority)
        return Decision(
            department=winner.department,
            co_departments=(),
            rule=None,
            time_limit=time_limit,
            response_limit=response_name,
            priority=priority,
            deadline=self.calendar.deadline(at, limit),
            response_deadline=self.calendar.deadline(at, response),
            decided_by=by,
            probability=probability,
            candidates=top,
            scores=scores,
            reason=reason,
        )

    def decision_for(
        self,
        draft: TicketDraft,
        at: datetime,
        rule: Rule | None,
        others: tuple[str, ...] = (),
        reason: str = "",
    ) -> Decision:
        """What a rule decides for a ticket (None: manual dispatch)."""
        action = rule.then if rule is not None else None
        priority = (action.priority if action else None) or draft.priority
        time_limit, limit = self._time_limit(action, draft, priority)
        response_name, response = self._response_limit(action, priority)
        if action is None or rule is None:
            return Decision(
                None,
                (),
                None,
                time_limit,
                response_name,
                priority,
                None,
                None,
                decided_by="manual",
                reason=reason,
            )
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
            reason=reason or f"rule {rule.id}",
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
        fallback=rule.fallback,
    )
