"""What `make run` prints (scripts/run.sh endpoints) and the README point to the
ports the docker-compose stack publishes."""

from __future__ import annotations

import re
import subprocess

import pytest

from services.cli import SERVICES
from tests.compose_support import ROOT, compose_services, published_ports

URL = re.compile(r"http://127\.0\.0\.1:(\d+)(/[^\s)]*)?")
COMPOSE_ONLY = {"Prometheus": "prometheus", "Grafana": "grafana", "RabbitMQ": "rabbitmq"}


def _printed() -> list[str]:
    result = subprocess.run(
        [str(ROOT / "scripts" / "run.sh"), "endpoints"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.splitlines()


def _host_ports(name: str) -> set[int]:
    return {host for host, _ in published_ports(compose_services()[name])}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_urls_use_the_compose_port(service: str) -> None:
    lines = [line for line in _printed() if line.split()[:1] == [service]]
    assert len(lines) == 1, f"{service} not printed"
    ports = {int(port) for port, _ in URL.findall(lines[0])}
    assert ports and ports <= _host_ports(service), (service, ports)


def test_compose_only_urls_use_the_compose_ports() -> None:
    text = "\n".join(_printed())
    for label, container in COMPOSE_ONLY.items():
        found = re.search(rf"{label}\b[^h]*{URL.pattern}", text)
        assert found, f"{label} not printed"
        assert int(found.group(1)) in _host_ports(container), label


def test_readme_points_to_the_printed_endpoints() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    printed = {f"http://127.0.0.1:{port}" for line in _printed() for port, _ in URL.findall(line)}
    assert len(printed) == 8
    missing = [url for url in sorted(printed) if url not in readme]
    assert not missing, f"README does not mention {missing}"
