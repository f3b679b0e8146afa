"""Text as citizens type it, folded so that form does not decide a match.

NFKC folds full-width letters, digits and punctuation to their usual forms;
case, white space and punctuation are then dropped, so "停 水", "停水！" and
"停水" all read the same.
"""

from __future__ import annotations

import unicodedata


def normalize(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if _keep(ch))


def _keep(ch: str) -> bool:
    category = unicodedata.category(ch)
    # Letters (L*), numbers (N*) and symbols (S*, e.g. ℃) carry meaning;
    # punctuation (P*), separators (Z*) and controls (C*) do not.
    return category[0] in ("L", "N", "S")
