"""Each service's subscriptions (event type -> handler) against the topology:
the bindings and the union each consumer parses derive from one table per queue,
the queues and their binding keys are what they were before that table, and a
table that drifts from its queue's spec stops the service at import."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.intake.status import SUBSCRIPTIONS as INTAKE_STATUS
from services.intake.status import changes
from services.notifier.handlers import SUBSCRIPTIONS as NOTIFIER
from services.router.handlers import SUBSCRIPTIONS as ROUTER
from shared.events import EVENT_ADAPTER, Rating, TicketDispatched, TicketEvent, TicketReceived
from shared.messaging.subscriptions import SubscriptionMismatch, Subscriptions
from shared.messaging.topology import QUEUES, Topology, queue_spec, routing_key_of
from tests.stats_support import TicketStory

AT = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
CLOCK_EVENTS = (
    "ticket.dispatched",
    "ticket.accepted",
    "ticket.returned",
    "ticket.unroutable",
    "ticket.extended",
    "ticket.resolved",
    "ticket.closed",
    "ticket.reopened",
)
# The topology as it was written out by hand before the tables: the derived one
# must declare exactly these queues with exactly these bindings.
BEFORE = {
    # The router also hears linked repeats (issue #17): under the reopen policy
    # a repeat of a closed ticket reopens it.
    "hl.router.events": ("ticket.received", "ticket.feedback", "ticket.linked"),
    # The notifier also hears extension requests and refusals (issue #17): the
    # hotline centre is told of a request until staff decide.
    "hl.notifier.events": (
        *CLOCK_EVENTS,
        "ticket.extension_requested",
        "ticket.extension_refused",
    ),
    "hl.stats.events": ("ticket.#",),
    "hl.intake.status": CLOCK_EVENTS,
}
TABLES: list[Subscriptions[Any]] = [ROUTER, NOTIFIER, INTAKE_STATUS]


def test_the_derived_topology_is_the_one_written_before() -> None:
    topology = Topology("hl", "classic", ())
    # The order of a queue's bindings means nothing to the broker.
    derived = {topology.queue_name(spec): set(spec.binding_keys) for spec in QUEUES}
    assert derived == {name: set(keys) for name, keys in BEFORE.items()}
    assert all(len(spec.binding_keys) == len(set(spec.binding_keys)) for spec in QUEUES)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: f"{t.spec.service}.{t.spec.purpose}")
def test_a_queue_is_bound_to_exactly_what_its_service_handles(table: Subscriptions[Any]) -> None:
    spec = queue_spec(table.spec.service, table.spec.purpose)
    assert set(spec.binding_keys) == {routing_key_of(event) for event in table.events}


def test_every_consumer_queue_but_the_catch_all_has_a_handler_table() -> None:
    tabled = {(t.spec.service, t.spec.purpose) for t in TABLES}
    untabled = {(s.service, s.purpose) for s in QUEUES} - tabled
    assert untabled == {("stats", "events")}
    assert queue_spec("stats").events is None


def test_a_consumer_parses_what_its_queue_takes_and_nothing_else() -> None:
    story = TicketStory("LC20260310000001", "yanggu")
    received = story.received(AT)
    dispatched = story.dispatched(AT, "yanggu.urban-mgmt", 24)

    assert isinstance(ROUTER.adapter.validate_json(received.model_dump_json()), TicketReceived)
    with pytest.raises(ValidationError):
        ROUTER.adapter.validate_json(dispatched.model_dump_json())
    parsed = NOTIFIER.adapter.validate_json(dispatched.model_dump_json())
    assert isinstance(parsed, TicketDispatched)


def test_the_catch_all_queue_parses_every_event_type() -> None:
    stats = queue_spec("stats")
    assert stats.adapter() is EVENT_ADAPTER  # the union of every type, EVENT_TYPES
    assert stats.binding_keys == ("ticket.#",)


def test_a_table_that_drifts_from_its_queue_is_refused() -> None:
    async def handler(event: Any, deps: None) -> None:
        return None

    with pytest.raises(SubscriptionMismatch, match="TicketFeedback"):
        Subscriptions(queue_spec("router"), {TicketReceived: handler})
    with pytest.raises(SubscriptionMismatch, match="TicketDispatched"):
        Subscriptions(
            queue_spec("router"),
            dict.fromkeys((*ROUTER.events, TicketDispatched), handler),
        )


async def test_dispatch_hands_each_event_to_its_own_handler() -> None:
    seen: list[tuple[str, str]] = []

    async def received(event: Any, deps: str) -> None:
        seen.append(("received", deps))

    async def feedback(event: Any, deps: str) -> None:
        seen.append(("feedback", deps))

    async def linked(event: Any, deps: str) -> None:
        seen.append(("linked", deps))

    spec = queue_spec("router")
    handlers = (received, feedback, linked)
    table = Subscriptions(spec, dict(zip(ROUTER.events, handlers, strict=True)))
    story = TicketStory("LC20260310000001", "yanggu")
    await table.dispatch(story.received(AT), "deps")

    assert seen == [("received", "deps")]


def test_intake_shows_something_of_every_step_its_status_queue_takes() -> None:
    story = TicketStory("LC20260310000001", "yanggu")
    later = AT + timedelta(days=3)
    steps: list[TicketEvent] = [
        story.dispatched(AT, "yanggu.urban-mgmt", 24),
        story.accepted(AT),
        story.extended(AT, later),
        story.resolved(AT),
        story.closed(AT, Rating.SATISFIED, True),
        story.reopened(AT, 24),
        story.returned(AT),
        story.unroutable(AT),
    ]
    assert {type(step) for step in steps} == set(INTAKE_STATUS.events)
    for step in steps:
        assert changes(step), f"{step.event_type} is bound to intake but shows nothing"
