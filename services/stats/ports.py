"""The store stats' event handler depends on, as a Protocol: EventArchive
satisfies it against MongoDB, tests/fakes.py in memory (an event id archived
once, its first record kept)."""

from __future__ import annotations

from typing import Protocol

from shared.mongo import Document


class ArchiveSink(Protocol):
    async def add_many(self, docs: list[Document]) -> int:
        """Archive the records; those archived before stay. Returns how many were new."""
        ...
