"""What a service's core needs of the broker, as a Protocol: the real
Publisher satisfies it, and unit tests hand in an in-memory one (tests/fakes.py)."""

from __future__ import annotations

from typing import Protocol

from shared.events import Envelope


class EventPublisher(Protocol):
    async def publish(self, event: Envelope) -> None:
        """Return once the broker has the event; raise UnavailableError otherwise."""
        ...
