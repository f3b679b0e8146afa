"""Helpers for tests that talk to the real RabbitMQ and store.

Every test gets its own namespace: its own exchanges, queues and databases, so
tests never see each other's messages and can run against shared servers.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aio_pika

from shared.events import utcnow
from shared.keys import KeyKind, KeyStore, keys_database
from shared.messaging.broker import Broker
from shared.messaging.topology import QUEUES, Topology
from shared.mongo import create_client
from shared.settings import CommonSettings

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("intake", "router", "notifier", "stats")

# Every retry delay a test, the e2e cluster or the bench gives its services,
# and the default. Retry queues are named by their delay, and a purge that
# missed a cluster's delays left eight durable queues behind per run: after a
# few thousand, the broker spent minutes recovering them at boot (CI, stop 19).
KNOWN_RETRY_DELAYS = (0.2, 0.4, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0)


def ensure_servers() -> None:
    """Start RabbitMQ and the dev store if they are not running (idempotent)."""
    subprocess.run([str(ROOT / "scripts" / "servers.sh"), "start"], check=True)


def unique_namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def make_settings(namespace: str) -> CommonSettings:
    return CommonSettings(
        amqp_namespace=namespace,
        mongo_db_prefix=namespace,
        retry_delays=[0.2, 0.4],
        # Keys are read afresh on every request, so a revocation shows at once.
        key_cache_s=0,
    )


async def purge_namespace(settings: CommonSettings, extra_databases: tuple[str, ...] = ()) -> None:
    """Delete the namespace's queues, exchanges and databases (the services'
    and any extra ones a test or bench made, by suffix)."""
    topology = Topology.from_settings(settings)
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        for spec in QUEUES:
            name = topology.queue_name(spec)
            names = [name, topology.dlq_name(name)]
            delays = sorted({*topology.retry_delays, *KNOWN_RETRY_DELAYS})
            names += [topology.retry_queue_name(name, d) for d in delays]
            for queue in names:
                await channel.queue_delete(queue)
        await channel.exchange_delete(topology.exchange)
        await channel.exchange_delete(topology.dead_letter_exchange)
    client = create_client(settings)
    try:
        # By name, not by listing: listDatabases sizes every database on the
        # server, and one busy database elsewhere would stall every teardown.
        for suffix in (*SERVICES, "keys", *extra_databases):
            await client.drop_database(f"{settings.mongo_db_prefix}_{suffix}")
    finally:
        await client.close()


async def issue_keys(
    settings: CommonSettings, owners: dict[str, tuple[KeyKind, str]]
) -> dict[str, str]:
    """Keys of the namespace's key store, by the caller's names for their owners."""
    client = create_client(settings)
    try:
        store = KeyStore(keys_database(client, settings))
        await store.ensure_indexes()
        return {name: (await store.issue(*who, utcnow()))[1] for name, who in owners.items()}
    finally:
        await client.close()


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 15.0, interval_s: float = 0.1
) -> None:
    """Wait until check() is true; fail with AssertionError after timeout_s.
    Used to wait for asynchronous effects, never to assert on speed."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s: {check}")
        await asyncio.sleep(interval_s)


async def dlq_bodies(broker: Broker, queue: str) -> list[bytes]:
    """Take every message out of the queue's DLQ (acked: they are consumed)."""
    dlq = await broker.channel.declare_queue(broker.topology.dlq_name(queue), passive=True)
    bodies: list[bytes] = []
    while (message := await dlq.get(no_ack=True, fail=False)) is not None:
        bodies.append(message.body)
    return bodies
