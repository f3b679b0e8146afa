"""Reading docker-compose files and the Prometheus config without Docker.

The unit tests run where no container engine is (the compose test,
tests/compose/, runs the files for real where one can be started): the files
are parsed with PyYAML (merge keys included) and an override file is applied
as Compose does for what these files use: mappings merge key by key,
sequences add up, and a value tagged `!reset` empties the base's value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCALE_FILE = ROOT / "docker-compose.scale.yml"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_FILE = PROMETHEUS_DIR / "prometheus.yml"
ENV_PREFIX = "HOTLINE_"
HTTP_URL = re.compile(r"https?://[^\s'\"]+")


class Reset:
    """A value tagged !reset: it replaces the base's value with an empty one."""

    def __init__(self, value: Any) -> None:
        self.value = value


class ComposeLoader(yaml.SafeLoader):
    pass


def _reset(loader: yaml.SafeLoader, node: yaml.Node) -> Reset:
    if isinstance(node, yaml.SequenceNode):
        return Reset(loader.construct_sequence(node))
    if isinstance(node, yaml.MappingNode):
        return Reset(loader.construct_mapping(node))
    return Reset(loader.construct_scalar(node))  # type: ignore[arg-type]


ComposeLoader.add_constructor("!reset", _reset)


def load_yaml(path: Path) -> dict[str, Any]:
    # ComposeLoader is a SafeLoader with one more tag: no arbitrary objects.
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=ComposeLoader)
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


def merge(base: Any, override: Any) -> Any:
    if isinstance(override, Reset):
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else _plain(value)
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return base + [item for item in override if item not in base]
    return _plain(override)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Reset) else value


def compose_services(*files: Path) -> dict[str, dict[str, Any]]:
    """The services of the files applied in order, as `docker compose -f ... -f ...`."""
    merged: dict[str, Any] = {}
    for path in files or (COMPOSE_FILE,):
        merged = merge(merged, load_yaml(path))
    services = merged["services"]
    assert isinstance(services, dict)
    return services


def hotline_services(*files: Path) -> dict[str, dict[str, Any]]:
    """The containers built from this repository's image."""
    return {name: svc for name, svc in compose_services(*files).items() if "build" in svc}


def command(service: dict[str, Any]) -> list[str]:
    value = service.get("command", [])
    return value.split() if isinstance(value, str) else [str(part) for part in value]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, dict):
        return {str(key): str(value) for key, value in env.items()}
    pairs = (str(item).partition("=") for item in env)
    return {key: value for key, _, value in pairs}


def published_ports(service: dict[str, Any]) -> list[tuple[int, int]]:
    """(host port, container port) pairs of the short or long `ports` syntax."""
    pairs: list[tuple[int, int]] = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            target = int(entry["target"])
            pairs.append((int(entry.get("published", target)), target))
            continue
        parts = str(entry).split("/")[0].split(":")
        container = int(parts[-1])
        pairs.append((int(parts[-2]) if len(parts) > 1 else container, container))
    return pairs


def published_addresses(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host address, host port) of each short-syntax `ports` entry; "" is every
    interface."""
    found: list[tuple[str, int]] = []
    for entry in service.get("ports", []):
        parts = str(entry).split("/")[0].split(":")
        address = parts[0] if len(parts) == 3 else ""
        found.append((address, int(parts[-2]) if len(parts) > 1 else int(parts[-1])))
    return found


def healthcheck_test(service: dict[str, Any]) -> list[str]:
    test = service.get("healthcheck", {}).get("test", [])
    return [str(part) for part in test] if isinstance(test, list) else ["CMD-SHELL", str(test)]


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the repository path mounted there (short syntax, ./ sources)."""
    mounts: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if source.startswith("."):
            mounts[rest.split(":")[0]] = (ROOT / source).resolve()
    return mounts


def named_volumes(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> the named volume mounted there."""
    named: dict[str, str] = {}
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if rest and not source.startswith((".", "/")):
            named[rest.split(":")[0]] = source
    return named


def host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository file a container path reads, through the service's bind mounts."""
    for target, source in sorted(bind_mounts(service).items(), key=lambda kv: -len(kv[0])):
        if container_path == target:
            return source
        if container_path.startswith(target.rstrip("/") + "/"):
            return source / container_path[len(target.rstrip("/")) + 1 :]
    return None


def scrape_jobs() -> dict[str, dict[str, Any]]:
    jobs = load_yaml(PROMETHEUS_FILE).get("scrape_configs", [])
    return {str(job["job_name"]): job for job in jobs}


def scrape_targets() -> dict[str, set[str]]:
    """Prometheus target (host:port) -> the metrics paths it is scraped at."""
    targets: dict[str, set[str]] = {}
    for job in scrape_jobs().values():
        path = str(job.get("metrics_path", "/metrics"))
        found = [str(t) for static in job.get("static_configs", []) for t in static["targets"]]
        for sd in job.get("dns_sd_configs", []):
            found += [f"{name}:{sd['port']}" for name in sd["names"]]
        for target in found:
            targets.setdefault(target, set()).add(path)
    return targets
