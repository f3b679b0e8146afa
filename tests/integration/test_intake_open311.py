"""Open311 GeoReport v2 against the spec, in JSON and XML, with the real broker
and store: discovery, services, definitions, POST requests (form-encoded, with
api_key), GET requests with filters, GET requests/{id}, errors and codes; and
our lifecycle as open/closed once the router's events reach intake."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from shared.domain import Actor, ActorKind, TicketDims
from shared.events import (
    DispatchedPayload,
    ResolvedPayload,
    TicketDispatched,
    TicketReceived,
    TicketResolved,
    utcnow,
)
from shared.messaging.publisher import Publisher
from shared.settings import CommonSettings
from tests.intake_support import IntakeHarness, Probe, intake_settings_of, running
from tests.support import eventually

pytestmark = pytest.mark.integration

BASE = "/open311/v2"
WASTE = {
    "service_code": "waste",
    "lat": "36.1121",
    "long": "115.7824",
    "address_string": "阳谷县紫荆街18号",
    "description": "店铺门口北侧堆放建筑垃圾好几天了",
    "attribute[waste_type]": "construction",
    "attribute[days]": "3",
    "phone": "13512345678",
    "first_name": "先生",
    "last_name": "李",
}


@pytest.fixture
async def harness(settings: CommonSettings) -> AsyncIterator[IntakeHarness]:
    async with running(intake_settings_of(settings), consume_status=True) as built:
        yield built


@pytest.fixture
async def api_key(harness: IntakeHarness) -> str:
    return await harness.issue("channel", "open311")


async def post(harness: IntakeHarness, fmt: str, form: dict[str, str]) -> httpx.Response:
    return await harness.client.post(
        f"{BASE}/requests.{fmt}",
        content=urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def xml(response: httpx.Response) -> ET.Element:
    assert response.headers["content-type"].startswith("text/xml")
    assert response.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(response.content)


def xml_errors(response: httpx.Response) -> list[tuple[str, str]]:
    root = xml(response)
    assert root.tag == "errors"
    return [(e.findtext("code") or "", e.findtext("description") or "") for e in root]


async def test_discovery_names_this_endpoint_and_both_formats(harness: IntakeHarness) -> None:
    as_json = (await harness.client.get(f"{BASE}/discovery.json")).json()
    [endpoint] = as_json["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2")
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    root = xml(await harness.client.get(f"{BASE}/discovery.xml"))
    formats = [f.text for f in root.iterfind("endpoints/endpoint/formats/format")]
    assert set(formats) == {"text/xml", "application/json"}


async def test_services_list_in_json_and_xml(harness: IntakeHarness) -> None:
    services = (await harness.client.get(f"{BASE}/services.json")).json()
    waste = next(s for s in services if s["service_code"] == "waste")
    assert waste == {
        "service_code": "waste",
        "service_name": "垃圾堆放",
        "description": "建筑垃圾、生活垃圾乱堆乱放，未及时清运",
        "metadata": True,
        "type": "realtime",
        "keywords": "垃圾, 清运, 环境卫生",
        "group": "环境卫生",
    }
    root = xml(await harness.client.get(f"{BASE}/services.xml"))
    assert root.tag == "services"
    codes = [s.findtext("service_code") for s in root.iterfind("service")]
    assert codes == [s["service_code"] for s in services]
    assert root.find("service/metadata") is not None
    consult = next(s for s in root if s.findtext("service_code") == "consultation")
    assert consult.findtext("metadata") == "false"


async def test_service_definition_with_attributes(harness: IntakeHarness) -> None:
    definition = (await harness.client.get(f"{BASE}/services/waste.json")).json()
    assert definition["service_code"] == "waste"
    first = definition["attributes"][0]
    assert first["code"] == "waste_type" and first["datatype"] == "singlevaluelist"
    assert first["required"] is True and first["variable"] is True
    assert {"key": "construction", "name": "建筑垃圾"} in first["values"]
    root = xml(await harness.client.get(f"{BASE}/services/waste.xml"))
    assert root.tag == "service_definition"
    keys = [v.findtext("key") for v in root.iterfind("attributes/attribute/values/value")]
    assert keys == ["construction", "household", "other"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_unknown_service_and_jurisdiction_are_404_in_the_spec_error_format(
    harness: IntakeHarness, fmt: str
) -> None:
    unknown = await harness.client.get(f"{BASE}/services/potholes-on-mars.{fmt}")
    elsewhere = await harness.client.get(f"{BASE}/services.{fmt}?jurisdiction_id=beijing")
    for response in (unknown, elsewhere):
        assert response.status_code == 404
        if fmt == "json":
            [error] = response.json()
            assert error["code"] == 404 and error["description"]
        else:
            [(code, description)] = xml_errors(response)
            assert code == "404" and description


async def test_post_request_creates_a_ticket(
    harness: IntakeHarness, probe: Probe, api_key: str
) -> None:
    response = await post(harness, "json", {**WASTE, "api_key": api_key})
    assert response.status_code == 201, response.text
    [created] = response.json()
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    [event] = await probe.wait_for("router", 1)
    assert isinstance(event, TicketReceived)
    assert event.ticket_id == created["service_request_id"]
    draft = event.payload.ticket
    assert (draft.channel.value, draft.district, draft.category.value) == (
        "open311",
        "yanggu",
        "complaint",
    )
    assert "【垃圾类型】建筑垃圾" in draft.text and "【已堆放天数】3" in draft.text
    assert draft.location is not None and draft.location.lat == pytest.approx(36.1121)


async def test_post_request_answers_in_xml(harness: IntakeHarness, api_key: str) -> None:
    response = await post(harness, "xml", {**WASTE, "api_key": api_key})
    assert response.status_code == 201
    root = xml(response)
    assert root.tag == "service_requests"
    assert (root.findtext("request/service_request_id") or "").startswith("LC")


BAD_POSTS: list[tuple[str, dict[str, str], int, str]] = [
    ("no api_key", {k: v for k, v in WASTE.items()}, 403, "api_key"),
    ("invalid api_key", {**WASTE, "api_key": "hk_stolen"}, 403, "api_key"),
    (
        "no service_code",
        {k: v for k, v in WASTE.items() if k != "service_code"},
        400,
        "service_code",
    ),
    ("unknown service_code", {**WASTE, "service_code": "ufo"}, 400, "service_code"),
    (
        "no location",
        {k: v for k, v in WASTE.items() if k not in ("lat", "long", "address_string")},
        400,
        "location",
    ),
    ("required attribute missing", {**WASTE, "attribute[waste_type]": ""}, 400, "waste_type"),
    ("value not in the list", {**WASTE, "attribute[waste_type]": "gold"}, 400, "gold"),
    ("not a number", {**WASTE, "attribute[days]": "many"}, 400, "days"),
    ("unknown attribute", {**WASTE, "attribute[colour]": "red"}, 400, "colour"),
    ("lat out of range", {**WASTE, "lat": "123"}, 400, "lat"),
]


@pytest.mark.parametrize(
    ("form", "status", "mentions"), [c[1:] for c in BAD_POSTS], ids=[c[0] for c in BAD_POSTS]
)
async def test_bad_post_is_refused_with_the_spec_error(
    harness: IntakeHarness,
    probe: Probe,
    api_key: str,
    form: dict[str, str],
    status: int,
    mentions: str,
) -> None:
    if "api_key" not in form and mentions != "api_key":
        form = {**form, "api_key": api_key}
    response = await post(harness, "xml", form)
    assert response.status_code == status, response.text
    [(code, description)] = xml_errors(response)
    assert code == str(status)
    assert mentions in description
    assert await probe.count("router") == 0


async def test_post_must_be_form_encoded(harness: IntakeHarness, api_key: str) -> None:
    response = await harness.client.post(
        f"{BASE}/requests.json", json={**WASTE, "api_key": api_key}
    )
    assert response.status_code == 400
    assert "form" in response.json()[0]["description"]


async def publish_router_steps(harness: IntakeHarness, ticket_id: str, resolve: bool) -> None:
    """What the router publishes as the ticket moves: dispatched, then resolved."""
    record = await harness.intake.repo.get(ticket_id)
    assert record is not None and record.draft is not None
    dims = TicketDims.of(record.draft)
    now = utcnow()
    publisher = Publisher(harness.infra.broker.exchange, "router")
    router = Actor(kind=ActorKind.SYSTEM, id="router")
    await publisher.publish(
        TicketDispatched(
            ticket_id=ticket_id,
            occurred_at=now,
            actor=router,
            payload=DispatchedPayload(
                dims=dims,
                ticket=record.draft,
                department="yanggu.urban-mgmt",
                rule="waste",
                time_limit="general",
                deadline=now + timedelta(days=5),
                response_deadline=now + timedelta(hours=2),
            ),
        )
    )
    if resolve:
        await publisher.publish(
            TicketResolved(
                ticket_id=ticket_id,
                occurred_at=now + timedelta(hours=3),
                actor=Actor(kind=ActorKind.DEPARTMENT, id="yanggu.urban-mgmt"),
                payload=ResolvedPayload(
                    dims=dims,
                    department="yanggu.urban-mgmt",
                    reply="已清运",
                    on_time=True,
                    deadline=now + timedelta(days=5),
                    dispatched_at=now,
                ),
            )
        )


async def created_ids(
    harness: IntakeHarness, api_key: str, forms: list[dict[str, str]]
) -> list[str]:
    ids = []
    for form in forms:
        response = await post(harness, "json", {**form, "api_key": api_key})
        assert response.status_code == 201, response.text
        ids.append(response.json()[0]["service_request_id"])
    return ids


async def test_get_request_follows_the_lifecycle_as_open_then_closed(
    harness: IntakeHarness, api_key: str
) -> None:
    [ticket_id] = await created_ids(harness, api_key, [WASTE])
    url = f"{BASE}/requests/{ticket_id}.json"
    [fresh] = (await harness.client.get(url)).json()
    assert (fresh["status"], fresh["agency_responsible"], fresh["expected_datetime"]) == (
        "open",
        None,
        None,
    )
    await publish_router_steps(harness, ticket_id, resolve=True)

    async def closed() -> bool:
        return bool((await harness.client.get(url)).json()[0]["status"] == "closed")

    await eventually(closed)
    [done] = (await harness.client.get(url)).json()
    assert done["agency_responsible"] and "阳谷" in done["agency_responsible"]
    assert done["expected_datetime"] and done["status_notes"] == "已办结，等待回访"
    assert done["service_code"] == "waste" and done["address"] == WASTE["address_string"]
    assert "13512345678" not in str(done) and "李" not in str(done)  # no personal data
    root = xml(await harness.client.get(f"{BASE}/requests/{ticket_id}.xml"))
    assert root.findtext("request/status") == "closed"
    assert root.findtext("request/service_request_id") == ticket_id


async def test_get_requests_filters(harness: IntakeHarness, api_key: str) -> None:
    other = {
        **WASTE,
        "service_code": "streetlight",
        "description": "路灯不亮",
        "phone": "13600000001",
    }
    other.pop("attribute[waste_type]")
    other.pop("attribute[days]")
    waste_id, light_id = await created_ids(harness, api_key, [WASTE, other])
    await publish_router_steps(harness, waste_id, resolve=True)

    async def shown(query: str) -> list[str]:
        response = await harness.client.get(f"{BASE}/requests.json?{query}")
        assert response.status_code == 200, response.text
        return sorted(r["service_request_id"] for r in response.json())

    async def waste_closed() -> bool:
        return await shown("status=closed") == [waste_id]

    await eventually(waste_closed)
    assert await shown("") == sorted([waste_id, light_id])
    assert await shown("status=open") == [light_id]
    assert await shown("status=open,closed") == sorted([waste_id, light_id])
    assert await shown("service_code=streetlight") == [light_id]
    assert await shown(f"service_request_id={light_id},LC20000101999999") == [light_id]
    assert await shown("start_date=2001-01-01T00:00:00Z&end_date=2001-02-01T00:00:00Z") == []
    root = xml(await harness.client.get(f"{BASE}/requests.xml?service_code=waste"))
    assert [r.findtext("service_request_id") for r in root] == [waste_id]


BAD_QUERIES: list[tuple[str, str]] = [
    ("status=pending", "status"),
    ("start_date=yesterday", "start_date"),
    ("start_date=2026-01-01T00:00:00", "time zone"),
    ("start_date=2026-01-01T00:00:00Z&end_date=2026-12-01T00:00:00Z", "90 days"),
]


@pytest.mark.parametrize(("query", "mentions"), BAD_QUERIES)
async def test_bad_get_requests_query_is_400(
    harness: IntakeHarness, query: str, mentions: str
) -> None:
    response = await harness.client.get(f"{BASE}/requests.json?{query}")
    assert response.status_code == 400
    [error] = response.json()
    assert error["code"] == 400 and mentions in error["description"]


async def test_only_open311_requests_are_shown(harness: IntakeHarness) -> None:
    body: dict[str, Any] = {"district": "冠县", "category": "help", "text": "私人求助"}
    ticket_id = (await harness.post(body)).json()["ticket_id"]
    response = await harness.client.get(f"{BASE}/requests/{ticket_id}.xml")
    assert response.status_code == 404
    [(code, _)] = xml_errors(response)
    assert code == "404"


async def test_unknown_format_is_refused(harness: IntakeHarness) -> None:
    response = await harness.client.get(f"{BASE}/services.yaml")
    assert response.status_code == 400
    assert response.json()[0]["code"] == 400
