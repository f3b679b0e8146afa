"""The dashboard at stats' `/` in headless Chromium (Debian's chromium and
chromium-driver, installed by scripts/browser.sh): after the sample requests
went through the four services, the page asks for a key, then shows the numbers
the API gives, loads nothing from another host, and a screenshot is kept in
test-output/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.command import Command
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from services.demo import sample_requests, submission_of
from services.stats.dashboard import mount_dashboard
from services.stats.rates import measures
from shared.keys import KeyKind
from tests.browser import WIDTH, chromium
from tests.e2e.cluster import (
    Cluster,
    free_port,
    running_cluster,
)
from tests.support import ROOT, eventually, issue_keys, make_settings

pytestmark = pytest.mark.e2e

SCREENSHOT = ROOT / "test-output" / "dashboard.png"
RENDER_TIMEOUT_S = 30


@dataclass
class ApiView:
    """What the API answered, for the page to be compared with."""

    summary: dict[str, Any]
    trend: dict[str, Any]
    ranking: dict[str, Any]
    overdue: dict[str, Any]
    dispatch: dict[str, Any]


@pytest.fixture
async def cluster(servers: None, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path) as (value, _receiver):
        yield value


async def staff_key(cluster: Cluster) -> str:
    keys = await issue_keys(make_settings(cluster.namespace), {"staff": (KeyKind.STAFF, "wang.wu")})
    return keys["staff"]


async def get(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
    result: dict[str, Any] = response.json()
    return result


async def feed_samples(client: httpx.AsyncClient, cluster: Cluster) -> ApiView:
    """Post the 45 sample requests and wait until stats has counted them all."""
    samples = sample_requests()
    for sample in samples:
        response = await client.post(
            f"{cluster.url('intake')}/v1/tickets",
            json=submission_of(sample),
            headers={"Idempotency-Key": f"dashboard-{sample['id']}"},
        )
        assert response.status_code == 202, response.text
    dispatched = sum(1 for s in samples if s["expected_department"] != "on_spot")
    stats = cluster.url("stats")

    async def counted() -> bool:
        counts = (await get(client, f"{stats}/v1/stats/summary"))["counts"]
        ranked = (await get(client, f"{stats}/v1/stats/ranking"))["departments"]
        return bool(
            counts["received"] == len(samples)
            and counts["dispatched"] == dispatched
            and sum(d["dispatched"] for d in ranked) == dispatched
        )

    await eventually(counted, timeout_s=60)
    return ApiView(
        summary=await get(client, f"{stats}/v1/stats/summary"),
        trend=await get(client, f"{stats}/v1/stats/trend"),
        ranking=await get(client, f"{stats}/v1/stats/ranking"),
        overdue=await get(client, f"{stats}/v1/tickets?overdue=true&limit=50"),
        dispatch=await get(client, f"{stats}/v1/stats/dispatch-quality"),
    )


def text_of(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text).strip()


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def sign_in(driver: WebDriver, key: str) -> None:
    """The page asks for a key before it shows anything; enter it."""
    WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.2).until(
        lambda d: d.find_element(By.ID, "signin").is_displayed()
    )
    assert driver.find_element(By.ID, "status").get_attribute("data-state") == "signin"
    assert text_of(driver, "today-received") == "—", "no data before a key"
    driver.find_element(By.ID, "api-key").send_keys(key)
    driver.find_element(By.ID, "signin-submit").click()


def render(driver: WebDriver, url: str, key: str) -> None:
    """Open the page, sign in, wait (bounded) for its first complete refresh, keep
    a screenshot of the whole page, even when the page did not render."""
    driver.get(url)
    sign_in(driver, key)

    def refreshed(d: WebDriver) -> bool:
        state = d.find_element(By.ID, "status").get_attribute("data-state")
        if state == "error":
            raise AssertionError(f"the page reports: {text_of(d, 'status')}")
        return state == "ok"

    try:
        WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.2).until(refreshed)
    except TimeoutException:
        raise AssertionError(
            f"the page did not render within {RENDER_TIMEOUT_S}s: {text_of(driver, 'status')}"
        ) from None
    finally:
        keep_screenshot(driver)


def keep_screenshot(driver: WebDriver) -> None:
    """The whole page: the window grows to the page's height plus its own frame
    (headless Chromium counts the frame in the window size)."""
    height, frame = driver.execute_script(
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
    )
    driver.set_window_size(WIDTH, int(height) + int(frame))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOT))


def check_today(driver: WebDriver, summary: dict[str, Any]) -> None:
    counts = summary["counts"]
    for element_id, field in (
        ("today-received", "received"),
        ("today-dispatched", "dispatched"),
        ("today-on-spot", "resolved_on_spot"),
        ("today-linked", "linked"),
        ("today-resolved", "resolved"),
        ("today-overdue", "overdue"),
    ):
        assert int(text_of(driver, element_id).replace(",", "")) == counts[field], field
    for name, rate in summary["rates"].items():
        if name not in ("completion", "response", "resolution", "satisfaction"):
            continue
        shown = driver.find_element(By.ID, f"rate-{name}")
        assert shown.text == percent(rate["value"]), name
        fraction = f"{rate['numerator']} / {rate['denominator']}"
        assert text_of(driver, f"rate-{name}-fraction") == fraction, name
        assert shown.get_attribute("data-numerator") == str(rate["numerator"]), name
        assert shown.get_attribute("data-denominator") == str(rate["denominator"]), name
        title = driver.find_element(By.ID, f"card-{name}").get_attribute("title") or ""
        assert fraction in title, title


def check_trend(driver: WebDriver, trend: dict[str, Any]) -> None:
    bars = driver.find_elements(By.CSS_SELECTOR, "#trend-chart rect.bar-received")
    assert len(bars) == len(trend["days"]) == 30
    today = trend["days"][-1]
    assert today["day"] == trend["to"]
    mark = driver.find_element(By.CSS_SELECTOR, f"#trend-chart rect[data-day='{trend['to']}']")
    assert "today" in (mark.get_attribute("class") or "")
    assert mark.get_attribute("data-received") == str(today["received"])
    assert float(mark.get_attribute("height") or 0) > 0, "today's bar is drawn"
    assert driver.find_elements(By.CSS_SELECTOR, "#trend-chart polyline.line-dispatched")


def check_ranking(driver: WebDriver, ranking: dict[str, Any]) -> None:
    rows = driver.find_elements(By.CSS_SELECTOR, "#ranking-table tbody tr")
    departments = ranking["departments"]
    assert departments and len(rows) == len(departments)
    shown = [row.get_attribute("data-department") for row in rows]
    assert shown == [d["department"] for d in departments]
    laggards = driver.find_elements(By.CSS_SELECTOR, "#ranking-table tbody tr.laggard")
    assert len(laggards) == sum(1 for d in departments if d["laggard"])
    # Each department under its Chinese name, with its id beside.
    for row, department in zip(rows, departments, strict=True):
        assert department["department_name"] != department["department"]
        assert department["department_name"] in row.text and department["department"] in row.text


def check_overdue(driver: WebDriver, page: dict[str, Any]) -> None:
    rows = driver.find_elements(By.CSS_SELECTOR, "#overdue-list tbody tr")
    assert len(rows) == len(page["items"])
    assert text_of(driver, "overdue-total").startswith(f"共 {page['total']} 件")
    assert driver.find_element(By.ID, "overdue-empty").is_displayed() == (not page["items"])
    for link, item in zip(
        driver.find_elements(By.CSS_SELECTOR, "#overdue-list a.ticket-link"),
        page["items"],
        strict=True,
    ):
        assert link.text == item["ticket_id"]
        assert (link.get_attribute("href") or "").endswith(f"/v1/tickets/{item['ticket_id']}")


def check_dispatch(driver: WebDriver, report: dict[str, Any]) -> None:
    first = report["first_time_right"]
    # The samples were all dispatched today and none was returned.
    assert first["denominator"] > 0 and first["numerator"] == first["denominator"]
    assert text_of(driver, "rate-first-time-right") == percent(first["value"])
    fraction = f"{first['numerator']} / {first['denominator']}"
    assert text_of(driver, "rate-first-time-right-fraction") == fraction
    rows = driver.find_elements(By.CSS_SELECTOR, "#dispatch-deciders tbody tr")
    assert [row.get_attribute("data-decided-by") for row in rows] == list(report["by_decided_by"])
    assert {"rule", "list"} <= set(report["by_decided_by"])
    assert driver.find_element(By.ID, "dispatch-misroutes-empty").is_displayed()


def check_stays_local(driver: WebDriver, base: str) -> None:
    requested = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert requested, "the page fetched its script, style sheet and data"
    outside = [url for url in requested if not str(url).startswith(base + "/")]
    assert not outside, f"requests to other hosts: {outside}"
    # CSP violations and script errors land in the console log.
    console = driver.execute(Command.GET_LOG, {"type": "browser"})["value"]
    errors = [e for e in console if e["level"] == "SEVERE"]
    assert not errors, f"console errors: {errors}"


def browse(base: str, api: ApiView, tmp_path: Path, key: str) -> None:
    with chromium(tmp_path / "chromium-profile", tmp_path / "chromedriver.log") as driver:
        render(driver, f"{base}/", key)
        assert text_of(driver, "who-name") == "wang.wu（热线中心）"
        assert text_of(driver, "today-date") == api.summary["to"]
        check_today(driver, api.summary)
        check_trend(driver, api.trend)
        check_ranking(driver, api.ranking)
        check_overdue(driver, api.overdue)
        check_dispatch(driver, api.dispatch)
        check_stays_local(driver, base)


async def test_dashboard_shows_what_the_api_gives(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium never downloads anything
    key = await staff_key(cluster)
    async with httpx.AsyncClient(timeout=10.0, headers={"X-API-Key": key}) as client:
        api = await feed_samples(client, cluster)
    assert api.summary["counts"]["received"] == 45
    # Selenium blocks: run it off the event loop, which serves the webhook receiver.
    await asyncio.to_thread(browse, cluster.url("stats"), api, tmp_path, key)
    assert SCREENSHOT.stat().st_size > 10_000, "a screenshot of the page is kept"


# Citizen text is shown as text: markup in it must neither render nor run.
HOSTILE = '<img src=x onerror="document.body.dataset.pwned=1">井盖<b>丢失</b>'
STUB_KEY = "hk_stub-key"


def stub_app(today: date, downloads: list[str]) -> FastAPI:
    """The dashboard in front of canned answers shaped as the stats API gives
    them: an empty day, no departments, one overdue ticket with hostile text;
    every data call needs STUB_KEY (401 otherwise, as the API answers)."""
    app = FastAPI()
    days = [(today - timedelta(days=29 - i)).isoformat() for i in range(30)]

    @app.middleware("http")
    async def keyed(request: Request, call_next: Any) -> Any:
        if request.url.path.startswith("/v1/") and request.headers.get("x-api-key") != STUB_KEY:
            return JSONResponse({"detail": "a valid API key is required"}, status_code=401)
        if request.query_params.get("format") == "csv":
            downloads.append(request.url.path)
        return await call_next(request)

    @app.get("/v1/whoami")
    async def whoami() -> dict[str, str]:
        return {"kind": "staff", "id": "stub.staff", "key_id": "abc", "name": "stub.staff"}

    @app.get("/v1/tickets/{ticket_id}")
    async def ticket(ticket_id: str) -> dict[str, Any]:
        if ticket_id != "LC<x>&1":
            raise HTTPException(404)
        contact = {"name": "张*", "phone": "138****5678", "town": "贾镇", "address": "***"}
        history = [{"event_type": "received", "at": "2026-01-01T01:00:00+00:00"}]
        return {
            "ticket_id": ticket_id,
            "status": "dispatched",
            "text": HOSTILE,
            "contact": contact,
            "history": history,
        }

    @app.get("/v1/stats/summary")
    async def summary() -> dict[str, Any]:
        return {"from": today, "to": today, "filters": {}, **measures({})}

    @app.get("/v1/stats/trend")
    async def trend() -> dict[str, Any]:
        rows = [{"day": d, "received": 0, "dispatched": 0} for d in days]
        return {"from": days[0], "to": today, "days": rows}

    @app.get("/v1/stats/ranking")
    async def ranking() -> dict[str, Any]:
        return {"from": days[0], "to": today, "departments": []}

    @app.get("/v1/stats/dispatch-quality")
    async def dispatch_quality() -> dict[str, Any]:
        empty = {"value": None, "numerator": 0, "denominator": 0}
        # A return reason is a department's free text: shown as text too.
        reasons = [{"reason": HOSTILE, "returns": 2}]
        return {
            "first_time_right": empty,
            "by_decided_by": {},
            "returns_by_reason": reasons,
            "misroutes": [],
            "from": days[0],
            "to": today,
            "filters": {},
        }

    @app.get("/v1/tickets")
    async def tickets() -> dict[str, Any]:
        item = {
            "ticket_id": "LC<x>&1",
            "department": "<script>alert(1)</script>",
            "district": "东昌府区",
            "deadline": "2026-01-02T03:04:05+00:00",
            "text": HOSTILE,
        }
        return {"total": 1, "offset": 0, "limit": 50, "items": [item]}

    mount_dashboard(app)
    return app


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
    )
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return bool(server.started)

    try:
        await eventually(started, timeout_s=10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def browse_stub(base: str, tmp_path: Path, downloads: list[str]) -> None:
    with chromium(tmp_path / "chromium-profile", tmp_path / "chromedriver.log") as driver:
        driver.get(f"{base}/")
        sign_in(driver, "hk_wrong")
        WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.2).until(
            lambda d: "密钥无效" in text_of(d, "signin-error")
        )
        assert text_of(driver, "today-received") == "—"
        driver.find_element(By.ID, "api-key").send_keys(STUB_KEY)
        driver.find_element(By.ID, "signin-submit").click()
        WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.2).until(
            lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "ok"
        )
        for name in ("completion", "response", "resolution", "satisfaction"):
            assert text_of(driver, f"rate-{name}") == "—"
            assert text_of(driver, f"rate-{name}-fraction") == "0 / 0"
        assert text_of(driver, "today-received") == "0"
        assert "暂无数据" in text_of(driver, "trend-chart")
        assert driver.find_element(By.ID, "ranking-empty").is_displayed()
        row = driver.find_element(By.CSS_SELECTOR, "#overdue-list tbody tr")
        assert HOSTILE[:40] in row.text and "<script>alert(1)</script>" in row.text
        assert not driver.find_elements(By.CSS_SELECTOR, "#overdue-list img, #overdue-list b")
        assert driver.execute_script("return document.body.dataset.pwned") is None
        link = driver.find_element(By.CSS_SELECTOR, "#overdue-list a.ticket-link")
        assert link.text == "LC<x>&1"
        assert link.get_attribute("href") == f"{base}/v1/tickets/LC%3Cx%3E%261"
        assert "已超" in row.text, "how long it is overdue"
        assert text_of(driver, "rate-first-time-right") == "—"
        reason = driver.find_element(By.CSS_SELECTOR, "#dispatch-returns tbody tr")
        assert HOSTILE[:40] in reason.text
        assert not driver.find_elements(
            By.CSS_SELECTOR, "#dispatch-returns img, #dispatch-returns b"
        )
        assert driver.find_element(By.ID, "dispatch-misroutes-empty").is_displayed()
        link.click()  # the history opens in the page, fetched with the key
        WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.2).until(
            lambda d: d.find_element(By.ID, "ticket-detail").is_displayed()
        )
        assert text_of(driver, "ticket-contact") == "联系人：张*，138****5678，贾镇，***"
        assert driver.execute_script("return document.body.dataset.pwned") is None
        driver.find_element(By.ID, "csv-ranking").click()  # fetched with the key
        WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.2).until(lambda _: downloads)
        assert downloads == ["/v1/stats/ranking"]
        driver.find_element(By.ID, "signout").click()
        assert driver.find_element(By.ID, "signin").is_displayed()
        assert driver.execute_script("return sessionStorage.length") == 0


async def test_dashboard_escapes_citizen_text_and_shows_empty_data(tmp_path: Path) -> None:
    downloads: list[str] = []
    async with serving(stub_app(date.today(), downloads)) as base:
        await asyncio.to_thread(browse_stub, base, tmp_path, downloads)
