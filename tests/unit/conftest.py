"""Fixtures shared by unit test modules."""

from __future__ import annotations

import os

import pytest

from shared.directory import Directory, load_directory
from shared.settings import DATA_DIR
from shared.workcalendar import WorkCalendar


@pytest.fixture
def cal() -> WorkCalendar:
    """The working-day calendar of the reference city, without overrides."""
    return WorkCalendar("Asia/Shanghai")


@pytest.fixture(scope="module")
def directory() -> Directory:
    """The reference city's districts and departments."""
    return load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")


@pytest.fixture
def no_hotline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HOTLINE_ setting of the machine reaches the test: the defaults, unless
    the test sets one."""
    for name in list(os.environ):
        if name.upper().startswith("HOTLINE_"):
            monkeypatch.delenv(name)
