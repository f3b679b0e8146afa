"""What intake reads out of free text when a channel has no form: SMS and email
carry neither a district nor a category, and callers' numbers come in many shapes."""

from __future__ import annotations

import hashlib
import re
import unicodedata

from shared.directory import Directory
from shared.domain import Category
from shared.privacy import normalise_phone

# The first of these words found decides; a request with none is a plea for help.
CATEGORY_WORDS: tuple[tuple[Category, tuple[str, ...]], ...] = (
    (Category.PRAISE, ("表扬", "感谢", "点赞")),
    (Category.REPORT, ("举报",)),
    (Category.SUGGESTION, ("建议",)),
    (Category.CONSULTATION, ("咨询", "请问", "怎么办理", "如何办理")),
    (Category.COMPLAINT, ("投诉",)),
)
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def guess_category(text: str) -> Category:
    for category, words in CATEGORY_WORDS:
        if any(word in text for word in words):
            return category
    return Category.HELP


def guess_place(text: str, directory: Directory) -> tuple[str | None, str | None]:
    """(district id, town) named in the text; a town names its district too."""
    for district in directory.districts.values():
        for town in district.towns:
            if town in text:
                return district.id, town
    for district in directory.districts.values():
        short = district.name.rstrip("区县市")
        if district.name in text or (len(short) >= 2 and short in text):
            return district.id, None
    return None, None


def caller_key(phone: str | None, email: str | None) -> str | None:
    """A stable, non-reversible-at-a-glance key for one caller (phone, else email)."""
    identity = normalise_phone(phone) or (email.strip().lower() if email else None)
    if not identity:
        return None
    return hashlib.sha256(f"caller:{identity}".encode()).hexdigest()


def fold(text: str) -> str:
    """Text as compared for duplicates: full-width folded, case, spaces and
    punctuation gone, so that '路灯坏了！' and '路灯坏了' are the same words."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).lower())
