"""The production compose stack on the project's own container engine.

scripts/engine.sh installs and starts Debian's dockerd (no bridge, no iptables),
builds Compose v5 and the local images; this module runs docker-compose.yml with
the local override (deploy/local/docker-compose.local.yml) and reads the stack's
state. Everything the run writes (env file, directory copy, Prometheus config)
lives in the cache directory, outside the repository.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

from shared.settings import DATA_DIR
from tests.compose_support import (
    COMPOSE_FILE,
    PROMETHEUS_FILE,
    ROOT,
    command,
    compose_services,
    environment,
    hotline_services,
    load_yaml,
)
from tests.e2e.cluster import Receiver, directory_pointing_at

OVERRIDE_FILE = ROOT / "deploy" / "local" / "docker-compose.local.yml"
RABBITMQ_LOCAL_CONF = ROOT / "deploy" / "local" / "rabbitmq-local.conf"
ENGINE = ROOT / "scripts" / "engine.sh"
CACHE = Path(os.environ.get("HOTLINE_CACHE_DIR", Path.home() / ".cache" / "hotline"))
# Debian's client, with Compose as its plugin in a configuration of the engine's own.
DOCKER = "/usr/bin/docker"
ENGINE_ENV = {
    "DOCKER_HOST": f"unix://{CACHE / 'engine' / 'docker.sock'}",
    "DOCKER_CONFIG": str(CACHE / "docker-config"),
}
# Set by `make compose-test`: a missing engine fails the run instead of skipping it.
REQUIRED = os.environ.get("HOTLINE_COMPOSE_REQUIRED") == "1"
PRODUCTION_PROMETHEUS_PORT = 9090
PRODUCTION_RABBITMQ_METRICS_PORT = 15692


def unavailable(reason: str) -> NoReturn:
    if REQUIRED:
        pytest.fail(f"compose test cannot run: {reason}")
    pytest.skip(f"compose test skipped: {reason} (make compose-test fails instead)")


def engine(command_name: str, timeout_s: float = 900) -> None:
    """Run scripts/engine.sh; the test skipped (or failed) with its error."""
    try:
        done = subprocess.run(
            [str(ENGINE), command_name], capture_output=True, text=True, timeout=timeout_s
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        unavailable(f"scripts/engine.sh {command_name}: {exc}")
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-5:])
        unavailable(f"scripts/engine.sh {command_name} failed: {tail}")


@contextlib.contextmanager
def machine_lock() -> Iterator[None]:
    """One compose stack per machine, whatever its cache directory: the ports on
    loopback are the machine's."""
    with (Path(tempfile.gettempdir()) / "hotline-compose-test.lock").open("w") as handle:
        flags = fcntl.LOCK_EX if REQUIRED else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(handle, flags)
        except BlockingIOError:
            unavailable("another compose test is running on this machine")
        yield


def local_ports() -> dict[str, int]:
    """Each service's port under the override (HOTLINE_HTTP_PORT and the rest)."""
    merged = compose_services(COMPOSE_FILE, OVERRIDE_FILE)
    ports = {
        name: int(environment(svc)["HOTLINE_HTTP_PORT"])
        for name, svc in hotline_services(COMPOSE_FILE, OVERRIDE_FILE).items()
    }
    listen = [a for a in command(merged["prometheus"]) if a.startswith("--web.listen-address=")]
    ports["prometheus"] = int(listen[0].rsplit(":", 1)[1])
    lines = RABBITMQ_LOCAL_CONF.read_text(encoding="utf-8").splitlines()
    conf = dict(line.split(" = ", 1) for line in lines if " = " in line)
    ports["rabbitmq-metrics"] = int(conf["prometheus.tcp.port"])
    return ports


def production_to_local_ports() -> dict[int, int]:
    local = local_ports()
    mapping = {
        int(environment(svc)["HOTLINE_HTTP_PORT"]): local[name]
        for name, svc in hotline_services(COMPOSE_FILE).items()
    }
    mapping[PRODUCTION_PROMETHEUS_PORT] = local["prometheus"]
    mapping[PRODUCTION_RABBITMQ_METRICS_PORT] = local["rabbitmq-metrics"]
    return mapping


def _local_target(target: str, ports: dict[int, int]) -> str:
    host, _, port = target.rpartition(":")
    return f"{host}:{ports[int(port)]}"


def local_prometheus_config() -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with the DNS discovery (no compose DNS on the
    host network) turned into static targets of the same names, labelled as the
    relabelling labels them, and every port moved as the override moves it."""
    config = load_yaml(PROMETHEUS_FILE)
    ports = production_to_local_ports()
    for job in config["scrape_configs"]:
        statics = job.setdefault("static_configs", [])
        for sd in job.pop("dns_sd_configs", []):
            statics += [
                {"targets": [f"{name}:{sd['port']}"], "labels": {"service": name}}
                for name in sd["names"]
            ]
            job.pop("relabel_configs", None)
        for static in statics:
            static["targets"] = [_local_target(t, ports) for t in static["targets"]]
    return config


@dataclass
class Stack:
    """`docker compose -f docker-compose.yml -f <override> --env-file <run>/compose.env`."""

    run_dir: Path

    @property
    def env_file(self) -> Path:
        return self.run_dir / "compose.env"

    def prepare(self, receiver: Receiver) -> None:
        """The env file (fresh passwords), Prometheus's config and a copy of the
        directory whose webhooks point at the receiver on the host."""
        data = self.run_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA_DIR / "districts.json", data / "districts.json")
        directory_pointing_at(receiver, data / "departments.json")
        prometheus = self.run_dir / "prometheus.yml"
        prometheus.write_text(yaml.safe_dump(local_prometheus_config()), encoding="utf-8")
        values = {
            name: secrets.token_hex(12)
            for name in ("RABBITMQ_PASSWORD", "MONGO_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
        }
        values |= {
            "RABBITMQ_USER": "hotline",
            "MONGO_USER": "hotline",
            "HOTLINE_WEBHOOK_SECRET": secrets.token_hex(16),
            "HOTLINE_SMS_WEBHOOK_SECRET": secrets.token_hex(16),
            "HOTLINE_WORKBENCH_SECRET": secrets.token_hex(16),
            "HOTLINE_LOCAL_DATA_DIR": str(data),
            "HOTLINE_LOCAL_PROMETHEUS_CONFIG": str(prometheus),
        }
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        self.env_file.chmod(0o600)

    def compose(self, *args: str, timeout_s: float = 300) -> str:
        files = ["-f", str(COMPOSE_FILE), "-f", str(OVERRIDE_FILE)]
        argv = [DOCKER, "compose", *files, "--env-file", str(self.env_file), *args]
        done = subprocess.run(
            argv,
            cwd=ROOT,
            env={**os.environ, **ENGINE_ENV},
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr[-3000:]}"
        return done.stdout

    def up(self) -> float:
        """Start (or recreate) the stack and wait until every healthcheck passes;
        the seconds it took."""
        started = time.monotonic()
        self.compose("up", "-d", "--wait", "--wait-timeout", "240", "--no-build", "--pull", "never")
        return time.monotonic() - started

    def containers(self) -> list[dict[str, Any]]:
        out = self.compose("ps", "--all", "--format", "json")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def health(self) -> dict[str, str]:
        """Service -> health ("healthy", "starting", ...), or its state without one."""
        return {c["Service"]: c.get("Health") or c["State"] for c in self.containers()}

    def wait_healthy(self, timeout_s: float = 240) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            health = self.health()
            if health and all(value == "healthy" for value in health.values()):
                return time.monotonic() - started
            time.sleep(1)
        raise AssertionError(f"not healthy within {timeout_s}s: {self.health()}")

    def exec(self, service: str, *argv: str) -> str:
        return self.compose("exec", "-T", service, *argv)

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "40")
