"""The four services as separate processes on the real servers: the sample
requests dispatched to the departments the rules chose, counted once, and no
ticket lost or doubled when a service is SIGKILLed mid-stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.demo import sample_requests, submission_of
from tests.e2e.cluster import Cluster, Receiver, expected_departments, running_cluster
from tests.support import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
async def cluster(servers: None, tmp_path: Path) -> AsyncIterator[tuple[Cluster, Receiver]]:
    async with running_cluster(tmp_path) as value:
        yield value


async def post(client: httpx.AsyncClient, cluster: Cluster, body: dict[str, Any], key: str) -> str:
    """Post until intake answers 202 (a 503 during a fault is retried with the
    same key, as a real client would); return the ticket number."""
    for _ in range(100):
        try:
            response = await client.post(
                f"{cluster.url('intake')}/v1/tickets", json=body, headers={"Idempotency-Key": key}
            )
        except httpx.HTTPError:
            await asyncio.sleep(0.2)
            continue
        if response.status_code == 202:
            return str(response.json()["ticket_id"])
        assert response.status_code == 503, response.text
        await asyncio.sleep(0.2)
    raise AssertionError(f"intake never accepted {key}")


async def summary(client: httpx.AsyncClient, cluster: Cluster) -> dict[str, Any]:
    response = await client.get(f"{cluster.url('stats')}/v1/stats/summary")
    assert response.status_code == 200
    counts: dict[str, Any] = response.json()["counts"]
    return counts


async def test_samples_dispatched_and_counted(cluster: tuple[Cluster, Receiver]) -> None:
    procs, receiver = cluster
    samples = sample_requests()
    expected = expected_departments(samples)
    async with httpx.AsyncClient(timeout=10.0, headers=await procs.staff_headers()) as client:
        tickets = {
            s["id"]: await post(client, procs, submission_of(s), f"e2e-{s['id']}") for s in samples
        }
        on_spot = [s["id"] for s in samples if s["expected_department"] == "on_spot"]
        assert len(set(tickets.values())) == 45

        async def all_notified() -> bool:
            return len(receiver.notices) >= 45 - len(on_spot)

        await eventually(all_notified, timeout_s=60)
        by_ticket = receiver.by_ticket()
        for sample_id, ticket_id in tickets.items():
            if sample_id in on_spot:
                assert ticket_id not in by_ticket
            else:
                assert by_ticket[ticket_id] == [expected[sample_id]], sample_id

        async def counted() -> bool:
            s = await summary(client, procs)
            return bool(s["received"] == 45 and s["dispatched"] == 45 - len(on_spot))

        await eventually(counted, timeout_s=30)
        final = await summary(client, procs)
        assert final["resolved_on_spot"] == len(on_spot)
        view = (await client.get(f"{procs.url('stats')}/v1/tickets/{tickets['S001']}")).json()
        assert view["status"] == "dispatched" and view["department"] == "guanxian.water"
        assert [step["event_type"] for step in view["history"]] == ["received", "dispatched"]


async def test_sigkill_mid_stream_loses_and_doubles_nothing(
    cluster: tuple[Cluster, Receiver],
) -> None:
    procs, receiver = cluster
    samples = [s for s in sample_requests() if s["expected_department"] != "on_spot"]
    total = 120
    async with httpx.AsyncClient(timeout=10.0, headers=await procs.staff_headers()) as client:

        async def feed() -> list[str]:
            ids = []
            for i in range(total):
                body = submission_of(samples[i % len(samples)])
                ids.append(await post(client, procs, body, f"kill-{i}"))
                await asyncio.sleep(0.01)
            return ids

        feeder = asyncio.create_task(feed())
        for victim in ("router", "stats", "intake"):
            await asyncio.sleep(0.7)
            await procs.kill(victim)
            await asyncio.sleep(0.5)
            await procs.start(victim)
        ticket_ids = await feeder
        assert len(set(ticket_ids)) == total

        async def all_notified() -> bool:
            return set(receiver.by_ticket()) >= set(ticket_ids)

        await eventually(all_notified, timeout_s=90)

        async def all_counted() -> bool:
            s = await summary(client, procs)
            return bool(s["received"] >= total and s["dispatched"] >= total)

        await eventually(all_counted, timeout_s=60)
        await asyncio.sleep(2)  # let any late duplicate arrive before judging
        # Webhooks are at-least-once (docs/RELIABILITY.md): a notice whose
        # answer was slow under load may be sent again, under the same
        # X-Hotline-Delivery id, which the department ignores. A second
        # delivery id would be a second notice.
        deliveries: dict[str, set[str]] = {t: set() for t in ticket_ids}
        for _, body, headers in receiver.notices:
            deliveries.setdefault(body["ticket_id"], set()).add(headers["x-hotline-delivery"])
        twice = {t: ids for t, ids in deliveries.items() if len(ids) != 1}
        assert twice == {}, f"tickets notified twice: {twice}"
        final = await summary(client, procs)
        assert final["received"] == total and final["dispatched"] == total
