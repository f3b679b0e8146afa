"""Who reads what on the stats service (services/stats/access.py), with a ticket
of a known citizen: dispatched to a county sub-centre with a co-handler, passed
on to one of its units, then resolved. The handling unit sees the contact while
the ticket is in its hands; the units that had it follow it masked; others get
404; statistics are a department's own; agents read tickets, channels nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from shared.domain import Citizen, Location
from shared.keys import KeyKind
from tests.stats_support import StatsHarness, TicketStory, city, stats_harness
from tests.support import make_settings, purge_namespace, unique_namespace

pytestmark = pytest.mark.integration

TICKET = "LC20250310-0077"
CENTRE, CO, UNIT = "guanxian", "guanxian.env", "guanxian.housing"
FULL = {"name": "欧阳明月", "phone": "13987654321", "town": "贾镇", "address": "幸福路8号院"}
MASKED = {"name": "欧***", "phone": "139****4321", "town": "贾镇", "address": "***"}


def story() -> TicketStory:
    return TicketStory(
        TICKET,
        town="贾镇",
        text="请回电 13987654321，村里的自来水管道漏水。",
        draft_fields={
            "citizen": Citizen(name=FULL["name"], phone=FULL["phone"]),
            "location": Location(lat=36.48, lon=115.45, address=FULL["address"]),
        },
    )


@pytest_asyncio.fixture
async def stats(servers: None) -> AsyncIterator[StatsHarness]:
    settings = make_settings(unique_namespace())
    try:
        async with stats_harness(settings, city("2025-03-12", 12)) as harness:
            s = story()
            first = s.dispatched(city("2025-03-10", 9, 5), CENTRE, 48, co_departments=(CO,))
            passed = s.dispatched(city("2025-03-10", 10), UNIT, 48)
            passed = passed.model_copy(
                update={"payload": passed.payload.model_copy(update={"via": "sub_dispatch"})}
            )
            await harness.ingest([s.received(city("2025-03-10", 9)), first, passed])
            yield harness
    finally:
        await purge_namespace(settings)


async def read(
    stats: StatsHarness, kind: KeyKind, owner: str, path: str
) -> tuple[int, dict[str, Any]]:
    response = await stats.http.get(path, headers=await stats.issue(kind, owner))
    return response.status_code, response.json()


async def test_contact_for_the_unit_in_charge_masked_for_those_that_had_it(
    stats: StatsHarness,
) -> None:
    path = f"/v1/tickets/{TICKET}"
    status, unit = await read(stats, KeyKind.DEPARTMENT, UNIT, path)
    assert status == 200 and unit["contact"] == FULL and "13987654321" in unit["text"]
    for follower in (CENTRE, CO):
        status, seen = await read(stats, KeyKind.DEPARTMENT, follower, path)
        assert status == 200 and seen["contact"] == MASKED, follower
        assert "13987654321" not in str(seen) and "欧阳明月" not in str(seen)
        assert "139****4321" in seen["text"]  # a number in the request text too
    status, stranger = await read(stats, KeyKind.DEPARTMENT, "guanxian.water", path)
    assert status == 404 and "欧阳" not in str(stranger)
    for kind, owner in ((KeyKind.AGENT, "seat-1"), (KeyKind.STAFF, "li.si")):
        status, seen = await read(stats, kind, owner, path)
        assert status == 200 and seen["contact"] == FULL
    status, channel = await read(stats, KeyKind.CHANNEL, "web", path)
    assert status == 403 and channel["code"] == "FORBIDDEN"


async def test_the_unit_sees_its_reporter_not_the_linked_callers(stats: StatsHarness) -> None:
    repeat = story().linked(city("2025-03-10", 11))
    other = Citizen(name="司马青云", phone="13711112222")
    ticket = repeat.payload.ticket.model_copy(update={"citizen": other})
    await stats.ingest(
        [
            repeat.model_copy(
                update={"payload": repeat.payload.model_copy(update={"ticket": ticket})}
            )
        ]
    )
    path = f"/v1/tickets/{TICKET}"
    status, unit = await read(stats, KeyKind.DEPARTMENT, UNIT, path)
    assert status == 200 and unit["contact"] == FULL
    assert "司马青云" not in str(unit) and "13711112222" not in str(unit)
    [linked] = [s for s in unit["history"] if s["event_type"] == "linked"]
    assert linked["payload"]["ticket"]["citizen"] == {"name": "司***", "phone": "137****2222"}
    status, staff = await read(stats, KeyKind.STAFF, "li.si", path)
    assert "13711112222" in str(staff)


async def test_a_resolved_ticket_is_out_of_the_units_hands(stats: StatsHarness) -> None:
    path = f"/v1/tickets/{TICKET}"

    s = story()
    s.dispatched(city("2025-03-10", 9, 5), CENTRE, 48)  # the story's state, as filed
    s.dispatched(city("2025-03-10", 10), UNIT, 48)
    await stats.ingest([s.accepted(city("2025-03-11", 9)), s.resolved(city("2025-03-11", 15))])
    status, after = await read(stats, KeyKind.DEPARTMENT, UNIT, path)
    assert status == 200 and after["status"] == "resolved" and after["contact"] == MASKED


async def test_lists_and_statistics_are_a_departments_own(stats: StatsHarness) -> None:
    for owner, expected in ((CENTRE, [TICKET]), (UNIT, [TICKET]), ("guanxian.water", [])):
        status, page = await read(stats, KeyKind.DEPARTMENT, owner, "/v1/tickets")
        assert status == 200 and [t["ticket_id"] for t in page["items"]] == expected, owner
        assert all("handlers" not in t and "caller" not in t for t in page["items"])
    own = f"/v1/stats/summary?from=2025-03-10&to=2025-03-12&department={UNIT}"
    status, summary = await read(stats, KeyKind.DEPARTMENT, UNIT, own)
    assert status == 200 and summary["filters"] == {"department": UNIT}
    assert summary["counts"]["dispatched"] == 1
    status, implicit = await read(stats, KeyKind.DEPARTMENT, UNIT, "/v1/stats/trend")
    assert status == 200 and implicit["days"]
    status, quality = await read(stats, KeyKind.DEPARTMENT, UNIT, "/v1/stats/dispatch-quality")
    assert status == 200 and quality["filters"] == {"department": UNIT}
    for path in (
        own.replace(UNIT, CO),
        "/v1/stats/trend?department=guanxian.water",
        "/v1/stats/dispatch-quality?department=guanxian.water",
    ):
        status, refused = await read(stats, KeyKind.DEPARTMENT, UNIT, path)
        assert status == 403 and "its own" in refused["message"]
    ranking = "/v1/stats/ranking?from=2025-03-10&to=2025-03-12"
    status, ranked = await read(stats, KeyKind.DEPARTMENT, UNIT, ranking)
    assert status == 200 and [r["department"] for r in ranked["departments"]] == [UNIT]
    status, everyone = await read(stats, KeyKind.STAFF, "li.si", ranking)
    assert {r["department"] for r in everyone["departments"]} == {CENTRE, UNIT}
    for kind, owner in ((KeyKind.AGENT, "seat-1"), (KeyKind.CHANNEL, "web")):
        status, _ = await read(stats, kind, owner, "/v1/stats/summary")
        assert status == 403
