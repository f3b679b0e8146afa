"""Scoring a ticket against the responsibility lists.

The lists' terms sit in the rules' Aho-Corasick automaton (services.router.index),
so the one pass over a ticket's text that finds the rules' keywords also finds
the terms, with where each ends. Here those hits become one score per department
type: a term counts once, with its weight, unless a longer term found at the
same place covers it (电梯困人 is not also 电梯) or one of its exclusion words is
in the text.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from services.router.conditions import normalized
from services.router.lists import ListSet
from services.router.text import normalize


@dataclass(frozen=True, slots=True)
class Claim:
    type_index: int
    weight: int
    unless: frozenset[str]  # the term does not count when one of these is found


@dataclass(frozen=True, slots=True)
class Term:
    text: str
    claims: tuple[Claim, ...]
    # A place name: no type's, but no term inside or across it counts (东古城镇
    # is a town, not 古城 of tourism; 临清运河 is no 清运 of waste).
    place: bool = False
    # A word that makes the matter city-wide (全市), when no other term
    # overlaps it (超市里 is no 市里).
    city: bool = False


@dataclass(frozen=True)
class Scoring:
    types: list[TypeScore]  # the types with a positive score, best first
    city_wide: bool


@dataclass(frozen=True)
class TypeScore:
    type: str
    score: float
    terms: tuple[str, ...]  # the terms that counted, in the order found
    excluded: tuple[str, ...] = ()  # found, but an exclusion word was in the text


class CompiledLists:
    """The lists as the engine uses them: one entry per distinct folded term."""

    def __init__(self, lists: ListSet, places: Iterable[str] = ()) -> None:
        self.lists = lists
        self.names = list(lists.types)
        self.targets = [spec.target for spec in lists.types.values()]
        self.city_wide = normalized(lists.city_wide)
        self.city_terms = [normalized(spec.city_terms) for spec in lists.types.values()]
        claims: dict[str, list[Claim]] = {}
        self.context: set[str] = set().union(*self.city_terms)
        for index, spec in enumerate(lists.types.values()):
            unless = {normalize(t): normalized(words) for t, words in spec.exclusions.items()}
            weights: dict[str, int] = {}
            for weight, words in spec.terms.items():
                for word in words:
                    term = normalize(word)
                    weights[term] = max(weights.get(term, 0), weight)
            for term, weight in weights.items():
                context = unless.get(term, frozenset())
                self.context |= context
                claims.setdefault(term, []).append(Claim(index, weight, context))
        places = {normalize(p) for p in places} - {""}
        self.terms = [
            Term(text, tuple(c), text in places, text in self.city_wide)
            for text, c in claims.items()
        ]
        extra = (places | self.city_wide) - claims.keys()
        self.terms += [Term(w, (), w in places, w in self.city_wide) for w in sorted(extra)]
        self.ids = {term.text: i for i, term in enumerate(self.terms)}

    def city_unit(self, type_index: int, found: Collection[str], city_wide: bool) -> bool:
        """Whether the text makes this type's matter the city unit's."""
        return city_wide or not self.city_terms[type_index].isdisjoint(found)

    def score(self, hits: Sequence[tuple[int, int]], found: Collection[str]) -> Scoring:
        """The types' scores and whether the matter is city-wide; hits are
        (end, term id)."""
        totals: dict[int, float] = {}
        counted: dict[int, list[str]] = {}
        excluded: dict[int, list[str]] = {}
        kept, city_wide = self._outermost(hits)
        for term in kept:
            for claim in term.claims:
                if claim.unless and not claim.unless.isdisjoint(found):
                    excluded.setdefault(claim.type_index, []).append(term.text)
                    continue
                totals[claim.type_index] = totals.get(claim.type_index, 0) + claim.weight
                counted.setdefault(claim.type_index, []).append(term.text)
        ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
        types = [
            TypeScore(self.names[i], total, tuple(counted[i]), tuple(excluded.get(i, ())))
            for i, total in ranked
            if total > 0
        ]
        return Scoring(types, city_wide)

    def _outermost(self, hits: Sequence[tuple[int, int]]) -> tuple[list[Term], bool]:
        """Each distinct term found, except those inside a longer one found at
        the same place or touching a place name; and whether a city-wide word
        stands on its own."""
        terms = self.terms
        spans = [(end - len(terms[tid].text) + 1, end, tid) for end, tid in hits]
        spans.sort(key=lambda span: (span[0], span[0] - span[1]))
        places = [(s, e) for s, e, tid in spans if terms[tid].place]
        reach, seen, kept = -1, set(), []
        for start, end, tid in spans:
            if end <= reach or any(s <= end and start <= e for s, e in places):
                continue
            reach = end
            if tid not in seen:
                seen.add(tid)
                kept.append(terms[tid])
        city_wide = any(
            terms[tid].city and _alone(start, end, tid, spans) for start, end, tid in spans
        )
        return kept, city_wide


def _alone(start: int, end: int, tid: int, spans: Sequence[tuple[int, int, int]]) -> bool:
    return not any(s <= end and start <= e and t != tid for s, e, t in spans)
