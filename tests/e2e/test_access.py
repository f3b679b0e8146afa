"""Access to every service with the one key model, against the four services as
processes: `/v1/whoami` for every kind of key on every service, and JSON refusals
for a request without a valid key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from shared.keys import KeyKind
from tests.e2e.cluster import SERVICES, Cluster, running_cluster
from tests.support import ensure_servers, issue_keys, make_settings

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

OWNERS = {
    "staff": (KeyKind.STAFF, "zhang.san"),
    "water": (KeyKind.DEPARTMENT, "guanxian.water"),
    "other": (KeyKind.DEPARTMENT, "yanggu.urban-mgmt"),
    "agent": (KeyKind.AGENT, "seat-017"),
    "web": (KeyKind.CHANNEL, "web"),
}


@dataclass
class World:
    cluster: Cluster
    http: httpx.AsyncClient
    keys: dict[str, str]

    async def get(self, service: str, path: str, key: str | None) -> httpx.Response:
        headers = {"X-API-Key": self.keys[key]} if key else {}
        return await self.http.get(self.cluster.url(service) + path, headers=headers)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    ensure_servers()
    folder: Path = tmp_path_factory.mktemp("access")
    async with running_cluster(folder) as (cluster, _receiver):
        keys = await issue_keys(make_settings(cluster.namespace), OWNERS)
        async with httpx.AsyncClient(timeout=30.0) as http:
            yield World(cluster, http, keys)


@pytest.mark.parametrize("service", SERVICES)
async def test_whoami_names_the_owner_of_every_kind_of_key(world: World, service: str) -> None:
    names = {"water": "冠县水务集团", "other": "阳谷县综合行政执法局"}
    for name, (kind, owner) in OWNERS.items():
        response = await world.get(service, "/v1/whoami", name)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["kind"], body["id"]) == (kind.value, owner)
        assert body["name"] == names.get(name, owner)
        assert body["key_id"] and body["key_id"] not in world.keys[name]


@pytest.mark.parametrize("service", SERVICES)
async def test_whoami_without_a_valid_key_is_a_json_401(world: World, service: str) -> None:
    url = world.cluster.url(service) + "/v1/whoami"
    for headers in (
        {},
        {"X-API-Key": "hk_not-issued"},
        {"Authorization": "Bearer hk_not-issued"},
        {"Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="},
    ):
        response = await world.http.get(url, headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"
        assert "API key" in response.json()["message"]
    bearer = await world.http.get(url, headers={"Authorization": f"Bearer {world.keys['web']}"})
    assert bearer.json()["kind"] == "channel"
