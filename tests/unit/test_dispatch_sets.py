"""The evaluation sets the dispatch bench reads are whole and well-formed: a
line the loader skips or a label the directory does not know would quietly
change what `BENCH dispatch.*` measures."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.router.backtest import read_tickets
from shared.directory import load_directory
from shared.settings import DATA_DIR

SETS = Path(__file__).resolve().parents[1] / "data" / "dispatch"
# name -> the fewest requests with a label it must hold (issue 12 asks for 400+)
EXPECTED = {
    "dispatch_holdout2.jsonl": 500,
    "dispatch_holdout.jsonl": 400,
    "dispatch_eval.jsonl": 400,
    "dispatch_dev.jsonl": 100,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_line_loads_with_a_known_unit(name: str) -> None:
    directory = load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")
    tickets, skipped = read_tickets(SETS / name, directory)
    assert skipped == []
    labelled = [t for t in tickets if t.expected is not None]
    assert len(labelled) == len(tickets) >= EXPECTED[name]
    unknown = {str(t.expected) for t in labelled} - set(directory.departments)
    assert not unknown, f"{name}: labels not in the directory: {sorted(unknown)}"
    assert len({t.id for t in tickets}) == len(tickets), f"{name}: repeated ids"
