"""`make bench`: performance figures as `BENCH <name> <value> <unit>` lines."""

from __future__ import annotations

import sys

from tests.bench import bench_notifier, bench_rules, bench_stats


def main() -> int:
    for line in bench_rules.run():
        print(line, flush=True)
    for line in bench_notifier.run():
        print(line, flush=True)
    for line in bench_stats.run():
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
