"""`make chaos`: the full-size chaos run; BENCH lines, then every violation.
Exit status 1 if anything accepted was lost or doubled, or a check failed.
Service logs stay in test-output/chaos/."""

from __future__ import annotations

import logging
import shutil
import sys

from tests.chaos.run import FULL, run
from tests.support import ROOT


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("aio_pika", "aiormq", "httpx"):  # every reconnect attempt, every request
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    folder = ROOT / "test-output" / "chaos"
    shutil.rmtree(folder, ignore_errors=True)
    outcome = run(FULL, folder)
    print(f"chaos: faults {', '.join(outcome.faults)}", flush=True)
    for line in outcome.bench_lines():
        print(line, flush=True)
    violations = outcome.violations()
    for violation in violations:
        print(f"chaos: VIOLATION {violation}", flush=True)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
