"""Scoring a ticket against the responsibility lists.

The lists' terms sit in the rules' Aho-Corasick automaton (services.router.index),
so the one pass over a ticket's text that finds the rules' keywords also finds
the terms, with where each ends. Here those hits become one score per department
type: a term counts once, unless a longer term found at the same place covers it
(电梯困人 is not also 电梯) or one of its exclusion words is in the text. A matter
term counts its weight and a bonus for its length (a precise phrase says more
than a word); context terms (places, parties: 小区, 老板) add up to a cap, so
several of them never outweigh one matter. Each term also matches typed as
pinyin.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from services.router.boilerplate import Boilerplate
from services.router.conditions import normalized
from services.router.lists import DecisionPolicy, ListSet, TypeList, resolve_target
from services.router.text import normalize, pinyin_of
from shared.directory import Directory


@dataclass(frozen=True, slots=True)
class Claim:
    type_index: int
    weight: int
    unless: frozenset[str]  # the term does not count when one of these is found


@dataclass(frozen=True, slots=True)
class Term:
    text: str
    claims: tuple[Claim, ...]
    # A place name or a phrase of the agents' work-order template: no type's,
    # and no term inside or across it counts (东古城镇 is a town, not 古城 of
    # tourism; 临清运河 is no 清运 of waste; 来电人 is the caller, not 来电 of a
    # power cut's end).
    place: bool = False
    # A word that makes the matter city-wide (全市), when no other term
    # overlaps it (超市里 is no 市里).
    city: bool = False


class TypeScore(NamedTuple):
    # A named tuple, not a dataclass: several are made for every ticket.
    type: str
    score: float
    terms: tuple[str, ...]  # the terms that counted, in the order found
    excluded: tuple[str, ...] = ()  # found, but an exclusion word was in the text


class Scoring(NamedTuple):
    types: list[TypeScore]  # best first; a type whose terms were all excluded at 0
    city_wide: bool


class CompiledLists:
    """The lists as the engine uses them: one entry per distinct folded term."""

    def __init__(self, lists: ListSet, places: Iterable[str] = ()) -> None:
        self.lists = lists
        self.names = list(lists.types)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.targets = [spec.target for spec in lists.types.values()]
        self.city_wide = normalized(lists.city_wide)
        self.city_terms = [normalized(spec.city_terms) for spec in lists.types.values()]
        claims: dict[str, list[Claim]] = {}
        self.context: set[str] = set().union(*self.city_terms)
        for index, spec in enumerate(lists.types.values()):
            weights, unless = _type_weights(spec, lists.decision)
            for term, weight in weights.items():
                context = unless.get(term, frozenset())
                self.context |= context
                claims.setdefault(term, []).append(Claim(index, weight, context))
        self.boilerplate = Boilerplate(lists.boilerplate)
        places = ({normalize(p) for p in places} | self.boilerplate.phrases) - {""}
        self.terms = [
            Term(text, tuple(c), text in places, text in self.city_wide)
            for text, c in claims.items()
        ]
        extra = (places | self.city_wide) - claims.keys()
        self.terms += [Term(w, (), w in places, w in self.city_wide) for w in sorted(extra)]
        self.ids = {term.text: i for i, term in enumerate(self.terms)}
        # Looked up for every term found: plain lists, not attribute reads.
        self._lengths = [len(term.text) for term in self.terms]
        self._special = [term.place or term.city for term in self.terms]
        self._special_city = [term.city for term in self.terms]
        self._units: dict[tuple[int, str, bool], str | None] = {}

    def unit(self, type_index: int, district: str, city: bool, directory: Directory) -> str | None:
        """The unit a type maps to in a district (its city unit with city);
        remembered, as there are few types and districts."""
        key = (type_index, district, city)
        unit = self._units.get(key, "")
        if unit == "":
            unit = resolve_target(self.targets[type_index], district, directory, city)
            if district in directory.districts:  # a bounded set: never a stranger's
                self._units[key] = unit
        return unit

    def city_unit(self, type_index: int, found: Collection[str], city_wide: bool) -> bool:
        """Whether the text makes this type's matter the city unit's."""
        return city_wide or not self.city_terms[type_index].isdisjoint(found)

    def score(self, hits: Sequence[tuple[int, int]], found: Collection[str]) -> Scoring:
        """The types' scores and whether the matter is city-wide; hits are
        (end, term id)."""
        weights: dict[int, list[int]] = {}
        counted: dict[int, list[str]] = {}
        excluded: dict[int, list[str]] = {}
        kept, city_wide = self._outermost(hits)
        terms = self.terms
        for tid in kept:
            term = terms[tid]
            for claim in term.claims:
                index = claim.type_index
                if claim.unless and not claim.unless.isdisjoint(found):
                    excluded.setdefault(index, []).append(term.text)
                    continue
                weights.setdefault(index, []).append(claim.weight)
                counted.setdefault(index, []).append(term.text)
        totals = {index: self._total(found_weights) for index, found_weights in weights.items()}
        # A type whose every term was excluded stays, at 0, to show why.
        ranked = sorted({**dict.fromkeys(excluded, 0.0), **totals}.items(), key=_best_first)
        types = [
            TypeScore(self.names[i], total, tuple(counted.get(i, ())), tuple(excluded.get(i, ())))
            for i, total in ranked
        ]
        return Scoring(types, city_wide)

    def _total(self, weights: list[int]) -> float:
        """A type's score from the weights of its terms found: the matter terms
        strongest first, each worth decay times the one before, plus the
        context terms up to their cap."""
        policy = self.lists.decision
        if len(weights) == 1:  # the usual case: nothing to cap or decay
            weight = weights[0]
            return float(
                min(weight, policy.context_cap) if weight <= policy.context_weight else weight
            )
        context = sum(w for w in weights if w <= policy.context_weight)
        total = float(min(context, policy.context_cap))
        matter = [w for w in weights if w > policy.context_weight]
        if policy.decay == 1:
            return total + sum(matter)
        factor = 1.0
        for weight in sorted(matter, reverse=True):
            total += weight * factor
            factor *= policy.decay
        return total

    def _outermost(self, hits: Sequence[tuple[int, int]]) -> tuple[list[int], bool]:
        """The id of each distinct term found, except those inside a longer one
        found at the same place or touching a place name; and whether a
        city-wide word stands on its own. Run for every ticket: plain loops."""
        lengths, special = self._lengths, self._special
        spans, marked = [], False
        for end, tid in hits:
            length = lengths[tid]
            spans.append((end - length + 1, -length, tid))
            marked = marked or special[tid]
        spans.sort()  # by start, the longest first
        places = [(s, s - n - 1) for s, n, tid in spans if self.terms[tid].place] if marked else []
        reach, kept = -1, []
        for start, negative_length, tid in spans:
            end = start - negative_length - 1
            if end <= reach or (places and _touches(start, end, places)):
                continue
            reach = end
            if tid not in kept:  # a handful of terms: a list beats a set
                kept.append(tid)
        city_wide = marked and any(
            self.terms[tid].city and _alone(s, s - n - 1, spans, self._special_city)
            for s, n, tid in spans
        )
        return kept, city_wide


def _type_weights(
    spec: TypeList, policy: DecisionPolicy
) -> tuple[dict[str, int], dict[str, frozenset[str]]]:
    """A type's folded terms with their weights, and their exclusion words;
    each term also as pinyin ("dianti" typed for 电梯)."""
    unless = {normalize(t): _with_pinyin(normalized(words)) for t, words in spec.exclusions.items()}
    weights: dict[str, int] = {}
    for weight, words in spec.terms.items():
        for word in words:
            term = normalize(word)
            weights[term] = max(weights.get(term, 0), weight + _bonus(term, weight, policy))
    for term in list(weights):
        alias = pinyin_of(term)
        if alias is not None and alias not in weights:
            unless.setdefault(alias, unless.get(term, frozenset()))
            weights[alias] = weights[term]
    return weights, unless


def _bonus(term: str, weight: int, policy: DecisionPolicy) -> int:
    """A matter phrase longer than two characters says more than a word of the
    same weight (电线杆子歪 more than 摆摊): length_bonus per character more,
    for up to four."""
    if weight <= policy.context_weight:
        return 0
    return policy.length_bonus * min(max(len(term) - 2, 0), 4)


def _with_pinyin(words: frozenset[str]) -> frozenset[str]:
    """Exclusion words, and their pinyin: 困人 is also kunren."""
    spelled = {pinyin_of(word) for word in words} - {None}
    return words | frozenset(w for w in spelled if w is not None)


def _best_first(item: tuple[int, float]) -> tuple[float, int]:
    return -item[1], item[0]


def _touches(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(s <= end and start <= e for s, e in spans)


def _alone(
    start: int, end: int, spans: Sequence[tuple[int, int, int]], city: Sequence[bool]
) -> bool:
    """No term found but a city-wide one overlaps [start, end] without lying
    inside it: 超市里 hides 市里, but 市环保局 still stands with 环保局 inside it,
    and 全市统一 beside 统一规定."""
    return not any(
        s <= end and start <= s - n - 1 and not city[t] and not (start <= s and s - n - 1 <= end)
        for s, n, t in spans
    )
