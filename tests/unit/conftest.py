"""Fixtures shared by unit test modules."""

from __future__ import annotations

import pytest

from shared.workcalendar import WorkCalendar


@pytest.fixture
def cal() -> WorkCalendar:
    """The working-day calendar of the reference city, without overrides."""
    return WorkCalendar("Asia/Shanghai")
