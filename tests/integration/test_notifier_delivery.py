"""The notifier's deliveries against the real store and a real HTTP receiver.

The receiver is a small app served by uvicorn on a free port; the directory is
the reference city's with every department's webhook pointed at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from services.notifier.api import build_router
from services.notifier.delivery import DeliveryWorker, WebhookSender
from services.notifier.handlers import handle_dispatched
from services.notifier.repository import DeliveryRepository
from shared.bootstrap import Infra, connect
from shared.directory import Directory, load_directory
from shared.domain import Actor, ActorKind, Category, Channel, Citizen, TicketDims, TicketDraft
from shared.events import DispatchedPayload, TicketDispatched, utcnow
from shared.http import create_app
from shared.messaging.consumer import Consumer
from shared.messaging.publisher import Publisher
from shared.mongo import Document
from shared.settings import DATA_DIR, CommonSettings
from tests.support import eventually

pytestmark = pytest.mark.integration

SERVICE = "notifier"
TEXT = "我是冠县贾镇某村村民，村里安装自来水管道占用了我家的耕地，到现在没有支付补偿款。"


@dataclass
class Call:
    department: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def delivery(self) -> str:
        return self.headers["x-hotline-delivery"]


class _QuietServer(uvicorn.Server):
    # The test process owns its signals; uvicorn would install its own handlers.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Receiver:
    """Departments' webhook endpoint: records every notice; can fail on purpose."""

    calls: list[Call] = field(default_factory=list)
    fail_first: int = 0
    always_fail: bool = False
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
            seen += 1
            self.calls.append(Call(department, await request.json(), dict(request.headers)))
            if self.always_fail or seen <= self.fail_first:
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


@dataclass
class NotifierHarness:
    infra: Infra
    repo: DeliveryRepository
    directory: Directory
    receiver: Receiver
    http: httpx.AsyncClient
    workers: list[DeliveryWorker] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start_worker(self, max_attempts: int = 5) -> DeliveryWorker:
        worker = DeliveryWorker(
            repo=self.repo,
            sender=WebhookSender(self.http),
            clock=utcnow,
            backoff=[0.1, 0.2],
            max_attempts=max_attempts,
            poll_s=0.1,
            lease=timedelta(seconds=5),
        )
        self.workers.append(worker)
        self.tasks.append(asyncio.create_task(worker.run()))
        return worker

    def wake(self) -> None:
        for worker in self.workers:
            worker.wake()

    async def dispatch(self, event: TicketDispatched) -> None:
        await handle_dispatched(
            event, repo=self.repo, directory=self.directory, clock=utcnow, wake=self.wake
        )

    async def wait_for_status(self, ticket_id: str, *statuses: str) -> list[Document]:
        """Wait until every delivery of the ticket is in one of the statuses."""
        docs: list[Document] = []

        async def settled() -> bool:
            docs[:] = await self.repo.for_ticket(ticket_id)
            return bool(docs) and all(d["status"] in statuses for d in docs)

        await eventually(settled)
        return docs

    async def stop_workers(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()


def dispatched(
    ticket_id: str, department: str = "guanxian.water", co: tuple[str, ...] = ()
) -> TicketDispatched:
    now = utcnow()
    draft = TicketDraft(
        channel=Channel.PHONE,
        district="guanxian",
        town="贾镇",
        category=Category.HELP,
        text=TEXT,
        citizen=Citizen(name="张三", phone="13800000000"),
    )
    return TicketDispatched(
        ticket_id=ticket_id,
        actor=Actor(kind=ActorKind.SYSTEM, id="router"),
        payload=DispatchedPayload(
            dims=TicketDims.of(draft),
            ticket=draft,
            department=department,
            co_departments=co,
            rule="test",
            time_limit="general",
            deadline=now + timedelta(days=7),
            response_deadline=now + timedelta(hours=2),
        ),
    )


def delivery_id(event: TicketDispatched, department: str) -> str:
    return f"{event.event_id}:{department}:webhook"


def directory_for(receiver: Receiver, settings: CommonSettings, tmp_path: Path) -> Directory:
    raw = json.loads((DATA_DIR / "departments.json").read_text(encoding="utf-8"))
    for department in raw["departments"]:
        url = f"http://127.0.0.1:{receiver.port}/hooks/{department['id']}"
        department.setdefault("contact", {})["webhook"] = url
    path = tmp_path / "departments.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return load_directory(settings.districts_file, path)


@pytest.fixture
async def notifier(settings: CommonSettings, tmp_path: Path) -> AsyncIterator[NotifierHarness]:
    receiver = Receiver()
    await receiver.start()
    try:
        directory = directory_for(receiver, settings, tmp_path)
        infra = await connect(settings, SERVICE)
        try:
            repo = DeliveryRepository(infra.db)
            await repo.ensure_indexes()
            async with httpx.AsyncClient(timeout=5.0) as http:
                harness = NotifierHarness(infra, repo, directory, receiver, http)
                try:
                    yield harness
                finally:
                    await harness.stop_workers()
        finally:
            await infra.close()
    finally:
        await receiver.stop()


async def test_dispatch_notice_reaches_the_lead_department(notifier: NotifierHarness) -> None:
    notifier.start_worker()
    event = dispatched("LC-LEAD")
    await notifier.dispatch(event)

    [doc] = await notifier.wait_for_status("LC-LEAD", "delivered")
    [call] = notifier.receiver.calls
    assert call.department == "guanxian.water"
    assert call.delivery == delivery_id(event, "guanxian.water") == doc["_id"]
    assert call.headers["x-hotline-event"] == "dispatch"
    assert call.body["ticket_id"] == "LC-LEAD"
    assert call.body["event_id"] == str(event.event_id)
    assert call.body["role"] == "lead"
    assert call.body["ticket"]["text"] == TEXT
    assert "citizen" not in call.body["ticket"]  # the citizen's contact stays with us
    assert [a["n"] for a in doc["attempts"]] == [1]
    assert doc["attempts"][0]["ok"] is True
    assert doc["attempts"][0]["status_code"] == 200


async def test_each_co_department_gets_one_notice(notifier: NotifierHarness) -> None:
    notifier.start_worker()
    co = ("guanxian.housing", "guanxian.env")
    await notifier.dispatch(dispatched("LC-CO", co=co))

    docs = await notifier.wait_for_status("LC-CO", "delivered")
    assert len(docs) == 3
    roles = {call.department: call.body["role"] for call in notifier.receiver.calls}
    assert roles == {"guanxian.water": "lead", "guanxian.housing": "co", "guanxian.env": "co"}
    assert Counter(call.department for call in notifier.receiver.calls) == dict.fromkeys(roles, 1)
    for call in notifier.receiver.calls:
        assert call.body["lead_department"] == "guanxian.water"
        assert call.body["co_departments"] == list(co)


async def test_failing_receiver_is_retried_until_delivered(notifier: NotifierHarness) -> None:
    notifier.receiver.fail_first = 2
    notifier.start_worker(max_attempts=5)
    event = dispatched("LC-RETRY")
    await notifier.dispatch(event)

    [doc] = await notifier.wait_for_status("LC-RETRY", "delivered")
    attempts = doc["attempts"]
    assert [a["n"] for a in attempts] == [1, 2, 3]
    assert [a["ok"] for a in attempts] == [False, False, True]
    assert [a["status_code"] for a in attempts] == [500, 500, 200]
    assert attempts[0]["error"] == "HTTP 500"
    assert notifier.receiver.per_delivery() == {delivery_id(event, "guanxian.water"): 3}


async def test_receiver_always_failing_ends_dead(notifier: NotifierHarness) -> None:
    notifier.receiver.always_fail = True
    notifier.start_worker(max_attempts=3)
    await notifier.dispatch(dispatched("LC-DEAD"))

    [doc] = await notifier.wait_for_status("LC-DEAD", "dead")
    assert [a["n"] for a in doc["attempts"]] == [1, 2, 3]
    assert not any(a["ok"] for a in doc["attempts"])
    assert len(notifier.receiver.calls) == 3


async def test_department_without_webhook_is_dead_at_once(notifier: NotifierHarness) -> None:
    notifier.start_worker(max_attempts=5)
    await notifier.dispatch(dispatched("LC-NOHOOK", department="nowhere.unknown"))

    [doc] = await notifier.wait_for_status("LC-NOHOOK", "dead")
    assert doc["target"] is None
    assert [a["error"] for a in doc["attempts"]] == ["department has no webhook"]
    assert notifier.receiver.calls == []


async def test_same_dispatched_event_twice_schedules_one_delivery(
    notifier: NotifierHarness,
) -> None:
    notifier.start_worker()
    event = dispatched("LC-TWICE")
    await notifier.dispatch(event)
    await notifier.dispatch(event)

    [doc] = await notifier.wait_for_status("LC-TWICE", "delivered")
    assert len(doc["attempts"]) == 1
    assert notifier.receiver.per_delivery() == {delivery_id(event, "guanxian.water"): 1}


async def test_two_workers_deliver_each_notice_exactly_once(notifier: NotifierHarness) -> None:
    events = [dispatched(f"LC-PAIR-{n:02d}") for n in range(20)]
    for event in events:  # all pending before either worker looks
        await notifier.dispatch(event)
    notifier.start_worker()
    notifier.start_worker()

    async def all_delivered() -> bool:
        return await notifier.repo.count_by_status() == {"delivered": 20}

    await eventually(all_delivered)
    counts = notifier.receiver.per_delivery()
    assert set(counts) == {delivery_id(e, "guanxian.water") for e in events}
    assert set(counts.values()) == {1}
    for event in events:
        [doc] = await notifier.repo.for_ticket(event.ticket_id)
        assert len(doc["attempts"]) == 1


async def test_stale_claim_does_not_block_delivery(notifier: NotifierHarness) -> None:
    event = dispatched("LC-STALE")
    await notifier.dispatch(event)
    # A replica claimed attempt 0, then died before it sent anything.
    claim_id = f"{delivery_id(event, 'guanxian.water')}:0"
    expired = utcnow() - timedelta(minutes=1)
    await notifier.infra.db["delivery_claims"].insert_one({"_id": claim_id, "expires_at": expired})
    notifier.start_worker()

    [doc] = await notifier.wait_for_status("LC-STALE", "delivered")
    assert len(doc["attempts"]) == 1
    assert notifier.receiver.per_delivery() == {delivery_id(event, "guanxian.water"): 1}


async def test_dispatched_event_from_the_broker_is_delivered(notifier: NotifierHarness) -> None:
    worker = notifier.start_worker()
    broker = notifier.infra.broker
    queue = broker.topology.queue_name(broker.topology.spec(SERVICE))
    handler = partial(
        handle_dispatched,
        repo=notifier.repo,
        directory=notifier.directory,
        clock=utcnow,
        wake=worker.wake,
    )
    consumer = Consumer(broker, SERVICE, queue, TypeAdapter(TicketDispatched), handler)
    await consumer.start()
    try:
        event = dispatched("LC-BROKER", co=("guanxian.env",))
        await Publisher(broker.exchange, "router").publish(event)
        await Publisher(broker.exchange, "router").publish(event)  # redelivered
        docs = await notifier.wait_for_status("LC-BROKER", "delivered")
    finally:
        await consumer.stop()
    assert {d["department"] for d in docs} == {"guanxian.water", "guanxian.env"}
    assert set(notifier.receiver.per_delivery().values()) == {1}


async def test_deliveries_api(notifier: NotifierHarness) -> None:
    notifier.start_worker()
    event = dispatched("LC-API")
    await notifier.dispatch(event)
    await notifier.wait_for_status("LC-API", "delivered")

    app = create_app(SERVICE, notifier.infra.readiness_checks(), title="Hotline notifier")
    app.include_router(build_router(notifier.repo))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        listed = await client.get("/v1/deliveries", params={"ticket_id": "LC-API"})
        missing = await client.get("/v1/deliveries")
        unknown = await client.get("/v1/deliveries", params={"ticket_id": "LC-NONE"})
        ready = await client.get("/readyz")
    assert listed.status_code == 200
    [delivery] = listed.json()
    assert delivery["delivery_id"] == delivery_id(event, "guanxian.water")
    assert delivery["status"] == "delivered"
    assert delivery["department"] == "guanxian.water"
    assert [a["ok"] for a in delivery["attempts"]] == [True]
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["query", "ticket_id"]
    assert unknown.status_code == 200
    assert unknown.json() == []
    assert ready.status_code == 200
