"""How right the shipped dispatch knowledge is: the share of the held-out
evaluation requests (tests/data/dispatch/, written apart from the lists) that
reach the expected department, and the share left to the manual queue (which
counts as wrong). The samples and the development set are reported beside it;
the development set is the one the lists were tuned on, so its figure is no
measure of requests never seen."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from services.router.backtest import read_tickets
from services.router.evaluation import evaluate
from services.router.knowledge import shipped_engine
from shared.directory import load_directory
from shared.settings import DATA_DIR
from shared.workcalendar import WorkCalendar

HERE = Path(__file__).resolve().parents[1] / "data" / "dispatch"
HELD_OUT = HERE / "dispatch_eval.jsonl"
DEV = HERE / "dispatch_dev.jsonl"
SAMPLES = DATA_DIR / "sample_requests.jsonl"


def eval_lines() -> list[str]:
    return [line for line in HELD_OUT.read_text(encoding="utf-8").splitlines() if line.strip()]


def run() -> Iterator[str]:
    directory = load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")
    engine = shipped_engine(directory, WorkCalendar())
    now = datetime.now(UTC)
    for name, path in (("", HELD_OUT), ("dev_", DEV), ("samples_", SAMPLES)):
        tickets, _ = read_tickets(path, directory)
        report = evaluate(engine, tickets, now)
        yield f"BENCH dispatch.{name}accuracy {100 * report.accuracy:.1f} %"
        yield f"BENCH dispatch.{name}manual_share {100 * report.manual_share:.1f} %"
        yield f"BENCH dispatch.{name}requests {report.total} requests"
