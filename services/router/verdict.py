"""A dispatch decision, and what the lists and the suggesters say about a
ticket no rule decided: the candidate departments, and whether the best is
sure enough to dispatch to."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple, Protocol

from services.router.lists import DecisionPolicy
from services.router.scoring import CompiledLists, Scoring, TypeScore
from shared.directory import Directory
from shared.domain import Priority, TicketDraft

DecidedBy = Literal["rule", "list", "model", "manual"]
TOP = 3
LIST = "list"  # the source of a candidate the lists name


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


class Candidate(NamedTuple):
    # A named tuple, not a dataclass: made for every ticket the lists score.
    department: str
    score: float  # a list score, or a model's probability
    source: str  # "list", or the suggester's name
    type: str = ""
    terms: tuple[str, ...] = ()


class Suggester(Protocol):
    """A source of suggestions (the trained model, or a city's own service,
    plugged in by the entry point group hotline.dispatch_suggesters)."""

    name: str

    def suggest(self, draft: TicketDraft) -> Sequence[Candidate]:
        """Departments with a probability, best first."""
        ...


@dataclass(frozen=True)
class ListVerdict:
    ranked: tuple[Candidate, ...]  # the best three departments the lists point to
    scores: tuple[TypeScore, ...]  # the types as scored, for explanations
    winner: Candidate | None
    reason: str
    city_wide: bool = False  # a city-wide word stood in the text
    district: str = ""  # the ticket's, which the types were mapped in


def list_verdict(
    lists: CompiledLists,
    scoring: Scoring,
    district: str,
    directory: Directory,
    excluded: Collection[str],
    found: Collection[str],
) -> ListVerdict:
    ranked: list[Candidate] = []
    seen: list[str] = []  # the departments ranked: a handful, a list beats a set
    for score in scoring.types:
        if score.score <= 0:
            break  # the rest were only excluded
        index = lists.index[score.type]
        city = lists.city_unit(index, found, scoring.city_wide)
        department = lists.unit(index, district, city, directory)
        if department is None or department in excluded or department in seen:
            continue
        seen.append(department)
        ranked.append(Candidate(department, score.score, LIST, score.type, score.terms))
        if len(ranked) == TOP:
            break  # the decision needs the first two, the manual queue three
    winner, reason = _judge(ranked, lists.lists.decision)
    scores = tuple(scoring.types)
    return ListVerdict(tuple(ranked), scores, winner, reason, scoring.city_wide, district)


def _judge(ranked: Sequence[Candidate], policy: DecisionPolicy) -> tuple[Candidate | None, str]:
    if not ranked:
        return None, "no term of the lists was found"
    best = ranked[0]
    if best.score < policy.min_score:
        return None, f"best score {best.score:g} ({best.type}) is below {policy.min_score:g}"
    if len(ranked) > 1:
        second = ranked[1]
        lead = best.score - second.score
        if lead < policy.margin:
            return None, (
                f"{best.type} {best.score:g} leads {second.type} {second.score:g}"
                f" by {lead:g}, less than the margin {policy.margin:g}"
            )
        return best, (
            f"{best.type} scored {best.score:g} ({'、'.join(best.terms)}), "
            f"{lead:g} above {second.type} {second.score:g}"
        )
    return best, f"{best.type} scored {best.score:g} ({'、'.join(best.terms)}), no other type"


def suggestions(
    suggesters: Sequence[Suggester], draft: TicketDraft, excluded: Collection[str]
) -> list[Candidate]:
    """Every suggester's suggestions, best first, without excluded departments."""
    if not suggesters:
        return []
    found = [
        c
        for suggester in suggesters
        for c in suggester.suggest(draft)
        if c.department not in excluded
    ]
    return sorted(found, key=lambda c: -c.score)


def top_candidates(*groups: Sequence[Candidate]) -> tuple[Candidate, ...]:
    """The first three distinct departments, taking each group's best in turn."""
    if len(groups) == 1:
        return tuple(groups[0][:TOP])  # the lists' ranking is distinct already
    merged: list[Candidate] = []
    for rank in range(TOP):
        for group in groups:
            if rank < len(group) and all(c.department != group[rank].department for c in merged):
                merged.append(group[rank])
    return tuple(merged[:TOP])
