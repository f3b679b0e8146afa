"""A cluster with two tickets of known citizens, for the privacy tests: the four
services as processes (logging at DEBUG, so the log scan sees everything), keys
of every kind, one ticket filed on the web and one by a call-centre agent, both
dispatched, their notices delivered."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shared.keys import KeyKind
from tests.e2e.cluster import SERVICES, Cluster, Receiver, directory_pointing_at
from tests.support import eventually, issue_keys, make_settings, purge_namespace, unique_namespace

# The fixtures' citizens: nothing of this may reach an unentitled reader or a log.
WEB_CITIZEN = {"name": "欧阳明月", "phone": "13987654321"}
WEB_ADDRESS = "贾镇幸福路8号院"
AGENT_CALLER = {"caller_name": "司马青云", "caller_number": "13711112222"}
PERSONAL = (
    WEB_CITIZEN["name"],
    WEB_CITIZEN["phone"],
    WEB_ADDRESS,
    AGENT_CALLER["caller_name"],
    AGENT_CALLER["caller_number"],
)
WEB_TICKET = {
    "channel": "web",
    "district": "冠县",
    "town": "贾镇",
    "category": "help",
    "text": "村里安装自来水管道占用了我家的耕地，到现在没有支付补偿款。",
    "citizen": WEB_CITIZEN,
    "location": {"lat": 36.48, "lon": 115.45, "address": WEB_ADDRESS},
}
AGENT_CALL = {
    "agent_id": "seat-017",
    **AGENT_CALLER,
    "call_id": "privacy-call-1",
    "district": "阳谷县",
    "town": "博济桥街道",
    "category": "complaint",
    "text": "紫荆街一家店铺门口堆放建筑垃圾好几天了。",
}
OWNERS = {
    "staff": (KeyKind.STAFF, "zhang.san"),
    "water": (KeyKind.DEPARTMENT, "guanxian.water"),
    "urban": (KeyKind.DEPARTMENT, "yanggu.urban-mgmt"),
    "other": (KeyKind.DEPARTMENT, "dongchangfu.housing"),
    "agent": (KeyKind.AGENT, "seat-017"),
    "web": (KeyKind.CHANNEL, "web"),
}


@dataclass
class World:
    cluster: Cluster
    receiver: Receiver
    http: httpx.AsyncClient
    keys: dict[str, str]
    web_ticket: str
    agent_ticket: str

    async def get(self, service: str, path: str, key: str | None = None) -> httpx.Response:
        headers = {"X-API-Key": self.keys[key]} if key else {}
        return await self.http.get(self.cluster.url(service) + path, headers=headers)

    def log_lines(self) -> list[str]:
        lines: list[str] = []
        for path in sorted(self.cluster.log_dir.glob("*.log")):
            lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
        return lines


async def _file_tickets(
    http: httpx.AsyncClient, cluster: Cluster, keys: dict[str, str]
) -> tuple[str, str]:
    intake = cluster.url("intake")
    web = await http.post(f"{intake}/v1/tickets", json=WEB_TICKET)
    call = await http.post(
        f"{intake}/v1/agent/tickets", json=AGENT_CALL, headers={"X-API-Key": keys["agent"]}
    )
    assert (web.status_code, call.status_code) == (202, 202), (web.text, call.text)
    return str(web.json()["ticket_id"]), str(call.json()["ticket_id"])


async def _settled(world: World) -> None:
    """Both tickets dispatched in stats, their notices delivered."""

    async def done() -> bool:
        for ticket in (world.web_ticket, world.agent_ticket):
            view = await world.get("stats", f"/v1/tickets/{ticket}", "staff")
            if view.status_code != 200 or view.json()["status"] != "dispatched":
                return False
            sent = await world.get("notifier", f"/v1/deliveries?ticket_id={ticket}", "staff")
            if not sent.json() or any(d["status"] != "delivered" for d in sent.json()):
                return False
        return True

    await eventually(done, timeout_s=60)


@asynccontextmanager
async def privacy_world(folder: Path) -> AsyncIterator[World]:
    settings = make_settings(unique_namespace())
    receiver = Receiver()
    await receiver.start()
    directory = directory_pointing_at(receiver, folder / "departments.json")
    cluster = Cluster(
        settings.amqp_namespace, directory, folder, extra_env={"HOTLINE_LOG_LEVEL": "DEBUG"}
    )
    try:
        for service in SERVICES:
            await cluster.start(service)
        keys = await issue_keys(settings, OWNERS)
        async with httpx.AsyncClient(timeout=30.0) as http:
            web_ticket, agent_ticket = await _file_tickets(http, cluster, keys)
            world = World(cluster, receiver, http, keys, web_ticket, agent_ticket)
            await _settled(world)
            yield world
    finally:
        await cluster.stop_all()
        await receiver.stop()
        await purge_namespace(settings)


def leaked(body: bytes | str | Any) -> list[str]:
    """The fixtures' personal data found in a response body (any form of it)."""
    if isinstance(body, bytes | str):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        with contextlib.suppress(ValueError):  # JSON may escape them: compare decoded too
            text += json.dumps(json.loads(text), ensure_ascii=False)
    else:
        text = json.dumps(body, ensure_ascii=False, default=str)
    return [value for value in PERSONAL if value in text]
