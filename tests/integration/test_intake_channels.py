"""Each built-in channel end to end into ticket.received (or its own event),
against the real broker and store: call-centre agent, SMS webhook, email over
real SMTP, and the protection every channel shares (keys, rate limit, UTF-8)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
import pytest
from prometheus_client import REGISTRY

from services.intake.channels.email import EmailChannel
from shared.domain import ActorKind, Channel
from shared.events import TicketFeedback, TicketReceived, TicketResolvedOnSpot
from shared.settings import CommonSettings
from shared.signing import sign
from tests.e2e.cluster import free_port
from tests.intake_support import (
    IntakeHarness,
    Probe,
    intake_settings_of,
    probing,
    progress_to,
    running,
)
from tests.mail_support import Mailbox, smtp_server

pytestmark = pytest.mark.integration

CALLER = "13912345678"
CALL: dict[str, Any] = {
    "agent_id": "seat-042",
    "caller_number": CALLER,
    "call_id": "call-0001",
    "district": "阳谷县",
    "town": "博济桥街道",
    "category": "complaint",
    "text": "紫荆街一家店铺门口堆放建筑垃圾好几天了。",
}
SECRET = "sms-test-secret"


@pytest.fixture
async def harness(settings: CommonSettings) -> AsyncIterator[IntakeHarness]:
    async with running(intake_settings_of(settings, sms_webhook_secret=SECRET)) as built:
        yield built


# --- call-centre agent ------------------------------------------------------------------


async def test_agent_call_becomes_a_ticket_with_agent_and_caller(
    harness: IntakeHarness, probe: Probe
) -> None:
    first = await harness.client.post("/v1/agent/tickets", json=CALL)
    again = await harness.client.post("/v1/agent/tickets", json=CALL)
    assert first.status_code == again.status_code == 202, first.text
    assert first.json()["status"] == "received"
    assert again.json() == {**first.json(), "replayed": True}  # the same call, the same ticket

    [event] = await probe.wait_for("router", 1)
    assert isinstance(event, TicketReceived)
    assert event.ticket_id == first.json()["ticket_id"]
    assert (event.actor.kind, event.actor.id) == (ActorKind.AGENT, "seat-042")
    draft = event.payload.ticket
    assert (draft.channel, draft.district, draft.town) == (Channel.PHONE, "yanggu", "博济桥街道")
    assert draft.citizen is not None and draft.citizen.phone == CALLER


async def test_a_call_id_used_for_another_call_names_call_id(harness: IntakeHarness) -> None:
    await harness.client.post("/v1/agent/tickets", json=CALL)
    other = await harness.client.post("/v1/agent/tickets", json={**CALL, "text": "另一件事" * 500})
    assert other.status_code == 422
    body = other.json()
    assert body["code"] == "INVALID_INPUT"
    assert [e["loc"] for e in body["errors"]] == [["body", "call_id"]]
    assert "call_id 'call-0001'" in body["message"] and "Idempotency-Key" not in other.text
    assert "另一件事" not in other.text  # the refused input is not echoed back


async def test_agent_answer_on_the_spot_closes_at_intake(
    harness: IntakeHarness, probe: Probe
) -> None:
    body = {**CALL, "category": "consultation", "on_spot_answer": "社保卡在各区政务大厅补办。"}
    response = await harness.client.post("/v1/agent/tickets", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "resolved_on_spot"
    [event] = await probe.wait_for("stats", 1)
    assert isinstance(event, TicketResolvedOnSpot)
    assert event.payload.answer == "社保卡在各区政务大厅补办。"
    assert event.actor.id == "seat-042"
    assert await probe.count("router") == 0  # nothing to dispatch


async def test_agent_feedback_is_published_for_the_router(
    harness: IntakeHarness, probe: Probe
) -> None:
    ticket_id = (await harness.client.post("/v1/agent/tickets", json=CALL)).json()["ticket_id"]
    await progress_to(harness, ticket_id, "dispatched", "accepted", "resolved")
    rating = {"rating": "unsatisfied", "solved": False, "agent_id": "seat-007"}
    response = await harness.client.post(f"/v1/tickets/{ticket_id}/feedback", json=rating)
    assert response.status_code == 202, response.text
    events = await probe.wait_for("router", 2)
    feedback = [e for e in events if isinstance(e, TicketFeedback)]
    assert [(f.ticket_id, f.payload.rating.value, f.actor.id) for f in feedback] == [
        (ticket_id, "unsatisfied", "seat-007")
    ]


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ((), "still being handled (received)"),
        (("dispatched", "accepted"), "still being handled (accepted)"),
        (("dispatched", "accepted", "resolved", "closed"), "rated already and is closed"),
    ],
    ids=["received", "accepted", "closed"],
)
async def test_feedback_on_a_ticket_not_waiting_for_it_is_refused(
    harness: IntakeHarness, probe: Probe, steps: tuple[str, ...], reason: str
) -> None:
    """Refused at the door with the reason, instead of accepted and then lost in
    the router's dead-letter queue; nothing is published."""
    ticket_id = (await harness.client.post("/v1/agent/tickets", json=CALL)).json()["ticket_id"]
    await progress_to(harness, ticket_id, *steps)
    rating = {"rating": "satisfied", "solved": True}
    response = await harness.client.post(f"/v1/tickets/{ticket_id}/feedback", json=rating)
    assert response.status_code == 409, response.text
    assert reason in response.json()["detail"]
    await probe.wait_for("router", 1)  # the ticket itself
    assert not [e for e in await probe.drain("router") if isinstance(e, TicketFeedback)]


async def test_no_phone_number_reaches_a_metric_label(harness: IntakeHarness) -> None:
    response = await harness.client.post("/v1/agent/tickets", json=CALL)
    assert response.status_code == 202
    labels = [
        value
        for metric in REGISTRY.collect()
        for sample in metric.samples
        for value in sample.labels.values()
    ]
    assert labels, "no metric samples at all"
    assert not [v for v in labels if CALLER[-8:] in v]


# --- SMS gateway webhook ----------------------------------------------------------------


def signed(body: dict[str, Any], secret: str = SECRET, at: float | None = None) -> dict[str, Any]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    stamp = str(int(time.time() if at is None else at))
    headers = {
        "Content-Type": "application/json",
        "X-Hotline-Timestamp": stamp,
        "X-Hotline-Signature": sign(secret, stamp, raw),
    }
    return {"content": raw, "headers": headers}


SMS = {"message_id": "sms-1", "from": "+8613700001111", "text": "冠县贾镇村口路灯坏了一个月"}


async def sms(harness: IntakeHarness, **request: Any) -> httpx.Response:
    return await harness.client.post("/v1/channels/sms/inbound", **request)


async def test_sms_becomes_a_ticket_with_its_place_read_from_the_text(
    harness: IntakeHarness, probe: Probe
) -> None:
    response = await sms(harness, **signed(SMS))
    assert response.status_code == 202, response.text
    redelivered = await sms(harness, **signed(SMS))
    assert redelivered.json()["ticket_id"] == response.json()["ticket_id"]
    [event] = await probe.wait_for("router", 1)
    assert isinstance(event, TicketReceived)
    draft = event.payload.ticket
    assert (draft.channel, draft.district, draft.town) == (Channel.SMS, "guanxian", "贾镇")
    assert draft.citizen is not None and draft.citizen.phone == "13700001111"  # normalised


@pytest.mark.parametrize(
    ("case", "request_of"),
    [
        ("wrong secret", lambda: signed(SMS, secret="guess")),
        ("stale timestamp", lambda: signed(SMS, at=time.time() - 3600)),
        ("no signature", lambda: {"json": SMS}),
        (
            "body changed after signing",
            lambda: {**signed(SMS), "content": json.dumps({**SMS, "text": "x"}).encode()},
        ),
    ],
)
async def test_sms_without_a_good_signature_is_refused(
    harness: IntakeHarness, probe: Probe, case: str, request_of: Any
) -> None:
    response = await sms(harness, **request_of())
    assert response.status_code == 401, (case, response.text)
    assert "SMS webhook refused" in response.json()["detail"]
    assert await probe.count("router") == 0


async def test_sms_reply_to_the_survey_is_feedback_only_from_the_reporter(
    harness: IntakeHarness, probe: Probe
) -> None:
    ticket_id = (await sms(harness, **signed(SMS))).json()["ticket_id"]
    stranger = {"message_id": "sms-2", "from": "13600002222", "text": "不满意", "ref": ticket_id}
    refused = await sms(harness, **signed(stranger))
    assert refused.status_code == 404
    reply = {"message_id": "sms-3", "from": "13700001111", "text": f"{ticket_id} 基本满意"}
    await progress_to(harness, ticket_id, "dispatched", "accepted", "resolved")
    answered = await sms(harness, **signed(reply))
    assert answered.status_code == 202, answered.text
    assert answered.json() == {"ticket_id": ticket_id, "status": "feedback_received"}
    events = await probe.wait_for("router", 2)
    feedback = [e for e in events if isinstance(e, TicketFeedback)]
    assert [(f.payload.rating.value, f.payload.solved) for f in feedback] == [
        ("basically_satisfied", True)
    ]


# --- email over real SMTP ---------------------------------------------------------------


def letter(message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "王先生 <wang@example.cn>"
    message["To"] = "12345@hotline.local"
    message["Subject"] = "东阿县新城街道小区停水三天"
    message["Message-ID"] = message_id
    message.set_content("小区从周一开始停水，至今没有通知。\n请尽快处理。", charset="gb18030")
    return message


async def test_email_becomes_a_ticket_and_the_sender_gets_its_number(
    settings: CommonSettings,
) -> None:
    relay_port = free_port()
    changes = {"smtp_host": "127.0.0.1", "smtp_port": relay_port}
    async with (
        smtp_server(relay_port) as relay,
        running(intake_settings_of(settings, **changes)) as harness,
        probing(harness) as probe,
    ):
        channel = harness.parts.channel("email")
        assert isinstance(channel, EmailChannel)
        await channel.ready.wait()
        sent = letter("<m1@example.cn>")
        assert sent["Subject"] is not None
        for _ in range(2):  # the sending server delivers the same message twice
            _, answer = await aiosmtplib.send(sent, hostname="127.0.0.1", port=channel.bound_port)
            assert answer.startswith("OK ticket"), answer
        ticket_id = answer.split()[-1]

        [event] = await probe.wait_for("router", 1)
        assert isinstance(event, TicketReceived) and event.ticket_id == ticket_id
        draft = event.payload.ticket
        assert (draft.channel, draft.district) == (Channel.EMAIL, "dong-e")
        assert "停水三天" in draft.text and "至今没有通知" in draft.text
        await _reply_arrived(relay, ticket_id)


async def _reply_arrived(relay: Mailbox, ticket_id: str) -> None:
    from tests.support import eventually

    async def replied() -> bool:
        return len(relay.messages()) >= 1

    await eventually(replied)
    [reply] = relay.messages()  # one reply: the redelivery was not answered again
    assert reply["To"] == "wang@example.cn"
    assert reply["Auto-Submitted"] == "auto-replied"
    body = reply.get_body(preferencelist=("plain",))
    assert body is not None and ticket_id in body.get_content()


# --- keys, rate limit, UTF-8 ------------------------------------------------------------


async def test_keys_are_per_channel_when_required(settings: CommonSettings) -> None:
    async with running(intake_settings_of(settings, require_channel_keys=True)) as harness:
        agent_key = await harness.issue("channel", "agent")
        web_key = await harness.issue("channel", "web")
        url = "/v1/agent/tickets"
        missing = await harness.client.post(url, json=CALL)
        wrong = await harness.client.post(url, json=CALL, headers={"X-API-Key": web_key})
        bogus = await harness.client.post(url, json=CALL, headers={"X-API-Key": "hk_nope"})
        right = await harness.client.post(
            url, json=CALL, headers={"Authorization": f"Bearer {agent_key}"}
        )
    assert (missing.status_code, wrong.status_code, bogus.status_code) == (401, 403, 401)
    assert right.status_code == 202, right.text


async def test_a_seat_submits_calls_and_nothing_else(settings: CommonSettings) -> None:
    async with running(intake_settings_of(settings, require_channel_keys=True)) as harness:
        seat = {"X-API-Key": await harness.issue("agent", "seat-017")}
        department = {"X-API-Key": await harness.issue("department", "guanxian.water")}
        call = await harness.client.post("/v1/agent/tickets", json=CALL, headers=seat)
        web = await harness.post({**CALL, "channel": "web"}, headers=seat)
        by_department = await harness.client.post(
            "/v1/agent/tickets", json={**CALL, "call_id": "c2"}, headers=department
        )
    assert call.status_code == 202, call.text
    assert (web.status_code, by_department.status_code) == (403, 403)
    assert "not for the web channel" in web.json()["detail"]


async def test_a_key_nobody_issued_is_refused_even_when_keys_are_optional(
    harness: IntakeHarness, probe: Probe
) -> None:
    response = await harness.client.post(
        "/v1/agent/tickets", json=CALL, headers={"X-API-Key": "hk_made_up"}
    )
    assert response.status_code == 401
    assert await probe.count("router") == 0


async def test_rate_limit_per_key_answers_429_with_retry_after(settings: CommonSettings) -> None:
    tight = intake_settings_of(settings, rate_limit_burst=2, rate_limit_per_minute=1.0)
    async with running(tight) as harness:
        first_key = await harness.issue("channel", "agent")
        second_key = await harness.issue("channel", "agent")
        codes = []
        for n in range(3):
            body = {**CALL, "call_id": f"c{n}", "text": f"第{n}件事"}
            r = await harness.client.post(
                "/v1/agent/tickets", json=body, headers={"X-API-Key": first_key}
            )
            codes.append(r.status_code)
        other = await harness.client.post(
            "/v1/agent/tickets", json={**CALL, "call_id": "c9"}, headers={"X-API-Key": second_key}
        )
    assert codes == [202, 202, 429]
    assert int(r.headers["Retry-After"]) >= 1
    assert other.status_code == 202  # each key has its own bucket


@pytest.mark.parametrize("path", ["/v1/tickets", "/v1/agent/tickets"])
async def test_non_utf8_body_is_refused_with_a_clear_error(
    harness: IntakeHarness, probe: Probe, path: str
) -> None:
    body = json.dumps({**CALL, "text": "路灯坏了"}, ensure_ascii=False).encode("gbk")
    response = await harness.client.post(
        path, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "not valid UTF-8" in response.json()["detail"]
    assert await probe.count("router") == 0


async def test_the_channels_are_listed(harness: IntakeHarness) -> None:
    names = [c["name"] for c in (await harness.client.get("/v1/channels")).json()]
    assert names[:5] == ["web", "agent", "open311", "sms", "email"]
