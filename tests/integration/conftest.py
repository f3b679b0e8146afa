"""Fixtures shared by integration test modules. Intake: each module defines its
own `harness` (intake built with the settings that module needs); `probe`
watches what that harness publishes. Notifier: `receiver`, the departments'
webhook endpoint; `timed`, the notifier on a clock the test moves (timers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.settings import CommonSettings
from tests.intake_support import IntakeHarness, Probe, probing
from tests.integration.test_notifier_delivery import Receiver, directory_for
from tests.integration.test_notifier_timers import Timed, open_timed


@pytest.fixture
async def probe(harness: IntakeHarness) -> AsyncIterator[Probe]:
    async with probing(harness) as opened:
        yield opened


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    value = Receiver()
    await value.start()
    try:
        yield value
    finally:
        await value.stop()


@pytest.fixture
async def timed(
    settings: CommonSettings, receiver: Receiver, tmp_path: Path
) -> AsyncIterator[Timed]:
    async with open_timed(settings, receiver, directory_for(receiver, tmp_path)) as value:
        yield value
