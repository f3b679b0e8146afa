"""A Prometheus server of the test's own (Debian's `prometheus` package, which
scripts/tools.sh installs for promtool), scraping given targets every second
and evaluating the project's alert and recording rules, on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.monitoring_support import ALERTS_FILE
from tests.servers import free_port

SCRAPE_INTERVAL = "1s"


@dataclass
class OwnPrometheus:
    url: str

    async def query(self, expr: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(f"{self.url}/api/v1/query", params={"query": expr})
        body = response.json()
        assert body.get("status") == "success", (expr, body)
        return list(body["data"]["result"])

    async def wait_for(self, expr: str, timeout_s: float = 60.0) -> None:
        """Until the expression returns a series (the scrapes and rules caught up)."""
        deadline = time.monotonic() + timeout_s
        while not await self.query(expr):
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr} returned nothing in {timeout_s} s")
            await asyncio.sleep(1.0)


def config(jobs: list[dict[str, Any]], rules: Path) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(rules)],
        "scrape_configs": jobs,
    }


@contextlib.contextmanager
def own_prometheus(folder: Path, jobs: list[dict[str, Any]]) -> Iterator[OwnPrometheus]:
    """`jobs`: scrape configs (static targets on 127.0.0.1). Stopped after."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: run scripts/tools.sh (make test does)")
    port = free_port()
    config_file = folder / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config(jobs, ALERTS_FILE)), encoding="utf-8")
    log = (folder / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        yield OwnPrometheus(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/-/ready", timeout=2.0).status_code == 200:
                return
        time.sleep(0.5)
    raise AssertionError("prometheus did not become ready in 60 s")
