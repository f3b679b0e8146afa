"""The production stack (docker-compose.yml, Dockerfile, Prometheus config) agrees with the code.

Subcommands come from `services.cli`, variable names and ports from `shared.settings`, so
renaming a setting or a port without updating the deployment fails here, not in production.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic_settings import BaseSettings

from services.cli import SERVICES, build_parser
from shared.settings import (
    IntakeSettings,
    NotifierSettings,
    RouterSettings,
    StatsSettings,
    WorkbenchSettings,
)
from tests.compose_support import (
    COMPOSE_FILE,
    ENV_PREFIX,
    HTTP_URL,
    PROMETHEUS_FILE,
    ROOT,
    command,
    compose_services,
    environment,
    healthcheck_test,
    hotline_services,
    load_yaml,
    published_ports,
    scrape_targets,
)

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"

INFRASTRUCTURE = ("rabbitmq", "mongodb")
RABBITMQ_METRICS_TARGET = "rabbitmq:15692"
SETTINGS: dict[str, type[BaseSettings]] = {
    "intake": IntakeSettings,
    "router": RouterSettings,
    "notifier": NotifierSettings,
    "stats": StatsSettings,
    "workbench": WorkbenchSettings,
}

# ${VAR}, ${VAR:?message} or ${VAR?message}: a value taken from the environment only.
# ${VAR:-default} is not one: its default is a literal written in the file.
PURE_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?\?[^}]*)?\}")
REQUIRED_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?[^}]*\}")
URL_PASSWORD = re.compile(r"://[^/@\s]*:[^/@\s]+@")
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|API_?KEY", re.IGNORECASE)


def _service_running(subcommand: str) -> tuple[str, dict[str, Any]]:
    matches = [
        (name, svc) for name, svc in hotline_services().items() if command(svc)[:1] == [subcommand]
    ]
    assert len(matches) == 1, f"expected one compose service running {subcommand!r}: {matches}"
    return matches[0]


def _default_port(subcommand: str) -> int:
    return int(SETTINGS[subcommand].model_fields["http_port"].default)


def _expected_port(subcommand: str, service: dict[str, Any]) -> int:
    given = environment(service).get(f"{ENV_PREFIX}HTTP_PORT")
    return _default_port(subcommand) if given is None else int(given)


def _strings(node: Any, key: str = "") -> list[tuple[str, str]]:
    """Every (mapping key, string value) in a YAML tree; list items keep their parent key."""
    if isinstance(node, dict):
        return [pair for k, v in node.items() for pair in _strings(v, str(k))]
    if isinstance(node, list):
        return [pair for item in node for pair in _strings(item, key)]
    return [(key, node)] if isinstance(node, str) else []


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def _last_instruction(keyword: str) -> str:
    values = [rest for kw, rest in _dockerfile_instructions() if kw == keyword]
    assert values, f"Dockerfile has no {keyword}"
    return values[-1]


def test_settings_cover_every_cli_service() -> None:
    assert set(SETTINGS) == set(SERVICES)


def test_compose_runs_each_service_exactly_once() -> None:
    commands = sorted(command(svc)[0] for svc in hotline_services().values())
    assert commands == sorted(SERVICES)


@pytest.mark.parametrize("name", sorted(hotline_services()))
def test_command_is_a_cli_service_subcommand(name: str) -> None:
    argv = command(hotline_services()[name])
    assert argv, f"{name} has no command"
    assert argv[0] in SERVICES
    assert build_parser().parse_args(argv).command == argv[0]


@pytest.mark.parametrize("subcommand", sorted(SERVICES))
def test_environment_names_are_settings_fields(subcommand: str) -> None:
    _, service = _service_running(subcommand)
    fields = SETTINGS[subcommand].model_fields
    names = [name for name in environment(service) if name.startswith(ENV_PREFIX)]
    assert f"{ENV_PREFIX}AMQP_URL" in names
    assert f"{ENV_PREFIX}MONGO_URL" in names
    unknown = [name for name in names if name[len(ENV_PREFIX) :].lower() not in fields]
    assert not unknown, f"{subcommand}: no settings field for {unknown}"


@pytest.mark.parametrize("subcommand", sorted(SERVICES))
def test_published_port_is_the_service_port(subcommand: str) -> None:
    _, service = _service_running(subcommand)
    port = _expected_port(subcommand, service)
    assert (port, port) in published_ports(service)


@pytest.mark.parametrize("subcommand", sorted(SERVICES))
def test_healthcheck_probes_healthz_on_the_service_port(subcommand: str) -> None:
    _, service = _service_running(subcommand)
    test = healthcheck_test(service)
    assert test[0] in {"CMD", "CMD-SHELL"}
    # python:3.11-slim has neither curl nor wget.
    assert not {"curl", "wget"} & set(" ".join(test).split())
    urls = [urlsplit(url) for url in HTTP_URL.findall(" ".join(test))]
    assert urls, f"{subcommand}: healthcheck requests no URL"
    port = _expected_port(subcommand, service)
    for url in urls:
        assert (url.hostname, url.port, url.path) == ("127.0.0.1", port, "/healthz")


@pytest.mark.parametrize("subcommand", sorted(SERVICES))
def test_service_waits_for_healthy_infrastructure(subcommand: str) -> None:
    _, service = _service_running(subcommand)
    depends_on = service.get("depends_on", {})
    assert isinstance(depends_on, dict), "depends_on needs the long form with conditions"
    for dependency in INFRASTRUCTURE:
        assert depends_on.get(dependency, {}).get("condition") == "service_healthy"
    assert service.get("restart") == "unless-stopped"


@pytest.mark.parametrize("name", INFRASTRUCTURE)
def test_infrastructure_has_a_healthcheck(name: str) -> None:
    test = healthcheck_test(compose_services()[name])
    assert test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1


@pytest.mark.parametrize("subcommand", sorted(SERVICES))
def test_prometheus_scrapes_the_service(subcommand: str) -> None:
    name, service = _service_running(subcommand)
    target = f"{name}:{_expected_port(subcommand, service)}"
    assert "/metrics" in scrape_targets().get(target, set()), f"{target} is not scraped"


def test_prometheus_scrapes_rabbitmq() -> None:
    assert "/metrics" in scrape_targets().get(RABBITMQ_METRICS_TARGET, set())


def test_prometheus_mounts_the_config_in_this_repository() -> None:
    volumes = [str(volume) for volume in compose_services()["prometheus"].get("volumes", [])]
    sources = [ROOT / volume.split(":")[0] for volume in volumes if volume.startswith(".")]
    assert PROMETHEUS_FILE.resolve() in [source.resolve() for source in sources]


def test_compose_holds_no_literal_secret() -> None:
    for key, value in _strings(load_yaml(COMPOSE_FILE)):
        stripped = PURE_REFERENCE.sub("", value)
        assert not URL_PASSWORD.search(stripped), f"{key}: password in URL {value!r}"
        if SECRET_NAME.search(key):
            assert not stripped.strip(), f"{key}: secret must be a ${{VAR}} reference"


def test_env_example_names_every_required_variable() -> None:
    required = set(REQUIRED_REFERENCE.findall(COMPOSE_FILE.read_text(encoding="utf-8")))
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    declared = {line.split("=")[0].strip() for line in lines if "=" in line and line[:1] != "#"}
    assert required, "compose requires no variables: where do the credentials come from?"
    assert required <= declared, f"missing in .env.example: {sorted(required - declared)}"


def test_dockerfile_entrypoint_is_hotline() -> None:
    assert json.loads(_last_instruction("ENTRYPOINT")) == ["hotline"]


def test_dockerfile_exposes_every_service_port() -> None:
    exposed = {int(port) for port in _last_instruction("EXPOSE").split()}
    assert exposed == {_default_port(subcommand) for subcommand in SERVICES}


def test_image_listens_beyond_the_container_loopback() -> None:
    """A container's loopback is its own: a service bound to 127.0.0.1 there
    (the settings' default for a host) cannot be reached through a published port."""
    env = " ".join(rest for keyword, rest in _dockerfile_instructions() if keyword == "ENV")
    assert f"{ENV_PREFIX}HTTP_HOST=0.0.0.0" in env


def test_dockerfile_runs_as_non_root_user() -> None:
    user = _last_instruction("USER").split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_has_no_secrets() -> None:
    for keyword, rest in _dockerfile_instructions():
        if keyword in {"ENV", "ARG"}:
            assert not SECRET_NAME.search(rest), f"{keyword} {rest}"


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    patterns = set(DOCKERIGNORE.read_text(encoding="utf-8").split())
    assert {".git", ".venv", ".data", ".run", "tests", ".env"} <= patterns
