"""`make bench`: performance figures as `BENCH <name> <value> <unit>` lines.

`python -m tests.bench pipeline` (or rules, dispatch, intake, notifier, stats) runs only those."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

from tests.bench import (
    bench_dispatch,
    bench_intake,
    bench_notifier,
    bench_pipeline,
    bench_rules,
    bench_stats,
)

BENCHES: dict[str, Callable[[], Iterable[str]]] = {
    "rules": bench_rules.run,
    "dispatch": bench_dispatch.run,
    "intake": bench_intake.run,
    "notifier": bench_notifier.run,
    "stats": bench_stats.run,
    "pipeline": bench_pipeline.run,
}


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in BENCHES]
    if unknown:
        print(f"unknown bench {unknown}; choose from {list(BENCHES)}", file=sys.stderr)
        return 2
    for name in names or list(BENCHES):
        for line in BENCHES[name]():
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
