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
from typing import TYPE_CHECKING

from services.router.conditions import Check, Facts, compile_checks, normalized
from services.router.index import KeywordIndex, Scan, bits
from services.router.limits import response_limit_of, time_limit_of
from services.router.schema import Action, Rule, RuleSet
from services.router.scoring import CompiledLists
from services.router.text import normalize
from services.router.verdict import (
    LIST,
    Candidate,
    Decision,
    ListVerdict,
    Suggester,
    list_verdict,
    suggestions,
    top_candidates,
)
from shared.directory import Directory
from shared.domain import Priority, TicketDraft
from shared.workcalendar import WorkCalendar

if TYPE_CHECKING:  # the seed module reads example files with the backtest's reader
    from services.router.seed import SeedAdvisor

# Decision lives beside the verdicts now; code that imports it from here still works.
__all__ = ["Decision", "RuleEngine"]


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
    # The seed model, consulted where the lists are not sure (services.router.seed).
    seed: SeedAdvisor | None = None
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
        return Facts(draft, text, scan.found, at, self.calendar.tz, kind), scan

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
        deadlines: bool = True,
    ) -> Decision:
        """The first matching rule decides, else the lists, else a suggester sure
        enough, else a fallback rule for what nothing knows, else a person. With
        explain, also_matched lists the other rules that match too (slower:
        every candidate is tested). Without deadlines, the decision has none (the
        workflow sets them itself, at the dispatch)."""
        facts, scan = self._scan(draft, at)
        excluded = set(exclude)
        when = at if deadlines else None
        matches = self._matching(facts, scan.candidates, excluded, not explain)
        if matches:
            others = tuple(r.id for r in matches[1:])
            return self.decision_for(draft, when, matches[0], others)
        return self._beyond_rules(facts, scan, excluded, when)

    def _beyond_rules(
        self, facts: Facts, scan: Scan, excluded: set[str], at: datetime | None
    ) -> Decision:
        draft = facts.draft
        verdict = self._list_verdict(draft, scan, excluded)
        ranked, scores = verdict.ranked, verdict.scores
        seed = self.seed
        if verdict.winner is not None and (seed is None or seed.sure(ranked)):
            return self._chosen(draft, at, verdict.winner, verdict, top_candidates(ranked))
        suggested = suggestions(self.suggesters, draft, excluded)
        if suggested and suggested[0].score >= self.min_probability:
            return self._chosen(draft, at, suggested[0], verdict, top_candidates(ranked, suggested))
        seeded = [] if seed is None else seed.candidates(facts.text, scan.found, verdict, excluded)
        top = top_candidates(seeded, ranked, suggested)
        if seeded and seed is not None and seeded[0].score >= seed.min_share:
            return self._chosen(draft, at, seeded[0], verdict, top)
        if verdict.winner is not None:  # the lists' close call, the model no surer
            return self._chosen(draft, at, verdict.winner, verdict, top)
        fallback = [] if ranked else self._matching(facts, scan.candidates, excluded, True, True)
        if fallback:
            why = f"{verdict.reason}; fallback rule {fallback[0].id}"
            return replace(self.decision_for(draft, at, fallback[0], (), why), candidates=top)
        manual = self.decision_for(draft, at, None, (), verdict.reason)
        return replace(manual, candidates=top, scores=scores)

    def _chosen(
        self,
        draft: TicketDraft,
        at: datetime | None,
        winner: Candidate,
        verdict: ListVerdict,
        top: tuple[Candidate, ...],
    ) -> Decision:
        """The lists' winner, or a suggester's best (with its probability)."""
        by_list = winner.source == LIST
        reason = verdict.reason
        if not by_list:
            reason += f"; {winner.source} gives {winner.department} p={winner.score:.2f}"
        return Decision(
            winner.department,
            (),
            None,
            *self._limits(draft, at, None),
            decided_by="list" if by_list else "model",
            probability=None if by_list else winner.score,
            candidates=top,
            scores=verdict.scores,
            reason=reason,
        )

    def _list_verdict(self, draft: TicketDraft, scan: Scan, excluded: set[str]) -> ListVerdict:
        if self.lists is None:
            return ListVerdict((), (), None, "no rule matched")
        scoring = self.lists.score(scan.hits, scan.found)
        return list_verdict(
            self.lists, scoring, draft.district, self.directory, excluded, scan.found
        )

    def decision_for(
        self,
        draft: TicketDraft,
        at: datetime | None,
        rule: Rule | None,
        others: tuple[str, ...] = (),
        reason: str = "",
    ) -> Decision:
        """What a rule decides for a ticket (None: manual dispatch)."""
        if rule is None:
            priority = draft.priority
            time_limit, _ = time_limit_of(self.ruleset, None, draft, priority)
            response_name, _ = response_limit_of(self.ruleset, None, priority)
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
        action = rule.then
        department = self.resolve_department(action.department, draft.district)
        co = tuple(
            dep
            for dep in (self.resolve_department(t, draft.district) for t in action.co_departments)
            if dep is not None and dep != department
        )
        limits = self._limits(draft, at, action)
        reason = reason or f"rule {rule.id}"
        return Decision(department, co, rule.id, *limits, also_matched=others, reason=reason)

    def _limits(
        self, draft: TicketDraft, at: datetime | None, action: Action | None
    ) -> tuple[str, str, Priority, datetime | None, datetime | None]:
        """The action's limits (else the rules' defaults for the ticket), the
        priority and the deadlines from at (none without), in the order of
        Decision's fields."""
        priority = (action.priority if action else None) or draft.priority
        time_limit, limit = time_limit_of(self.ruleset, action, draft, priority)
        response_name, response = response_limit_of(self.ruleset, action, priority)
        if at is None:
            return time_limit, response_name, priority, None, None
        deadline, response_deadline = (self.calendar.deadline(at, x) for x in (limit, response))
        return time_limit, response_name, priority, deadline, response_deadline


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
