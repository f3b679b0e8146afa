"""The workbench as a process beside the four services, with a key for every
role, for its integration and end-to-end tests."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from shared.events import utcnow
from shared.keys import KeyKind, KeyStore, keys_database
from shared.mongo import create_client
from shared.settings import CommonSettings
from tests.e2e.cluster import Cluster, running_cluster
from tests.support import ensure_servers, eventually, issue_keys, make_settings

# A call the rules send to 冠县水务集团 (guanxian.water).
WATER_CALL = {
    "caller_number": "13912340001",
    "district": "guanxian",
    "town": "贾镇",
    "category": "help",
    "text": "村里安装自来水管道占用了我家的耕地，补偿款至今未付",
}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
OWNERS = {
    "staff": (KeyKind.STAFF, "li.dispatcher"),
    "water": (KeyKind.DEPARTMENT, "guanxian.water"),
    "county": (KeyKind.DEPARTMENT, "guanxian"),  # the county's sub-centre
    "zone": (KeyKind.DEPARTMENT, "econ-zone"),
    "other": (KeyKind.DEPARTMENT, "yanggu.urban-mgmt"),
    "agent": (KeyKind.AGENT, "seat-042"),
    "seat-099": (KeyKind.AGENT, "seat-099"),  # revoked by a test
    "web": (KeyKind.CHANNEL, "web"),
}


@dataclass
class Bench:
    cluster: Cluster
    keys: dict[str, str]
    settings: CommonSettings

    @property
    def url(self) -> str:
        return self.cluster.url("workbench")

    async def revoke(self, name: str) -> None:
        """Revoke one of the keys, as `hotline keys revoke` does."""
        async with httpx.AsyncClient() as http:
            who = await http.get(
                self.cluster.url("router") + "/v1/whoami",
                headers={"X-API-Key": self.keys[name]},
            )
        client = create_client(self.settings)
        try:
            store = KeyStore(keys_database(client, self.settings))
            assert await store.revoke(who.json()["key_id"], utcnow())
        finally:
            await client.close()


def workbench_env(cluster: Cluster, web_key: str) -> dict[str, str]:
    return {
        "HOTLINE_INTAKE_URL": cluster.url("intake"),
        "HOTLINE_ROUTER_URL": cluster.url("router"),
        "HOTLINE_NOTIFIER_URL": cluster.url("notifier"),
        "HOTLINE_STATS_URL": cluster.url("stats"),
        "HOTLINE_STATS_PUBLIC_URL": cluster.url("stats") + "/",
        "HOTLINE_WEB_CHANNEL_KEY": web_key,
    }


def bench_fixture(folder: str, with_clock: bool = False) -> Any:
    """A module's `bench` fixture: one running workbench for all its tests."""

    @pytest_asyncio.fixture(scope="module", loop_scope="module")
    async def bench(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bench]:
        ensure_servers()
        async with running_workbench(tmp_path_factory.mktemp(folder), with_clock) as value:
            yield value

    return bench


@contextlib.asynccontextmanager
async def running_workbench(folder: Path, with_clock: bool = False) -> AsyncIterator[Bench]:
    """The four services and the workbench as processes in a namespace of their
    own (with_clock: all on one clock a test can move); all stopped and purged
    after (the workbench's sessions too)."""
    async with running_cluster(folder, with_clock=with_clock) as (cluster, _receiver):
        settings = make_settings(cluster.namespace)
        keys = await issue_keys(settings, OWNERS)
        cluster.extra_env.update(workbench_env(cluster, keys["web"]))
        try:
            await cluster.start("workbench")
            yield Bench(cluster, keys, settings)
        finally:
            client = create_client(settings)
            try:
                await client.drop_database(f"{settings.mongo_db_prefix}_workbench")
            finally:
                await client.close()


# Pages as a browser without JavaScript uses them, and the APIs behind them.


def browser(bench: Bench) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=bench.url, timeout=30.0, follow_redirects=False)


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, "the page carries a CSRF token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    page = await client.get("/signin")
    return await client.post("/signin", data={"csrf": csrf_of(page), "key": key})


async def new_ticket(bench: Bench, call: dict[str, str], call_id: str) -> str:
    """A call registered through intake with the agent's key, once the router has it."""
    async with httpx.AsyncClient(timeout=30.0) as http:
        body = {**call, "agent_id": "seat-042", "call_id": call_id}
        response = await http.post(
            bench.cluster.url("intake") + "/v1/agent/tickets",
            json=body,
            headers={"X-API-Key": bench.keys["agent"]},
        )
        assert response.status_code == 202, response.text
        ticket_id: str = response.json()["ticket_id"]
        url = f"{bench.cluster.url('router')}/v1/tickets/{ticket_id}"

        async def routed() -> bool:
            found = await http.get(url, headers={"X-API-Key": bench.keys["staff"]})
            return found.status_code == 200

        await eventually(routed, timeout_s=30)
    return ticket_id


async def router_ticket(bench: Bench, ticket_id: str) -> dict[str, object]:
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.get(
            f"{bench.cluster.url('router')}/v1/tickets/{ticket_id}",
            headers={"X-API-Key": bench.keys["staff"]},
        )
    result: dict[str, object] = response.json()
    return result


async def router_act(bench: Bench, ticket_id: str, action: str, body: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.post(
            f"{bench.cluster.url('router')}/v1/tickets/{ticket_id}/{action}",
            json=body,
            headers={"X-API-Key": bench.keys["water"]},
        )
    assert response.status_code == 200, response.text
