"""The chaos run at a small size (make chaos runs it full size): under a steady
load, RabbitMQ restarts, each service is SIGKILLed and restarted, the store
stops and starts, RabbitMQ and the store are SIGKILLed and started again,
poison messages and duplicates arrive, and time jumps a day
so that timers fall due. Every ticket that got a 202 is dispatched, notified
and counted exactly once; every due timer fired once and was counted once;
the dead-letter queues hold exactly the poison messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.faults import POISON
from tests.chaos.run import SMALL, run

pytestmark = pytest.mark.e2e


def test_chaos_loses_and_doubles_nothing(tmp_path: Path) -> None:
    outcome = run(SMALL, tmp_path)
    for line in outcome.bench_lines():
        print(line)
    assert len(outcome.faults) == 11, outcome.faults
    assert {"kill -9 rabbitmq", "kill -9 store"} <= set(outcome.faults)
    assert outcome.violations() == []
    report = outcome.report
    assert report.tickets >= SMALL.rate * SMALL.duration_s * 0.9
    assert report.timers_fired > 0, "the clock jump made no timer due: nothing was tested"
    assert outcome.duplicates > 0
    poison_seen = {mid for found in report.dead_letters.values() for mid in found}
    assert poison_seen == set(POISON)
