"""CPU seconds each process of the pipeline bench spends, from /proc: where the
machine's two cores go per ticket (the services, the store, the broker and the
bench's own process, which is the load generator, the observer and the webhook
receiver). Linux only; a process that is gone counts what it had last."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _own_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the command name: state is field 3, utime field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / TICKS


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree_seconds(pid: int) -> float:
    """CPU seconds of a process and every live descendant (a broker's helpers)."""
    return _own_seconds(pid) + sum(tree_seconds(child) for child in _children(pid))


class CpuMeter:
    """Named processes' CPU seconds between two readings; "bench" is this
    process alone (its children are the services, counted by their names)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self._start: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        seen = {name: tree_seconds(pid) for name, pid in self.pids.items()}
        seen["bench"] = _own_seconds(os.getpid())
        return seen

    def start(self) -> None:
        self._start = self._read()

    def lines(self, tickets: int, wall_s: float) -> list[str]:
        """BENCH lines: CPU milliseconds per ticket by process, their sum, and
        how many cores they kept busy on average over wall_s."""
        spent = {n: s - self._start.get(n, 0.0) for n, s in self._read().items()}
        total = sum(spent.values())
        lines = [f"BENCH pipeline.cpu_ms_per_ticket {total * 1000 / tickets:.2f} ms"]
        for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
            lines.append(
                f"BENCH pipeline.cpu_ms_per_ticket.{name} {seconds * 1000 / tickets:.2f} ms"
            )
        lines.append(f"BENCH pipeline.cpu_cores_busy {total / wall_s:.2f} cores")
        return lines
