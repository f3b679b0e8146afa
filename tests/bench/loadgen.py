"""A lean load generator for intake: HTTP/1.1 keep-alive connections written by
hand, so that the generator itself takes little of the machine's two cores
(an httpx request costs about a millisecond of CPU; this, a tenth of that).

Two drivers: closed loop (every connection posts again as soon as it has its
answer: saturation) and open loop (posts start at a fixed rate whatever the
answers: latency at a given load). Each 202 is timed when its answer arrives.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from services.demo import sample_requests


def bodies() -> Iterator[bytes]:
    """Sample-like requests, endlessly, each text a little different."""
    samples = [s for s in sample_requests() if s["expected_department"] != "on_spot"]
    for n in itertools.count():
        sample = dict(samples[n % len(samples)])
        sample.pop("expected_department", None)
        sample["id"] = f"bench-{n}"
        sample["text"] = f"{sample['text']}（第{n}号）"
        yield json.dumps(sample, ensure_ascii=False).encode()


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, key: str) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self._host}\r\n"
            f"Content-Type: application/json\r\nIdempotency-Key: {key}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        try:
            self._writer.write(head.encode() + body)
            await self._writer.drain()
            answer = await self._reader.readuntil(b"\r\n\r\n")
            status = int(answer.split(b" ", 2)[1])
            length = 0
            for line in answer.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            return status, await self._reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError):
            self.close()
            raise

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


@dataclass
class Load:
    """What a driver saw: when each accepted ticket got its 202, and refusals."""

    accepted: dict[str, float] = field(default_factory=dict)  # ticket_id -> monotonic time
    posted: dict[str, float] = field(default_factory=dict)  # ticket_id -> when its POST left
    refused: dict[int, int] = field(default_factory=dict)  # status -> count
    errors: int = 0
    started: float = 0.0
    ended: float = 0.0

    def record(self, status: int, answer: bytes, sent: float) -> None:
        if status == 202:
            ticket: dict[str, Any] = json.loads(answer)
            self.accepted[ticket["ticket_id"]] = time.monotonic()
            self.posted[ticket["ticket_id"]] = sent
        else:
            self.refused[status] = self.refused.get(status, 0) + 1


async def _post_one(conn: Connection, url_path: str, body: bytes, key: str, load: Load) -> None:
    sent = time.monotonic()
    try:
        status, answer = await conn.post(url_path, body, key)
    except (OSError, asyncio.IncompleteReadError):
        load.errors += 1
        return
    load.record(status, answer, sent)


async def closed_loop(port: int, connections: int, duration_s: float, tag: str) -> Load:
    """Every connection posts back to back for duration_s."""
    load = Load(started=time.monotonic())
    stop_at = load.started + duration_s
    source = bodies()
    counter = itertools.count()

    async def worker() -> None:
        conn = Connection("127.0.0.1", port)
        while time.monotonic() < stop_at:
            await _post_one(conn, "/v1/tickets", next(source), f"{tag}-{next(counter)}", load)
        conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    load.ended = time.monotonic()
    return load


async def open_loop(port: int, rate: float, duration_s: float, tag: str) -> Load:
    """Posts start every 1/rate seconds for duration_s, each on an idle
    connection (a new one if all are busy), whatever the answers take."""
    load = Load(started=time.monotonic())
    idle: list[Connection] = []
    source = bodies()
    tasks: set[asyncio.Task[None]] = set()

    async def one(n: int) -> None:
        conn = idle.pop() if idle else Connection("127.0.0.1", port)
        await _post_one(conn, "/v1/tickets", next(source), f"{tag}-{n}", load)
        idle.append(conn)

    total = int(rate * duration_s)
    for n in range(total):
        delay = load.started + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    load.ended = time.monotonic()
    for conn in idle:
        conn.close()
    return load
