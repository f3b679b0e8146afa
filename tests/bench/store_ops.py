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


Counts = Counter[tuple[str, str]]


async def snapshot(folder: Path) -> tuple[Counts, Counts]:
    """(service, "<command> <collection>") -> commands so far, and the
    microseconds they waited for their answers, every process summed.
    Waits one write period first, so that what happened before the call is in."""
    await asyncio.sleep(WRITE_PERIOD_S * 2)
    return _read(folder)


def _read(folder: Path) -> tuple[Counts, Counts]:
    counts: Counts = Counter()
    micros: Counts = Counter()
    for path in folder.glob("*.json"):
        service = path.stem.rsplit("-", 1)[0]
        data = json.loads(path.read_text(encoding="utf-8"))
        for op, n in data["counts"].items():
            counts[service, op] += n
        for op, n in data["micros"].items():
            micros[service, op] += n
    return counts, micros


def per_ticket_lines(
    before: tuple[Counts, Counts], after: tuple[Counts, Counts], tickets: int
) -> tuple[list[str], list[str]]:
    """The BENCH lines (overall and per service) and a breakdown per command:
    commands per ticket and the milliseconds per ticket they took to answer."""
    delta = after[0] - before[0]
    waited = after[1] - before[1]
    services: Counter[str] = Counter()
    for (service, _), n in delta.items():
        services[service] += n
    total = sum(services.values())
    lines = [f"BENCH pipeline.store_ops_per_ticket {total / tickets:.2f} ops"]
    lines += [
        f"BENCH pipeline.store_ops_per_ticket.{service} {n / tickets:.2f} ops"
        for service, n in sorted(services.items())
    ]
    detail = [f"{'service':9} {'command collection':40} {'ops/ticket':>10} {'ms/ticket':>10}"]
    detail += [
        f"{service:9} {op:40} {n / tickets:10.2f} {waited[service, op] / 1000 / tickets:10.2f}"
        for (service, op), n in sorted(delta.items(), key=lambda kv: (kv[0][0], -kv[1]))
    ]
    return lines, detail
