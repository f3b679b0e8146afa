"""Bad input on every HTTP API of the four services, running as processes on
the real servers: each bad request (tests.badinput) gets a 4xx with an error
body that says what is wrong, never a 5xx, and publishes nothing (an observer
queue bound to ticket.# sees no event after the request).

Free text is the citizen's own words: a script tag or an SQL fragment in it is
accepted as text, stored and answered back unchanged, and never interpreted
(test_free_text_is_kept_as_text)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
import pytest_asyncio

from shared.keys import KeyKind
from shared.settings import CommonSettings
from tests.badinput import INJECTIONS, TICKET, TICKET_BODY, Bad, all_variants
from tests.e2e.cluster import SERVICES, Cluster, Receiver, directory_pointing_at
from tests.observer import Observer
from tests.support import (
    ensure_servers,
    eventually,
    issue_keys,
    make_settings,
    purge_namespace,
    unique_namespace,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@dataclass
class World:
    cluster: Cluster
    observer: Observer
    http: httpx.AsyncClient
    ticket: str
    keys: dict[str, str]


async def _issue_keys(settings: CommonSettings) -> dict[str, str]:
    return await issue_keys(
        settings,
        {
            "staff": (KeyKind.STAFF, "probe.staff"),
            "department": (KeyKind.DEPARTMENT, "guanxian.water"),
            "intake-staff": (KeyKind.STAFF, "probe.staff"),
        },
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    ensure_servers()
    settings = make_settings(unique_namespace())
    folder: Path = tmp_path_factory.mktemp("bad-input")
    receiver = Receiver()
    await receiver.start()
    directory = directory_pointing_at(receiver, folder / "departments.json")
    cluster = Cluster(settings.amqp_namespace, directory, folder)
    observer = Observer(settings.amqp_url, f"{settings.amqp_namespace}.tickets")
    http = httpx.AsyncClient(timeout=30.0)
    try:
        for service in SERVICES:
            await cluster.start(service)
        await observer.start()
        answer = await http.post(f"{cluster.url('intake')}/v1/tickets", json=TICKET_BODY)
        ticket = str(answer.json()["ticket_id"])

        async def dispatched() -> bool:
            return ticket in observer.first["dispatched"]

        await eventually(dispatched, timeout_s=30)
        yield World(cluster, observer, http, ticket, await _issue_keys(settings))
    finally:
        await http.aclose()
        await observer.stop()
        await cluster.stop_all()
        await receiver.stop()
        await purge_namespace(settings)


async def send(world: World, bad: Bad) -> httpx.Response:
    e = bad.endpoint
    headers = dict(bad.headers)
    if e.auth is not None and "X-API-Key" not in headers:
        headers["X-API-Key"] = world.keys[e.auth]
    url = world.cluster.url(e.service) + bad.path.replace(TICKET, world.ticket)
    if bad.query:
        url += "?" + bad.query.replace(TICKET, world.ticket)
    return await world.http.request(e.method, url, content=bad.content, headers=headers)


def clear_error(response: httpx.Response) -> bool:
    """An error body that names the problem: FastAPI's detail, the router's code
    and message, or Open311's list of errors (JSON or XML) with a description."""
    if response.headers.get("content-type", "").startswith(("text/xml", "application/xml")):
        root = ElementTree.fromstring(response.content)
        return root.tag == "errors" and bool(root.findtext("error/description"))
    try:
        body = response.json()
    except ValueError:
        return False
    if isinstance(body, list):  # Open311
        return bool(body) and all(isinstance(e, dict) and e.get("description") for e in body)
    return isinstance(body, dict) and bool(body.get("detail") or body.get("message"))


CASES = all_variants()


@pytest.mark.parametrize("bad", CASES, ids=[bad.id for bad in CASES])
async def test_bad_request_is_refused_and_publishes_nothing(world: World, bad: Bad) -> None:
    before = len(world.observer.events)
    response = await send(world, bad)
    assert response.status_code < 500, response.text
    if bad.ignored and response.status_code < 300:
        pass  # the API ignores the bad part (an unknown or repeated parameter)
    else:
        assert 400 <= response.status_code < 500, response.text
        assert clear_error(response), response.text
    await world.observer.barrier()
    published = world.observer.events[before:]
    assert published == [], [(seen.event_type, seen.ticket_id) for seen in published]


@pytest.mark.parametrize("text", INJECTIONS)
async def test_free_text_is_kept_as_text(world: World, text: str) -> None:
    body = {**TICKET_BODY, "text": f"路灯坏了 {text}"}
    staff = {"X-API-Key": world.keys["staff"]}
    answer = await world.http.post(f"{world.cluster.url('intake')}/v1/tickets", json=body)
    assert answer.status_code == 202, answer.text
    ticket = answer.json()["ticket_id"]

    async def in_stats() -> bool:
        view = await world.http.get(
            f"{world.cluster.url('stats')}/v1/tickets/{ticket}", headers=staff
        )
        return view.status_code == 200 and len(view.json()["history"]) >= 2

    await eventually(in_stats, timeout_s=30)
    view = (
        await world.http.get(f"{world.cluster.url('stats')}/v1/tickets/{ticket}", headers=staff)
    ).json()
    assert view["text"] == body["text"]
    assert world.observer.first["dispatched"].get(ticket) or world.observer.first["unroutable"].get(
        ticket
    )
