"""The workbench against the real services (four processes and the workbench,
real RabbitMQ and store), over HTTP as a browser without JavaScript would use
it: sign-in and sessions, CSRF, roles, refusals shown with nothing changed,
revoked keys, the agent's preview, lookup and call-back, 转派, and deadlines
passing on a moved clock. The citizen pages: test_workbench_citizen.py."""

from __future__ import annotations

import re

import pytest

from tests.support import eventually
from tests.workbench_support import (
    WATER_CALL,
    Bench,
    bench_fixture,
    browser,
    csrf_of,
    new_ticket,
    router_act,
    router_ticket,
    sign_in,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


bench = bench_fixture("workbench", with_clock=True)


async def test_health_readiness_and_metrics(bench: Bench) -> None:
    async with browser(bench) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {
            "intake": True,
            "router": True,
            "notifier": True,
            "stats": True,
            "store": True,
        }
        assert (await client.get("/healthz")).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert "hotline_http_requests_total{" in metrics and 'service="workbench"' in metrics


async def test_sign_in_sets_a_strict_http_only_session_cookie(bench: Bench) -> None:
    async with browser(bench) as client:
        signed = await sign_in(client, bench.keys["water"])
        assert signed.status_code == 303 and signed.headers["location"] == "/dept"
        cookie = signed.headers["set-cookie"]
        assert "wb_session=" in cookie and "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert bench.keys["water"] not in cookie
        page = await client.get("/dept")
        assert page.status_code == 200 and "待签收" in page.text and "冠县水务" in page.text
        out = await client.post("/signout", data={"csrf": csrf_of(page)})
        assert out.headers["location"] == "/signin?notice=signed_out"
        assert (await client.get("/dept")).headers["location"] == "/signin"


@pytest.mark.parametrize("key", ["web", "nobody"])
async def test_sign_in_refuses_keys_that_are_not_for_people(bench: Bench, key: str) -> None:
    async with browser(bench) as client:
        refused = await sign_in(client, bench.keys.get(key, "hk_never-issued"))
        assert refused.status_code == 401
        assert "wb_session" not in refused.headers.get("set-cookie", "")
        assert 'role="alert"' in refused.text


async def test_staff_pages_refuse_a_department_with_a_403_page(bench: Bench) -> None:
    async with browser(bench) as client:
        await sign_in(client, bench.keys["water"])
        for path in ("/staff/queue", "/staff/extensions", "/staff/overdue", "/agent"):
            page = await client.get(path)
            assert page.status_code == 403, path
            assert "无权访问" in page.text and "Traceback" not in page.text


async def test_a_refused_action_is_shown_next_to_its_form_and_changes_nothing(
    bench: Bench,
) -> None:
    ticket_id = await new_ticket(bench, WATER_CALL, "wb-int-refused")
    async with browser(bench) as client:
        await sign_in(client, bench.keys["water"])
        page = await client.get(f"/tickets/{ticket_id}")
        assert page.status_code == 200 and 'id="form-accept"' in page.text
        # Forged: the page offers no 办结 before 签收, the router refuses it.
        refused = await client.post(
            f"/tickets/{ticket_id}/resolve", data={"csrf": csrf_of(page), "reply": "已处理完毕"}
        )
        assert refused.status_code == 409
        assert 'id="error-resolve"' in refused.text and "工单当前状态不允许此操作" in refused.text
        assert (await router_ticket(bench, ticket_id))["status"] == "dispatched"
        short = await client.post(
            f"/tickets/{ticket_id}/return", data={"csrf": csrf_of(page), "reason": "x"}
        )
        assert short.status_code == 422 and 'id="error-return"' in short.text
        assert (await router_ticket(bench, ticket_id))["status"] == "dispatched"


async def test_agent_preview_shows_where_the_rules_send_the_call(bench: Bench) -> None:
    async with browser(bench) as client:
        await sign_in(client, bench.keys["agent"])
        page = await client.get("/agent")
        form = {"csrf": csrf_of(page), **WATER_CALL}
        partial = await client.post("/agent/preview", data=form, headers={"X-Partial": "1"})
        assert partial.status_code == 200 and "<html" not in partial.text
        assert 'id="preview-department">冠县水务集团<' in partial.text
        # The lists decide it, and the page says which words of the call did.
        assert 'data-decided-by="list"' in partial.text
        assert "自来水管道" in partial.text
        whole = await client.post("/agent/preview", data=form)
        assert "<html" in whole.text and "冠县水务集团" in whole.text
        unknown = await client.post(
            "/agent/preview", data=form | {"district": "atlantis"}, headers={"X-Partial": "1"}
        )
        assert 'id="preview-error"' in unknown.text and "atlantis" in unknown.text


async def test_agent_finds_a_callers_tickets_by_phone(bench: Bench) -> None:
    call = WATER_CALL | {"caller_number": "13912340077", "caller_name": "赵女士"}
    ticket_id = await new_ticket(bench, call, "wb-by-phone")
    async with browser(bench) as client:
        await sign_in(client, bench.keys["agent"])

        async def listed() -> bool:
            page = await client.get("/agent/lookup", params={"q": "13912340077"})
            return f'data-ticket="{ticket_id}"' in page.text

        await eventually(listed, timeout_s=30)
        ticket = await client.get(f"/tickets/{ticket_id}")
        assert "赵女士" in ticket.text and "13912340077" in ticket.text
        bad = await client.get("/agent/lookup", params={"q": "hello"})
        assert bad.status_code == 422 and 'id="lookup-error"' in bad.text


async def test_agent_records_the_call_back_and_the_router_closes_the_ticket(
    bench: Bench,
) -> None:
    ticket_id = await new_ticket(bench, WATER_CALL | {"caller_number": "13912340088"}, "wb-cb")
    await router_act(bench, ticket_id, "accept", {})
    await router_act(bench, ticket_id, "resolve", {"reply": "已协调发放补偿款"})
    async with browser(bench) as client:
        await sign_in(client, bench.keys["agent"])
        page = await client.get(f"/tickets/{ticket_id}")
        assert 'id="form-feedback"' in page.text and "已协调发放补偿款" in page.text
        fields = {"csrf": csrf_of(page), "rating": "satisfied", "solved": "yes"}
        done = await client.post(f"/tickets/{ticket_id}/feedback", data=fields)
        assert done.headers["location"] == f"/tickets/{ticket_id}?done=feedback"

    async def closed() -> bool:
        return (await router_ticket(bench, ticket_id))["status"] == "closed"

    await eventually(closed, timeout_s=30)
    async with browser(bench) as client:
        await sign_in(client, bench.keys["water"])

        async def in_done_tab() -> bool:
            page = await client.get("/dept?tab=done")
            return f'data-ticket="{ticket_id}"' in page.text

        # Closed tickets come from stats, newest first, once it has counted them.
        await eventually(in_done_tab, timeout_s=30)


async def test_a_form_without_its_csrf_token_is_refused(bench: Bench) -> None:
    ticket_id = await new_ticket(bench, WATER_CALL | {"caller_number": "13912340002"}, "wb-csrf")
    async with browser(bench) as client:
        await sign_in(client, bench.keys["water"])
        for data in ({}, {"csrf": "forged"}):
            refused = await client.post(f"/tickets/{ticket_id}/accept", data=data)
            assert refused.status_code == 403 and "CSRF" in refused.text
        assert (await router_ticket(bench, ticket_id))["status"] == "dispatched"
        anonymous = await client.post("/citizen/submit", data={"text": "x"})
        assert anonymous.status_code == 403


async def test_another_department_cannot_open_the_ticket(bench: Bench) -> None:
    ticket_id = await new_ticket(bench, WATER_CALL | {"caller_number": "13912340003"}, "wb-other")
    async with browser(bench) as client:
        await sign_in(client, bench.keys["other"])
        page = await client.get(f"/tickets/{ticket_id}")
        assert page.status_code == 403
        assert "耕地" not in page.text and "13912340003" not in page.text
        listed = await client.get("/dept?tab=pending")
        assert ticket_id not in listed.text


async def test_a_revoked_key_signs_the_user_out_with_a_message(bench: Bench) -> None:
    async with browser(bench) as client:
        await sign_in(client, bench.keys["seat-099"])
        assert (await client.get("/agent")).status_code == 200
        await bench.revoke("seat-099")

        async def signed_out() -> bool:
            page = await client.get("/agent")
            return str(page.headers.get("location")) == "/signin?notice=revoked"

        await eventually(signed_out, timeout_s=10)
        notice = await client.get("/signin?notice=revoked")
        assert "已过期或被吊销" in notice.text


async def test_the_ticket_page_lists_the_notices_sent_and_the_history(bench: Bench) -> None:
    ticket_id = await new_ticket(bench, WATER_CALL | {"caller_number": "13912340044"}, "wb-note")
    for key in ("water", "staff"):
        async with browser(bench) as client:
            await sign_in(client, bench.keys[key])

            async def delivered() -> bool:
                page = await client.get(f"/tickets/{ticket_id}")
                return "派单通知" in page.text and "已送达" in page.text

            await eventually(delivered, timeout_s=30)

            async def history() -> bool:
                page = await client.get(f"/tickets/{ticket_id}")
                return "<strong>受理</strong>" in page.text and "<strong>派单</strong>" in page.text

            await eventually(history, timeout_s=30)


async def test_a_sub_centre_passes_a_ticket_to_one_of_its_units(bench: Bench) -> None:
    local = WATER_CALL | {"caller_number": "13912340055", "category": "suggestion"}
    local |= {"text": "村委会门口的宣传栏好几年没换过内容了"}
    ticket_id = await new_ticket(bench, local, "wb-sub")
    assert (await router_ticket(bench, ticket_id))["department"] == "guanxian"
    async with browser(bench) as client:
        await sign_in(client, bench.keys["county"])
        page = await client.get(f"/tickets/{ticket_id}")
        assert 'id="form-sub-dispatch"' in page.text and 'value="guanxian.water"' in page.text
        fields = {"csrf": csrf_of(page), "department": "guanxian.water"}
        passed = await client.post(f"/tickets/{ticket_id}/sub-dispatch", data=fields)
        assert passed.headers["location"] == "/dept?done=sub-dispatch"
        assert "已转派" in (await client.get(passed.headers["location"])).text
    assert (await router_ticket(bench, ticket_id))["department"] == "guanxian.water"


async def test_deadlines_passing_show_in_the_tabs_and_close_the_return_window(
    bench: Bench,
) -> None:
    """Two weeks later (every process on one moved clock): the ticket is under
    已超期, the return window has closed and the refusal says so."""
    ticket_id = await new_ticket(bench, WATER_CALL | {"caller_number": "13912340066"}, "wb-late")
    bench.cluster.set_clock_offset(14 * 24 * 3600)
    try:
        async with browser(bench) as client:
            await sign_in(client, bench.keys["water"])
            late = await client.get("/dept?tab=overdue")
            assert f'data-ticket="{ticket_id}"' in late.text and "已超期" in late.text
            page = await client.get(f"/tickets/{ticket_id}")
            fields = {"csrf": csrf_of(page), "reason": "不属于本单位职责"}
            refused = await client.post(f"/tickets/{ticket_id}/return", data=fields)
            assert refused.status_code == 409
            assert 'id="error-return"' in refused.text and "已超过退单时限" in refused.text
            assert "不属于本单位职责" in refused.text, "what was typed is kept"
        assert (await router_ticket(bench, ticket_id))["status"] == "dispatched"
    finally:
        bench.cluster.set_clock_offset(0)


async def test_an_answer_on_the_spot_gets_its_number_at_once(bench: Bench) -> None:
    async with browser(bench) as client:
        await sign_in(client, bench.keys["agent"])
        page = await client.get("/agent")
        call_id = re.search(r'name="call_id" value="([^"]+)"', page.text)
        assert call_id, "each call form carries its own call id"
        fields = {"csrf": csrf_of(page), "call_id": call_id.group(1), **WATER_CALL}
        fields |= {"caller_number": "13912340099", "category": "consultation"}
        fields |= {"text": "咨询自来水水费怎么交", "on_spot_answer": "可在营业厅或手机银行缴纳"}
        done = await client.post("/agent/submit", data=fields)
        again = await client.post("/agent/submit", data=fields)
    assert done.status_code == 200 and "已当场办结" in done.text
    number = re.search(r'id="ticket-number">([A-Z0-9]+)<', done.text)
    assert number and f'id="ticket-number">{number.group(1)}<' in again.text, "one call, one ticket"
