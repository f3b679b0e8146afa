from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.settings import CommonSettings
from tests.support import ensure_servers, make_settings, purge_namespace, unique_namespace


@pytest.fixture(scope="session")
def servers() -> None:
    ensure_servers()


@pytest.fixture
async def settings(servers: None) -> AsyncIterator[CommonSettings]:
    """Settings with a namespace of the test's own; purged afterwards."""
    value = make_settings(unique_namespace())
    yield value
    await purge_namespace(value)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The compose test last: `make test` prepares its engine and images in the
    background meanwhile."""
    items.sort(key=lambda item: item.get_closest_marker("compose") is not None)
