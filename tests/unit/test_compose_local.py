"""What the production stack publishes, and what the compose test's local override
(deploy/local/docker-compose.local.yml) may change: host networking on loopback,
ports, the store image, and nothing else."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from typing import Any

import pytest

from tests import compose_support as cs
from tests.compose_stack import OVERRIDE_FILE, RABBITMQ_LOCAL_CONF, local_ports

# Reached from outside the host: citizens' channels and the city's mail relay
# (intake), the departments' API (router; the edge proxy when scaled), the
# pages people work in (workbench).
PUBLIC = {"intake": {8001, 8025}, "router": {8002}, "edge": {8002}, "workbench": {8005}}
LOOPBACK = "127.0.0.1"
# What the override may change in a service: networking, ports, the files it
# mounts in place of production's, and for the store its image and command.
MAY_CHANGE = {"network_mode", "ports", "extra_hosts", "environment", "healthcheck", "volumes"}
MAY_CHANGE_IN = {
    "rabbitmq": {"hostname"},
    "mongodb": {"image", "command"},
    "prometheus": {"command"},
    "grafana": {"profiles"},
}
HOTLINE_ENV = {
    "AMQP_URL",
    "MONGO_URL",
    "HTTP_HOST",
    "HTTP_PORT",
    "PUBLIC_URL",
    "EMAIL_LISTEN_HOST",
    "EMAIL_LISTEN_PORT",
    # The workbench's addresses of the services it calls, moved with their ports.
    "INTAKE_URL",
    "ROUTER_URL",
    "NOTIFIER_URL",
    "STATS_URL",
    "STATS_PUBLIC_URL",
}
# The development servers and `make run` on the same machine.
DEV_PORTS = {5672, 4369, 25672, 15672, 15692, 27017, 8001, 8002, 8003, 8004, 8005, 8025, 9090}


def override() -> dict[str, dict[str, Any]]:
    services = cs.load_yaml(OVERRIDE_FILE)["services"]
    assert isinstance(services, dict)
    return services


@pytest.mark.parametrize("files", [(cs.COMPOSE_FILE,), (cs.COMPOSE_FILE, cs.SCALE_FILE)], ids=str)
def test_only_the_public_entries_are_published_on_every_interface(files: tuple[Any, ...]) -> None:
    for name, service in cs.compose_services(*files).items():
        for address, port in cs.published_addresses(service):
            if address != LOOPBACK:
                assert address == "" and port in PUBLIC.get(name, set()), (name, address, port)


def test_broker_database_and_metrics_are_not_published() -> None:
    services = cs.compose_services()
    assert "ports" not in services["mongodb"]
    assert {port for _, port in cs.published_addresses(services["rabbitmq"])} == {15672}


@pytest.mark.parametrize("name", sorted(cs.load_yaml(OVERRIDE_FILE)["services"]))
def test_override_changes_only_what_it_may(name: str) -> None:
    changed = set(override()[name]) - MAY_CHANGE - MAY_CHANGE_IN.get(name, set())
    assert not changed, f"{name}: the local override also changes {changed}"


@pytest.mark.parametrize("name", sorted(cs.hotline_services()))
def test_override_changes_only_addresses_in_the_service_environment(name: str) -> None:
    names = {key.removeprefix(cs.ENV_PREFIX) for key in cs.environment(override()[name])}
    assert names <= HOTLINE_ENV, names - HOTLINE_ENV


def test_every_running_container_is_on_the_host_network_on_loopback() -> None:
    merged = cs.compose_services(cs.COMPOSE_FILE, OVERRIDE_FILE)
    running = {name for name, svc in merged.items() if not svc.get("profiles")}
    assert running == set(cs.compose_services()) - {"grafana"}
    for name in running:
        # A new service in docker-compose.yml needs its local settings in the
        # override too.
        assert merged[name].get("network_mode") == "host", f"{name}: not in {OVERRIDE_FILE}"
        assert merged[name].get("ports", []) == [], name
    for name, service in cs.hotline_services(cs.COMPOSE_FILE, OVERRIDE_FILE).items():
        env = cs.environment(service)
        assert env[f"{cs.ENV_PREFIX}HTTP_HOST"] == LOOPBACK, name
        assert env.get(f"{cs.ENV_PREFIX}EMAIL_LISTEN_HOST", LOOPBACK) == LOOPBACK, name
    assert "127.0.0.1:" in " ".join(cs.command(merged["mongodb"]))
    assert any(
        a.startswith("--web.listen-address=127.0.0.1:") for a in cs.command(merged["prometheus"])
    )


def test_local_broker_listens_on_loopback_only() -> None:
    settings = dict(
        line.split(" = ", 1)
        for line in RABBITMQ_LOCAL_CONF.read_text(encoding="utf-8").splitlines()
        if " = " in line
    )
    assert settings["listeners.tcp.default"].startswith(f"{LOOPBACK}:")
    assert settings["management.tcp.ip"] == settings["prometheus.tcp.ip"] == LOOPBACK
    assert cs.environment(override()["rabbitmq"])["ERL_EPMD_ADDRESS"] == LOOPBACK


def test_local_ports_stay_clear_of_the_development_servers() -> None:
    text = OVERRIDE_FILE.read_text(encoding="utf-8") + RABBITMQ_LOCAL_CONF.read_text("utf-8")
    used = {int(port) for port in re.findall(r"(?:127\.0\.0\.1:|\"|= )(\d{4,5})\b", text)}
    assert set(local_ports().values()) <= used
    assert not used & DEV_PORTS, used & DEV_PORTS


@pytest.mark.parametrize("name", sorted(cs.hotline_services()))
def test_local_healthcheck_probes_the_local_port(name: str) -> None:
    service = cs.compose_services(cs.COMPOSE_FILE, OVERRIDE_FILE)[name]
    port = cs.environment(service)[f"{cs.ENV_PREFIX}HTTP_PORT"]
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(cs.healthcheck_test(service))


def test_every_data_file_of_the_packages_is_shipped_in_the_wheel() -> None:
    """The image installs the wheel: a file left out of package-data is missing in
    every container (the stats dashboard's static files once were)."""
    config = tomllib.loads((cs.ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data: dict[str, list[str]] = config["tool"]["setuptools"]["package-data"]
    for top in ("shared", "services"):
        for path in (cs.ROOT / top).rglob("*"):
            # README.md files are documentation for the repository's readers.
            if not path.is_file() or path.suffix in {".py", ".pyc"} or path.name == "README.md":
                continue
            relative = path.relative_to(cs.ROOT)
            assert any(
                relative.as_posix().startswith(package.replace(".", "/") + "/")
                and fnmatch(relative.as_posix()[len(package) + 1 :], pattern)
                for package, patterns in package_data.items()
                for pattern in patterns
            ), f"{relative} is not in [tool.setuptools.package-data]"
