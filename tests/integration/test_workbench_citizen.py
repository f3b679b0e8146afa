"""The workbench's citizen pages against the real services (four processes
and the workbench, real RabbitMQ and store): a submission once per form, the
honeypot, a lookup that shows nothing to a wrong number, and a clear page when
intake is unreachable or refuses the workbench's own web channel key."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from services.workbench.main import build_app, make_workbench
from shared.mongo import create_client, ping
from shared.settings import WorkbenchSettings
from tests import workbench_support as ws
from tests.workbench_support import Bench

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


bench = ws.bench_fixture("workbench-citizen")


async def test_citizen_submission_is_idempotent_and_the_honeypot_submits_nothing(
    bench: Bench,
) -> None:
    async with ws.browser(bench) as client:
        form = await client.get("/citizen")
        assert form.status_code == 200
        fields = {
            "csrf": ws.csrf_of(form),
            "form_id": "int-citizen-1",
            "district": "dongchangfu",
            "category": "complaint",
            "text": "小区门口的井盖丢了，晚上很危险",
            "phone": "13800005678",
        }
        first = await client.post("/citizen/submit", data=fields)
        again = await client.post("/citizen/submit", data=fields)
        numbers = [re.search(r'id="ticket-number">([A-Z0-9]+)<', p.text) for p in (first, again)]
        assert numbers[0] and numbers[1] and numbers[0].group(1) == numbers[1].group(1)
        bot = await client.post(
            "/citizen/submit", data=fields | {"form_id": "int-bot", "website": "http://spam"}
        )
        assert bot.status_code == 400 and "ticket-number" not in bot.text
        bad = await client.post("/citizen/submit", data=fields | {"form_id": "int-bad", "text": ""})
        assert bad.status_code == 422 and 'id="submit-error"' in bad.text


async def test_citizen_lookup_shows_nothing_to_a_wrong_number(bench: Bench) -> None:
    ticket_id = await ws.new_ticket(
        bench, ws.WATER_CALL | {"caller_number": "13912349876"}, "wb-look"
    )
    async with ws.browser(bench) as client:
        page = await client.get("/citizen/lookup")
        data = {"csrf": ws.csrf_of(page), "ticket": ticket_id, "phone_last4": "0000"}
        miss = await client.post("/citizen/lookup", data=data)
        assert miss.status_code == 404 and "没有找到" in miss.text and "耕地" not in miss.text
        hit = await client.post("/citizen/lookup", data=data | {"phone_last4": "9876"})
        assert hit.status_code == 200 and 'id="lookup-status"' in hit.text
        assert "13912349876" not in hit.text and "耕地" not in hit.text


@contextlib.asynccontextmanager
async def workbench_in_process(settings: WorkbenchSettings) -> AsyncIterator[httpx.AsyncClient]:
    """A workbench of its own settings in this process, against the real services."""
    client = create_client(settings)
    http = httpx.AsyncClient(timeout=5.0)
    workbench = make_workbench(settings, client, http)

    async def store_up() -> bool:
        return await ping(client)

    transport = httpx.ASGITransport(app=build_app(workbench, store_up))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://wb") as page_client:
            yield page_client
    finally:
        await http.aclose()
        await client.close()


async def test_an_unreachable_service_gets_a_clear_page(bench: Bench) -> None:
    settings = WorkbenchSettings(
        mongo_db_prefix=bench.settings.mongo_db_prefix,
        intake_url="http://127.0.0.1:9",
        router_url=bench.cluster.url("router"),
        stats_url=bench.cluster.url("stats"),
    )
    async with workbench_in_process(settings) as page_client:
        ready = await page_client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["intake"] is False
        down = await submit_citizen_form(page_client, "down-1")
        assert down.status_code == 503
        assert "受理服务暂时无法连接" in down.text and "没有做任何更改" in down.text


async def test_a_wrong_web_channel_key_is_the_workbench_s_fault_not_the_citizen_s(
    bench: Bench,
) -> None:
    settings = WorkbenchSettings(
        mongo_db_prefix=bench.settings.mongo_db_prefix,
        intake_url=bench.cluster.url("intake"),
        router_url=bench.cluster.url("router"),
        stats_url=bench.cluster.url("stats"),
        web_channel_key="hk_revoked-or-mistyped",
    )
    async with workbench_in_process(settings) as page_client:
        refused = await submit_citizen_form(page_client, "bad-key-1")
    assert refused.status_code == 503 and "网上受理暂时不可用" in refused.text
    assert "location" not in refused.headers, "a citizen is not sent to the staff sign-in"


async def submit_citizen_form(page_client: httpx.AsyncClient, form_id: str) -> httpx.Response:
    form = await page_client.get("/citizen")
    fields = {"csrf": ws.csrf_of(form), "form_id": form_id, "district": "guanxian"}
    fields |= {"category": "help", "text": "路灯不亮"}
    return await page_client.post("/citizen/submit", data=fields)
