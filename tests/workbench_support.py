"""The workbench as a process beside the four services, with a key for every
role, for its integration and end-to-end tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.events import utcnow
from shared.keys import KeyKind, KeyStore, keys_database
from shared.mongo import create_client
from shared.settings import CommonSettings
from tests.e2e.cluster import Cluster, running_cluster
from tests.support import issue_keys, make_settings

OWNERS = {
    "staff": (KeyKind.STAFF, "li.dispatcher"),
    "water": (KeyKind.DEPARTMENT, "guanxian.water"),
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


@contextlib.asynccontextmanager
async def running_workbench(folder: Path) -> AsyncIterator[Bench]:
    """The four services and the workbench as processes in a namespace of their
    own; all stopped and purged after (the workbench's sessions too)."""
    async with running_cluster(folder) as (cluster, _receiver):
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
