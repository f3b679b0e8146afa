"""`hotline dispatch evaluate FILE` and `hotline dispatch train`."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from services.router.backtest import read_tickets
from services.router.cli import context
from services.router.evaluation import evaluate as evaluate_engine
from services.router.knowledge import EngineFactory
from services.router.rules import RulesError, load_rules
from services.router.training import (
    examples_from_tickets,
    history_from_store,
    train_and_save,
)


def evaluate(file: str, misses: bool = False) -> int:
    """Accuracy, manual share, per-department precision and recall and the top
    confusions of the running configuration on a file of known answers; with
    misses, each request sent wrong too."""
    settings, directory, calendar = context()
    path = Path(file)
    try:
        engine = EngineFactory.of(settings, directory, calendar)(load_rules(settings.rules_file))
        tickets, skipped = read_tickets(path, directory)
    except RulesError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: {path}: cannot read the tickets: {exc}", file=sys.stderr)
        return 1
    for note in skipped:
        print(note, file=sys.stderr)
    report = evaluate_engine(engine, tickets, datetime.now(UTC))
    if report.total == 0:
        print(f"error: {path}: no ticket with an expected department", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    if misses:
        print("\n".join(["", *report.miss_lines()]))
    return 0


def train(history: str | None, out: str | None) -> int:
    """Train a new version of the dispatch model from the router's closed
    tickets (or a history file) and write it where the router reads it."""
    settings, directory, _ = context()
    target = Path(out) if out else settings.dispatch_model_file
    if target is None:
        print("error: give --out or set HOTLINE_DISPATCH_MODEL_FILE", file=sys.stderr)
        return 1
    try:
        if history:
            tickets, skipped = read_tickets(Path(history), directory)
            for note in skipped:
                print(note, file=sys.stderr)
            examples = examples_from_tickets(tickets, directory)
        else:
            examples = asyncio.run(history_from_store(settings, directory))
        model = train_and_save(examples, target)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    labels = ", ".join(model.labels)
    print(f"ok: model v{model.version} from {model.tickets} tickets ({labels}) at {target}")
    return 0
