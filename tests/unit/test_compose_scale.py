"""docker-compose.scale.yml, applied over docker-compose.yml as Compose would:
router, notifier and stats run as several competing replicas on quorum queues,
and their ports are taken by the edge proxy, which sends each to its service."""

from __future__ import annotations

import re

import pytest

from shared.settings import CommonSettings
from tests.compose_support import (
    COMPOSE_FILE,
    ENV_PREFIX,
    ROOT,
    SCALE_FILE,
    compose_services,
    environment,
    healthcheck_test,
    host_path,
    hotline_services,
    published_ports,
)

REPLICATED = ("router", "notifier", "stats")
# Calls the others over HTTP only: it declares no queue.
NO_BROKER = ("workbench",)
PROXY_BLOCK = re.compile(r"listen\s+(\d+);[^}]*?set\s+\$upstream\s+([\w.-]+):(\d+);")


def _scaled() -> dict[str, dict[str, object]]:
    return compose_services(COMPOSE_FILE, SCALE_FILE)


@pytest.mark.parametrize("name", REPLICATED)
def test_consumers_run_several_replicas(name: str) -> None:
    replicas = _scaled()[name]["deploy"]["replicas"]  # type: ignore[index]
    assert int(replicas) >= 2


@pytest.mark.parametrize("name", REPLICATED)
def test_replicas_keep_health_checks_limits_and_dependencies(name: str) -> None:
    service = _scaled()[name]
    assert healthcheck_test(service)
    assert service["deploy"]["resources"]["limits"]["memory"]  # type: ignore[index]
    assert service["depends_on"] == compose_services()[name]["depends_on"]


def test_every_service_declares_quorum_queues() -> None:
    """Every service declares the whole topology: one classic declaration of a
    quorum queue would be refused by the broker."""
    types = {
        name: environment(svc)[f"{ENV_PREFIX}QUEUE_TYPE"]
        for name, svc in hotline_services(COMPOSE_FILE, SCALE_FILE).items()
        if name not in NO_BROKER
    }
    assert set(types.values()) == {"quorum"}, types
    for value in types.values():
        assert CommonSettings(queue_type=value).queue_type == "quorum"


def test_base_file_is_unchanged_by_the_profile() -> None:
    base = hotline_services()
    assert {environment(svc)[f"{ENV_PREFIX}QUEUE_TYPE"] for svc in base.values()} == {"classic"}
    assert all("replicas" not in svc.get("deploy", {}) for svc in base.values())


@pytest.mark.parametrize("name", REPLICATED)
def test_replicas_publish_no_host_port(name: str) -> None:
    assert published_ports(_scaled()[name]) == []


def test_edge_takes_each_replicated_port_to_its_service() -> None:
    edge = _scaled()["edge"]
    conf = host_path(edge, "/etc/nginx/conf.d/default.conf")
    assert conf is not None and conf.is_file()
    routes = {
        int(listen): (host, int(port))
        for listen, host, port in PROXY_BLOCK.findall(conf.read_text(encoding="utf-8"))
    }
    base = compose_services()
    for name in REPLICATED:
        (host_port, container_port), *_ = published_ports(base[name])
        assert (host_port, host_port) in published_ports(edge), f"edge does not publish {name}"
        assert routes[host_port] == (name, container_port)


def test_edge_health_endpoint_is_served() -> None:
    edge = _scaled()["edge"]
    conf = (ROOT / "deploy" / "nginx" / "edge.conf").read_text(encoding="utf-8")
    url = next(part for part in healthcheck_test(edge) if part.startswith("http://"))
    port, path = re.match(r"http://127\.0\.0\.1:(\d+)(/\S*)", url).groups()  # type: ignore[union-attr]
    assert re.search(rf"listen {port};\s*location = {re.escape(path)} \{{ return 200", conf)
