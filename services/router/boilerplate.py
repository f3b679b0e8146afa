"""The call-centre agents' work-order template, masked out of a request's text.

An agent records a call as 工单内容：来电人称……诉求：…… or 市民来电反映：…… The
template's phrases say how the request was taken, not what it is about, yet
they read like matter terms (诉求 and 工单 of the hotline platform, 来电 of a
power cut coming back): 22 of the 51 misses on the second independent set went
to the platform for them. The lists file names these phrases (`boilerplate`);
they count for no type, and the seed model learns and predicts from the text
with them cut out, so both see the same words.

The lists find them in their one pass over the folded text like place names
(services.router.scoring: no term inside or across one counts); the seed model
masks them here, each occurrence replaced by a space, which folded text never
holds otherwise, so no n-gram spans the cut.
"""

from __future__ import annotations

from collections.abc import Iterable

import ahocorasick

from services.router.text import normalize

CUT = " "  # folded text has no white space: nothing matches across a cut


class Boilerplate:
    """The template's phrases, folded, and the masking of folded text."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self.phrases = frozenset(normalize(p) for p in phrases) - {""}
        self._automaton: ahocorasick.Automaton | None = None
        if self.phrases:
            self._automaton = ahocorasick.Automaton()
            for phrase in self.phrases:
                self._automaton.add_word(phrase, len(phrase))
            self._automaton.make_automaton()

    def mask(self, folded: str) -> str:
        """Folded text with every occurrence of a phrase (overlapping ones too)
        cut out; the text itself when it holds none."""
        if self._automaton is None or not folded:
            return folded
        spans = [(end - length + 1, end + 1) for end, length in self._automaton.iter(folded)]
        if not spans:
            return folded
        spans.sort()
        parts, at = [], 0
        for start, stop in spans:
            if start > at:
                parts.append(folded[at:start])
            at = max(at, stop)
        parts.append(folded[at:])
        return CUT.join(part for part in parts if part)

    def __bool__(self) -> bool:
        return bool(self.phrases)


NO_BOILERPLATE = Boilerplate(())  # a city whose lists name no template
