"""Access to every service with the one key model, against the four services as
processes: `/v1/whoami` for every kind of key on every service, JSON refusals
for a request without a valid key, and /docs rendered by Swagger UI in headless
Chromium with every host but 127.0.0.1 unreachable (screenshots in test-output/)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import OFFLINE, chromium
from tests.e2e.cluster import SERVICES
from tests.privacy_world import OWNERS, World, privacy_world
from tests.support import ROOT, ensure_servers

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SHOTS = ROOT / "test-output"
DOCS_TIMEOUT_S = 30
NAMES = {
    "water": "冠县水务集团",
    "urban": "阳谷县综合行政执法局",
    "other": "东昌府区住房和城乡建设局",
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    ensure_servers()
    async with privacy_world(tmp_path_factory.mktemp("access")) as value:
        yield value


@pytest.mark.parametrize("service", SERVICES)
async def test_whoami_names_the_owner_of_every_kind_of_key(world: World, service: str) -> None:
    for name, (kind, owner) in OWNERS.items():
        response = await world.get(service, "/v1/whoami", name)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["kind"], body["id"]) == (kind.value, owner)
        assert body["name"] == NAMES.get(name, owner)
        assert body["key_id"] and body["key_id"] not in world.keys[name]


@pytest.mark.parametrize("service", SERVICES)
async def test_whoami_without_a_valid_key_is_a_json_401(world: World, service: str) -> None:
    url = world.cluster.url(service) + "/v1/whoami"
    for headers in (
        {},
        {"X-API-Key": "hk_not-issued"},
        {"Authorization": "Bearer hk_not-issued"},
        {"Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="},
    ):
        response = await world.http.get(url, headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"
        assert "API key" in response.json()["message"]
    bearer = await world.http.get(url, headers={"Authorization": f"Bearer {world.keys['web']}"})
    assert bearer.json()["kind"] == "channel"


# --- /docs offline ------------------------------------------------------------------------


def open_docs(driver: WebDriver, base: str, service: str) -> dict[str, Any]:
    """/docs of one service rendered by Swagger UI: what the page shows and fetched."""
    driver.get(f"{base}/docs")
    WebDriverWait(driver, DOCS_TIMEOUT_S, poll_frequency=0.2).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock")
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"docs-{service}.png"))
    paths = driver.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock-summary-path")
    return {
        "title": driver.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text,
        "paths": {p.get_attribute("data-path") for p in paths},
        "requested": driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        ),
    }


def the_internet_is_blocked(driver: WebDriver) -> bool:
    """Whether the browser really cannot reach a CDN (else the test proves nothing)."""
    outcome = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css', {mode: 'no-cors'})"
        ".then(() => done('reached'), () => done('blocked'));"
    )
    return bool(outcome == "blocked")


def browse_docs(urls: dict[str, str], folder: Path) -> dict[str, dict[str, Any]]:
    with chromium(folder / "profile", folder / "chromedriver.log", OFFLINE) as driver:
        driver.set_script_timeout(DOCS_TIMEOUT_S)
        seen = {service: open_docs(driver, url, service) for service, url in urls.items()}
        assert the_internet_is_blocked(driver)
    return seen


async def test_docs_render_with_the_internet_blocked(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SE_OFFLINE", "true")
    urls = {service: world.cluster.url(service) for service in SERVICES}
    seen = await asyncio.to_thread(browse_docs, urls, tmp_path)
    for service, page in seen.items():
        assert page["title"].startswith(f"Hotline {service}"), page["title"]
        assert "/v1/whoami" in page["paths"], service
        assert page["requested"], "the page fetched its assets"
        outside = [u for u in page["requested"] if not u.startswith(urls[service] + "/")]
        assert not outside, f"{service} /docs fetched from elsewhere: {outside}"
        assert any("/static-offline-docs/swagger-ui-bundle.js" in u for u in page["requested"])
