"""Intake's HTTP API against the real broker and store.

What was published is read back from the router and stats queues over a
connection of the test's own; nobody consumes them, so a queue's depth is the
number of events intake published there.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client import REGISTRY

from shared.events import Envelope, TicketReceived, TicketResolvedOnSpot, utcnow
from shared.messaging.publisher import Publisher
from shared.settings import DATA_DIR, CommonSettings, IntakeSettings
from tests.intake_support import (
    SERVICE,
    IntakeHarness,
    Probe,
    intake_settings_of,
    probing,
    reconnect,
    running,
)
from tests.support import eventually

pytestmark = pytest.mark.integration

SAMPLES = DATA_DIR / "sample_requests.jsonl"
VALID: dict[str, Any] = {
    "channel": "web",
    "district": "冠县",
    "town": "贾镇",
    "category": "complaint",
    "text": "村口的路灯坏了一个月，晚上出行很不方便。",
}


@pytest.fixture
def intake_settings(settings: CommonSettings) -> IntakeSettings:
    return intake_settings_of(settings)


@pytest.fixture
async def harness(intake_settings: IntakeSettings) -> AsyncIterator[IntakeHarness]:
    async with running(intake_settings) as built:
        yield built


@pytest.fixture
async def limited(intake_settings: IntakeSettings) -> AsyncIterator[tuple[IntakeHarness, Probe]]:
    """An intake that accepts bodies of at most 2048 bytes."""
    small = intake_settings.model_copy(update={"max_body_bytes": 2048})
    async with running(small) as built, probing(built) as opened:
        yield built, opened


def local_day(settings: IntakeSettings) -> date:
    return utcnow().astimezone(ZoneInfo(settings.timezone)).date()


def sample_lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line]


def error_locs(response: httpx.Response) -> list[list[Any]]:
    return [list(error["loc"]) for error in response.json()["errors"]]


async def test_every_sample_request_is_received_and_published(
    harness: IntakeHarness, probe: Probe
) -> None:
    samples = sample_lines()
    assert len(samples) == 45
    first_day = local_day(harness.settings)
    receipts = []
    for sample in samples:
        response = await harness.post(sample)
        assert response.status_code == 202, (sample["id"], response.text)
        receipts.append(response.json())
    days = {f"{first_day:%Y%m%d}", f"{local_day(harness.settings):%Y%m%d}"}

    ticket_ids = [r["ticket_id"] for r in receipts]
    assert len(set(ticket_ids)) == len(samples)
    for receipt in receipts:
        assert re.fullmatch(r"LC\d{14}", receipt["ticket_id"]), receipt
        assert receipt["ticket_id"][2:10] in days
        assert receipt["status"] == "received"
        assert receipt["replayed"] is False

    async def all_published() -> bool:
        return await probe.count("router") == len(samples)

    await eventually(all_published)
    events = await probe.drain("router")
    assert all(isinstance(e, TicketReceived) for e in events)
    by_ticket = {e.ticket_id: e for e in events if isinstance(e, TicketReceived)}
    assert set(by_ticket) == set(ticket_ids)
    directory = harness.intake.directory
    for sample, ticket_id in zip(samples, ticket_ids, strict=True):
        draft = by_ticket[ticket_id].payload.ticket
        district = directory.district(sample["district"])
        assert district is not None
        assert draft.district == district.id  # names are turned into ids
        assert draft.text == sample["text"]
        assert draft.external_id == sample["id"]


async def test_on_spot_answer_closes_at_intake_and_skips_the_router(
    harness: IntakeHarness, probe: Probe
) -> None:
    body = {**VALID, "category": "consultation", "on_spot_answer": "热线24小时有人接听。"}
    response = await harness.post(body)
    assert response.status_code == 202, response.text
    receipt = response.json()
    assert receipt["status"] == "resolved_on_spot"

    async def reached_stats() -> bool:
        return await probe.count("stats") == 1

    await eventually(reached_stats)
    [event] = await probe.drain("stats")
    assert isinstance(event, TicketResolvedOnSpot)
    assert event.ticket_id == receipt["ticket_id"]
    assert event.payload.answer == "热线24小时有人接听。"
    assert await probe.count("router") == 0


async def test_same_idempotency_key_and_body_replays_the_same_ticket(
    harness: IntakeHarness, probe: Probe
) -> None:
    first = await harness.post(VALID, key="retry-1")
    second = await harness.post(VALID, key="retry-1")
    assert first.status_code == second.status_code == 202
    assert first.json()["ticket_id"] == second.json()["ticket_id"]
    assert first.json()["replayed"] is False
    assert second.json()["replayed"] is True
    assert await probe.count("router") == 1


async def test_same_idempotency_key_with_another_body_is_refused(
    harness: IntakeHarness, probe: Probe
) -> None:
    first = await harness.post(VALID, key="retry-2")
    assert first.status_code == 202
    other = await harness.post({**VALID, "text": "另一件事：小区门口积水。"}, key="retry-2")
    assert other.status_code == 422
    assert error_locs(other) == [["header", "Idempotency-Key"]]
    assert await probe.count("router") == 1


class SlowConfirms(Publisher):
    """The real publisher on a broker that takes a moment to confirm, as under load."""

    async def publish(self, event: Envelope) -> None:
        await asyncio.sleep(0.3)
        await super().publish(event)


async def test_concurrent_requests_with_one_key_publish_once(
    harness: IntakeHarness, probe: Probe
) -> None:
    settings = harness.settings
    harness.intake.publisher = SlowConfirms(
        harness.infra.broker.exchange, SERVICE, settings.publish_timeout_s
    )
    responses = await asyncio.gather(*(harness.post(VALID, key="burst") for _ in range(5)))
    assert [r.status_code for r in responses] == [202] * 5
    assert len({r.json()["ticket_id"] for r in responses}) == 1
    assert sum(1 for r in responses if not r.json()["replayed"]) == 1
    assert await probe.count("router") == 1


async def test_concurrent_requests_with_one_key_get_one_ticket(
    harness: IntakeHarness, probe: Probe
) -> None:
    responses = await asyncio.gather(*(harness.post(VALID, key="burst") for _ in range(5)))
    assert [r.status_code for r in responses] == [202] * 5
    [ticket_id] = {r.json()["ticket_id"] for r in responses}
    events = await probe.drain("router")
    # Whatever reached the broker is that one ticket's one event (same event_id),
    # which consumers apply once.
    assert events
    assert {(e.ticket_id, e.event_id) for e in events} == {(ticket_id, events[0].event_id)}


INVALID: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("missing text", {k: v for k, v in VALID.items() if k != "text"}, ["body", "text"]),
    ("unknown category", {**VALID, "category": "gossip"}, ["body", "category"]),
    ("unknown district", {**VALID, "district": "火星区"}, ["body", "district"]),
    ("unknown town", {**VALID, "town": "古楼街道"}, ["body", "town"]),  # Dongchangfu's
    ("not a phone", {**VALID, "citizen": {"phone": "call me"}}, ["body", "citizen", "phone"]),
    ("extra field", {**VALID, "mood": "angry"}, ["body", "mood"]),
    ("wrong type", {**VALID, "text": 12345}, ["body", "text"]),
    ("bad location", {**VALID, "location": {"lat": 123.0, "lon": 0}}, ["body", "location", "lat"]),
]


@pytest.mark.parametrize(("body", "loc"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
async def test_invalid_submission_is_refused_with_its_field(
    harness: IntakeHarness, probe: Probe, body: dict[str, Any], loc: list[Any]
) -> None:
    response = await harness.post(body)
    assert response.status_code == 422, response.text
    assert loc in error_locs(response)
    assert await probe.count("router") == 0
    assert await probe.count("stats") == 0


async def test_an_unknown_town_is_refused_with_the_districts_towns(harness: IntakeHarness) -> None:
    response = await harness.post({**VALID, "town": "古楼街道"})
    assert response.status_code == 422
    assert "贾镇" in response.text and "烟庄街道" in response.text  # 冠县's own towns


@pytest.mark.parametrize(
    "written", ["+86 136-0535-6789", "136 0535 6789", "0086-136-0535-6789", "(136)05356789"]
)
async def test_a_phone_number_in_any_written_form_is_normalised(
    harness: IntakeHarness, probe: Probe, written: str
) -> None:
    body = {**VALID, "citizen": {"name": "李四", "phone": written}}
    response = await harness.post(body)
    assert response.status_code == 202, response.text
    [received] = await probe.wait_for("router", 1)
    assert isinstance(received, TicketReceived)
    assert received.payload.ticket.citizen is not None
    assert received.payload.ticket.citizen.phone == "13605356789"


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
async def test_non_json_body_is_refused(
    harness: IntakeHarness, probe: Probe, content_type: str
) -> None:
    response = await harness.client.post(
        "/v1/tickets", content=b"{not json", headers={"Content-Type": content_type}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert await probe.count("router") == 0
    assert await probe.count("stats") == 0


BIG = {**VALID, "text": "路" * 1000}  # 3000 bytes of UTF-8, valid otherwise


async def test_body_over_the_limit_is_refused(limited: tuple[IntakeHarness, Probe]) -> None:
    harness, probe = limited
    response = await harness.post(BIG)
    assert response.status_code == 413
    assert "2048" in response.json()["detail"]
    assert await probe.count("router") == 0

    under = await harness.post({**VALID, "text": "路" * 500})
    assert under.status_code == 202
    assert await probe.count("router") == 1


async def test_streamed_body_over_the_limit_is_refused_with_413(
    limited: tuple[IntakeHarness, Probe],
) -> None:
    harness, probe = limited

    async def chunks() -> AsyncIterator[bytes]:
        raw = json.dumps(BIG, ensure_ascii=False).encode()
        for start in range(0, len(raw), 500):
            yield raw[start : start + 500]

    response = await harness.client.post(
        "/v1/tickets", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert await probe.count("router") == 0  # refused either way; the code is the bug
    assert response.status_code == 413


async def test_broker_gone_answers_503_and_the_retry_publishes_once(
    harness: IntakeHarness, probe: Probe
) -> None:
    await harness.infra.broker.close()
    refused = await harness.post(VALID, key="while-down")
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"]
    assert await probe.count("router") == 0

    broker = await reconnect(harness)
    try:
        retried = await harness.post(VALID, key="while-down")
        assert retried.status_code == 202, retried.text
        again = await harness.post(VALID, key="while-down")
        assert again.status_code == 202
    finally:
        await broker.close()
    ticket_id = retried.json()["ticket_id"]
    assert again.json()["ticket_id"] == ticket_id
    events = await probe.drain("router")
    assert [e.ticket_id for e in events] == [ticket_id]


async def test_broker_gone_without_key_answers_503(harness: IntakeHarness, probe: Probe) -> None:
    await harness.infra.broker.close()
    refused = await harness.post(VALID)
    assert refused.status_code == 503
    assert "Retry-After" in refused.headers
    assert await probe.count("router") == 0


def served_503s() -> float:
    labels = {"service": SERVICE, "method": "POST", "route": "/v1/tickets", "status": "503"}
    return REGISTRY.get_sample_value("hotline_http_requests_total", labels) or 0.0


async def test_503_is_counted_in_the_http_metrics(harness: IntakeHarness) -> None:
    before = served_503s()
    await harness.infra.broker.close()
    refused = await harness.post(VALID)
    assert refused.status_code == 503
    assert served_503s() == before + 1


async def test_readyz_follows_the_broker(harness: IntakeHarness) -> None:
    ready = await harness.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"broker": True, "store": True}}

    await harness.infra.broker.close()
    gone = await harness.client.get("/readyz")
    assert gone.status_code == 503
    assert gone.json()["checks"] == {"broker": False, "store": True}
