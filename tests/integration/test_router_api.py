"""The router's HTTP API (departments and hotline staff) against the real broker
and store.

The app is assembled as services/router/main.py assembles it (create_app, then
services.router.api.install) and called in process through httpx's ASGI
transport; the router's consumer runs too, so that citizen feedback published
to the exchange reaches the tickets. Keys are issued with KeyRepository. What
the router publishes is read back from the stats queue (every event), which
nobody else consumes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractChannel
from pydantic import TypeAdapter

from services.router.api import install
from services.router.commands import CommandService
from services.router.handlers import EngineHolder, handle_event
from services.router.knowledge import EngineFactory, shipped_engine
from services.router.refused import RefusedFeedbackRepository, build_refused_routes
from services.router.repository import TicketRepository
from services.router.rules import load_rules
from shared.access import open_access
from shared.bootstrap import Infra, connect
from shared.directory import Directory, load_directory
from shared.domain import Actor, ActorKind, TicketDims, TicketDraft
from shared.events import (
    FeedbackPayload,
    Rating,
    TicketEvent,
    TicketFeedback,
    TicketReceived,
    parse_event,
    utcnow,
)
from shared.http import create_app
from shared.keys import KeyKind, KeyStore
from shared.messaging.publisher import Publisher
from shared.settings import DATA_DIR, CommonSettings
from shared.workcalendar import WorkCalendar
from tests.support import eventually

pytestmark = pytest.mark.integration

SERVICE = "router"
TICKET = "LC20261126000001"
REASON = {"reason": "不属于本单位职责范围。"}


def sample(sample_id: str, directory: Directory) -> TicketDraft:
    lines = (DATA_DIR / "sample_requests.jsonl").read_text(encoding="utf-8").splitlines()
    [raw] = [r for r in map(json.loads, filter(None, lines)) if r["id"] == sample_id]
    district = directory.district(raw["district"])
    assert district is not None
    fields = {k: v for k, v in raw.items() if k in TicketDraft.model_fields}
    return TicketDraft.model_validate({**fields, "district": district.id})


@dataclass
class Api:
    infra: Infra
    directory: Directory
    repo: TicketRepository
    keys: KeyStore
    commands: CommandService
    client: httpx.AsyncClient
    stats: AbstractChannel

    async def key(self, who: str, kind: ActorKind = ActorKind.DEPARTMENT) -> str:
        _, key = await self.keys.issue(KeyKind(kind.value), who, utcnow())
        return key

    async def create(self, sample_id: str = "S001", ticket_id: str = TICKET) -> None:
        """A received ticket, dispatched by the rules (what handle_received does)."""
        await self.commands.create(ticket_id, sample(sample_id, self.directory))

    async def post(
        self, key: str | None, action: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = {"X-API-Key": key} if key else {}
        path = f"/v1/tickets/{TICKET}/{action}"
        return await self.client.post(path, json=body, headers=headers)

    async def get(self, key: str | None, path: str = f"/v1/tickets/{TICKET}") -> httpx.Response:
        headers = {"X-API-Key": key} if key else {}
        return await self.client.get(path, headers=headers)

    async def published(self) -> list[TicketEvent]:
        """Events that reached the stats queue since the last call."""
        name = self.infra.broker.topology.queue_name(self.infra.broker.topology.spec("stats"))
        queue = await self.stats.get_queue(name, ensure=False)
        events: list[TicketEvent] = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            events.append(parse_event(message.body))
        return events

    async def collect(self, count: int) -> list[TicketEvent]:
        got: list[TicketEvent] = []

        async def enough() -> bool:
            got.extend(await self.published())
            return len(got) >= count

        await eventually(enough)
        return got

    async def rate(self, rating: Rating) -> None:
        """The citizen's feedback, as intake publishes it."""
        stored = await self.repo.get(TICKET)
        assert stored is not None
        event = TicketFeedback(
            ticket_id=TICKET,
            actor=Actor(kind=ActorKind.CITIZEN, id="feedback"),
            payload=FeedbackPayload(
                dims=TicketDims.of(stored.state.draft), rating=rating, solved=True
            ),
        )
        await Publisher(self.infra.broker.exchange, "intake").publish(event)

    async def status_becomes(self, key: str, status: str) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def there() -> bool:
            seen.update((await self.get(key)).json())
            return bool(seen["status"] == status)

        await eventually(there)
        return seen


@pytest.fixture
async def api(settings: CommonSettings) -> AsyncIterator[Api]:
    directory = load_directory(settings.districts_file, settings.directory_file)
    engines = EngineHolder(shipped_engine(directory, WorkCalendar()))
    infra = await connect(settings, SERVICE)
    connection = None
    client = None
    try:
        repo, access = TicketRepository(infra.db), open_access(infra.mongo, settings, directory)
        keys = access.store
        await repo.ensure_indexes()
        await keys.ensure_indexes()
        publisher = Publisher(infra.broker.exchange, SERVICE)
        commands = CommandService(repo, engines, publisher, utcnow, infra.broker.is_connected)
        refused = RefusedFeedbackRepository(infra.db)
        handler = partial(handle_event, commands=commands, refused=refused)
        await infra.consume(TypeAdapter(TicketReceived | TicketFeedback), handler)
        app = create_app(SERVICE, infra.readiness_checks(), title="Hotline router")
        install(app, commands, repo, access)
        app.include_router(build_refused_routes(refused))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r")
        connection = await aio_pika.connect(settings.amqp_url)
        yield Api(infra, directory, repo, keys, commands, client, await connection.channel())
    finally:
        if client is not None:
            await client.aclose()
        if infra.broker.is_connected():
            for consumer in infra.consumers:
                await consumer.stop()
        if connection is not None:
            await connection.close()
        await infra.close()


@pytest.fixture
async def staff(api: Api) -> str:
    return await api.key("zhang.san", ActorKind.STAFF)


@pytest.fixture
async def water(api: Api) -> str:
    """The key of guanxian.water, which the rules give sample S001."""
    return await api.key("guanxian.water")


@pytest.fixture
async def dispatched(api: Api, staff: str) -> dict[str, Any]:
    """Sample S001 dispatched to guanxian.water; its dispatch event already read."""
    await api.create("S001")
    assert [e.event_type for e in await api.collect(1)] == ["dispatched"]
    return (await api.get(staff)).json()  # type: ignore[no-any-return]


async def test_the_lead_departments_key_acts_and_reads(
    api: Api, water: str, dispatched: dict[str, Any]
) -> None:
    assert dispatched["status"] == "dispatched"
    assert dispatched["department"] == "guanxian.water"
    response = await api.post(water, "accept")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["ticket_id"], body["status"]) == (TICKET, "accepted")
    assert body["accepted_at"] is not None
    # A Bearer token works as well as X-API-Key.
    read = await api.client.get(
        f"/v1/tickets/{TICKET}", headers={"Authorization": f"Bearer {water}"}
    )
    assert read.status_code == 200
    assert read.json() == body
    [event] = await api.collect(1)
    assert event.event_type == "accepted"
    assert event.actor == Actor(kind=ActorKind.DEPARTMENT, id="guanxian.water")
    listed = await api.get(water, "/v1/tickets")
    assert [t["ticket_id"] for t in listed.json()] == [TICKET]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "hk_not-a-key-we-issued"},
        {"X-API-Key": "not-even-shaped-like-a-key"},
        {"Authorization": "Bearer hk_not-a-key-we-issued"},
        {"Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="},
        "revoked",
    ],
    ids=["none", "wrong", "malformed", "wrong-bearer", "basic", "revoked"],
)
async def test_without_a_valid_key_nothing_happens(
    api: Api, staff: str, dispatched: dict[str, Any], headers: dict[str, str] | str
) -> None:
    if headers == "revoked":
        key_id, key = await api.keys.issue(KeyKind.DEPARTMENT, "guanxian.water", utcnow())
        assert (await api.get(key)).status_code == 200
        assert await api.keys.revoke(key_id, utcnow())
        headers = {"X-API-Key": key}
    assert isinstance(headers, dict)
    for response in (
        await api.client.post(f"/v1/tickets/{TICKET}/accept", headers=headers),
        await api.client.post(f"/v1/tickets/{TICKET}/return", headers=headers, json=REASON),
        await api.client.get(f"/v1/tickets/{TICKET}", headers=headers),
        await api.client.get("/v1/tickets?status=unroutable", headers=headers),
    ):
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "UNAUTHENTICATED"
    assert (await api.get(staff)).json() == dispatched
    assert await api.published() == []


async def test_another_departments_key_changes_nothing(
    api: Api, staff: str, dispatched: dict[str, Any]
) -> None:
    police = await api.key("city.police")
    refused = [
        await api.post(police, "accept"),
        await api.post(police, "return", REASON),
        await api.post(police, "resolve", {"reply": "已处理。"}),
        await api.post(police, "sub-dispatch", {"department": "guanxian.housing"}),
        await api.get(police),
    ]
    for response in refused:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "NOT_YOUR_TICKET"
    assert (await api.get(police, "/v1/tickets")).json() == []
    # Staff read everything but act on a department's behalf never.
    response = await api.post(staff, "accept")
    assert response.status_code == 403
    assert response.json()["code"] == "DEPARTMENTS_ONLY"
    assert (await api.get(staff)).json() == dispatched
    assert await api.published() == []


async def test_staff_only_calls_refuse_a_department_key(
    api: Api, water: str, staff: str, dispatched: dict[str, Any]
) -> None:
    for action, body in (
        ("dispatch", {"department": "city.natres"}),
        ("extension/decision", {"approve": True}),
    ):
        response = await api.post(water, action, body)
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "STAFF_ONLY"
    assert (await api.get(staff)).json() == dispatched
    assert await api.published() == []


async def test_an_illegal_transition_is_409_and_publishes_nothing(
    api: Api, water: str, staff: str, dispatched: dict[str, Any]
) -> None:
    response = await api.post(water, "resolve", {"reply": "已处理。"})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "ILLEGAL_TRANSITION"
    assert "dispatched" in body["message"]
    response = await api.post(staff, "extension/decision", {"approve": True})
    assert (response.status_code, response.json()["code"]) == (409, "ILLEGAL_TRANSITION")
    assert (await api.get(staff)).json() == dispatched
    assert await api.published() == []


@pytest.mark.parametrize(
    ("key", "action", "body", "code"),
    [
        ("water", "extension", {"days": 11, "reason": "需要更多时间"}, None),
        ("water", "extension", {"days": 0, "reason": "需要更多时间"}, None),
        ("water", "return", {"reason": ""}, None),
        ("water", "return", {"reason": "   "}, None),
        ("water", "return", None, None),
        ("water", "resolve", {"reply": "已处理。", "rating": "satisfied"}, None),
        ("staff", "dispatch", {"department": "city.nowhere"}, "UNKNOWN_DEPARTMENT"),
        (
            "staff",
            "dispatch",
            {"department": "city.natres", "time_limit": "x"},
            "UNKNOWN_TIME_LIMIT",
        ),
    ],
    ids=[
        "days-11",
        "days-0",
        "empty-reason",
        "blank-reason",
        "no-body",
        "extra-field",
        "unknown-department",
        "unknown-time-limit",
    ],
)
async def test_invalid_input_is_422_and_changes_nothing(
    api: Api,
    water: str,
    staff: str,
    dispatched: dict[str, Any],
    key: str,
    action: str,
    body: dict[str, Any] | None,
    code: str | None,
) -> None:
    response = await api.post(water if key == "water" else staff, action, body)
    assert response.status_code == 422, response.text
    if code is not None:
        assert response.json()["code"] == code
    assert (await api.get(staff)).json() == dispatched
    assert await api.published() == []


async def test_an_unknown_ticket_is_404(api: Api, staff: str, water: str) -> None:
    for response in (
        await api.get(staff),
        await api.post(water, "accept"),
        await api.post(staff, "dispatch", {"department": "city.natres"}),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "TICKET_NOT_FOUND"


async def test_with_the_broker_down_nothing_is_stored(
    api: Api, water: str, staff: str, dispatched: dict[str, Any]
) -> None:
    await api.infra.broker.close()
    response = await api.post(water, "accept")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    after = await api.get(staff)
    assert after.status_code == 200
    assert after.json() == dispatched
    stored = await api.repo.get(TICKET)
    assert stored is not None
    assert (stored.state.version, stored.outbox) == (0, [])


async def test_the_whole_lifecycle_over_http(api: Api, water: str, staff: str) -> None:
    await api.create("S001")
    guanxian, housing = await api.key("guanxian"), await api.key("guanxian.housing")

    async def ok(key: str, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await api.post(key, action, body)
        assert response.status_code == 200, (action, response.text)
        return response.json()  # type: ignore[no-any-return]

    async def refused(key: str, action: str, body: dict[str, Any] | None, code: str) -> None:
        response = await api.post(key, action, body)
        assert response.status_code in (403, 409, 422), response.text
        assert response.json()["code"] == code

    # 退单: the rules and lists choose again, never a department that returned
    # it; no other type claims the water pipe, so the county sub-centre.
    state = await ok(water, "return", REASON)
    assert (state["status"], state["department"], state["round"]) == ("dispatched", "guanxian", 2)
    assert (state["returned_by"], state["decided_by"]) == (["guanxian.water"], "rule")
    # The county sub-centre returns it too: nobody is left, it waits for a person.
    state = await ok(guanxian, "return", REASON)
    assert (state["status"], state["department"]) == ("unroutable", None)
    # Why each returned it, in the router's own view (staff decide from the queue).
    assert [(r["department"], r["reason"]) for r in state["returns"]] == [
        (department, REASON["reason"]) for department in ("guanxian.water", "guanxian")
    ]
    queue = (await api.get(staff, "/v1/tickets?status=unroutable")).json()
    assert [t["ticket_id"] for t in queue] == [TICKET]
    # The queue is the hotline centre's: a department sees there only the tickets
    # it once held (masked), none it never had.
    assert (await api.get(guanxian, "/v1/tickets?status=unroutable")).json()[0]["contact"]
    never_had = await api.key("guanxian.env")
    assert (await api.get(never_had, "/v1/tickets?status=unroutable")).json() == []

    # A person sends it to the county sub-centre after all, which passes it on.
    state = await ok(staff, "dispatch", {"department": "guanxian", "time_limit": "general"})
    assert (state["status"], state["department"], state["round"]) == ("dispatched", "guanxian", 3)
    assert state["decided_by"] == "manual"
    deadline = state["deadline"]
    await refused(guanxian, "sub-dispatch", {"department": "guanxian.water"}, "RETURNED_BY_UNIT")
    await refused(guanxian, "sub-dispatch", {"department": "shenxian.housing"}, "NOT_YOUR_UNIT")
    state = await ok(guanxian, "sub-dispatch", {"department": "guanxian.housing"})
    assert (state["department"], state["deadline"]) == ("guanxian.housing", deadline)

    # 签收, 延期 refused (once means once), 办结.
    await ok(housing, "accept")
    await ok(housing, "extension", {"days": 3, "reason": "需要协调施工单位。"})
    await refused(staff, "extension/decision", {"approve": False}, "INVALID_TEXT")
    state = await ok(staff, "extension/decision", {"approve": False, "note": "理由不充分"})
    assert (state["status"], state["deadline"], state["extension_requests"]) == (
        "accepted",
        deadline,
        1,
    )
    # One request per dispatch, the refused one included.
    await refused(housing, "extension", {"days": 2, "reason": "再要两天。"}, "EXTENSION_LIMIT")
    await ok(housing, "resolve", {"reply": "补偿款已发放。"})

    # 回访: unsatisfied reopens it; it closes after the written explanation.
    await api.rate(Rating.UNSATISFIED)
    state = await api.status_becomes(housing, "reopened")
    assert state["reopen_count"] == 1
    await ok(housing, "accept")
    await refused(housing, "resolve", {"reply": "已再次处理。"}, "EXPLANATION_REQUIRED")
    state = await ok(housing, "explanation", {"text": "补偿标准由县政府统一确定。"})
    assert state["explanation"] == "补偿标准由县政府统一确定。"
    await ok(housing, "resolve", {"reply": "已再次处理并解释。"})
    await api.rate(Rating.BASICALLY_SATISFIED)
    state = await api.status_becomes(staff, "closed")
    assert state["closed_at"] is not None
    await refused(housing, "accept", None, "ILLEGAL_TRANSITION")

    events = await api.collect(18)
    assert [e.event_type for e in events] == [
        "dispatched",
        "returned",
        "dispatched",
        "returned",
        "unroutable",
        "dispatched",
        "dispatched",
        "accepted",
        "extension_requested",
        "extension_refused",
        "resolved",
        "feedback",
        "reopened",
        "accepted",
        "explained",
        "resolved",
        "feedback",
        "closed",
    ]
    assert len({e.event_id for e in events}) == len(events)
    assert await api.published() == []


async def test_openapi_describes_the_workflow(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for action in (
        "accept",
        "return",
        "extension",
        "extension/decision",
        "resolve",
        "sub-dispatch",
        "dispatch",
        "explanation",
    ):
        assert f"/v1/tickets/{{ticket_id}}/{action}" in paths
    assert "/v1/tickets" in paths


async def test_refused_ratings_are_listed_to_staff_only(
    api: Api, staff: str, water: str, dispatched: dict[str, Any]
) -> None:
    await api.rate(Rating.SATISFIED)  # the ticket is only dispatched: cannot be rated

    async def listed() -> bool:
        return len((await api.get(staff, "/v1/feedback/refused")).json()) == 1

    await eventually(listed)
    [shown] = (await api.get(staff, f"/v1/feedback/refused?ticket_id={TICKET}")).json()
    assert (shown["ticket_id"], shown["rating"], shown["code"]) == (
        TICKET,
        "satisfied",
        "ILLEGAL_TRANSITION",
    )
    assert (await api.get(water, "/v1/feedback/refused")).status_code == 403
    assert (await api.get(None, "/v1/feedback/refused")).status_code == 401
    assert (await api.get(staff)).json()["status"] == "dispatched"


async def test_the_manual_queue_shows_the_candidates(api: Api, staff: str) -> None:
    """A request two departments' lists claim alike (水浑 and 物业, 8 each)
    waits for a person, with what the lists suggest, where no model is asked (a
    city that turned the seed model off: with it, the model takes the tie,
    tests/unit/test_dispatch_seed.py); the dispatch records what decided it."""
    without_seed = EngineFactory(api.directory, WorkCalendar(), plugins=False, seed_file=None)
    api.commands.engines.engine = without_seed(load_rules())
    tie = sample("S001", api.directory).model_copy(update={"text": "水浑，物业说不归他们管"})
    await api.commands.create(TICKET, tie)
    [event] = await api.collect(1)
    assert event.event_type == "unroutable"
    queue = (await api.get(staff, "/v1/tickets?status=unroutable")).json()
    [waiting] = queue
    assert waiting["ticket_id"] == TICKET
    assert [c["department"] for c in waiting["candidates"]] == [
        "guanxian.water",
        "guanxian.housing",
    ]
    assert {c["source"] for c in waiting["candidates"]} == {"list"}
    assert [c.department for c in event.payload.candidates] == [
        "guanxian.water",
        "guanxian.housing",
    ]
    response = await api.post(staff, "dispatch", {"department": "guanxian.water"})
    assert response.status_code == 200, response.text
    assert (response.json()["decided_by"], response.json()["candidates"]) == ("manual", [])
    [dispatched] = await api.collect(1)
    assert dispatched.payload.decided_by == "manual"  # type: ignore[union-attr]
