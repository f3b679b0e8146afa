"""The notifier's deliveries against the real store and broker and a real HTTP
receiver that checks every signature, as a department would.

The notifier is wired in-process as services/notifier/main.py wires it (one
"replica" per set of connections); the receiver is a small app served by uvicorn
on a free port, and the directory is the reference city's with every
department's webhook pointed at it. The harness here is shared with
test_notifier_timers.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY

from services.notifier.api import build_router
from services.notifier.assembly import NotifierParts, assemble
from services.notifier.batch import handle_batch
from services.notifier.handlers import SUBSCRIPTIONS, handle_event
from services.notifier.repository import DeliveryRepository
from shared.access import install_access, open_access
from shared.bootstrap import Infra, connect
from shared.clock import Clock
from shared.directory import Directory, load_directory
from shared.domain import Actor, ActorKind, Category, Channel, Citizen, TicketDims, TicketDraft
from shared.events import DispatchedPayload, TicketDispatched, TicketEvent, utcnow
from shared.http import create_app
from shared.keys import KeyKind
from shared.messaging.publisher import Publisher
from shared.mongo import Document
from shared.settings import DATA_DIR, CommonSettings, NotifierSettings
from shared.workcalendar import WorkCalendar
from tests.support import eventually

pytestmark = pytest.mark.integration

SERVICE = "notifier"
SECRET = "a-department-shares-this"
TEXT = "我是冠县贾镇某村村民，村里安装自来水管道占用了我家的耕地，到现在没有支付补偿款。"
ROUTER = Actor(kind=ActorKind.SYSTEM, id="router")


# --- the departments' end: a receiver that verifies signatures ------------------------


def verify(secret: str, headers: Mapping[str, str], raw: bytes, tolerance_s: float = 300.0) -> bool:
    """What a department does with a notice: recompute the HMAC over
    "<timestamp>.<raw body>" with the shared secret and refuse a stale timestamp.
    Written from the documented scheme, not with the notifier's own code."""
    timestamp = headers.get("x-hotline-timestamp", "")
    signature = headers.get("x-hotline-signature", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), signature)


@dataclass
class Call:
    department: str
    raw: bytes
    headers: dict[str, str]

    @property
    def body(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.raw)
        return result

    @property
    def delivery(self) -> str:
        return self.headers["x-hotline-delivery"]

    @property
    def kind(self) -> str:
        return self.headers["x-hotline-event"]


class _QuietServer(uvicorn.Server):
    # The test process owns its signals; uvicorn would install its own handlers.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Receiver:
    """Departments' webhook endpoint: refuses (401) a notice whose signature does
    not verify, records the others; can fail or be slow on purpose."""

    secret: str = SECRET
    calls: list[Call] = field(default_factory=list)
    refused: list[Call] = field(default_factory=list)
    fail_first: int = 0
    failing: set[str] = field(default_factory=set)  # departments answering 500
    slow: dict[str, float] = field(default_factory=dict)  # department -> seconds
    _socket: socket.socket | None = None
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._socket is not None
        return int(self._socket.getsockname()[1])

    def app(self) -> FastAPI:
        app = FastAPI()
        seen = 0

        @app.post("/hooks/{department}")
        async def hook(department: str, request: Request) -> JSONResponse:
            nonlocal seen
            call = Call(department, await request.body(), dict(request.headers))
            if not verify(self.secret, call.headers, call.raw):
                self.refused.append(call)
                return JSONResponse({"error": "bad signature"}, status_code=401)
            await asyncio.sleep(self.slow.get(department, 0.0))
            seen += 1
            self.calls.append(call)
            if department in self.failing or seen <= self.fail_first:
                return JSONResponse({"error": "try later"}, status_code=500)
            return JSONResponse({"ok": True})

        return app

    async def start(self) -> None:
        # Bound here and handed over: no window in which another process takes the port.
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off")
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        server = self._server

        async def started() -> bool:
            return bool(server.started)

        await eventually(started)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        if self._socket is not None:
            self._socket.close()

    def per_delivery(self) -> Counter[str]:
        return Counter(call.delivery for call in self.calls)

    def of_kind(self, kind: str, ticket_id: str | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.kind == kind and (ticket_id is None or c.body["ticket_id"] == ticket_id)
        ]


def directory_for(
    receiver: Receiver,
    tmp_path: Path,
    contacts: Mapping[str, dict[str, Any]] | None = None,
) -> Directory:
    """The reference directory with every webhook at the receiver; contacts
    replaces the contact of the departments it names."""
    raw = json.loads((DATA_DIR / "departments.json").read_text(encoding="utf-8"))
    for department in raw["departments"]:
        url = f"http://127.0.0.1:{receiver.port}/hooks/{department['id']}"
        department.setdefault("contact", {})["webhook"] = url
        if contacts and department["id"] in contacts:
            department["contact"] = contacts[department["id"]]
    path = tmp_path / "departments.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return load_directory(DATA_DIR / "districts.json", path)


# --- the notifier, wired as services/notifier/main.py wires it -------------------------


def notifier_settings(base: CommonSettings, **overrides: Any) -> NotifierSettings:
    values: dict[str, Any] = {
        "amqp_namespace": base.amqp_namespace,
        "mongo_db_prefix": base.mongo_db_prefix,
        "retry_delays": base.retry_delays,
        "webhook_secret": SECRET,
        "webhook_timeout_s": 5.0,
        "delivery_backoff_base_s": 0.1,
        "delivery_backoff_cap_s": 0.4,
        "delivery_max_attempts": 5,
        "delivery_poll_s": 0.1,
        "timer_poll_s": 0.05,
        "claim_lease_s": 30.0,
        **overrides,
    }
    return NotifierSettings(**values)


@dataclass
class Replica(NotifierParts):
    """One notifier process's worth of objects: its own connections, workers,
    timer firer and event handler, assembled as main.py assembles them."""

    settings: NotifierSettings
    infra: Infra
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start_deliveries(self) -> None:
        self.tasks.append(asyncio.create_task(self.delivery_worker.run()))

    def start_timers(self) -> None:
        self.tasks.append(asyncio.create_task(self.timer_worker.run()))

    def wake(self) -> None:
        self.delivery_worker.wake()
        self.timer_worker.wake()

    async def handle(self, event: TicketEvent) -> None:
        await handle_event(event, notifier=self.notifier)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()

    async def wait_for_status(self, ticket_id: str, *statuses: str) -> list[Document]:
        """Wait until every delivery of the ticket is in one of the statuses."""
        docs: list[Document] = []

        async def settled() -> bool:
            docs[:] = await self.deliveries.for_ticket(ticket_id)
            return bool(docs) and all(d["status"] in statuses for d in docs)

        await eventually(settled)
        return docs

    @asynccontextmanager
    async def api(
        self, kind: KeyKind = KeyKind.STAFF, owner: str = "notifier.tester"
    ) -> AsyncIterator[httpx.AsyncClient]:
        """The notifier's API as main wires it, called with a new key of the owner."""
        app = create_app(SERVICE, self.infra.readiness_checks(), title="Hotline notifier")
        app.include_router(build_router(self.deliveries, self.timers))
        access = open_access(self.infra.mongo, self.settings, None)
        install_access(app, access)
        key = (await access.store.issue(kind, owner, utcnow()))[1]
        transport = httpx.ASGITransport(app=app)
        headers = {"X-API-Key": key}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as c:
            yield c


@asynccontextmanager
async def open_replica(
    settings: NotifierSettings, directory: Directory, clock: Callable[[], datetime]
) -> AsyncIterator[Replica]:
    calendar = WorkCalendar(settings.timezone)
    infra = await connect(settings, SERVICE)
    http = httpx.AsyncClient(timeout=settings.webhook_timeout_s)
    try:
        parts = await assemble(settings, infra, directory, calendar, clock, http)
        replica = Replica(
            **{f.name: getattr(parts, f.name) for f in fields(parts)},
            settings=settings,
            infra=infra,
        )
        try:
            yield replica
        finally:
            await replica.stop()
    finally:
        await http.aclose()
        await infra.close()


@dataclass
class Notifiers:
    """Builds notifier replicas on the test's namespace; closes them all at the end."""

    base: CommonSettings
    directory: Directory
    receiver: Receiver
    clock: Callable[[], datetime]
    stack: AsyncExitStack

    async def replica(self, **overrides: Any) -> Replica:
        settings = notifier_settings(self.base, **overrides)
        return await self.stack.enter_async_context(
            open_replica(settings, self.directory, self.clock)
        )


@asynccontextmanager
async def notifiers_on(
    settings: CommonSettings,
    receiver: Receiver,
    directory: Directory,
    clock: Callable[[], datetime],
) -> AsyncIterator[Notifiers]:
    async with AsyncExitStack() as stack:
        yield Notifiers(settings, directory, receiver, clock, stack)


@pytest.fixture
async def notifiers(
    settings: CommonSettings, receiver: Receiver, tmp_path: Path
) -> AsyncIterator[Notifiers]:
    directory = directory_for(receiver, tmp_path)
    async with notifiers_on(settings, receiver, directory, Clock()) as value:
        yield value


# --- events ----------------------------------------------------------------------------


def draft() -> TicketDraft:
    return TicketDraft(
        channel=Channel.PHONE,
        district="guanxian",
        town="贾镇",
        category=Category.HELP,
        text=TEXT,
        citizen=Citizen(name="张三", phone="13800000000"),
    )


def dispatched(
    ticket_id: str,
    department: str = "guanxian.water",
    co: tuple[str, ...] = (),
    *,
    at: datetime | None = None,
    deadline: datetime | None = None,
    response_deadline: datetime | None = None,
    round_no: int = 1,
) -> TicketDispatched:
    now = at or Clock()()
    ticket = draft()
    return TicketDispatched(
        ticket_id=ticket_id,
        occurred_at=now,
        actor=ROUTER,
        payload=DispatchedPayload(
            dims=TicketDims.of(ticket),
            ticket=ticket,
            department=department,
            co_departments=co,
            rule="test",
            time_limit="general",
            deadline=deadline or now + timedelta(days=7),
            response_deadline=response_deadline or now + timedelta(hours=2),
            round=round_no,
        ),
    )


def delivery_id(cause: object, department: str, channel: str = "webhook") -> str:
    return f"{cause}:{department}:{channel}"


def dead_count() -> float:
    labels = {"channel": "webhook", "outcome": "dead"}
    return REGISTRY.get_sample_value("hotline_notifier_deliveries_total", labels) or 0.0


# --- tests ------------------------------------------------------------------------------


async def test_dispatch_notices_reach_lead_and_co_departments_signed(
    notifiers: Notifiers,
) -> None:
    n = await notifiers.replica()
    n.start_deliveries()
    co = ("guanxian.housing", "guanxian.env")
    event = dispatched("LC-CO", co=co)
    await n.handle(event)

    docs = await n.wait_for_status("LC-CO", "delivered")
    calls = notifiers.receiver.calls
    assert len(docs) == 3 and len(calls) == 3
    assert notifiers.receiver.refused == []  # every signature verified
    roles = {call.department: call.body["role"] for call in calls}
    assert roles == {"guanxian.water": "lead", "guanxian.housing": "co", "guanxian.env": "co"}
    for call in calls:
        assert call.delivery == delivery_id(event.event_id, call.department)
        assert call.kind == "dispatch"
        assert call.headers["x-hotline-signature"].startswith("sha256=")
        assert call.body["ticket_id"] == "LC-CO"
        assert call.body["lead_department"] == "guanxian.water"
        assert call.body["co_departments"] == list(co)
        assert call.body["ticket"]["text"] == TEXT
        assert "citizen" not in call.body["ticket"]
        assert "12345热线向你单位派发工单LC-CO" in call.body["text"]
    by_department = {c.department: c.body for c in calls}
    assert "（主办）" in by_department["guanxian.water"]["text"]
    assert "（协办）" in by_department["guanxian.env"]["text"]
    # The lead department calls the citizen back: its notice alone has the contact.
    lead = by_department["guanxian.water"]
    assert lead["contact"] == {
        "name": "张三",
        "phone": "13800000000",
        "town": "贾镇",
        "address": None,
    }
    assert "联系人张三，电话13800000000，镇街贾镇" in lead["text"]
    for co_department in co:
        body = by_department[co_department]
        assert "contact" not in body and "张三" not in json.dumps(body, ensure_ascii=False)
    for doc in docs:
        assert [(a["n"], a["ok"], a["status_code"]) for a in doc["attempts"]] == [(1, True, 200)]
        # Once delivered, the stored notice keeps the contact masked only.
        stored = json.dumps({k: doc[k] for k in ("text", "body")}, ensure_ascii=False)
        assert "张三" not in stored and "13800000000" not in stored
    assert "张*" in next(d for d in docs if d["department"] == "guanxian.water")["text"]


async def test_tampered_notice_fails_verification(notifiers: Notifiers) -> None:
    n = await notifiers.replica()
    n.start_deliveries()
    await n.handle(dispatched("LC-SIG"))
    await n.wait_for_status("LC-SIG", "delivered")

    [call] = notifiers.receiver.calls
    assert verify(SECRET, call.headers, call.raw)
    tampered = call.raw.replace("贾镇".encode(), "柳林镇".encode())
    assert tampered != call.raw
    assert not verify(SECRET, call.headers, tampered)
    assert not verify("another-secret", call.headers, call.raw)
    # A replayed notice with a timestamp from an hour ago is refused, even when
    # it is signed correctly for that timestamp.
    old = str(int(time.time()) - 3600)
    mac = hmac.new(SECRET.encode(), old.encode() + b"." + call.raw, hashlib.sha256)
    replayed = {**call.headers, "x-hotline-timestamp": old}
    replayed["x-hotline-signature"] = "sha256=" + mac.hexdigest()
    assert not verify(SECRET, replayed, call.raw)
    assert not verify(SECRET, {**call.headers, "x-hotline-signature": ""}, call.raw)


async def test_wrong_secret_is_refused_and_ends_dead(notifiers: Notifiers) -> None:
    n = await notifiers.replica(webhook_secret="not-what-the-department-has")
    n.start_deliveries()
    await n.handle(dispatched("LC-BADKEY"))

    [doc] = await n.wait_for_status("LC-BADKEY", "dead")
    assert [a["status_code"] for a in doc["attempts"]] == [401] * 5
    assert notifiers.receiver.calls == [] and len(notifiers.receiver.refused) == 5


async def test_failing_webhook_recovers(notifiers: Notifiers) -> None:
    notifiers.receiver.fail_first = 2
    n = await notifiers.replica()
    n.start_deliveries()
    event = dispatched("LC-RETRY")
    await n.handle(event)

    [doc] = await n.wait_for_status("LC-RETRY", "delivered")
    attempts = doc["attempts"]
    assert [a["n"] for a in attempts] == [1, 2, 3]
    assert [a["ok"] for a in attempts] == [False, False, True]
    assert [a["status_code"] for a in attempts] == [500, 500, 200]
    assert attempts[0]["error"] == "HTTP 500"
    assert attempts[0]["at"] < attempts[1]["at"] < attempts[2]["at"]  # backed off between
    assert notifiers.receiver.per_delivery() == {delivery_id(event.event_id, "guanxian.water"): 3}


async def test_failed_attempts_are_logged_once_a_minute_per_department(
    notifiers: Notifiers, caplog: pytest.LogCaptureFixture
) -> None:
    notifiers.receiver.fail_first = 2
    n = await notifiers.replica()
    n.start_deliveries()
    with caplog.at_level(logging.WARNING, logger="services.notifier.delivery"):
        await n.handle(dispatched("LC-WARN"))
        await n.wait_for_status("LC-WARN", "delivered")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # Two failures within the minute: the first is logged, the second held back.
    assert len(lines) == 1, lines
    assert "ticket LC-WARN" in lines[0] and "department guanxian.water" in lines[0]
    assert "webhook to http://" in lines[0] and "HTTP 500" in lines[0]


async def test_always_failing_endpoint_ends_dead_counted_and_listed(
    notifiers: Notifiers,
) -> None:
    notifiers.receiver.failing = {"guanxian.water"}
    n = await notifiers.replica(delivery_max_attempts=3)
    n.start_deliveries()
    dead_before = dead_count()
    event = dispatched("LC-DEAD", co=("guanxian.env",))
    await n.handle(event)

    docs = {d["department"]: d for d in await n.wait_for_status("LC-DEAD", "delivered", "dead")}
    dead, fine = docs["guanxian.water"], docs["guanxian.env"]
    assert dead["status"] == "dead" and fine["status"] == "delivered"
    assert [a["n"] for a in dead["attempts"]] == [1, 2, 3]
    assert not any(a["ok"] for a in dead["attempts"])
    assert len(fine["attempts"]) == 1  # the failing endpoint held nobody up
    assert dead_count() == dead_before + 1

    async with n.api() as api:
        listed = await api.get("/v1/deliveries", params={"status": "dead"})
        metrics = await api.get("/metrics")
    assert listed.status_code == 200
    [shown] = listed.json()
    assert shown["delivery_id"] == delivery_id(event.event_id, "guanxian.water")
    assert [a["status_code"] for a in shown["attempts"]] == [500, 500, 500]
    line = 'hotline_notifier_deliveries_total{channel="webhook",outcome="dead"}'
    assert line in metrics.text


async def test_slow_endpoint_does_not_delay_other_departments(notifiers: Notifiers) -> None:
    notifiers.receiver.slow = {"guanxian.water": 2.0}
    n = await notifiers.replica()
    n.start_deliveries()
    co = ("guanxian.env", "guanxian.housing")
    await n.handle(dispatched("LC-SLOW", co=co))

    docs = await n.wait_for_status("LC-SLOW", "delivered")
    assert len(docs) == 3
    arrived = [call.department for call in notifiers.receiver.calls]
    assert sorted(arrived[:2]) == sorted(co) and arrived[2] == "guanxian.water"


async def test_department_no_channel_reaches_is_dead_at_once(notifiers: Notifiers) -> None:
    n = await notifiers.replica()
    n.start_deliveries()
    event = dispatched("LC-NOWHERE", department="nowhere.unknown")
    await n.handle(event)

    [doc] = await n.wait_for_status("LC-NOWHERE", "dead")
    assert doc["_id"] == delivery_id(event.event_id, "nowhere.unknown", "none")
    assert doc["target"] is None and doc["channel"] == "none"
    assert [a["error"] for a in doc["attempts"]] == ["no channel reaches this department"]
    assert notifiers.receiver.calls == []


async def test_same_dispatched_event_twice_sends_once(notifiers: Notifiers) -> None:
    n = await notifiers.replica()
    n.start_deliveries()
    event = dispatched("LC-TWICE")
    await n.handle(event)
    await n.handle(event)

    [doc] = await n.wait_for_status("LC-TWICE", "delivered")
    assert len(doc["attempts"]) == 1
    assert notifiers.receiver.per_delivery() == {delivery_id(event.event_id, "guanxian.water"): 1}
    assert len(await n.timers.for_ticket("LC-TWICE")) == 3  # urge, warning, overdue once


async def test_two_workers_deliver_each_notice_exactly_once(notifiers: Notifiers) -> None:
    one, two = await notifiers.replica(), await notifiers.replica()
    events = [dispatched(f"LC-PAIR-{i:02d}") for i in range(20)]
    for event in events:  # all pending before either worker looks
        await one.handle(event)
    one.start_deliveries()
    two.start_deliveries()

    async def all_delivered() -> bool:
        return await one.deliveries.count_by_status() == {
            "pending": 0,
            "delivered": 20,
            "dead": 0,
            "superseded": 0,
        }

    await eventually(all_delivered, timeout_s=30)
    counts = notifiers.receiver.per_delivery()
    assert set(counts) == {delivery_id(e.event_id, "guanxian.water") for e in events}
    assert set(counts.values()) == {1}
    for event in events:
        [doc] = await one.deliveries.for_ticket(event.ticket_id)
        assert len(doc["attempts"]) == 1


async def test_stale_claim_does_not_block_delivery(notifiers: Notifiers) -> None:
    n = await notifiers.replica()
    event = dispatched("LC-STALE")
    await n.handle(event)
    # A replica claimed attempt 0, then died before it sent anything.
    did = delivery_id(event.event_id, "guanxian.water")
    expired = notifiers.clock() - timedelta(minutes=1)
    await n.infra.db["delivery_claims"].insert_one(
        {"_id": f"{did}:0:0", "owner": "a-dead-replica", "expires_at": expired}
    )
    n.start_deliveries()

    [doc] = await n.wait_for_status("LC-STALE", "delivered")
    # The first attempt, taken over from the dead replica.
    assert [a["n"] for a in doc["attempts"]] == [1]
    assert await n.infra.db["delivery_claims"].find_one({"_id": f"{did}:0:1"}) is not None
    assert notifiers.receiver.per_delivery() == {did: 1}


async def test_live_claim_of_another_replica_is_left_alone(notifiers: Notifiers) -> None:
    n = await notifiers.replica()
    event = dispatched("LC-LIVE")
    await n.handle(event)
    did = delivery_id(event.event_id, "guanxian.water")
    [doc] = await n.deliveries.for_ticket("LC-LIVE")
    other_replica = DeliveryRepository(n.infra.db)
    assert await other_replica.claim(doc, notifiers.clock(), timedelta(seconds=30))
    # ... another replica holds attempt 0: this one cannot take it ...
    assert not await n.deliveries.claim(doc, notifiers.clock(), timedelta(seconds=30))
    # ... while the holder itself can run it again (after a transient error).
    assert await other_replica.claim(doc, notifiers.clock(), timedelta(seconds=30))
    n.start_deliveries()
    await asyncio.sleep(0.5)  # ... so this one's worker does not touch it
    assert notifiers.receiver.calls == []
    [doc] = await n.deliveries.for_ticket("LC-LIVE")
    assert doc["status"] == "pending" and doc["attempts"] == [] and doc["_id"] == did


async def test_dispatched_event_from_the_broker_is_delivered(notifiers: Notifiers) -> None:
    n = await notifiers.replica()
    n.start_deliveries()
    await n.infra.consume_batches(
        SUBSCRIPTIONS.adapter, partial(handle_batch, notifier=n.notifier), max_wait_s=0.01
    )
    event = dispatched("LC-BROKER", co=("guanxian.env",))
    router = Publisher(n.infra.broker.exchange, "router")
    await router.publish(event)
    await router.publish(event)  # redelivered

    docs = await n.wait_for_status("LC-BROKER", "delivered")
    assert {d["department"] for d in docs} == {"guanxian.water", "guanxian.env"}
    assert set(notifiers.receiver.per_delivery().values()) == {1}
    assert {t["kind"] for t in await n.timers.for_ticket("LC-BROKER")} == {
        "urge",
        "warning",
        "overdue",
    }


async def test_api_lists_deliveries_and_timers(notifiers: Notifiers) -> None:
    n = await notifiers.replica()
    n.start_deliveries()
    event = dispatched("LC-API")
    await n.handle(event)
    await n.wait_for_status("LC-API", "delivered")

    async with n.api() as api:
        listed = await api.get("/v1/deliveries", params={"ticket_id": "LC-API"})
        missing = await api.get("/v1/deliveries")
        unknown = await api.get("/v1/deliveries", params={"ticket_id": "LC-NONE"})
        bad_status = await api.get("/v1/deliveries", params={"status": "lost"})
        timers = await api.get("/v1/timers", params={"ticket_id": "LC-API"})
        no_ticket = await api.get("/v1/timers")
        ready = await api.get("/readyz")
    assert listed.status_code == 200
    [delivery] = listed.json()
    assert delivery["delivery_id"] == delivery_id(event.event_id, "guanxian.water")
    assert delivery["status"] == "delivered"
    assert delivery["department"] == "guanxian.water"
    assert delivery["kind"] == "dispatch" and delivery["channel"] == "webhook"
    assert [a["ok"] for a in delivery["attempts"]] == [True]
    assert missing.status_code == 422
    assert unknown.status_code == 200 and unknown.json() == []
    assert bad_status.status_code == 422

    assert timers.status_code == 200
    shown = timers.json()
    assert [t["kind"] for t in shown] == ["urge", "warning", "overdue"]  # in due order
    assert {t["status"] for t in shown} == {"pending"}
    assert {t["generation"] for t in shown} == {str(event.event_id)}
    assert shown[0]["timer_id"] == f"LC-API:{event.event_id}:urge:0"
    due = {t["kind"]: datetime.fromisoformat(t["due_at"]) for t in shown}
    # The store keeps milliseconds.
    assert abs(due["urge"] - event.payload.response_deadline) < timedelta(milliseconds=1)
    assert abs(due["overdue"] - event.payload.deadline) < timedelta(milliseconds=1)
    assert no_ticket.status_code == 422
    assert ready.status_code == 200


async def test_api_reads_are_scoped_to_the_department_and_masked(notifiers: Notifiers) -> None:
    n = await notifiers.replica()
    event = dispatched("LC-SCOPE", co=("guanxian.env",))
    await n.handle(event)  # not sent: the pending notice still holds the contact
    query = {"ticket_id": "LC-SCOPE"}
    async with n.api() as staff:
        everything = (await staff.get("/v1/deliveries", params=query)).json()
    async with n.api(KeyKind.DEPARTMENT, "guanxian.water") as water:
        own = await water.get("/v1/deliveries", params=query)
        own_timers = await water.get("/v1/timers", params=query)
    async with n.api(KeyKind.DEPARTMENT, "yanggu.water") as other:
        foreign = await other.get("/v1/deliveries", params=query)
        foreign_timers = await other.get("/v1/timers", params=query)
    async with n.api(KeyKind.AGENT, "seat-1") as agent:
        by_agent = await agent.get("/v1/deliveries", params=query)
    assert {d["department"] for d in everything} == {"guanxian.water", "guanxian.env"}
    lead = next(d for d in everything if d["department"] == "guanxian.water")
    assert lead["body"]["contact"]["phone"] == "13800000000"  # staff read it all
    [mine] = own.json()
    assert mine["department"] == "guanxian.water"
    text = json.dumps(mine, ensure_ascii=False)
    assert "13800000000" not in text and "张三" not in text
    assert mine["body"]["contact"] == {
        "name": "张*",
        "phone": "138****0000",
        "town": "贾镇",
        "address": None,
    }
    assert own_timers.status_code == 200 and own_timers.json()
    assert (foreign.status_code, foreign_timers.status_code) == (404, 404)
    assert "张" not in foreign.text and "LC-SCOPE" in foreign.json()["detail"]
    assert by_agent.status_code == 403 and by_agent.json()["code"] == "FORBIDDEN"


async def test_delivery_counts_fall_back_to_zero(notifiers: Notifiers) -> None:
    """A status nobody is in any more reads 0: the backlog gauge must drain."""
    n = await notifiers.replica()
    assert await n.deliveries.count_by_status() == {
        "pending": 0,
        "delivered": 0,
        "dead": 0,
        "superseded": 0,
    }
    await n.handle(dispatched("LC-COUNT"))
    assert (await n.deliveries.count_by_status())["pending"] == 1
    n.start_deliveries()
    await n.wait_for_status("LC-COUNT", "delivered")
    assert await n.deliveries.count_by_status() == {
        "pending": 0,
        "delivered": 1,
        "dead": 0,
        "superseded": 0,
    }
