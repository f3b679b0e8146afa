"""A burst of timers due in the same second, fired in batches against the real
store and broker: each fires once (one event, one notice), those cancelled
after the worker took them into memory do not fire, and overdue notices
schedule their next supervision once. A scan's copy of a timer this process
has fired since is dropped without a store command."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient

from services.notifier.firing import EVENT_IDS
from services.notifier.records import TimerKind
from services.notifier.schedule import Planned
from services.notifier.timers import TicketTimers, TimerRepository
from shared.mongo import Document, service_database
from shared.settings import CommonSettings
from tests.integration.test_notifier_delivery import Replica, dispatched
from tests.integration.test_notifier_timers import (
    DEADLINE,
    RESPONSE,
    START,
    WATER,
    Timed,
)
from tests.storeops import Commands
from tests.support import eventually

pytestmark = pytest.mark.integration

BURST = 300
CANCELLED = 10


async def test_a_burst_due_in_one_second_fires_each_timer_once(timed: Timed) -> None:
    await timed.n.stop()
    one, two = await timed.notifiers.replica(), await timed.notifiers.replica()
    event = dispatched("LC-X", at=START, deadline=DEADLINE, response_deadline=RESPONSE)
    context = {
        "department": WATER,
        "deadline": DEADLINE,
        "response_deadline": RESPONSE,
        "dims": event.payload.dims.model_dump(mode="json"),
    }
    due = START + timedelta(seconds=30)
    kinds: dict[str, TimerKind] = {}
    for i in range(BURST):
        kind = TimerKind.OVERDUE if i % 3 == 0 else TimerKind.WARNING
        ticket = f"LC-BURST-{i:03d}"
        await one.timers.schedule(ticket, "g1", [Planned(kind, due)], context)
        kinds[f"{ticket}:g1:{kind}:0"] = kind
    timed.clock.set(START)
    for replica in (one, two):
        replica.start_timers()
        replica.start_deliveries()
    await eventually(lambda: _held(one, two))  # both hold the burst in memory
    # Resolved after the workers read them: the timers must not fire.
    cancelled = list(kinds)[:CANCELLED]
    for timer in cancelled:
        await one.timers.cancel(TicketTimers(timer.split(":")[0], ["g1"]))
    timed.clock.set(due + timedelta(milliseconds=500))

    firing = Counter(k for t, k in kinds.items() if t not in cancelled)
    await eventually(lambda: _fired(one, BURST - CANCELLED), timeout_s=60)
    for kind, count in firing.items():
        await timed.published.wait_for(kind, count)
        await timed.wait_calls(kind, count)
    await asyncio.sleep(0.5)  # a second firing of any timer would land by now
    await timed.published.drain()
    events = timed.published.of("warning") + timed.published.of("overdue")
    expected = {uuid.uuid5(EVENT_IDS, t) for t in kinds if t not in cancelled}
    fired = Counter(e.event_id for e in events)
    assert set(fired) == expected and set(fired.values()) == {1}
    assert set(timed.receiver.per_delivery().values()) == {1}
    for timer in cancelled:
        assert (await one.timers.get(timer) or {})["status"] == "cancelled"
    # Each fired overdue timer scheduled its first supervision, once.
    supervisions = await one.timers.count({"kind": TimerKind.SUPERVISION})
    assert supervisions == firing[TimerKind.OVERDUE]


async def _held(*replicas: Replica) -> bool:
    return all(r.timer_worker.held >= BURST for r in replicas)


async def _fired(replica: Replica, count: int) -> bool:
    return await replica.timers.count({"status": "fired"}) >= count


async def test_fired_marks_share_commands_and_skip_timers_cancelled_meanwhile(
    timed: Timed,
) -> None:
    """The marks of a batch are written in bulk (50 statements a command); a
    timer cancelled between its read and its mark stays cancelled and is not
    reported fired (the firer then cancels its next supervision)."""
    await timed.n.stop()
    replica = await timed.notifiers.replica()
    context = {"department": WATER, "deadline": DEADLINE, "dims": {}}
    ids = []
    for i in range(120):
        ticket = f"LC-MARK-{i:03d}"
        await replica.timers.schedule(ticket, "g1", [Planned(TimerKind.WARNING, START)], context)
        ids.append(f"{ticket}:g1:{TimerKind.WARNING}:0")
    cancelled = {ids[5], ids[77]}
    for timer in cancelled:
        await replica.timers.cancel_one(timer)

    marked = await replica.timers.mark_fired_many(dict.fromkeys(ids, 1.5), START)

    assert marked == set(ids) - cancelled
    statuses = Counter([(await replica.timers.get(t) or {})["status"] for t in ids])
    assert statuses == {"fired": 118, "cancelled": 2}


async def test_a_scans_copy_of_a_timer_fired_here_is_dropped_without_a_store_command(
    settings: CommonSettings,
) -> None:
    """A scan that read the burst before its marks returns it as pending after
    the batch ended: claiming it again cost a claim, a read of the claim and a
    read of the timer each (a third of a burst's commands on the dev store)."""
    commands = Commands()
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongo_url, tz_aware=True, event_listeners=[commands]
    )
    try:
        db = service_database(mongo, settings, "notifier")
        timers = TimerRepository(db)
        context = {"department": WATER, "deadline": DEADLINE, "dims": {}}
        plan = [Planned(TimerKind.WARNING, START)]
        copies = [
            doc for i in range(5) for doc in await timers.schedule(f"LC-S{i}", "g1", plan, context)
        ]
        lease = timedelta(minutes=1)
        assert len(await timers.claim_many(copies, START, lease)) == 5
        ids = [str(doc["_id"]) for doc in copies]
        assert await timers.mark_fired_many(dict.fromkeys(ids, 0.5), START) == set(ids)
        commands.reset()

        assert await timers.claim_many(copies, START, lease) == []
        assert commands.operations() == 0
        # Another process does not know: it asks the store, which refuses them.
        assert await TimerRepository(db).claim_many(copies, START, lease) == []
        assert commands.operations() > 0
    finally:
        await mongo.close()
