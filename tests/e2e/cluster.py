"""The four services as separate OS processes, and a webhook receiver, for
end-to-end tests. Each cluster has its own namespace on the shared servers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.router.cli import draft_from_json
from services.router.knowledge import shipped_engine
from shared.directory import Directory, load_directory
from shared.events import utcnow
from shared.keys import KeyKind
from shared.settings import DATA_DIR
from shared.workcalendar import WorkCalendar
from tests.support import issue_keys, make_settings, purge_namespace, unique_namespace

SERVICES = ("intake", "router", "notifier", "stats")
HOTLINE = Path(sys.executable).parent / "hotline"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Receiver:
    """A department's webhook endpoint: records every notice it is sent."""

    port: int = field(default_factory=free_port)
    notices: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    # Departments whose endpoint answers 500 (their notices are retried), and
    # how many notices it refused so.
    failing: set[str] = field(default_factory=set)
    refused: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks/{department}")
        async def hook(department: str, request: Request) -> JSONResponse:
            if department in self.failing:
                self.refused += 1
                return JSONResponse({"error": "try later"}, status_code=500)
            self.notices.append((department, await request.json(), dict(request.headers)))
            return JSONResponse({"ok": "yes"})

        return app

    async def start(self) -> None:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="error")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(200):
            if self._server.started:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("webhook receiver did not start")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    def by_ticket(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = defaultdict(list)
        for department, body, _ in self.notices:
            result[body["ticket_id"]].append(department)
        return result


def directory_pointing_at(receiver: Receiver, path: Path) -> Path:
    data = json.loads((DATA_DIR / "departments.json").read_text(encoding="utf-8"))
    for dep in data["departments"]:
        dep["contact"]["webhook"] = f"http://127.0.0.1:{receiver.port}/hooks/{dep['id']}"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def expected_departments(samples: list[dict[str, Any]]) -> dict[str, str | None]:
    """Sample id -> the department the shipped rules choose for it."""
    directory: Directory = load_directory(
        DATA_DIR / "districts.json", DATA_DIR / "departments.json"
    )
    engine = shipped_engine(directory, WorkCalendar())
    return {
        s["id"]: engine.decide(draft_from_json(s, directory), utcnow()).department for s in samples
    }


@dataclass
class Cluster:
    namespace: str
    directory_file: Path
    log_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: {s: free_port() for s in SERVICES})
    procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    # When set, every process reads its clock offset (seconds) from this file
    # (shared.clock): set_clock_offset() moves time for the whole cluster.
    clock_offset_file: Path | None = None
    # Added to every process's environment: servers of a run's own
    # (tests.servers), shorter leases, and so on.
    extra_env: dict[str, str] = field(default_factory=dict)

    # A hotline staff key for the tests' reads; issued on first use.
    staff_key: str | None = None

    async def staff_headers(self) -> dict[str, str]:
        """Headers with a hotline staff key of the cluster's key store (issued once)."""
        if self.staff_key is None:
            settings = make_settings(self.namespace)
            if "HOTLINE_MONGO_URL" in self.extra_env:
                settings = settings.model_copy(
                    update={"mongo_url": self.extra_env["HOTLINE_MONGO_URL"]}
                )
            owners = {"staff": (KeyKind.STAFF, "e2e.staff")}
            self.staff_key = (await issue_keys(settings, owners))["staff"]
        return {"X-API-Key": self.staff_key}

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def set_clock_offset(self, seconds: float) -> None:
        assert self.clock_offset_file is not None, "the cluster has no clock offset file"
        # Written aside and renamed: a process never reads a half-written number.
        tmp = self.clock_offset_file.with_name(self.clock_offset_file.name + ".tmp")
        tmp.write_text(f"{seconds}\n", encoding="utf-8")
        os.replace(tmp, self.clock_offset_file)

    def env(self, service: str) -> dict[str, str]:
        offset: dict[str, str] = {}
        if self.clock_offset_file is not None:
            offset["HOTLINE_CLOCK_OFFSET_FILE"] = str(self.clock_offset_file)
        return {
            **os.environ,
            "HOTLINE_AMQP_NAMESPACE": self.namespace,
            "HOTLINE_MONGO_DB_PREFIX": self.namespace,
            "HOTLINE_DIRECTORY_FILE": str(self.directory_file),
            "HOTLINE_HTTP_PORT": str(self.ports[service]),
            "HOTLINE_HTTP_HOST": "127.0.0.1",
            "HOTLINE_RETRY_DELAYS": "[0.5, 1.0]",
            "HOTLINE_DELIVERY_POLL_S": "0.2",
            "HOTLINE_DELIVERY_BACKOFF_BASE_S": "0.2",
            "HOTLINE_DELIVERY_BACKOFF_CAP_S": "1.0",
            "HOTLINE_TIMER_POLL_S": "0.2",
            # Intake's SMTP listener on a free port: clusters run side by side.
            "HOTLINE_EMAIL_LISTEN_PORT": "0",
            **offset,
            **self.extra_env,
        }

    async def start(self, service: str, name: str | None = None) -> None:
        """Start a service; a name of its own (e.g. "notifier-2") starts another
        replica of it, on a port of its own."""
        name = name or service
        if name not in self.ports:
            self.ports[name] = free_port()
        log = (self.log_dir / f"{name}.log").open("ab")
        self.procs[name] = await asyncio.create_subprocess_exec(
            str(HOTLINE), service, env=self.env(name), stdout=log, stderr=log
        )
        log.close()
        await self.wait_ready(name)

    async def wait_ready(self, service: str, timeout_s: float = 60.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while asyncio.get_running_loop().time() < deadline:
                proc = self.procs[service]
                if proc.returncode is not None:
                    raise AssertionError(f"{service} exited with {proc.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url(service)}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise AssertionError(f"{service} not ready within {timeout_s}s")

    async def restart(self, service: str, **env: str) -> None:
        """Stop a service (SIGTERM) and start it again with these variables added
        to its environment: a centre changing a setting."""
        proc = self.procs[service]
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=30)
        self.extra_env.update(env)
        await self.start(service)

    async def kill(self, service: str) -> None:
        proc = self.procs[service]
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), timeout=15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@contextlib.asynccontextmanager
async def running_cluster(
    folder: Path, services: tuple[str, ...] = SERVICES, with_clock: bool = False
) -> AsyncIterator[tuple[Cluster, Receiver]]:
    """The services as processes in a namespace of their own, every department's
    webhook pointing at one Receiver; all stopped and purged after."""
    settings = make_settings(unique_namespace())
    receiver = Receiver()
    await receiver.start()
    directory_file = directory_pointing_at(receiver, folder / "departments.json")
    cluster = Cluster(
        settings.amqp_namespace,
        directory_file,
        folder,
        clock_offset_file=folder / "clock-offset" if with_clock else None,
    )
    if with_clock:
        cluster.set_clock_offset(0)
    try:
        for service in services:
            await cluster.start(service)
        yield cluster, receiver
    finally:
        await cluster.stop_all()
        await receiver.stop()
        await purge_namespace(settings)
