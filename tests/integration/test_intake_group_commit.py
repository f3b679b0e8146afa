"""Intake's group commit against the real broker and store: concurrent requests
share their store writes, a group the store does not take fails every request
in it with a 503 and stores none of them, and Idempotency-Key retries keep
their ticket.

The store operations are counted by a PyMongo command listener on the test's
own client (the listener lives in the test, never in production code).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.mongo import Document
from shared.settings import CommonSettings
from tests.intake_support import IntakeHarness, Probe, intake_settings_of
from tests.storeops import Commands, counted_intake

pytestmark = pytest.mark.integration

CONCURRENT = 20
SHARED = (
    ("insert", "requests"),
    ("insert", "idempotency_keys"),
    ("update", "requests"),  # the published marks
    ("update", "callers"),
)
# A place is written on the condition that it is what this process last saw:
# one command each (shared.groupcommit.Update).
ALONE = (("update", "hotspot_places"),)


@pytest.fixture
def commands() -> Commands:
    return Commands()


@pytest.fixture
async def harness(settings: CommonSettings, commands: Commands) -> AsyncIterator[IntakeHarness]:
    """Intake as the harness wires it, on a store client that counts commands."""
    async with counted_intake(intake_settings_of(settings), commands) as built:
        yield built


def request(i: int) -> dict[str, Any]:
    """Different callers, different places, different words: no two are linked."""
    return {
        "channel": "app",
        "district": "冠县",
        "category": "complaint",
        "text": f"第{i}号楼下水道堵塞{i}天了，污水漫到路面上，请尽快疏通。",
        "citizen": {"name": "测试", "phone": f"1380000{i:04d}"},
        "location": {"lat": 36.48 + i * 0.02, "lon": 115.44},
    }


async def post_all(harness: IntakeHarness, keys: list[str]) -> list[Any]:
    return list(
        await asyncio.gather(*(harness.post(request(i), key=k) for i, k in enumerate(keys)))
    )


async def test_concurrent_submissions_share_their_store_writes(
    harness: IntakeHarness, commands: Commands, probe: Probe
) -> None:
    await harness.post(request(99), key="warm-up")  # the day's block of numbers
    await probe.drain("router")
    commands.reset()

    keys = [f"group-{i}" for i in range(CONCURRENT)]
    answers = await post_all(harness, keys)

    assert [a.status_code for a in answers] == [202] * CONCURRENT, answers[0].text
    tickets = {a.json()["ticket_id"] for a in answers}
    assert len(tickets) == CONCURRENT
    events = await probe.wait_for("router", CONCURRENT)
    assert sorted(e.ticket_id for e in events) == sorted(tickets)
    # One record, key, published mark and caller per request (one command
    # each before group commit): in far fewer commands; the caller read once,
    # not twice.
    for write in SHARED:
        assert 1 <= commands.sent[write] < CONCURRENT // 2, (write, commands.sent)
    for write in ALONE:
        assert commands.sent[write] == CONCURRENT, (write, commands.sent)
    assert commands.sent[("find", "callers")] == CONCURRENT
    stored = await harness.infra.db["requests"].find({"_id": {"$in": list(tickets)}}).to_list()
    assert len(stored) == CONCURRENT
    assert all(doc["published"] for doc in stored)


async def test_a_group_the_store_refuses_fails_every_request_and_stores_none(
    harness: IntakeHarness, probe: Probe
) -> None:
    writer = harness.parts.writer
    live = writer.database
    # Writes go to a store that is not there (nothing listens on port 9): the
    # reads before them succeed, every group write fails.
    gone: AsyncMongoClient[Document] = AsyncMongoClient(
        "mongodb://127.0.0.1:9", serverSelectionTimeoutMS=300, connectTimeoutMS=300
    )
    writer.database = gone[live.name]
    keys = [f"refused-{i}" for i in range(5)]
    try:
        refused = await post_all(harness, keys)
    finally:
        writer.database = live
        await gone.close()

    assert [r.status_code for r in refused] == [503] * len(keys)
    assert all("nothing was changed" in r.json()["detail"] for r in refused)
    assert all(r.headers["Retry-After"] for r in refused)
    assert await live["requests"].count_documents({}) == 0
    assert await live["idempotency_keys"].count_documents({}) == 0
    assert await probe.count("router") == 0

    retried = await post_all(harness, keys)
    again = await post_all(harness, keys)
    assert [r.status_code for r in retried + again] == [202] * (2 * len(keys))
    first = [r.json()["ticket_id"] for r in retried]
    assert [r.json()["ticket_id"] for r in again] == first
    assert all(r.json()["replayed"] for r in again)
    events = await probe.wait_for("router", len(keys))
    assert sorted(e.ticket_id for e in events) == sorted(first)


async def test_retries_of_one_key_in_the_same_group_get_one_ticket(
    harness: IntakeHarness, probe: Probe
) -> None:
    keys = [f"twice-{i // 2}" for i in range(10)]  # each key twice, all at once
    body = [request(i // 2) for i in range(10)]
    answers = await asyncio.gather(
        *(harness.post(b, key=k) for b, k in zip(body, keys, strict=True))
    )

    assert [a.status_code for a in answers] == [202] * 10
    by_key: dict[str, set[str]] = {}
    for key, answer in zip(keys, answers, strict=True):
        by_key.setdefault(key, set()).add(answer.json()["ticket_id"])
    assert all(len(tickets) == 1 for tickets in by_key.values()), by_key
    assert len(set().union(*by_key.values())) == 5
    events = await probe.wait_for("router", 5)
    assert len({e.event_id for e in events}) == 5
    await asyncio.sleep(0.3)
    assert await probe.count("router") == 0  # nothing published twice
