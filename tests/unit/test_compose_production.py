"""docker-compose.yml is fit for production: every container is health-checked,
restarted and limited, starts after what it needs is healthy, keeps its state
in a named volume, and reads its configuration from files of this repository
that exist (rules, department directory, Prometheus and Grafana provisioning)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.settings import DATA_DIR, RouterSettings
from tests.compose_support import (
    COMPOSE_FILE,
    ENV_PREFIX,
    PROMETHEUS_DIR,
    PROMETHEUS_FILE,
    ROOT,
    bind_mounts,
    compose_services,
    environment,
    healthcheck_test,
    host_path,
    hotline_services,
    load_yaml,
    named_volumes,
    scrape_jobs,
)

STATEFUL = {
    "rabbitmq": "/var/lib/rabbitmq",
    "mongodb": "/data/db",
    "prometheus": "/prometheus",
    "grafana": "/var/lib/grafana",
}
GRAFANA_DIR = ROOT / "deploy" / "grafana"
SERVICES = sorted(compose_services())


def _memory_bytes(value: str) -> int:
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    text = str(value).lower().rstrip("b")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


@pytest.mark.parametrize("name", SERVICES)
def test_every_container_is_health_checked(name: str) -> None:
    test = healthcheck_test(compose_services()[name])
    assert test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1, f"{name} has no healthcheck"


@pytest.mark.parametrize("name", SERVICES)
def test_every_container_restarts_and_is_limited(name: str) -> None:
    service = compose_services()[name]
    assert service.get("restart") in {"unless-stopped", "always"}
    limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
    assert float(limits["cpus"]) > 0
    assert _memory_bytes(limits["memory"]) >= 64 * 2**20


@pytest.mark.parametrize("name", SERVICES)
def test_dependencies_wait_until_healthy(name: str) -> None:
    services = compose_services()
    depends_on = services[name].get("depends_on", {})
    assert isinstance(depends_on, dict), f"{name}: depends_on needs the long form"
    for dependency, condition in depends_on.items():
        assert condition.get("condition") == "service_healthy", f"{name} -> {dependency}"
        assert healthcheck_test(services[dependency]), f"{dependency} can never be healthy"


def test_grafana_waits_for_prometheus_and_services_for_their_servers() -> None:
    services = compose_services()
    assert "prometheus" in services["grafana"]["depends_on"]
    for service in hotline_services().values():
        assert {"rabbitmq", "mongodb"} <= set(service["depends_on"])


@pytest.mark.parametrize(("name", "path"), sorted(STATEFUL.items()))
def test_state_lives_in_a_declared_named_volume(name: str, path: str) -> None:
    volume = named_volumes(compose_services()[name]).get(path)
    assert volume, f"{name}: {path} is not a named volume"
    assert volume in (load_yaml(COMPOSE_FILE).get("volumes") or {})


@pytest.mark.parametrize("name", SERVICES)
def test_configuration_mounts_exist_and_are_read_only(name: str) -> None:
    for volume in compose_services()[name].get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if source.startswith("."):
            assert (ROOT / source).exists(), f"{name}: {source} missing"
            assert rest.endswith(":ro"), f"{name}: {volume} should be read-only"


@pytest.mark.parametrize("name", sorted(hotline_services()))
def test_services_run_locked_down(name: str) -> None:
    service = hotline_services()[name]
    assert service.get("read_only") is True
    assert "ALL" in service.get("cap_drop", [])
    assert "no-new-privileges:true" in service.get("security_opt", [])


@pytest.mark.parametrize("name", sorted(hotline_services()))
def test_directory_files_are_mounted_from_the_repository(name: str) -> None:
    service = hotline_services()[name]
    env = environment(service)
    for variable, shipped in (
        ("DIRECTORY_FILE", DATA_DIR / "departments.json"),
        ("DISTRICTS_FILE", DATA_DIR / "districts.json"),
    ):
        path = env[f"{ENV_PREFIX}{variable}"]
        assert host_path(service, path) == shipped.resolve(), f"{name}: {path} is not mounted"


def test_rules_file_is_mounted_from_the_repository() -> None:
    router = compose_services()["router"]
    path = environment(router)[f"{ENV_PREFIX}RULES_FILE"]
    source = host_path(router, path)
    assert source is not None and source.is_file(), f"{path} is not a mounted file"
    assert RouterSettings(rules_file=source).rules_file == source
    # The directory is mounted, not the file: an editor that replaces the file
    # would leave a file mount on the old one, and the router would never reload.
    assert Path(path).parent.as_posix() in bind_mounts(router)


def test_rabbitmq_has_no_guest_user_and_serves_prometheus_metrics() -> None:
    rabbitmq = compose_services()["rabbitmq"]
    env = environment(rabbitmq)
    assert env["RABBITMQ_DEFAULT_USER"].startswith("${") and "guest" not in env.values()
    plugins = host_path(rabbitmq, "/etc/rabbitmq/enabled_plugins")
    assert plugins is not None and "rabbitmq_prometheus" in plugins.read_text(encoding="utf-8")
    for service in hotline_services().values():
        assert "guest" not in environment(service)[f"{ENV_PREFIX}AMQP_URL"]


def test_mongodb_requires_credentials_the_services_use() -> None:
    mongodb = environment(compose_services()["mongodb"])
    user, password = mongodb["MONGO_INITDB_ROOT_USERNAME"], mongodb["MONGO_INITDB_ROOT_PASSWORD"]
    for service in hotline_services().values():
        url = environment(service)[f"{ENV_PREFIX}MONGO_URL"]
        assert f"//{user}:{password}@mongodb:27017/" in url


def test_prometheus_mounts_its_rule_files_beside_its_config() -> None:
    prometheus = compose_services()["prometheus"]
    config_path = next(
        arg.split("=", 1)[1] for arg in prometheus["command"] if arg.startswith("--config.file=")
    )
    assert host_path(prometheus, config_path) == PROMETHEUS_FILE.resolve()
    rule_files = load_yaml(PROMETHEUS_FILE)["rule_files"]
    assert rule_files, "no alert rules loaded"
    for rule_file in rule_files:
        in_container = (Path(config_path).parent / rule_file).as_posix()
        assert host_path(prometheus, in_container) == (PROMETHEUS_DIR / rule_file).resolve()


def test_prometheus_scrapes_per_queue_metrics_of_rabbitmq() -> None:
    job = scrape_jobs()["rabbitmq-queues"]
    assert job["metrics_path"] == "/metrics/detailed"
    assert {"queue_coarse_metrics", "queue_consumer_count"} <= set(job["params"]["family"])


def _provisioning(folder: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for path in sorted((GRAFANA_DIR / "provisioning" / folder).glob("*.yml")):
        items += yaml.safe_load(path.read_text(encoding="utf-8"))[key]
    return items


def test_grafana_datasource_points_at_the_prometheus_container() -> None:
    (datasource,) = _provisioning("datasources", "datasources")
    port = compose_services()["prometheus"]["ports"][0].split(":")[-1]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == f"http://prometheus:{port}"


def test_grafana_loads_the_dashboards_of_this_repository() -> None:
    grafana = compose_services()["grafana"]
    assert host_path(grafana, "/etc/grafana/provisioning") == (GRAFANA_DIR / "provisioning")
    (provider,) = _provisioning("dashboards", "providers")
    folder = host_path(grafana, provider["options"]["path"])
    assert folder == (GRAFANA_DIR / "dashboards").resolve()
    assert sorted(folder.glob("*.json")), "no dashboard to load"
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    home_file = host_path(grafana, home)
    assert home_file is not None and home_file.is_file()
