"""Fixtures shared by integration test modules. Intake: each module defines its
own `harness` (intake built with the settings that module needs); `probe`
watches what that harness publishes. Notifier: `receiver`, the departments'
webhook endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.intake_support import IntakeHarness, Probe, probing
from tests.integration.test_notifier_delivery import Receiver


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
