"""`hotline dispatch evaluate FILE --misses`: each request sent wrong, with the
caller's phone numbers masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli import main as hotline

pytestmark = pytest.mark.usefixtures("no_hotline_env")


def line(id_: str, text: str, expected: str) -> str:
    fields = {
        "id": id_,
        "channel": "phone",
        "district": "冠县",
        "town": "",
        "category": "complaint",
        "priority": "normal",
        "text": text,
        "expected_department": expected,
    }
    return json.dumps(fields, ensure_ascii=False)


def test_each_miss_is_printed_with_the_phone_numbers_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "eval.jsonl"
    right = line("R1", "家里停水两天了，自来水一滴都没有", "guanxian.water")
    # Labelled wrong on purpose: the router sends a blackout to the power company.
    wrong = line("W1", "俺家停电了  一整天了，回电话13812345678", "guanxian.water")
    path.write_text(f"{right}\n{wrong}\n", encoding="utf-8")
    assert hotline(["dispatch", "evaluate", str(path), "--misses"]) == 0
    out = capsys.readouterr().out
    assert "13812345678" not in out
    lines = out.splitlines()
    at = lines.index("misses: 1 (id, decided by, sent to, right department, text)")
    miss = lines[at + 1].split("\t")
    assert miss[0] == "W1" and miss[2:4] == ["city.power", "guanxian.water"]
    assert miss[1] in {"rule", "list", "model"}
    assert miss[4] == "俺家停电了 一整天了，回电话138****5678"
    assert lines[at + 2 :] == []


def test_without_the_flag_no_request_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "eval.jsonl"
    path.write_text(line("W1", "俺家停电了，13812345678", "guanxian.water") + "\n", "utf-8")
    assert hotline(["dispatch", "evaluate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "accuracy: 0.0%" in out and "misses:" not in out and "W1" not in out
