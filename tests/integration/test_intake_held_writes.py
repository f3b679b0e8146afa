"""Intake's grouped updates and the documents it keeps in memory, against the
real store: an update command in which one conditional statement fails applies
the others and fails only that one's request; a place or a status document
written by another replica meanwhile is read again, so nothing a replica
wrote is overwritten; a redelivered status event applies once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, WriteError

from services.intake.hotspots import HotspotPolicy, Hotspots
from services.intake.status import StatusProjection
from shared.domain import Category, Channel, Location, TicketDraft
from shared.groupcommit import GroupWriter, Update
from shared.mongo import Document, service_database
from shared.settings import CommonSettings
from tests.stats_support import TicketStory, utc
from tests.storeops import Commands

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
POLICY = HotspotPolicy(similarity=80, min_callers=3, window=timedelta(days=3))


@pytest.fixture
def commands() -> Commands:
    return Commands()


@pytest.fixture
async def db(
    settings: CommonSettings, commands: Commands
) -> AsyncIterator[AsyncDatabase[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongo_url, tz_aware=True, event_listeners=[commands]
    )
    try:
        yield service_database(client, settings, "intake")
    finally:
        await client.close()


async def test_updates_share_a_command_and_a_lost_compare_and_set_fails_alone(
    db: AsyncDatabase[Document], commands: Commands
) -> None:
    docs = db["probe"]
    await docs.insert_many([{"_id": n, "version": 1, "v": 0} for n in range(8)])
    writer = GroupWriter(db, window_s=0.05)
    plain = [Update({"_id": n}, {"$set": {"v": n}}) for n in range(5)]
    # The store holds version 1: the first two hold, the third was overtaken.
    cas = [
        Update({"_id": n, "version": v}, {"version": 2, "v": n}, upsert=True, conditional=True)
        for n, v in ((5, 1), (6, 1), (7, 0))
    ]
    results = await asyncio.gather(
        *(writer.write("probe", w) for w in plain + cas), return_exceptions=True
    )

    assert results[:7] == [None] * 7
    assert isinstance(results[7], DuplicateKeyError)
    # The plain ones in one command, each conditional one alone.
    assert commands.sent[("update", "probe")] == 1 + len(cas)
    stored = {d["_id"]: d["v"] for d in await docs.find().to_list()}
    assert stored == {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 0}


def draft(n: int) -> TicketDraft:
    return TicketDraft(
        channel=Channel.APP,
        district="guanxian",
        category=Category.COMPLAINT,
        text="东风路路口的下水道堵塞了，污水漫到路面上，请尽快疏通。",
        location=Location(lat=36.48, lon=115.44),
        external_id=f"held-{n}",
    )


async def test_two_replicas_at_one_place_lose_no_ticket(db: AsyncDatabase[Document]) -> None:
    # Each replica keeps the place as it last wrote it; they take turns.
    replicas = [Hotspots(db, POLICY, GroupWriter(db)) for _ in range(2)]
    tickets = [f"LC-HELD-{n}" for n in range(8)]
    for n, ticket in enumerate(tickets):
        await replicas[n % 2].add(draft(n), ticket, f"caller-{n}", NOW + timedelta(minutes=n))

    places = await db["hotspot_places"].find().to_list()
    assert len(places) == 1
    [cluster] = places[0]["clusters"]
    assert cluster["tickets"] == tickets
    assert places[0]["version"] == len(tickets)
    [hotspot] = await replicas[0].list(NOW + timedelta(hours=1))
    assert hotspot["tickets"] == tickets
    assert hotspot["callers"] == len(tickets)


async def test_two_replicas_of_the_status_consumer_keep_every_step(
    db: AsyncDatabase[Document],
) -> None:
    replicas = [StatusProjection(db, GroupWriter(db)) for _ in range(2)]
    story = TicketStory("LC-HELD-S", "guanxian")
    dispatched = story.dispatched(utc("2026-03-02", 2), "guanxian.water", 24)
    accepted = story.accepted(utc("2026-03-02", 3))
    resolved = story.resolved(utc("2026-03-02", 4))
    await replicas[0].apply(dispatched)
    await replicas[1].apply(accepted)  # not held there: the insert finds it stored
    await replicas[0].apply(resolved)  # held there, but stale: read again
    await replicas[0].apply(accepted)  # a redelivery: nothing changes

    doc = await db["status"].find_one({"_id": "LC-HELD-S"})
    assert doc is not None
    assert doc["status"] == "resolved"
    assert doc["version"] == 3
    assert doc["applied"] == [str(e.event_id) for e in (dispatched, accepted, resolved)]


async def test_a_shared_command_that_fails_is_sent_again_statement_by_statement(
    db: AsyncDatabase[Document],
) -> None:
    docs = db["probe"]
    await docs.insert_many([{"_id": n, "v": 0, "name": "x"} for n in range(4)])
    writer = GroupWriter(db, window_s=0.05)
    writes = [Update({"_id": n}, {"$set": {"v": n}}) for n in range(4)]
    writes[1] = Update({"_id": 1}, {"$inc": {"name": 1}})  # cannot add to a string
    results = await asyncio.gather(
        *(writer.write("probe", w) for w in writes), return_exceptions=True
    )

    assert isinstance(results[1], WriteError)
    assert [results[0], results[2], results[3]] == [None] * 3
    stored = {d["_id"]: d["v"] for d in await docs.find().to_list()}
    assert stored == {0: 0, 1: 0, 2: 2, 3: 3}
