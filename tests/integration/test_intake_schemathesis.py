"""Schemathesis over intake's OpenAPI: every operation, generated and mutated
inputs, against intake running as a process on the real broker and store. The
one check: no answer is a server error (5xx)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shared.settings import CommonSettings
from tests.e2e.cluster import free_port

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
MAX_EXAMPLES = 40


async def wait_ready(url: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            assert process.returncode is None, "intake exited before it was ready"
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("intake did not become ready")


async def test_no_operation_answers_with_a_server_error(
    settings: CommonSettings, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "HOTLINE_AMQP_NAMESPACE": settings.amqp_namespace,
        "HOTLINE_MONGO_DB_PREFIX": settings.mongo_db_prefix,
        "HOTLINE_HTTP_HOST": "127.0.0.1",
        "HOTLINE_HTTP_PORT": str(port),
        "HOTLINE_EMAIL_LISTEN_PORT": "0",
        # Generated requests come fast from one address: let them through.
        "HOTLINE_RATE_LIMIT_BURST": "100000",
        "HOTLINE_LOG_LEVEL": "WARNING",
    }
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "intake.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        str(BIN / "hotline"), "intake", env=env, stdout=log, stderr=log
    )
    try:
        await wait_ready(url, process)
        run = await asyncio.to_thread(
            subprocess.run,
            [
                str(BIN / "st"), "run", f"{url}/openapi.json",
                "--checks", "not_a_server_error",
                "--max-examples", str(MAX_EXAMPLES),
                "--phases", "examples,coverage,fuzzing",
                "--generation-database", "none",
                "--seed", "12345",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=540,
        )  # fmt: skip
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=30)
        log.close()
    server_log = (tmp_path / "intake.log").read_text(errors="replace")
    assert run.returncode == 0, f"{run.stdout[-6000:]}\n--- intake log ---\n{server_log[-4000:]}"
    # Every generated case passed, and there were cases for every operation.
    assert re.search(r"(\d+) generated, \1 passed", run.stdout), run.stdout[-3000:]
    assert re.search(r"Selected: (\d+)/\1\s+Tested: \1", run.stdout), run.stdout[-3000:]
