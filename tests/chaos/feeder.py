"""A citizen-like client at a steady rate: each request is retried with its
Idempotency-Key while intake answers 503 or cannot be reached (as a real
client would), for a bounded time. Only a 202 makes a ticket count; any
answer other than 202 or 503 is recorded as unexpected."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.demo import sample_requests, submission_of

RETRY_FOR_S = 60.0
RETRY_PAUSE_S = 0.3


@dataclass
class Feed:
    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key -> ticket_id
    given_up: list[str] = field(default_factory=list)
    unexpected: list[tuple[int, str]] = field(default_factory=list)
    retries: int = 0


def bodies() -> list[dict[str, Any]]:
    return [submission_of(s) for s in sample_requests() if s["expected_department"] != "on_spot"]


async def _post(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], key: str, feed: Feed
) -> None:
    deadline = time.monotonic() + RETRY_FOR_S
    while time.monotonic() < deadline:
        try:
            response = await client.post(url, json=body, headers={"Idempotency-Key": key})
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code == 202:
            feed.accepted[key] = str(response.json()["ticket_id"])
            return
        if response is not None and response.status_code != 503:
            feed.unexpected.append((response.status_code, response.text[:200]))
            return
        feed.retries += 1
        await asyncio.sleep(RETRY_PAUSE_S)
    feed.given_up.append(key)


async def run_feed(intake_url: str, rate: float, duration_s: float, feed: Feed) -> None:
    """Start a request every 1/rate seconds for duration_s; wait for all."""
    samples = bodies()
    url = f"{intake_url}/v1/tickets"
    tasks: list[asyncio.Task[None]] = []
    async with httpx.AsyncClient(timeout=10.0) as client:
        started = time.monotonic()
        for n in range(int(rate * duration_s)):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            body = {**samples[n % len(samples)], "id": f"chaos-{n}"}
            tasks.append(asyncio.create_task(_post(client, url, body, f"chaos-{n}", feed)))
        await asyncio.gather(*tasks)
