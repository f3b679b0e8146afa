"""A service's subscriptions: for each event type its queue takes, the handler
that applies it. The table is the one place a service says what it does with
which event; its queue's bindings and the union its consumer parses come from
the queue's spec (shared.messaging.topology), against which the table is
checked when it is built, i.e. when the service's handlers module is imported.

Every handler of a table takes the event and the same dependencies object (the
service's own), so one dispatch serves the whole queue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from shared.events import Envelope
from shared.messaging.topology import QueueSpec

D = TypeVar("D")
EventHandler = Callable[[Any, D], Awaitable[None]]


class SubscriptionMismatch(Exception):
    """A handler table and its queue's spec name different event types."""


class Subscriptions(Generic[D]):
    def __init__(self, spec: QueueSpec, handlers: Mapping[type[Envelope], EventHandler[D]]) -> None:
        if spec.events is None:
            raise SubscriptionMismatch(f"{spec.service}.{spec.purpose} takes every event type")
        bound, handled = set(spec.events), set(handlers)
        if bound != handled:
            unhandled = sorted(e.__name__ for e in bound - handled)
            unbound = sorted(e.__name__ for e in handled - bound)
            raise SubscriptionMismatch(
                f"{spec.service}.{spec.purpose}: bound without a handler {unhandled}, "
                f"handled without a binding {unbound}"
            )
        self.spec = spec
        self._handlers = dict(handlers)

    @property
    def events(self) -> tuple[type[Envelope], ...]:
        return tuple(self._handlers)

    @property
    def adapter(self) -> TypeAdapter[Any]:
        return self.spec.adapter()

    def handler(self, event: Envelope) -> EventHandler[D]:
        return self._handlers[type(event)]

    async def dispatch(self, event: Envelope, deps: D) -> None:
        await self.handler(event)(event, deps)
