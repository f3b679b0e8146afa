"""The notifier's handlers and timer firing against in-memory stores
(tests/fakes_notifier.py): a redelivered event and a timer fired again have their effects
once. The same logic runs against MongoDB and RabbitMQ in
tests/integration/test_notifier_timers.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from services.notifier.channels import DeliveryChannel
from services.notifier.firing import EVENT_IDS, TimerFirer
from services.notifier.handlers import Notifier, handle_event
from services.notifier.records import JobStatus, TimerKind, timer_id
from shared.clock import ManualClock
from shared.directory import Directory
from shared.errors import UnavailableError
from shared.events import TicketDispatched, TicketOverdue
from shared.mongo import Document
from shared.workcalendar import WorkCalendar
from tests.fakes import FakePublisher
from tests.fakes_notifier import FakeDeliveries, FakeTimers, ReachEveryone
from tests.stats_support import TicketStory

START = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in the city
DEPARTMENT = "yanggu.urban-mgmt"
LEASE = timedelta(minutes=1)


@dataclass
class World:
    timers: FakeTimers
    deliveries: FakeDeliveries
    publisher: FakePublisher
    clock: ManualClock
    notifier: Notifier
    firer: TimerFirer
    offered: list[Document]

    def firer_of(self, timers: FakeTimers) -> TimerFirer:
        """Another notifier process sharing the stores."""
        return TimerFirer(**{**vars(self.firer), "timers": timers})

    def overdue(self, dispatched: TicketDispatched) -> Document:
        return self.timers.jobs[timer_id(dispatched.ticket_id, str(dispatched.event_id), KIND)]


KIND = TimerKind.OVERDUE


@pytest.fixture
def world(directory: Directory, cal: WorkCalendar) -> World:
    timers, deliveries, publisher = FakeTimers(), FakeDeliveries(), FakePublisher()
    clock = ManualClock(START)
    channels: dict[str, DeliveryChannel] = {n: ReachEveryone(n) for n in ("webhook", "email")}
    offered: list[Document] = []
    firer = TimerFirer(
        timers, deliveries, directory, channels, publisher, cal, clock, LEASE,
        "city.platform", offered.append, offered.append,
    )  # fmt: skip
    notifier = Notifier(
        timers, deliveries, directory, channels, cal, clock,
        offered.append, offered.append, firer.overdue_missed,
    )  # fmt: skip
    return World(timers, deliveries, publisher, clock, notifier, firer, offered)


async def dispatch(world: World) -> TicketDispatched:
    event = TicketStory("LC20260310000001", "yanggu").dispatched(START, DEPARTMENT, 24)
    await handle_event(event, notifier=world.notifier)
    return event


async def test_a_redelivered_dispatch_sets_its_timers_and_notice_once(world: World) -> None:
    event = await dispatch(world)
    await handle_event(event, notifier=world.notifier)

    kinds = sorted(t["kind"] for t in world.timers.jobs.values())
    assert kinds == sorted([TimerKind.URGE, TimerKind.WARNING, TimerKind.OVERDUE])
    assert [d["kind"] for d in world.deliveries.jobs.values()] == ["dispatch"]


async def test_a_timer_fired_again_has_its_effects_once(world: World) -> None:
    overdue = world.overdue(await dispatch(world))
    world.clock.set(overdue["due_at"])

    await world.firer.fire(overdue)
    await world.firer.fire(overdue)  # offered again: the worker read it before it fired

    [event] = world.publisher.published
    assert isinstance(event, TicketOverdue)
    assert event.event_id == uuid.uuid5(EVENT_IDS, overdue["_id"])
    assert world.timers.jobs[overdue["_id"]]["status"] == JobStatus.FIRED
    assert sum(d["kind"] == "overdue" for d in world.deliveries.jobs.values()) == 1
    assert sum(t["kind"] == TimerKind.SUPERVISION for t in world.timers.jobs.values()) == 1


async def test_a_timer_another_process_holds_is_not_fired_twice(world: World) -> None:
    overdue = world.overdue(await dispatch(world))
    world.clock.set(overdue["due_at"])
    other = world.firer_of(world.timers.replica())

    assert await world.timers.claim(overdue, world.clock(), LEASE)
    await other.fire(overdue)  # its claim is refused while ours lives

    assert world.publisher.published == []
    assert world.timers.jobs[overdue["_id"]]["status"] == JobStatus.PENDING


async def test_a_firing_cut_short_fires_again_with_the_same_effects(world: World) -> None:
    overdue = world.overdue(await dispatch(world))
    world.clock.set(overdue["due_at"])
    world.publisher.fail_next = 1

    with pytest.raises(UnavailableError):
        await world.firer.fire(overdue)
    assert world.timers.jobs[overdue["_id"]]["status"] == JobStatus.PENDING
    await world.firer.fire(overdue)  # this process runs its attempt again

    assert world.publisher.ids() == [uuid.uuid5(EVENT_IDS, overdue["_id"])]
    assert sum(d["kind"] == "overdue" for d in world.deliveries.jobs.values()) == 1


async def test_an_older_redelivery_does_not_cancel_a_newer_rounds_timers(world: World) -> None:
    event = await dispatch(world)
    later = TicketStory("LC20260310000001", "yanggu").dispatched(
        START + timedelta(hours=1), DEPARTMENT, 24
    )
    await handle_event(later, notifier=world.notifier)
    await handle_event(event, notifier=world.notifier)  # late redelivery of the first

    pending = [t for t in world.timers.jobs.values() if t["status"] == JobStatus.PENDING]
    assert {t["generation"] for t in pending} == {str(later.event_id)}


async def test_a_late_resolution_sends_the_missed_overdue_event_once(world: World) -> None:
    story = TicketStory("LC20260310000001", "yanggu")
    dispatched = story.dispatched(START, DEPARTMENT, 24)
    await handle_event(dispatched, notifier=world.notifier)
    overdue = world.overdue(dispatched)
    late = story.resolved(overdue["due_at"] + timedelta(hours=2))
    assert not late.payload.on_time
    world.clock.set(late.occurred_at)

    await handle_event(late, notifier=world.notifier)
    await handle_event(late, notifier=world.notifier)  # redelivered

    [event] = world.publisher.published
    assert isinstance(event, TicketOverdue)
    assert event.event_id == uuid.uuid5(EVENT_IDS, overdue["_id"])
    # No notice: the department has resolved the ticket.
    assert [d["kind"] for d in world.deliveries.jobs.values()] == ["dispatch"]
    pending = [t for t in world.timers.jobs.values() if t["status"] == JobStatus.PENDING]
    assert pending == []


async def test_a_batch_cut_short_by_its_events_fires_again_with_the_same_effects(
    world: World,
) -> None:
    """The notices are stored while the events go out: a batch whose publish
    fails keeps its notice, not its fired mark, and run again has one event,
    one notice and one next supervision."""
    overdue = world.overdue(await dispatch(world))
    world.clock.set(overdue["due_at"])
    world.publisher.fail_next = 1

    with pytest.raises(UnavailableError):
        await world.firer.fire_many([overdue])
    assert world.timers.jobs[overdue["_id"]]["status"] == JobStatus.PENDING
    notices = [d for d in world.offered if "channel" in d and d["kind"] == "overdue"]
    assert notices == []  # stored, not yet handed over: the sender's next scan takes it
    await world.firer.fire_many([overdue])  # the worker runs it again

    assert world.publisher.ids() == [uuid.uuid5(EVENT_IDS, overdue["_id"])]
    assert world.timers.jobs[overdue["_id"]]["status"] == JobStatus.FIRED
    assert sum(d["kind"] == "overdue" for d in world.deliveries.jobs.values()) == 1
    assert sum(t["kind"] == TimerKind.SUPERVISION for t in world.timers.jobs.values()) == 1
