"""The workbench in headless Chromium against the four services and the
workbench as processes: every step of the workbench issue through the pages.

An agent registers a call (with the dispatch preview); the department signs
in, accepts and asks for an extension; staff approves it; the department
resolves; the citizen looks it up and sees the reply. A second ticket, sent by
a citizen through the web form, is returned and dispatched by hand from the
manual queue. Another department cannot open the first ticket, and a form
posted without its CSRF token is refused. Screenshots of each page go to
test-output/workbench/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.browser import OFFLINE, chromium
from tests.e2e.test_dashboard import check_stays_local
from tests.workbench_browser import DESK, PHONE, WAIT_S, Browser
from tests.workbench_support import WATER_CALL, Bench, bench_fixture

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CALL_TEXT = "村里安装自来水管道占用了我家的耕地，补偿款至今未付，希望尽快解决"
REPLY = "经核实，补偿款已于今日发放到位，并向村民说明了情况。"
# Nothing the router knows claims it once the zone returned it (the rules send
# whatever is in a zone to the zone; no list term matches): the manual queue.
POTHOLE = "园区北边那条小路上有个坑，晚上看不见，已经有人摔倒了"


bench = bench_fixture("workbench-e2e")


@pytest.fixture
def browser(bench: Bench, tmp_path: Path) -> Iterator[Browser]:
    with chromium(tmp_path / "profile", tmp_path / "chromedriver.log", OFFLINE) as driver:
        driver.set_window_size(*DESK)
        yield Browser(driver, bench.url)


def register_call(page: Browser) -> str:
    """The agent's page: the call, the live preview, the ticket number."""
    page.fill("caller_name", "张先生")
    page.fill("caller_number", "13912345678")
    page.choose("district", "guanxian")
    Select(page.find("town")).select_by_visible_text("贾镇")
    page.choose("category", "help")
    page.fill("text", CALL_TEXT)
    page.fill("address", "贾镇东街")
    page.find("do-preview").click()  # the script fills the preview in place
    assert "冠县水务" in page.text("preview-department")
    assert page.text("preview-deadline") != "—"
    page.shot("agent")
    page.click("do-submit")
    number = page.text("ticket-number")
    page.shot("agent-done")
    return number


def department_accepts_and_asks_for_time(page: Browser, ticket_id: str) -> None:
    row = page.reload_until("/dept?tab=pending", f"tr[data-ticket='{ticket_id}']")
    assert "剩余" in row.text
    assert int(page.text("count-pending")) >= 1
    page.shot("worklist")
    page.press(page.find("worklist").find_element(By.LINK_TEXT, ticket_id))
    page.click("do-accept")
    assert page.text("notice") == "已签收"
    page.fill("extension-days", "3")
    page.fill("extension-reason", "需要与村委会核对补偿名单")
    page.click("do-extension")
    assert "已申请延期" in page.text("notice")
    assert page.find("ticket-status").get_attribute("data-status") == "extension_requested"
    page.shot("ticket")


def staff_approves(page: Browser, ticket_id: str) -> None:
    row = page.reload_until("/staff/extensions", f"tr[data-ticket='{ticket_id}']")
    page.press(row.find_element(By.CSS_SELECTOR, "button.approve"))
    assert page.text("notice") == "已审核。"
    page.shot("extensions")


def department_resolves(page: Browser, ticket_id: str) -> None:
    page.open(f"/tickets/{ticket_id}")
    assert "已延期" in page.find("main").text
    page.fill("resolve-reply", REPLY)
    page.click("do-resolve")
    assert page.text("notice") == "已办结"
    assert page.find("ticket-status").get_attribute("data-status") == "resolved"


def citizen_sees_the_reply(page: Browser, ticket_id: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while True:
        page.open("/citizen/lookup")
        page.fill("ticket", ticket_id)
        page.fill("phone_last4", "5678")
        page.click("do-lookup")
        status = page.wait_for("lookup-status").get_attribute("data-status")
        if status == "resolved":
            break
        assert time.monotonic() < deadline, f"the lookup still says {status}"
        time.sleep(0.5)
    assert page.text("lookup-reply") == REPLY
    assert "13912345678" not in page.find("main").text
    page.shot("citizen-lookup", PHONE)


def citizen_submits(page: Browser) -> str:
    page.driver.set_window_size(*PHONE)
    page.open("/citizen")
    page.choose("district", "econ-zone")
    page.choose("category", "complaint")
    page.fill("text", POTHOLE)
    page.fill("phone", "13700001111")
    page.shot("citizen-submit", PHONE)
    page.click("do-submit")
    number = page.text("ticket-number")
    page.shot("citizen-done", PHONE)
    return number


def returned_then_dispatched_by_hand(page: Browser, bench: Bench, ticket_id: str) -> None:
    page.sign_in(bench.keys["zone"])
    page.reload_until("/dept?tab=pending", f"tr[data-ticket='{ticket_id}']")
    page.open(f"/tickets/{ticket_id}")
    page.fill("return-reason", "这条路由市综合行政执法局养护，不属于管委会")
    page.click("do-return")
    assert page.text("notice") == "已退单"
    page.sign_out()
    page.sign_in(bench.keys["staff"])
    row = page.reload_until("/staff/queue", f"tr[data-ticket='{ticket_id}']")
    assert "曾退单" in row.text
    Select(page.find(f"pick-{ticket_id}")).select_by_value("city.urban-mgmt")
    page.shot("queue")
    page.press(row.find_element(By.CSS_SELECTOR, "button.pick"))
    assert page.text("notice") == "已派单。"
    page.open(f"/tickets/{ticket_id}")
    assert page.find("ticket-status").get_attribute("data-status") == "dispatched"
    assert page.text("ticket-department") == "市综合行政执法局"
    page.open("/staff/overdue")
    assert page.find("dashboard-link").get_attribute("href") == bench.cluster.url("stats") + "/"
    page.shot("overdue")
    page.sign_out()


def other_department_is_refused(page: Browser, bench: Bench, ticket_id: str) -> None:
    page.sign_in(bench.keys["other"])
    page.open(f"/tickets/{ticket_id}")
    assert page.wait_for("error-page")
    assert "无权查看" in page.find("main").text
    assert "耕地" not in page.find("main").text
    page.shot("other-department")


def form_without_csrf_is_refused(page: Browser) -> None:
    page.driver.execute_script(
        "document.querySelector('form[action=\"/signout\"] input[name=csrf]').remove()"
    )
    page.click("signout")
    assert "表单已失效" in page.text("error-page")
    page.shot("csrf-refused")
    page.open("/dept")
    assert "阳谷县" in page.text("who"), "still signed in: the forged sign-out did nothing"


# Other calls for the same department, so its worklist is not a list of one.
MORE_CALLS = (
    ("13800000101", "help", "小区自来水水压太低，高层用户白天基本没有水"),
    ("13800000102", "complaint", "自来水管道漏水好几天了，路面一直积水"),
    ("13800000103", "consultation", "咨询新装水表需要准备什么材料"),
)


async def more_calls(bench: Bench) -> None:
    async with httpx.AsyncClient(timeout=30.0) as http:
        for number, category, text in MORE_CALLS:
            body = {**WATER_CALL, "caller_number": number, "category": category, "text": text}
            response = await http.post(
                bench.cluster.url("intake") + "/v1/agent/tickets",
                json=body | {"agent_id": "seat-042", "call_id": f"more-{number}"},
                headers={"X-API-Key": bench.keys["agent"]},
            )
            assert response.status_code == 202, response.text


async def test_every_step_through_the_browser(bench: Bench, browser: Browser) -> None:
    await more_calls(bench)
    browser.sign_in(bench.keys["agent"])
    first = register_call(browser)
    check_stays_local(browser.driver, bench.url)
    browser.sign_out()
    browser.sign_in(bench.keys["water"])
    department_accepts_and_asks_for_time(browser, first)
    browser.sign_out()
    browser.sign_in(bench.keys["staff"])
    staff_approves(browser, first)
    browser.sign_out()
    browser.sign_in(bench.keys["water"])
    department_resolves(browser, first)
    browser.sign_out()
    citizen_sees_the_reply(browser, first)
    second = citizen_submits(browser)
    returned_then_dispatched_by_hand(browser, bench, second)
    other_department_is_refused(browser, bench, first)
    form_without_csrf_is_refused(browser)
    async with httpx.AsyncClient() as http:
        ticket = await http.get(
            f"{bench.cluster.url('router')}/v1/tickets/{second}",
            headers={"X-API-Key": bench.keys["staff"]},
        )
    assert ticket.json()["department"] == "city.urban-mgmt"
    assert ticket.json()["returned_by"] == ["econ-zone"]
