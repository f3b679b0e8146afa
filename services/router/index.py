"""The candidate rules of a ticket, found in one pass over its text.

One index per district holds the keywords of the rules that apply there in an
Aho-Corasick automaton; each keyword carries the bit mask of the rules it makes
candidates (bit i = rule i). Scanning a text gives the keywords found and, in
the same pass, the candidates as one OR of masks on Python's big integers.
"""

from __future__ import annotations

from collections.abc import Iterator

import ahocorasick


class KeywordIndex:
    def __init__(self) -> None:
        self._masks: dict[str, int] = {}
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

    def build(self) -> KeywordIndex:
        words = {kw: mask for kw, mask in self._masks.items() if kw}
        if words:
            self._automaton = ahocorasick.Automaton()
            for kw, mask in words.items():
                self._automaton.add_word(kw, (kw, mask))
            self._automaton.make_automaton()
        return self

    def scan(self, text: str) -> tuple[set[str], int]:
        """The keywords found in a normalized text, and the candidate mask."""
        found: set[str] = set()
        mask = self._without_keywords
        if self._automaton is not None:
            for _, (kw, kw_mask) in self._automaton.iter(text):
                found.add(kw)
                mask |= kw_mask
        return found, mask


def bits(mask: int) -> Iterator[int]:
    """The indices of the set bits, lowest first (rules in file order)."""
    while mask:
        lowest = mask & -mask
        yield lowest.bit_length() - 1
        mask ^= lowest
