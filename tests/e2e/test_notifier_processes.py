"""The notifier as real OS processes on the real servers: timers survive a
SIGKILL and fire on restart what fell due while the notifier was down, and two
notifier processes running together send each timer's notice exactly once.

Time moves for the whole cluster through the clock offset file (shared.clock):
the processes read it, the machine's clock is left alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from services.demo import sample_requests, submission_of
from services.notifier.firing import EVENT_IDS
from shared.events import parse_event
from shared.messaging.topology import Topology
from shared.settings import CommonSettings
from shared.workcalendar import WorkCalendar
from tests.e2e.cluster import Cluster, Receiver, running_cluster
from tests.support import eventually

pytestmark = pytest.mark.e2e

DAY_S = 86400.0
CENTRE = "city.platform"


@pytest.fixture
async def cluster(servers: None, tmp_path: Path) -> AsyncIterator[tuple[Cluster, Receiver]]:
    """Intake, router and notifier as processes, sharing a clock offset file."""
    services = ("intake", "router", "notifier")
    async with running_cluster(tmp_path, services, with_clock=True) as value:
        yield value


async def post(client: httpx.AsyncClient, cluster: Cluster, sample: dict[str, Any]) -> str:
    response = await client.post(
        f"{cluster.url('intake')}/v1/tickets",
        json=submission_of(sample),
        headers={"Idempotency-Key": f"notifier-e2e-{sample['id']}"},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["ticket_id"])


async def timers_of(client: httpx.AsyncClient, url: str, ticket_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"{url}/v1/timers", params={"ticket_id": ticket_id})
    assert response.status_code == 200, response.text
    timers: list[dict[str, Any]] = response.json()
    return timers


def due(timer: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(timer["original_due_at"]).replace(tzinfo=UTC)


def notices(receiver: Receiver, ticket_id: str) -> list[tuple[str, dict[str, Any], str]]:
    """(kind, body, delivery id) of every notice the ticket's departments got."""
    return [
        (headers["x-hotline-event"], body, headers["x-hotline-delivery"])
        for _, body, headers in receiver.notices
        if body["ticket_id"] == ticket_id
    ]


def cause(delivery_id: str) -> str:
    """The timer (or event) a delivery id was derived from: "<cause>:<dept>:<channel>"."""
    return delivery_id.rsplit(":", 2)[0]


async def settled(
    client: httpx.AsyncClient, url: str, tickets: list[str], offset_s: float
) -> dict[str, list[dict[str, Any]]]:
    """Wait until no timer of the tickets is due and unfired at the cluster's
    time; return each ticket's timers."""
    result: dict[str, list[dict[str, Any]]] = {}

    async def nothing_due() -> bool:
        now = datetime.now(UTC) + timedelta(seconds=offset_s)
        for ticket in tickets:
            result[ticket] = await timers_of(client, url, ticket)
            if any(t["status"] == "pending" and due(t) <= now for t in result[ticket]):
                return False
        return True

    await eventually(nothing_due, timeout_s=30)
    return result


async def arrived(receiver: Receiver, fired: set[str]) -> None:
    """Wait until a notice of every fired timer reached the receiver."""

    async def all_there() -> bool:
        return fired <= {cause(headers["x-hotline-delivery"]) for _, _, headers in receiver.notices}

    await eventually(all_there, timeout_s=30)


def escalations(got: list[tuple[str, dict[str, Any], str]]) -> list[tuple[int, str]]:
    """(count, supervisor) of the supervision notices, in order."""
    return sorted((body["count"], body["department"]) for k, body, _ in got if k == "supervision")


TIMER_EVENTS = ("urged", "warning", "overdue", "supervised")


async def published_timer_events(cluster: Cluster) -> Counter[uuid.UUID]:
    """Timer events published so far, by event id: read from the namespace's
    stats queue, which binds ticket.# and has no consumer in these tests."""
    topology = Topology(cluster.namespace, "classic", ())
    connection = await aio_pika.connect(CommonSettings().amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.queue_name(topology.spec("stats")))
        ids: Counter[uuid.UUID] = Counter()
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            event = parse_event(message.body)
            if event.event_type in TIMER_EVENTS:
                ids[event.event_id] += 1
    return ids


def event_ids(timer_ids: set[str]) -> set[uuid.UUID]:
    return {uuid.uuid5(EVENT_IDS, t) for t in timer_ids}


def expected_supervisions(deadline: datetime, now: datetime) -> int:
    calendar, count = WorkCalendar(), 0
    while calendar.add_working_days(deadline, count + 1) <= now:
        count += 1
    return count


async def test_restarted_notifier_fires_what_fell_due_while_it_was_down(
    cluster: tuple[Cluster, Receiver],
) -> None:
    procs, receiver = cluster
    [sample] = [s for s in sample_requests() if s["id"] == "S001"]  # 冠县 water group
    async with httpx.AsyncClient(timeout=10.0, headers=await procs.staff_headers()) as client:
        ticket = await post(client, procs, sample)

        async def dispatched() -> bool:
            return len(notices(receiver, ticket)) == 1

        await eventually(dispatched, timeout_s=30)
        timers = await timers_of(client, procs.url("notifier"), ticket)
        assert [(t["kind"], t["status"]) for t in timers] == [
            ("urge", "pending"),
            ("warning", "pending"),
            ("overdue", "pending"),
        ]
        deadline = due(timers[2])

        await procs.kill("notifier")
        offset = 10 * DAY_S
        procs.set_clock_offset(offset)
        await procs.start("notifier")

        timers = (await settled(client, procs.url("notifier"), [ticket], offset))[ticket]
        now = datetime.now(UTC) + timedelta(seconds=offset)
        count = expected_supervisions(deadline, now)
        assert count >= 1  # ten days cover five working days and more
        fired = {t["timer_id"] for t in timers if t["status"] == "fired"}
        kinds = sorted((t["kind"], t["seq"]) for t in timers if t["status"] == "fired")
        assert kinds == sorted(
            [("urge", 0), ("warning", 0), ("overdue", 0)]
            + [("supervision", n) for n in range(1, count + 1)]
        )
        [pending] = [t for t in timers if t["status"] == "pending"]
        assert (pending["kind"], pending["seq"]) == ("supervision", count + 1)

        await arrived(receiver, fired)
        await asyncio.sleep(1.0)  # let a duplicate, if any, arrive before judging
        got = notices(receiver, ticket)
        assert Counter(d for _, _, d in got).most_common(1)[0][1] == 1, "a notice arrived twice"
        assert Counter(kind for kind, _, _ in got) == {
            "dispatch": 1,
            "urge": 1,
            "warning": 1,
            "overdue": 1,
            "supervision": count,
        }
        assert escalations(got) == [(1, "guanxian")] + [(n, CENTRE) for n in range(2, count + 1)]

        # Four days on, the notifier still running: one more supervision each
        # working day, to the hotline centre.
        offset = 14 * DAY_S
        procs.set_clock_offset(offset)
        timers = (await settled(client, procs.url("notifier"), [ticket], offset))[ticket]
        later = expected_supervisions(deadline, datetime.now(UTC) + timedelta(seconds=offset))
        await arrived(receiver, {t["timer_id"] for t in timers if t["status"] == "fired"})
        await asyncio.sleep(1.0)
        got = notices(receiver, ticket)
        assert Counter(d for _, _, d in got).most_common(1)[0][1] == 1, "a notice arrived twice"
        assert escalations(got) == [(1, "guanxian")] + [(n, CENTRE) for n in range(2, later + 1)]
        events = await published_timer_events(procs)
        fired = {t["timer_id"] for t in timers if t["status"] == "fired"}
        assert set(events) == event_ids(fired) and set(events.values()) == {1}


async def test_two_notifier_processes_send_each_notice_once(
    cluster: tuple[Cluster, Receiver],
) -> None:
    procs, receiver = cluster
    await procs.start("notifier", name="notifier-2")
    samples = [s for s in sample_requests() if s["expected_department"] != "on_spot"][:8]
    async with httpx.AsyncClient(timeout=10.0, headers=await procs.staff_headers()) as client:
        tickets = [await post(client, procs, s) for s in samples]

        async def all_dispatched() -> bool:
            return set(receiver.by_ticket()) >= set(tickets)

        await eventually(all_dispatched, timeout_s=30)
        # Both replicas poll the same timers; the clock jumps for both at once.
        offset = 10 * DAY_S
        procs.set_clock_offset(offset)
        url = procs.url("notifier-2")
        timers = await settled(client, url, tickets, offset)
        fired = {t["timer_id"] for ts in timers.values() for t in ts if t["status"] == "fired"}
        assert len(fired) >= 4 * len(tickets)  # urge, warning, overdue, supervision 1 at least

        await arrived(receiver, fired)
        await asyncio.sleep(1.0)  # let a duplicate, if any, arrive before judging
        deliveries = Counter(headers["x-hotline-delivery"] for _, _, headers in receiver.notices)
        twice = [d for d, n in deliveries.items() if n > 1]
        assert twice == [], f"notices sent more than once: {twice}"
        timer_notices = Counter(cause(d) for d in deliveries if cause(d) in fired)
        assert set(timer_notices) == fired and set(timer_notices.values()) == {1}
        # Each timer fired once: its event (id derived from the timer) published once.
        events = await published_timer_events(procs)
        assert set(events) == event_ids(fired) and set(events.values()) == {1}
