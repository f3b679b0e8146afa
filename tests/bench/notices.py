"""Every department's webhook, in the bench's own process: answers 200 at once
and notes which tickets got their dispatch notice, and when."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable

from tests.servers import free_port


class NoticeCounter:
    def __init__(self) -> None:
        self.port = free_port()
        self.dispatch_notices: dict[str, float] = {}  # ticket_id -> first arrival (monotonic)
        self.other_notices = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_ok(reader, writer, self._note)

    def _note(self, kind: bytes, body: bytes) -> None:
        if kind != b"dispatch":
            self.other_notices += 1
            return
        ticket = str(json.loads(body).get("ticket_id"))
        self.dispatch_notices.setdefault(ticket, time.monotonic())


async def answer_ok(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    note: Callable[[bytes, bytes], None] | None = None,
) -> None:
    """HTTP/1.1 with keep-alive: read a request, note its X-Hotline-Event and
    body, answer 200, repeat."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length, kind = 0, b""
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"x-hotline-event":
                    kind = value.strip()
            body = await reader.readexactly(length) if length else b""
            if note is not None:
                note(kind, body)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()
