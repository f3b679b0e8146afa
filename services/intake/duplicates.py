"""Duplicates (并单): the same caller with near-identical text within the window is
linked to the earlier ticket instead of opening a new one.

One small document per caller (keyed by a hash of the number, an _id lookup)
holds that caller's tickets of the window, so a check never scans the tickets.
Writes of one caller's document are serialised in the process by the caller
lock Intake holds; two replicas racing on one caller can at worst miss a link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from rapidfuzz import fuzz

from services.intake.textparse import fold
from shared.mongo import Document

MAX_RECENT = 50  # per caller: a bound on the document, far above real use


@dataclass(frozen=True)
class Earlier:
    ticket_id: str
    similarity: float


class CallerIndex:
    def __init__(self, db: AsyncDatabase[Document], window: timedelta, threshold: float) -> None:
        self._callers = db["callers"]
        self._links = db["links"]
        self._window = window
        self._threshold = threshold

    async def _recent(self, caller: str, now: datetime) -> list[Document]:
        doc = await self._callers.find_one({"_id": caller})
        since = now - self._window
        return [e for e in (doc or {}).get("recent", []) if e["at"] >= since]

    async def find(self, caller: str, text: str, now: datetime) -> Earlier | None:
        """The caller's most similar ticket of the window, if near-identical."""
        folded = fold(text)
        best: Earlier | None = None
        for entry in await self._recent(caller, now):
            score = fuzz.ratio(folded, entry["text"])
            if score >= self._threshold and (best is None or score > best.similarity):
                best = Earlier(entry["ticket_id"], score)
        return best

    async def remember(self, caller: str, ticket_id: str, text: str, now: datetime) -> None:
        recent = await self._recent(caller, now)
        recent.append({"ticket_id": ticket_id, "text": fold(text), "at": now})
        await self._callers.replace_one(
            {"_id": caller}, {"_id": caller, "recent": recent[-MAX_RECENT:]}, upsert=True
        )

    async def record_link(self, link_id: str, ticket_id: str, channel: str, now: datetime) -> None:
        """One document per linked request: every step is recorded (一张单子管到底)."""
        await self._links.insert_one(
            {"_id": link_id, "ticket_id": ticket_id, "channel": channel, "at": now}
        )

    async def links_of(self, ticket_id: str) -> int:
        return await self._links.count_documents({"ticket_id": ticket_id})
