"""No citizen's personal data without a key entitled to it, on any service: the
four services as processes, two tickets of known citizens (tests/privacy_world.py).

- every read route: no key 401, another department's key 403/404 or an answer
  without the ticket, the right key 200;
- every route of every service's OpenAPI document, called without a key (and with
  a bogus one) with its parameters filled: no fixture name, phone or address in
  any answer;
- the handling department sees the contact while the ticket is in its hands,
  agents and staff always, everyone else masked; contact exports are staff only
  and recorded;
- no log line of the run carries a fixture's name, phone or address.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.privacy_world import (
    AGENT_CALLER,
    PERSONAL,
    WEB_ADDRESS,
    WEB_CITIZEN,
    World,
    leaked,
    privacy_world,
)
from tests.support import ensure_servers

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

T = "{ticket}"  # the web ticket, dispatched to guanxian.water
# (service, path with query, the key that may read it)
READS = (
    ("stats", f"/v1/tickets/{T}", "water"),
    ("stats", "/v1/tickets?department=guanxian.water", "water"),
    ("stats", "/v1/tickets?format=csv", "water"),
    ("stats", "/v1/stats/summary?department=guanxian.water", "water"),
    ("stats", "/v1/stats/summary?department=guanxian.water&format=csv", "water"),
    ("stats", "/v1/stats/ranking", "water"),
    ("stats", "/v1/stats/trend?department=guanxian.water", "water"),
    ("stats", "/v1/stats/dispatch-quality?department=guanxian.water", "water"),
    ("stats", "/v1/exports", "staff"),
    ("router", f"/v1/tickets/{T}", "water"),
    ("router", "/v1/tickets?department=guanxian.water", "water"),
    ("notifier", f"/v1/deliveries?ticket_id={T}", "water"),
    ("notifier", "/v1/deliveries?status=delivered", "water"),
    ("notifier", f"/v1/timers?ticket_id={T}", "water"),
    ("intake", "/v1/hotspots", "staff"),
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    ensure_servers()
    async with privacy_world(tmp_path_factory.mktemp("privacy")) as value:
        yield value


@pytest.mark.parametrize(("service", "path", "right"), READS)
async def test_each_read_route_needs_the_right_key(
    world: World, service: str, path: str, right: str
) -> None:
    path = path.replace(T, world.web_ticket)
    missing = await world.get(service, path)
    assert missing.status_code == 401, missing.text
    assert missing.json()["code"] == "UNAUTHENTICATED" and not leaked(missing.content)
    entitled = await world.get(service, path, right)
    assert entitled.status_code == 200, entitled.text
    for wrong in ("other", "web"):  # another department, a channel key
        refused = await world.get(service, path, wrong)
        assert not leaked(refused.content), (wrong, refused.text)
        if refused.status_code == 200:  # a list of the key's own: never this ticket
            assert world.web_ticket not in refused.text and "guanxian.water" not in refused.text
        else:
            assert refused.status_code in (403, 404), (wrong, refused.status_code)
            assert refused.json()["detail"], "a clear message"


async def test_the_handling_department_sees_the_contact_others_masked(world: World) -> None:
    ticket = f"/v1/tickets/{world.web_ticket}"
    for service in ("stats", "router"):
        for key in ("water", "staff", "agent"):
            shown = (await world.get(service, ticket, key)).json()
            assert shown["contact"]["name"] == WEB_CITIZEN["name"], (service, key)
            assert shown["contact"]["phone"] == WEB_CITIZEN["phone"]
            assert shown["contact"]["address"] == WEB_ADDRESS
    # The county sub-centre above the water group did not pass it on: not its ticket.
    staff_view = (await world.get("stats", ticket, "staff")).json()
    assert staff_view["status"] == "dispatched" and staff_view["department"] == "guanxian.water"
    listed = await world.get("stats", "/v1/tickets?department=guanxian.water", "water")
    [item] = listed.json()["items"]
    assert item["ticket_id"] == world.web_ticket and "caller" not in item


async def test_the_notice_gave_the_lead_the_contact_and_the_store_keeps_it_masked(
    world: World,
) -> None:
    [notice] = [b for d, b, _ in world.receiver.notices if b["ticket_id"] == world.web_ticket]
    assert notice["contact"]["phone"] == WEB_CITIZEN["phone"]
    assert WEB_CITIZEN["name"] in notice["text"] and WEB_ADDRESS in notice["text"]
    stored = await world.get("notifier", f"/v1/deliveries?ticket_id={world.web_ticket}", "staff")
    assert not leaked(stored.content), "a delivered notice keeps the contact masked"
    assert stored.json()[0]["body"]["contact"]["phone"] == "139****4321"


async def test_an_agent_finds_a_callers_tickets_by_phone(world: World) -> None:
    phone = AGENT_CALLER["caller_number"]
    found = await world.get("stats", f"/v1/tickets?phone={phone}", "agent")
    assert [t["ticket_id"] for t in found.json()["items"]] == [world.agent_ticket]
    nothing = await world.get("stats", "/v1/tickets?phone=13000000000", "agent")
    assert nothing.json()["items"] == []
    by_department = await world.get("stats", f"/v1/tickets?phone={phone}", "urban")
    assert by_department.status_code == 403 and not leaked(by_department.content)
    view = (await world.get("stats", f"/v1/tickets/{world.agent_ticket}", "agent")).json()
    assert view["contact"]["name"] == AGENT_CALLER["caller_name"]


async def test_exports_mask_contacts_unless_staff_ask_and_are_recorded(world: World) -> None:
    plain = await world.get("stats", "/v1/tickets?format=csv", "staff")
    assert plain.status_code == 200 and world.web_ticket in plain.text
    assert not leaked(plain.content), "a plain export carries no contact"
    for key in ("water", "agent"):
        refused = await world.get("stats", "/v1/tickets?format=csv&contacts=true", key)
        assert refused.status_code == 403 and not leaked(refused.content)
    asked = "/v1/tickets?format=csv&contacts=true&district=guanxian"
    export = await world.get("stats", asked, "staff")
    assert export.status_code == 200, export.text
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    [row] = [r for r in rows if r["ticket_id"] == world.web_ticket]
    assert (row["contact_name"], row["contact_phone"], row["contact_address"]) == (
        WEB_CITIZEN["name"],
        WEB_CITIZEN["phone"],
        WEB_ADDRESS,
    )
    log = (await world.get("stats", "/v1/exports", "staff")).json()
    assert log[0]["by"] == "zhang.san" and log[0]["kind"] == "staff"
    assert log[0]["filters"] == {"district": "guanxian"} and log[0]["rows"] == len(rows)
    assert (await world.get("stats", "/v1/exports", "water")).status_code == 403


# --- every route of every OpenAPI document, without a key -------------------------------


async def test_no_route_answers_personal_data_without_a_key(world: World) -> None:
    calls = 0
    for service in ("intake", "router", "notifier", "stats"):
        schema = (await world.get(service, "/openapi.json")).json()
        for path, methods in schema["paths"].items():
            for method, operation in methods.items():
                for request in requests_for(world, path, method, operation):
                    for headers in ({}, {"X-API-Key": "hk_bogus"}):
                        response = await world.http.request(
                            method.upper(),
                            world.cluster.url(service) + request["url"],
                            params=request["params"],
                            json=request["json"],
                            headers=headers,
                        )
                        calls += 1
                        found = leaked(response.content)
                        assert not found, (service, method, path, request, found)
    assert calls > 100, "every route was called"
    # The same data is there for a key entitled to it: the sweep would have seen it.
    entitled = await world.get("stats", f"/v1/tickets/{world.web_ticket}", "staff")
    assert set(leaked(entitled.content)) >= {WEB_CITIZEN["name"], WEB_CITIZEN["phone"]}


def requests_for(
    world: World, path: str, method: str, operation: dict[str, Any]
) -> list[dict[str, Any]]:
    """Two calls per route: its required parameters only, and every parameter."""
    params: list[dict[str, Any]] = operation.get("parameters", [])
    url = path
    for p in params:
        if p["in"] == "path":
            url = url.replace("{" + p["name"] + "}", value_for(world, p))
    query = [p for p in params if p["in"] == "query"]
    body: dict[str, Any] | None = {} if method in ("post", "put", "patch") else None
    return [
        {"url": url, "params": {p["name"]: value_for(world, p) for p in chosen}, "json": body}
        for chosen in ([p for p in query if p.get("required")], query)
    ]


def value_for(world: World, parameter: dict[str, Any]) -> str:
    """A value a caller would send: the real tickets and phone numbers included."""
    name = str(parameter["name"])
    schema = parameter.get("schema") or {}
    assert isinstance(schema, dict)
    options = schema.get("enum") or [
        s.get("enum", [None])[0] for s in schema.get("anyOf", []) if isinstance(s, dict)
    ]
    by_name = {
        "fmt": "json",
        "format": "csv",
        "phone": WEB_CITIZEN["phone"],
        "phone_last4": WEB_CITIZEN["phone"][-4:],
        "contacts": "true",
        "department": "guanxian.water",
        "district": "guanxian",
    }
    if name in by_name:
        return by_name[name]
    if "ticket" in name or name in ("service_request_id",):
        return world.web_ticket
    return next((str(o) for o in options if o is not None), "1")


# --- logs ---------------------------------------------------------------------------------


async def test_no_log_line_of_the_run_carries_personal_data(world: World) -> None:
    lines = world.log_lines()
    assert len(lines) > 50, "the services logged (at DEBUG) while the tickets went through"
    assert any(world.web_ticket in line for line in lines), "the tickets are in the logs"
    for line in lines:
        assert not [value for value in PERSONAL if value in line], line
