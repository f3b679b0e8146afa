"""The lists and the model are reloaded with the rules: a change of either file
swaps the engine; a bad one keeps the last good engine and sets the validity
metric to 0, with the file and line in the log."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from services.router.knowledge import EngineFactory
from services.router.reload import load_engine, reload_rules, watch_rules
from services.router.rules import RulesError
from shared.directory import Directory
from shared.workcalendar import WorkCalendar
from tests.unit.test_dispatch_lists import LISTS
from tests.unit.test_rules import rule, rules_text
from tests.unit.test_rules_reload import Holder, metric, reloads

RULES = rules_text(rule("praise", "{categories: [praise]}", "{district}"))
MORE = LISTS.replace("8: [户口]", "8: [户口, 身份证]")


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    rules, lists = tmp_path / "rules" / "rules.yaml", tmp_path / "lists" / "lists.yaml"
    rules.parent.mkdir()
    lists.parent.mkdir()
    rules.write_text(RULES, encoding="utf-8")
    lists.write_text(LISTS, encoding="utf-8")
    return rules, lists, tmp_path / "model.joblib"


def started(files: tuple[Path, Path, Path], directory: Directory) -> tuple[Holder, EngineFactory]:
    rules, lists, model = files
    factory = EngineFactory(directory, WorkCalendar(), lists, model, plugins=False)
    return Holder(load_engine(rules, factory, directory)), factory


def terms(holder: Holder) -> set[str]:
    assert holder.engine.lists is not None
    return set(holder.engine.lists.ids)


def test_bad_lists_keep_the_last_good_engine(
    files: tuple[Path, Path, Path], directory: Directory, caplog: pytest.LogCaptureFixture
) -> None:
    holder, factory = started(files, directory)
    rules, lists, _ = files
    engine, invalid_before = holder.engine, reloads("invalid")
    lists.write_text(LISTS.replace("  police:\n", "  polize:\n"), encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="services.router.reload"):
        assert not reload_rules(rules, holder, factory, directory)
    assert holder.engine is engine
    assert metric("hotline_router_rules_valid") == 0
    assert reloads("invalid") == invalid_before + 1
    assert f"{lists}:26: types.polize: unknown department type" in caplog.text
    lists.write_text(MORE, encoding="utf-8")
    assert reload_rules(rules, holder, factory, directory)
    assert "身份证" in terms(holder)
    assert metric("hotline_router_rules_valid") == 1


def test_a_model_that_does_not_load_keeps_the_last_good_engine(
    files: tuple[Path, Path, Path], directory: Directory
) -> None:
    holder, factory = started(files, directory)
    rules, _, model = files
    engine = holder.engine
    model.write_bytes(b"truncated")
    assert not reload_rules(rules, holder, factory, directory)
    assert holder.engine is engine
    assert metric("hotline_router_rules_valid") == 0


def test_a_router_does_not_start_with_bad_lists(
    files: tuple[Path, Path, Path], directory: Directory
) -> None:
    rules, lists, model = files
    lists.write_text("types: {}", encoding="utf-8")
    factory = EngineFactory(directory, WorkCalendar(), lists, model, plugins=False)
    with pytest.raises(RulesError, match="types"):
        load_engine(rules, factory, directory)
    assert metric("hotline_router_rules_valid") == 0


async def test_a_change_of_the_lists_file_is_watched(
    files: tuple[Path, Path, Path], directory: Directory
) -> None:
    holder, factory = started(files, directory)
    rules, lists, _ = files
    task = asyncio.create_task(watch_rules(rules, holder, factory, directory, debounce_ms=50))
    try:
        deadline = time.monotonic() + 15
        while "身份证" not in terms(holder):
            assert time.monotonic() < deadline, "the lists were not reloaded"
            await asyncio.to_thread(lists.write_text, MORE, encoding="utf-8")
            await asyncio.sleep(0.5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)
