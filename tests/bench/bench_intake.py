"""Intake's store operations per ticket and its acceptance rate, under
concurrent clients, against the local servers.

Intake is wired as the tests' harness wires it (the real broker and store, the
HTTP app in process) on a store client with a command listener
(tests/storeops.py). CLIENTS clients post sample-like requests, each with an
Idempotency-Key, a phone number and a place, so every request takes the full
path: key, duplicates check, record, publish, published mark, caller index,
hotspot place. Operations per ticket = the commands intake sent ÷ the tickets
accepted (the consumer of intake's status queue is not running here).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

from shared.settings import IntakeSettings
from tests.storeops import Commands, counted_intake
from tests.support import ensure_servers, make_settings, purge_namespace, unique_namespace

CLIENTS = 32
REQUESTS = 1600


def body(i: int) -> dict[str, Any]:
    return {
        "channel": "app",
        "district": "冠县",
        "category": "complaint",
        "text": f"第{i}号楼前的下水道堵塞了，污水漫到路面上，已经{i % 9 + 1}天了，请尽快疏通。",
        "citizen": {"name": "测试", "phone": f"139{i:08d}"},
        "location": {"lat": 36.40 + (i % 200) * 0.006, "lon": 115.40 + (i // 200) * 0.006},
    }


async def measure() -> list[str]:
    namespace = unique_namespace()
    settings = IntakeSettings(**make_settings(namespace).model_dump())
    settings = settings.model_copy(
        update={"email_listen_port": 0, "rate_limit_per_minute": 1e9, "rate_limit_burst": 10**9}
    )
    commands = Commands()
    try:
        async with counted_intake(settings, commands) as harness:
            await harness.post(body(REQUESTS), key="warm-up")
            commands.reset()
            queue = iter(range(REQUESTS))
            accepted = 0

            async def client() -> None:
                nonlocal accepted
                for i in queue:
                    answer = await harness.post(body(i), key=f"bench-{i}")
                    accepted += answer.status_code == 202

            started = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(CLIENTS)))
            elapsed = time.perf_counter() - started
    finally:
        await purge_namespace(settings)
    return [
        f"BENCH intake.store_ops_per_ticket {commands.operations() / max(accepted, 1):.2f} ops",
        f"BENCH intake.accepted_per_s {accepted / elapsed:.1f} tickets/s",
        f"BENCH intake.refused {REQUESTS - accepted} requests",
    ]


def run() -> Iterator[str]:
    ensure_servers()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    yield from asyncio.run(measure())


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
