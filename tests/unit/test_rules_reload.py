"""Reloading the rules: a valid file replaces the engine, an invalid one leaves
the old rules running and says so in the log and the metrics."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.router.engine import RuleEngine
from services.router.reload import (
    BuildEngine,
    install_sighup,
    load_engine,
    reload_rules,
    watch_rules,
)
from services.router.rules import RulesError, RuleSet
from shared.directory import Directory, load_directory
from shared.settings import DATA_DIR
from shared.workcalendar import WorkCalendar
from tests.unit.test_rules import rule, rules_text

OLD = rules_text(rule("old", "{categories: [help]}"))
NEW = rules_text(rule("new", "{categories: [help]}"), rule("newer", "{categories: [praise]}"))
INVALID = rules_text(rule("bad", "{categories: [help]}", "city.nowhere"))


@dataclass
class Holder:
    engine: RuleEngine


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")


@pytest.fixture
def build(directory: Directory) -> BuildEngine:
    calendar = WorkCalendar("Asia/Shanghai")
    return lambda ruleset: RuleEngine(ruleset, directory, calendar)


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(OLD, encoding="utf-8")
    return path


def rule_ids(holder: Holder) -> list[str]:
    return [r.id for r in holder.engine.ruleset.rules]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def reloads(outcome: str) -> float:
    return metric("hotline_router_rules_reloads_total", outcome=outcome)


def started(rules_file: Path, build: BuildEngine, directory: Directory) -> Holder:
    return Holder(load_engine(rules_file, build, directory))


def test_load_engine_sets_the_metrics(
    rules_file: Path, build: BuildEngine, directory: Directory
) -> None:
    before = time.time()
    holder = started(rules_file, build, directory)
    assert rule_ids(holder) == ["old"]
    assert metric("hotline_router_rules_valid") == 1
    assert metric("hotline_router_rules_loaded_timestamp_seconds") >= before - 1


def test_load_engine_refuses_an_invalid_file(
    rules_file: Path, build: BuildEngine, directory: Directory
) -> None:
    rules_file.write_text(INVALID, encoding="utf-8")
    with pytest.raises(RulesError, match=r"rules\.yaml:11: rules\[0\] \(bad\): unknown department"):
        load_engine(rules_file, build, directory)


def test_a_valid_file_swaps_the_engine(
    rules_file: Path, build: BuildEngine, directory: Directory
) -> None:
    holder = started(rules_file, build, directory)
    ok_before, at = reloads("ok"), time.time()
    rules_file.write_text(NEW, encoding="utf-8")
    assert reload_rules(rules_file, holder, build, directory)
    assert rule_ids(holder) == ["new", "newer"]
    assert reloads("ok") == ok_before + 1
    assert metric("hotline_router_rules_valid") == 1
    assert metric("hotline_router_rules_loaded_timestamp_seconds") >= at - 1


def test_an_invalid_file_keeps_the_old_rules(
    rules_file: Path,
    build: BuildEngine,
    directory: Directory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = started(rules_file, build, directory)
    engine, invalid_before = holder.engine, reloads("invalid")
    rules_file.write_text(INVALID, encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="services.router.reload"):
        assert not reload_rules(rules_file, holder, build, directory)
    assert holder.engine is engine
    assert metric("hotline_router_rules_valid") == 0
    assert reloads("invalid") == invalid_before + 1
    assert "rules[0] (bad): unknown department 'city.nowhere'" in caplog.text
    # Fixed again: valid again.
    rules_file.write_text(NEW, encoding="utf-8")
    assert reload_rules(rules_file, holder, build, directory)
    assert metric("hotline_router_rules_valid") == 1


@pytest.mark.parametrize("damage", ["delete", "not-yaml", "schema"])
def test_other_bad_files_keep_the_old_rules(
    rules_file: Path, build: BuildEngine, directory: Directory, damage: str
) -> None:
    holder = started(rules_file, build, directory)
    engine = holder.engine
    if damage == "delete":
        rules_file.unlink()
    else:
        text = "rules: [" if damage == "not-yaml" else OLD.replace("help", "gossip")
        rules_file.write_text(text, encoding="utf-8")
    assert not reload_rules(rules_file, holder, build, directory)
    assert holder.engine is engine
    assert metric("hotline_router_rules_valid") == 0


def test_a_failing_build_keeps_the_old_rules(
    rules_file: Path, build: BuildEngine, directory: Directory
) -> None:
    holder = started(rules_file, build, directory)
    engine = holder.engine

    def broken(ruleset: RuleSet) -> RuleEngine:
        raise RuntimeError("no memory left")

    assert not reload_rules(rules_file, holder, broken, directory)
    assert holder.engine is engine


async def write(path: Path, text: str) -> None:
    await asyncio.to_thread(path.write_text, text, encoding="utf-8")


async def wait_for(holder: Holder, ids: list[str], rules_file: Path, text: str) -> None:
    """Bounded: rewrite the file now and then, in case the watch began after a write."""
    deadline = time.monotonic() + 15
    while rule_ids(holder) != ids:
        assert time.monotonic() < deadline, "the rules were not reloaded"
        await write(rules_file, text)
        for _ in range(10):
            await asyncio.sleep(0.1)
            if rule_ids(holder) == ids:
                return


async def test_watch_rules_swaps_on_a_change_and_ignores_an_invalid_file(
    rules_file: Path, build: BuildEngine, directory: Directory
) -> None:
    holder = started(rules_file, build, directory)
    task = asyncio.create_task(watch_rules(rules_file, holder, build, directory, debounce_ms=50))
    try:
        await wait_for(holder, ["new", "newer"], rules_file, NEW)
        invalid_before = reloads("invalid")
        await write(rules_file, INVALID)
        deadline = time.monotonic() + 15
        while reloads("invalid") == invalid_before:
            assert time.monotonic() < deadline, "the invalid file was not noticed"
            await asyncio.sleep(0.05)
        assert rule_ids(holder) == ["new", "newer"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)


async def test_sighup_reloads(rules_file: Path, build: BuildEngine, directory: Directory) -> None:
    holder = started(rules_file, build, directory)
    loop = asyncio.get_running_loop()
    install_sighup(loop, rules_file, holder, build, directory)
    try:
        await write(rules_file, NEW)
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 10
        while rule_ids(holder) != ["new", "newer"]:
            assert time.monotonic() < deadline, "SIGHUP did not reload the rules"
            await asyncio.sleep(0.05)
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


async def test_a_failing_watch_keeps_trying_and_still_stops(
    tmp_path: Path,
    rules_file: Path,
    build: BuildEngine,
    directory: Directory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = started(rules_file, build, directory)
    absent = tmp_path / "no such folder" / "rules.yaml"
    task = asyncio.create_task(watch_rules(absent, holder, build, directory, debounce_ms=50))
    deadline = time.monotonic() + 10
    while "failed; again in" not in caplog.text:
        assert time.monotonic() < deadline, "the failed watch was not logged"
        await asyncio.sleep(0.05)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=2)
    assert rule_ids(holder) == ["old"]
