"""The chaos run's checks catch what they are meant to catch: a ticket lost, a
ticket dispatched or notified twice, a due timer that never fired, a timer
event counted twice. Fed with made-up observations (no servers)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from services.notifier.firing import EVENT_IDS
from shared.events import utcnow
from tests.chaos.checks import Checker, Report
from tests.e2e.cluster import Cluster, Receiver
from tests.observer import Observer, Seen

TICKET = "LC20261126000001"


class World:
    def __init__(self) -> None:
        self.history = ["received", "dispatched"]
        self.timers: list[dict[str, Any]] = []
        self.observer = Observer("amqp://unused/", "t.tickets")
        self.receiver = Receiver()
        self.see("received")
        self.see("dispatched")
        self.notice("d-1")

    def see(self, event_type: str, event_id: str | None = None) -> None:
        event_id = event_id or str(uuid.uuid4())
        self.observer.events.append(Seen(event_type, TICKET, event_id, 0.0, b"{}", event_id))

    def notice(self, delivery_id: str) -> None:
        body = {"kind": "dispatch", "ticket_id": TICKET}
        self.receiver.notices.append(("guanxian.water", body, {"x-hotline-delivery": delivery_id}))

    def timer(self, kind: str, status: str, due_in_s: float, seen: bool = True) -> None:
        timer_id = f"{TICKET}:g:{kind}:0"
        due = utcnow() + timedelta(seconds=due_in_s)
        self.timers.append(
            {
                "timer_id": timer_id,
                "kind": kind,
                "status": status,
                "original_due_at": due.isoformat(),
            }
        )
        if seen:
            self.see({"urge": "urged"}.get(kind, kind), str(uuid.uuid5(EVENT_IDS, timer_id)))

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v1/tickets/"):
            steps = [{"event_type": kind} for kind in self.history]
            return httpx.Response(200, json={"history": steps})
        return httpx.Response(200, json=self.timers)

    async def report(self) -> Report:
        cluster = Cluster("t", Path("unused"), Path("unused"), staff_key="hk_unit")
        checker = Checker(cluster, self.receiver, self.observer, 0.0)
        checker.http = httpx.AsyncClient(transport=httpx.MockTransport(self.handler))
        try:
            return await checker.tickets_report([TICKET])
        finally:
            await checker.close()


async def test_a_clean_ticket_passes() -> None:
    world = World()
    world.timer("warning", "fired", -10)
    world.history.append("warning")
    world.timer("overdue", "pending", 3600)
    report = await world.report()
    assert report.violations() == []
    assert report.timers_fired == 1


async def test_a_ticket_never_dispatched_is_lost() -> None:
    world = World()
    world.observer.events = [s for s in world.observer.events if s.event_type != "dispatched"]
    assert (await world.report()).lost == [TICKET]


async def test_a_ticket_stats_never_saw_is_lost() -> None:
    world = World()
    world.history = []
    assert (await world.report()).lost == [TICKET]


async def test_two_dispatches_are_a_duplicate() -> None:
    world = World()
    world.see("dispatched")
    assert (await world.report()).duplicated == [TICKET]


async def test_two_dispatch_notices_are_a_duplicate() -> None:
    world = World()
    world.notice("d-2")
    assert (await world.report()).duplicated == [TICKET]


async def test_a_webhook_sent_again_under_its_delivery_id_is_not() -> None:
    world = World()
    world.notice("d-1")
    assert (await world.report()).violations() == []


async def test_a_due_timer_still_pending_is_unfired() -> None:
    world = World()
    world.timer("urge", "pending", -5, seen=False)
    assert (await world.report()).timers_unfired == [f"{TICKET}:g:urge:0"]


async def test_a_timer_counted_twice_or_never_is_miscounted() -> None:
    world = World()
    world.timer("warning", "fired", -10)
    world.history += ["warning", "warning"]
    assert (await world.report()).timers_miscounted == [f"{TICKET}:warning"]
    world.history = ["received", "dispatched"]
    assert (await world.report()).timers_miscounted == [f"{TICKET}:warning"]
