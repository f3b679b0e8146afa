"""The candidate rules and the list terms of a ticket, found in one pass over its text.

One index per district holds the keywords of the rules that apply there and the
terms of the responsibility lists in an Aho-Corasick automaton; each keyword
carries the bit mask of the rules it makes candidates (bit i = rule i) and each
term its id in the lists. Scanning a text gives the keywords found, the
candidates as one OR of masks on Python's big integers, and the terms found
with where they end, in the same pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

import ahocorasick

NO_TERM = -1


class Scan(NamedTuple):
    found: set[str]  # the rules' keywords and the words of exclusions found
    candidates: int  # the mask of candidate rules
    hits: list[tuple[int, int]]  # (end, term id) of each list term found


class KeywordIndex:
    def __init__(self) -> None:
        self._masks: dict[str, int] = {}
        self._terms: dict[str, int] = {}
        self._without_keywords = 0  # rules with no any/all keyword: always candidates
        self._automaton: ahocorasick.Automaton | None = None

    def add(self, index: int, positive: frozenset[str], negative: frozenset[str]) -> None:
        """A rule: candidate when one of its positive (any, all) keywords is found;
        its negative (none) keywords are to be found too, for its tests."""
        bit = 1 << index
        for kw in positive:
            self._masks[kw] = self._masks.get(kw, 0) | bit
        for kw in negative:
            self._masks.setdefault(kw, 0)
        if not positive:
            self._without_keywords |= bit

    def add_terms(self, terms: Mapping[str, int], context: Iterable[str]) -> None:
        """The lists' terms by id, and the words their exclusions look for."""
        self._terms.update(terms)
        for word in context:
            self._masks.setdefault(word, 0)

    def build(self) -> KeywordIndex:
        words = {kw for kw in (*self._masks, *self._terms) if kw}
        if words:
            self._automaton = ahocorasick.Automaton()
            for kw in words:
                # Only the rules' keywords and the words exclusions look for are
                # needed in `found`; a term that is neither is left out of it.
                value = (
                    kw,
                    self._masks.get(kw, 0),
                    self._terms.get(kw, NO_TERM),
                    kw in self._masks,
                )
                self._automaton.add_word(kw, value)
            self._automaton.make_automaton()
        return self

    def scan(self, text: str) -> Scan:
        """The keywords and terms found in a normalized text, and the candidate mask."""
        found: set[str] = set()
        hits: list[tuple[int, int]] = []
        mask = self._without_keywords
        if self._automaton is not None:
            # Run for every keyword and term found: bound methods, no attribute reads.
            add, append = found.add, hits.append
            for end, (kw, kw_mask, term, keep) in self._automaton.iter(text):
                if keep:
                    add(kw)
                if kw_mask:
                    mask |= kw_mask
                if term != NO_TERM:
                    append((end, term))
        return Scan(found, mask, hits)


def bits(mask: int) -> Iterator[int]:
    """The indices of the set bits, lowest first (rules in file order)."""
    while mask:
        lowest = mask & -mask
        yield lowest.bit_length() - 1
        mask ^= lowest
