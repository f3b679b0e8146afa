"""Text as citizens type it, folded so that form does not decide a match.

NFKC folds full-width letters, digits and punctuation to their usual forms;
traditional characters become simplified ones (OpenCC t2s: 停電 -> 停电, 臺 -> 台);
case, white space, punctuation and emoji are then dropped, so "停 水", "停水！", "停水"
and "停水" in traditional script all read the same. The lists' terms are also
matched as pinyin (pinyin_of): "wuye" and "wu ye" read as 物业.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import opencc
from pypinyin import lazy_pinyin

# Characters whose verdict is cached; past this the verdict is computed each time,
# so text crafted to contain every code point cannot grow the cache without bound.
_CACHE_LIMIT = 1 << 16


class _DropTable(dict[int, int | None]):
    """str.translate table: None for characters without meaning, filled lazily.

    Translating with a dict runs the per-character loop in C; only a character
    seen for the first time costs a call into Python."""

    def __missing__(self, code: int) -> int | None:
        # Letters (L*), numbers (N*) and symbols (S*, e.g. ℃) carry meaning;
        # punctuation (P*), separators (Z*) and controls (C*) do not.
        # Emoji and pictographs are symbols too, but say nothing a term could
        # use, and typed inside a word (停💧水) they would split it.
        meaningful = unicodedata.category(chr(code))[0] in "LNS" and not _pictograph(code)
        verdict = code if meaningful else None
        if len(self) < _CACHE_LIMIT:
            self[code] = verdict
        return verdict


def _pictograph(code: int) -> bool:
    # Miscellaneous symbols and dingbats (☎ ✅ ★), arrows and stars (⭐), and the
    # emoji planes (😡 🔥 💧); not letter-like symbols such as ℃.
    return 0x2600 <= code <= 0x27BF or 0x2B00 <= code <= 0x2BFF or 0x1F000 <= code <= 0x1FAFF


@cache
def _drop_table() -> _DropTable:
    return _DropTable()


@cache
def _converter() -> opencc.OpenCC:
    # One converter for the process, built on first use: loading its
    # dictionaries takes milliseconds, converting a ticket about a microsecond.
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional characters and phrases in their simplified form."""
    if text.isascii():
        return text
    return str(_converter().convert(text))


def normalize(text: str) -> str:
    table = _drop_table()
    # Dropping punctuation first leaves most Chinese text already in NFKC form
    # (its full-width commas were what was not), and checking is much cheaper
    # than normalizing. What NFKC then unfolds (⑴ -> (1)) is dropped again.
    kept = text.translate(table)
    if not unicodedata.is_normalized("NFKC", kept):
        kept = unicodedata.normalize("NFKC", kept).translate(table)
    return to_simplified(kept).casefold()


# Shorter pinyin would turn up inside other words typed in pinyin (ganji of
# 赶集 inside ganjinguanguan, 赶紧管管): the lists spell such terms out.
_MIN_PINYIN = 6
# Nor may it start with a vowel: anguan (暗管) is inside ganjinguanguan, where
# a syllable ending in n or ng runs into it.
_VOWELS = "aeo"


@cache
def pinyin_of(term: str) -> str | None:
    """A folded term of two or more Chinese characters as pinyin without tones
    or spaces (电梯 -> dianti), as it reads in folded text where a citizen
    typed it so; None for other terms or pinyin too short to tell apart."""
    if len(term) < 2 or not all("\u4e00" <= char <= "\u9fff" for char in term):
        return None
    spelled = "".join(lazy_pinyin(term))
    if len(spelled) < _MIN_PINYIN or not spelled.isascii() or spelled[0] in _VOWELS:
        return None
    return spelled


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A rule's regular expression, to be matched against normalized text: its
    traditional characters are made simplified like the text's, and case is
    ignored. Spaces and punctuation written in the pattern never match, since
    normalized text has none."""
    return re.compile(to_simplified(pattern), re.IGNORECASE)
