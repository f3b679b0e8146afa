"""After the chaos: wait until the system is quiet, then count what went wrong.

Read through the services' own APIs (stats' ticket histories, the notifier's
timers), the webhook receiver, the observer queue and the broker's queues.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aio_pika
import httpx

from services.notifier.firing import EVENT_IDS
from shared.events import utcnow
from shared.messaging.topology import QUEUES, Topology
from tests.e2e.cluster import Cluster, Receiver
from tests.observer import Observer

TIMER_EVENTS = {
    "urge": "urged",
    "warning": "warning",
    "overdue": "overdue",
    "supervision": "supervised",
}
PARALLEL = 16


@dataclass
class Report:
    tickets: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    notices_missing: list[str] = field(default_factory=list)
    timers_fired: int = 0
    timers_unfired: list[str] = field(default_factory=list)
    timers_miscounted: list[str] = field(default_factory=list)
    dead_letters: dict[str, list[str]] = field(default_factory=dict)
    dead_letters_wrong: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    queues_not_empty: dict[str, int] = field(default_factory=dict)
    webhook_redeliveries: int = 0

    def violations(self) -> list[str]:
        found = []
        for name in (
            "lost",
            "duplicated",
            "notices_missing",
            "timers_unfired",
            "timers_miscounted",
        ):
            values = getattr(self, name)
            if values:
                found.append(f"{name}: {len(values)} e.g. {values[:5]}")
        if self.dead_letters_wrong:
            found.append(f"dead-letter queues (found, expected): {self.dead_letters_wrong}")
        if self.queues_not_empty:
            found.append(f"queues not empty: {self.queues_not_empty}")
        return found


async def _all(calls: list[Any]) -> list[Any]:
    slots = asyncio.Semaphore(PARALLEL)

    async def one(call: Any) -> Any:
        async with slots:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def _json(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Any:
    response = await client.get(url, headers=headers)
    return response.json() if response.status_code == 200 else None


class Checker:
    def __init__(
        self, cluster: Cluster, receiver: Receiver, observer: Observer, offset_s: float
    ) -> None:
        self.cluster = cluster
        self.receiver = receiver
        self.observer = observer
        self.offset_s = offset_s  # the services' clock offset
        self.http = httpx.AsyncClient(timeout=30.0)

    async def histories(self, tickets: list[str]) -> dict[str, list[str] | None]:
        base = self.cluster.url("stats")
        staff = await self.cluster.staff_headers()
        views = await _all([_json(self.http, f"{base}/v1/tickets/{t}", staff) for t in tickets])
        return {
            t: [step["event_type"] for step in v["history"]] if v else None
            for t, v in zip(tickets, views, strict=True)
        }

    async def timers(self, tickets: list[str]) -> dict[str, list[dict[str, Any]]]:
        base = self.cluster.url("notifier")
        staff = await self.cluster.staff_headers()
        found = await _all(
            [_json(self.http, f"{base}/v1/timers?ticket_id={t}", staff) for t in tickets]
        )
        return {t: f or [] for t, f in zip(tickets, found, strict=True)}

    def due(self, timer: dict[str, Any]) -> bool:
        now = utcnow() + timedelta(seconds=self.offset_s)
        return datetime.fromisoformat(timer["original_due_at"]) <= now

    async def quiet(self, tickets: list[str], timeout_s: float) -> None:
        """Until every ticket is decided, in stats with its timer events, its
        dispatch notice delivered, and no due timer pending. What the observer
        and the receiver saw is checked first: asking the services about every
        ticket is itself work for the store."""
        deadline = time.monotonic() + timeout_s
        for _ in range(int(timeout_s)):
            if self._decided_and_notified(tickets):
                break
            await asyncio.sleep(1.0)
        while time.monotonic() < deadline:
            report = await self.tickets_report(tickets)
            settled = not (report.lost or report.notices_missing or report.timers_unfired)
            if settled and not report.timers_miscounted:
                return
            await asyncio.sleep(5.0)

    def _decided_and_notified(self, tickets: list[str]) -> bool:
        dispatched = self.observer.event_ids("dispatched")
        unroutable = self.observer.event_ids("unroutable")
        notices = self._dispatch_notices()
        return all(
            (t in dispatched and t in notices) or (t in unroutable and t not in dispatched)
            for t in tickets
        )

    async def tickets_report(self, tickets: list[str]) -> Report:
        report = Report(tickets=len(tickets))
        histories = await self.histories(tickets)
        timers = await self.timers(tickets)
        dispatched = self.observer.event_ids("dispatched")
        unroutable = self.observer.event_ids("unroutable")
        notices = self._dispatch_notices()
        doubled: set[str] = set()
        for t in tickets:
            history = Counter(histories[t] or [])
            if not (dispatched.get(t) or unroutable.get(t)) or history["received"] == 0:
                report.lost.append(t)
            decisions = len(dispatched.get(t, ())) + len(unroutable.get(t, ()))
            if decisions > 1 or history["received"] > 1 or history["dispatched"] > 1:
                doubled.add(t)
            if t in dispatched and not notices.get(t):
                report.notices_missing.append(t)
            if any(len(ids) > 1 for ids in notices.get(t, {}).values()):
                doubled.add(t)
            self._timers(t, timers[t], history, report)
        report.duplicated = sorted(doubled)
        return report

    def _dispatch_notices(self) -> dict[str, dict[str, set[str]]]:
        """Per ticket and department, the distinct delivery ids of dispatch notices."""
        found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for department, body, headers in self.receiver.notices:
            if body.get("kind") == "dispatch":
                found[body["ticket_id"]][department].add(headers.get("x-hotline-delivery", ""))
        return found

    def _timers(
        self, ticket: str, timers: list[dict[str, Any]], history: Counter[str], report: Report
    ) -> None:
        seen = {s.event_id for s in self.observer.events if s.ticket_id == ticket}
        fired: Counter[str] = Counter()
        for timer in timers:
            if timer["status"] == "fired":
                fired[TIMER_EVENTS[timer["kind"]]] += 1
                report.timers_fired += 1
                if str(uuid.uuid5(EVENT_IDS, timer["timer_id"])) not in seen:
                    report.timers_miscounted.append(timer["timer_id"])
            elif timer["status"] != "cancelled" and self.due(timer):
                report.timers_unfired.append(timer["timer_id"])
        for event_type in TIMER_EVENTS.values():
            if history[event_type] != fired[event_type]:
                report.timers_miscounted.append(f"{ticket}:{event_type}")

    async def close(self) -> None:
        await self.http.aclose()


async def _depths(url: str, topology: Topology, report: Report) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for spec in QUEUES:
            queue = topology.queue_name(spec)
            retries = [topology.retry_queue_name(queue, d) for d in topology.retry_delays]
            for name in [queue, *retries]:
                declared = await channel.declare_queue(name, passive=True)
                depth = int(declared.declaration_result.message_count or 0)
                if depth:
                    report.queues_not_empty[name] = depth


async def broker_report(
    url: str, topology: Topology, expected: dict[str, set[str]], report: Report
) -> None:
    """Dead-letter queues hold exactly the poison; every other queue is empty."""
    await _depths(url, topology, report)
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for spec in QUEUES:
            queue = topology.queue_name(spec)
            dlq = await channel.declare_queue(topology.dlq_name(queue), passive=True)
            found = []
            while (message := await dlq.get(no_ack=True, fail=False)) is not None:
                found.append(message.message_id or "?")
            report.dead_letters[queue] = sorted(found)
            if sorted(found) != sorted(expected[queue]):
                report.dead_letters_wrong[queue] = (sorted(found), sorted(expected[queue]))


async def queues_drained(url: str, topology: Topology, timeout_s: float) -> None:
    """Until the main and retry queues are empty (or timeout_s passed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        report = Report()
        await _depths(url, topology, report)
        if not report.queues_not_empty:
            return
        await asyncio.sleep(1.0)
