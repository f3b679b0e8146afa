"""The labelled dispatch sets of tests/data/dispatch: adding a writer's set, and
honest estimates of the router's method across writers.

    python -m tools.dispatch_sets add SOURCE.jsonl NAME.jsonl
        copies a writer's file into tests/data/dispatch as NAME.jsonl, refusing
        it if any line does not read as a ticket with a known department, and
        leaving out the requests whose text is already in another set (or
        earlier in the same file): a text in two sets would be learnt and
        measured at once.

    python -m tools.dispatch_sets cross [--margin 7 ...] [--share 0.2 ...] SET.jsonl ...
        leave-one-writer-out: for each SET, the seed model is trained on the
        base sets (dev, eval, the first held-out set) and every other SET, and
        the router (rules, lists, seed) is measured on SET at each seed margin
        and min share given; beside it the lists alone. Run from a checkout,
        it measures that checkout's code and lists.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from services.router.backtest import read_tickets
from services.router.evaluation import evaluate
from services.router.knowledge import EngineFactory
from services.router.rules import load_rules
from shared.directory import Directory, load_directory
from shared.settings import DATA_DIR
from shared.workcalendar import WorkCalendar

SETS = Path(__file__).resolve().parents[1] / "tests" / "data" / "dispatch"
# Written by one writer and tuned on before the writers' sets: always taught.
BASE = ("dispatch_dev.jsonl", "dispatch_eval.jsonl", "dispatch_holdout.jsonl")


def _directory() -> Directory:
    return load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")


def _texts(path: Path) -> Iterator[str]:
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            yield str(json.loads(line).get("text", "")).strip()


def add(source: Path, name: str, directory: Directory) -> int:
    """Copy a writer's set in, without the texts other sets hold; refuse it
    whole if any line is not a ticket with a known department."""
    target = SETS / name
    tickets, skipped = read_tickets(source, directory)
    unlabelled = [t.id for t in tickets if t.expected is None]
    if skipped or unlabelled:
        for note in skipped + [f"{i}: no expected department" for i in unlabelled]:
            print(note, file=sys.stderr)
        return 1
    seen = {
        text for other in SETS.glob("dispatch_*.jsonl") if other != target for text in _texts(other)
    }
    kept, dropped = [], 0
    for line in source.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        text = str(json.loads(line)["text"]).strip()
        if text in seen:
            dropped += 1
            continue
        seen.add(text)
        kept.append(line)
    target.write_text("".join(f"{line}\n" for line in kept), "utf-8")
    print(f"{target}: {len(kept)} requests ({dropped} left out: their text is in another set)")
    return 0


@contextmanager
def seeds_without_each(held: Sequence[Path]) -> Iterator[list[tuple[Path, Path]]]:
    """For each held set, an examples file of the base sets and every other
    held set (removed on leaving)."""
    base = "".join((SETS / name).read_text("utf-8") for name in BASE)
    with tempfile.TemporaryDirectory() as tmp:
        pairs = []
        for path in held:
            seed = Path(tmp) / f"without-{path.name}"
            seed.write_text(
                base + "".join(p.read_text("utf-8") for p in held if p != path), "utf-8"
            )
            pairs.append((path, seed))
        yield pairs


def cross(
    held: Sequence[Path], margins: Sequence[float], shares: Sequence[float], directory: Directory
) -> int:
    """Leave-one-writer-out accuracy of the router's method (and the lists
    alone) for each held set, at each seed margin and min share given."""
    now = datetime.now(UTC)
    lists_only = EngineFactory(directory, WorkCalendar(), plugins=False, seed_file=None)
    grid = [(m, s) for m in margins for s in shares]
    right: dict[tuple[float, float], list[float]] = {point: [] for point in grid}
    print("leave-one-writer-out; the manual queue counts as wrong")
    with seeds_without_each(held) as pairs:
        for path, seed in pairs:
            tickets, _ = read_tickets(path, directory)
            alone = evaluate(lists_only(load_rules()), tickets, now)
            print(f"{path.name}: {alone.total} requests, lists alone {100 * alone.accuracy:.1f} %")
            for margin, share in grid:
                router = replace(
                    lists_only, seed_file=seed, seed_margin=margin, seed_min_share=share
                )
                report = evaluate(router(load_rules()), tickets, now)
                right[margin, share].append(report.accuracy)
                print(
                    f"  margin {margin:g}, share {share:g}: router {100 * report.accuracy:.1f} %"
                    f" ({100 * report.manual_share:.1f} % manual)"
                )
    for (margin, share), accuracies in right.items():
        mean = 100 * sum(accuracies) / len(accuracies)
        print(f"mean over the held sets, margin {margin:g}, share {share:g}: {mean:.1f} %")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.dispatch_sets")
    sub = parser.add_subparsers(dest="command", required=True)
    adding = sub.add_parser("add", help="copy a writer's set in, validated and deduplicated")
    adding.add_argument("source", type=Path)
    adding.add_argument(
        "name", help="file name in tests/data/dispatch, e.g. dispatch_train_a.jsonl"
    )
    crossing = sub.add_parser("cross", help="leave-one-writer-out accuracy")
    crossing.add_argument("sets", nargs="+", type=Path)
    crossing.add_argument("--margin", type=float, nargs="+", default=[7.0])
    crossing.add_argument("--share", type=float, nargs="+", default=[0.2])
    args = parser.parse_args(argv)
    if args.command == "add":
        return add(args.source, args.name, _directory())
    return cross(args.sets, args.margin, args.share, _directory())


if __name__ == "__main__":
    sys.exit(main())
