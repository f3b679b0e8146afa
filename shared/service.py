"""Running a service: HTTP server and background tasks until SIGTERM, then close."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from shared.logmask import install_phone_masking

logger = logging.getLogger(__name__)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_phone_masking()
    # aio-pika logs every reconnect attempt at WARNING with a traceback.
    logging.getLogger("aio_pika").setLevel(logging.ERROR)
    logging.getLogger("aiormq").setLevel(logging.ERROR)
    # httpx logs every request at INFO: a line per webhook the notifier sends,
    # whose outcome it records in its store anyway (and warns of a failure).
    logging.getLogger("httpx").setLevel(logging.WARNING)


class _Server(uvicorn.Server):
    # We own signal handling: uvicorn would re-raise SIGTERM after its own
    # shutdown and kill the process before our connections are closed.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    app: FastAPI,
    host: str,
    port: int,
    tasks: list[Coroutine[Any, Any, None]],
    on_close: list[Callable[[], Awaitable[None]]],
) -> None:
    """Serve HTTP and run the tasks until SIGTERM/SIGINT or a task fails; then
    stop the server, cancel the tasks and run on_close in order."""
    # httptools parses HTTP in C; h11 (uvicorn's fallback) is pure Python and
    # costs more CPU per request.
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", http="httptools"
    )
    server = _Server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = [asyncio.create_task(t) for t in tasks]
    http = asyncio.create_task(server.serve())
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([waiter, http, *running], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not waiter and task.exception() is not None:
            logger.error("task failed, shutting down", exc_info=task.exception())
    server.should_exit = True
    for task in running:
        task.cancel()
    await asyncio.gather(http, *running, return_exceptions=True)
    waiter.cancel()
    for close in on_close:
        try:
            await close()
        except Exception:
            logger.exception("error while closing")
    logger.info("stopped")
