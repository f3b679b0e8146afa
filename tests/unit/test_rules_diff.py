"""`hotline rules diff OLD NEW`: which tickets a change of the rules would send elsewhere."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from services.cli import main as hotline
from services.router.rules import SHIPPED_RULES
from tests.unit.test_rules import rule, rules_text


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("HOTLINE_"):
            monkeypatch.delenv(name)
    # The rules alone: these tests are about what a change of the rules does.
    monkeypatch.setenv("HOTLINE_DISPATCH_LISTS", "false")


OLD = rules_text(
    rule("noise", "{keywords: {any: [噪音]}}", "city.police"),
    rule("water", "{keywords: {any: [停水]}}", "{district}.water"),
    rule("local", "{district_kinds: [county]}", "{district}"),
)
NEW = rules_text(
    rule("noise-env", "{keywords: {any: [噪音]}}", "{district}.env"),
    rule("water", "{keywords: {any: [停水]}}", "{district}.water"),
    rule("county", "{district_kinds: [county]}", "{district}"),
)


def ticket(ticket_id: str, text: str, district: str = "冠县", **extra: str) -> str:
    fields = {"id": ticket_id, "channel": "phone", "district": district, "category": "help"}
    return json.dumps({**fields, "text": text, **extra}, ensure_ascii=False)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    old, new, tickets = tmp_path / "old.yaml", tmp_path / "new.yaml", tmp_path / "t.jsonl"
    old.write_text(OLD, encoding="utf-8")
    new.write_text(NEW, encoding="utf-8")
    lines = [
        ticket("T1", "楼下噪音扰民", expected_department="guanxian.env"),
        ticket("T2", "小区停水了", expected_department="guanxian.water"),
        ticket("T3", "路灯坏了"),
        ticket("T4", "路灯坏了", district="东昌府区"),
        "",
        "{not json",
        ticket("T5", "噪音", district="atlantis"),
        ticket("T6", "请问热线几点下班", expected_department="on_spot"),
    ]
    tickets.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return old, new, tickets


def test_diff_lists_the_tickets_that_go_elsewhere(
    files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    old, new, tickets = files
    assert hotline(["rules", "diff", str(old), str(new), "--tickets", str(tickets)]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[0] == "T1: city.police/noise -> guanxian.env/noise-env"
    assert lines[1].startswith(
        "5 tickets, 1 changed (2 more keep their department by another rule); "
        "expected department: old 1/2, new 2/2; decided at "
    )
    assert len(lines) == 2
    # Lines that are not tickets are named on stderr and skipped.
    assert f"{tickets}:6: skipped: " in out.err
    assert f"{tickets}:7: skipped: unknown district 'atlantis'" in out.err


def test_diff_of_a_file_with_itself_changes_nothing(
    files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    old, _, tickets = files
    assert hotline(["rules", "diff", str(old), str(old), "--tickets", str(tickets)]) == 0
    assert capsys.readouterr().out.startswith("5 tickets, 0 changed; expected department: old 1/2")


def test_diff_replays_the_sample_requests_by_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTLINE_DISPATCH_LISTS", "true")  # the shipped rules need their lists
    assert hotline(["rules", "diff", str(SHIPPED_RULES), str(SHIPPED_RULES)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("45 tickets, 0 changed; expected department: old 44/44, new 44/44")


def test_diff_to_manual_dispatch(
    files: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, _, tickets = files
    narrow = tmp_path / "narrow.yaml"
    narrow.write_text(rules_text(rule("noise", "{keywords: {any: [噪音]}}")), encoding="utf-8")
    assert hotline(["rules", "diff", str(old), str(narrow), "--tickets", str(tickets)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "T2: guanxian.water/water -> manual dispatch",
        "T3: guanxian/local -> manual dispatch",
        "T6: guanxian/local -> manual dispatch",
    ]
    assert lines[3].startswith("5 tickets, 3 changed; expected department: old 1/2, new 0/2")


def test_diff_with_an_invalid_file_prints_its_problems(
    files: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, _, tickets = files
    bad = tmp_path / "bad.yaml"
    bad.write_text(rules_text(rule("r", "{categories: [help]}", "city.nowhere")), "utf-8")
    assert hotline(["rules", "diff", str(old), str(bad), "--tickets", str(tickets)]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.splitlines() == [f"{bad}:11: rules[0] (r): unknown department 'city.nowhere'"]


def test_diff_with_missing_tickets(
    files: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new, _ = files
    absent = tmp_path / "absent.jsonl"
    assert hotline(["rules", "diff", str(old), str(new), "--tickets", str(absent)]) == 1
    assert capsys.readouterr().err.startswith(f"{absent}: cannot read the tickets")
