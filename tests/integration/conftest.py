"""Fixtures shared by the intake integration tests. Each test module defines
its own `harness` (intake built with the settings that module needs); `probe`
watches what that harness publishes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.intake_support import IntakeHarness, Probe, probing


@pytest.fixture
async def probe(harness: IntakeHarness) -> AsyncIterator[Probe]:
    async with probing(harness) as opened:
        yield opened
