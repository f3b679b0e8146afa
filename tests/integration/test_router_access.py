"""Who reads a ticket at the router, and what of the citizen they see: the lead
department while the ticket is in its hands, agents and staff see the contact;
a department it was dispatched to before and a county sub-centre that passed it
on follow it (masked); other departments and channel keys read nothing."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain import ActorKind, Citizen, Location
from shared.events import utcnow
from shared.keys import KeyKind
from tests.integration.test_router_api import TICKET, Api, api, sample  # noqa: F401

pytestmark = pytest.mark.integration

CITIZEN = Citizen(name="欧阳明月", phone="13987654321")
ADDRESS = "贾镇幸福路8号院"
FULL = {"name": "欧阳明月", "phone": "13987654321", "town": "贾镇", "address": ADDRESS}
MASKED = {"name": "欧***", "phone": "139****4321", "town": "贾镇", "address": "***"}


async def create_with_citizen(api: Api) -> None:  # noqa: F811
    draft = sample("S001", api.directory).model_copy(
        update={"citizen": CITIZEN, "location": Location(lat=36.48, lon=115.45, address=ADDRESS)}
    )
    await api.commands.create(TICKET, draft)
    assert [e.event_type for e in await api.collect(1)] == ["dispatched"]


async def contact(api: Api, key: str) -> dict[str, Any]:  # noqa: F811
    response = await api.get(key)
    assert response.status_code == 200, response.text
    return response.json()["contact"]  # type: ignore[no-any-return]


async def test_the_contact_is_for_the_lead_while_in_its_hands(api: Api) -> None:  # noqa: F811
    await create_with_citizen(api)
    water = await api.key("guanxian.water")
    staff = await api.key("li.si", ActorKind.STAFF)
    agent = await api.key("seat-017", ActorKind.AGENT)
    assert await contact(api, water) == FULL
    assert await contact(api, staff) == FULL
    assert await contact(api, agent) == FULL
    listed = (await api.get(water, "/v1/tickets")).json()
    assert listed[0]["contact"] == FULL and "13987654321" in listed[0]["contact"]["phone"]
    other = await api.get(await api.key("yanggu.water"))
    assert other.status_code == 403 and "欧阳" not in other.text
    # An agent reads but does not act for a department.
    refused = await api.post(agent, "accept")
    assert refused.status_code == 403 and refused.json()["code"] == "DEPARTMENTS_ONLY"

    assert (await api.post(water, "accept")).status_code == 200
    assert (await api.post(water, "resolve", {"reply": "已发放补偿款。"})).status_code == 200
    assert await contact(api, water) == MASKED  # resolved: out of its hands
    assert await contact(api, staff) == FULL


async def test_a_sub_centre_follows_what_it_passed_on_masked(api: Api) -> None:  # noqa: F811
    await create_with_citizen(api)
    staff = await api.key("li.si", ActorKind.STAFF)
    guanxian = await api.key("guanxian")
    assert (await api.get(guanxian)).status_code == 403  # not yet its ticket
    manual = {"department": "guanxian", "time_limit": "general"}
    assert (await api.post(staff, "dispatch", manual)).status_code == 200
    passed = await api.post(guanxian, "sub-dispatch", {"department": "guanxian.housing"})
    assert passed.status_code == 200, passed.text
    assert passed.json()["contact"] == MASKED  # no longer in its hands
    housing = await api.key("guanxian.housing")
    assert await contact(api, housing) == FULL
    assert await contact(api, guanxian) == MASKED
    followed = (await api.get(guanxian, "/v1/tickets")).json()
    assert [t["ticket_id"] for t in followed] == [TICKET]
    # The water group it was first dispatched to follows it too, masked.
    assert await contact(api, await api.key("guanxian.water")) == MASKED
    assert (await api.get(await api.key("guanxian.env"))).status_code == 403


async def test_a_channel_key_reads_nothing_at_the_router(api: Api) -> None:  # noqa: F811
    await create_with_citizen(api)
    _, key = await api.keys.issue(KeyKind.CHANNEL, "web", utcnow())
    for response in (await api.get(key), await api.get(key, "/v1/tickets")):
        assert response.status_code == 403
        assert response.json()["code"] == "FORBIDDEN" and "欧阳" not in response.text
