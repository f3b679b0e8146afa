"""Store commands per ticket, per service and per command, from the counts the
services' bench-only listener writes (tests/bench/storeops/sitecustomize.py)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

LISTENER_DIR = Path(__file__).parent / "storeops"
WRITE_PERIOD_S = 0.5


def listener_env(folder: Path) -> dict[str, str]:
    """What makes a service process count its store commands into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    return {"PYTHONPATH": str(LISTENER_DIR), "HOTLINE_BENCH_STORE_OPS_DIR": str(folder)}


async def snapshot(folder: Path) -> Counter[tuple[str, str]]:
    """(service, "<command> <collection>") -> commands so far, every process summed.
    Waits one write period first, so that what happened before the call is in."""
    await asyncio.sleep(WRITE_PERIOD_S * 2)
    return _read(folder)


def _read(folder: Path) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for path in folder.glob("*.json"):
        service = path.stem.rsplit("-", 1)[0]
        for op, n in json.loads(path.read_text(encoding="utf-8")).items():
            counts[service, op] += n
    return counts


def per_ticket_lines(
    before: Counter[tuple[str, str]], after: Counter[tuple[str, str]], tickets: int
) -> tuple[list[str], list[str]]:
    """The BENCH lines (overall and per service) and a breakdown per command."""
    delta = after - before
    services: Counter[str] = Counter()
    for (service, _), n in delta.items():
        services[service] += n
    total = sum(services.values())
    lines = [f"BENCH pipeline.store_ops_per_ticket {total / tickets:.2f} ops"]
    lines += [
        f"BENCH pipeline.store_ops_per_ticket.{service} {n / tickets:.2f} ops"
        for service, n in sorted(services.items())
    ]
    detail = [
        f"{service:9} {op:40} {n / tickets:6.2f}"
        for (service, op), n in sorted(delta.items(), key=lambda kv: (kv[0][0], -kv[1]))
    ]
    return lines, detail
