"""Duplicates (并单), hotspots and the citizen lookup, against the real broker
and store. Time is moved with a ManualClock where the 72-hour window matters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared.clock import ManualClock
from shared.domain import Actor, ActorKind, TicketDims
from shared.events import (
    AcceptedPayload,
    DispatchedPayload,
    ReopenCause,
    TicketAccepted,
    TicketDispatched,
    TicketLinked,
    TicketReceived,
    utcnow,
)
from shared.messaging.publisher import Publisher
from shared.settings import CommonSettings
from tests.intake_support import (
    IntakeHarness,
    Probe,
    intake_settings_of,
    probing,
    progress_to,
    reconnect,
    running,
)
from tests.stats_support import TicketStory
from tests.support import eventually

pytestmark = pytest.mark.integration

PHONE = "13812345678"
REPORT: dict[str, Any] = {
    "channel": "phone",
    "district": "东昌府区",
    "town": "古楼街道",
    "category": "complaint",
    "text": "古楼街道光岳路南段的路灯已经坏了一个星期，晚上一片漆黑。",
    "citizen": {"phone": PHONE},
}


@pytest.fixture
async def harness(settings: CommonSettings) -> AsyncIterator[IntakeHarness]:
    async with running(intake_settings_of(settings), consume_status=True) as built:
        built.intake.clock = ManualClock(utcnow())
        yield built


def clock_of(harness: IntakeHarness) -> ManualClock:
    clock = harness.intake.clock
    assert isinstance(clock, ManualClock)
    return clock


async def test_same_caller_near_identical_text_is_linked_not_opened(
    harness: IntakeHarness, probe: Probe
) -> None:
    first = (await harness.post(REPORT)).json()
    again_text = REPORT["text"].replace("。", "！") + " "
    second = await harness.post({**REPORT, "text": again_text, "citizen": {"phone": "+86" + PHONE}})
    assert second.status_code == 202, second.text
    assert second.json() == {
        "ticket_id": first["ticket_id"],
        "status": "linked",
        "replayed": False,
        "duplicate_of": first["ticket_id"],
        "related_to": None,
    }
    # One ticket published, not two; the router hears the link too (it changes
    # nothing there: the ticket is open).
    received_first, link = await probe.wait_for("router", 2)
    assert isinstance(received_first, TicketReceived) and isinstance(link, TicketLinked)
    assert (link.ticket_id, link.payload.reopen) == (first["ticket_id"], False)
    # Stats counts both requests: the ticket, and the request merged into it.
    received, linked = await probe.wait_for("stats", 2)
    assert isinstance(received, TicketReceived) and isinstance(linked, TicketLinked)
    assert linked.ticket_id == first["ticket_id"]
    assert linked.payload.ticket.text == again_text.strip()
    assert linked.payload.similarity >= 90
    assert await harness.parts.callers.links_of(first["ticket_id"]) == 1


@pytest.mark.parametrize("closed_by", [("resolved",), ("resolved", "closed")])
async def test_a_repeat_of_a_closed_ticket_opens_a_new_one_related_to_it(
    harness: IntakeHarness, probe: Probe, closed_by: tuple[str, ...]
) -> None:
    first = (await harness.post(REPORT)).json()["ticket_id"]
    await progress_to(harness, first, "dispatched", "accepted", *closed_by)
    again = await harness.post(REPORT)
    assert again.status_code == 202, again.text
    body = again.json()
    assert (body["status"], body["duplicate_of"], body["related_to"]) == (
        "received",
        None,
        first,
    )
    assert body["ticket_id"] != first
    # Two tickets go to the router: the repeat is dispatched, not lost.
    received = await probe.wait_for("router", 2)
    assert [e.ticket_id for e in received] == [first, body["ticket_id"]]
    repeat = received[1]
    assert isinstance(repeat, TicketReceived) and repeat.payload.related_to == first
    assert await harness.intake.callers.links_of(first) == 0
    # A third call while the repeat is open is linked to the open one.
    third = (await harness.post(REPORT)).json()
    assert (third["status"], third["duplicate_of"]) == ("linked", body["ticket_id"])


async def test_under_the_reopen_policy_a_repeat_of_a_closed_ticket_reopens_it(
    settings: CommonSettings,
) -> None:
    reopen = intake_settings_of(settings, repeat_of_closed="reopen")
    async with running(reopen, consume_status=True) as harness, probing(harness) as probe:
        first = (await harness.post(REPORT)).json()["ticket_id"]
        await progress_to(harness, first, "dispatched", "accepted", "resolved", "closed")
        for replayed in (False, True):  # the client retries with its key
            again = await harness.post(REPORT, key="call-2")
            assert again.status_code == 202, again.text
            assert again.json() == {
                "ticket_id": first,
                "status": "reopened",
                "replayed": replayed,
                "duplicate_of": first,
                "related_to": None,
            }
        # No new ticket: one link, reopening the closed one, for the router.
        received, link = await probe.wait_for("router", 2)
        assert isinstance(received, TicketReceived) and isinstance(link, TicketLinked)
        assert (link.ticket_id, link.payload.reopen) == (first, True)
        assert await harness.intake.callers.links_of(first) == 1
        # The router reopens it: the citizen's lookup says so, and why.
        await harness.parts.ctx.status.apply(
            TicketStory(first, "yanggu").reopened(utcnow(), 120, cause=ReopenCause.REPEAT_CALL)
        )
        url = f"/v1/lookup?ticket={first}&phone_last4={PHONE[-4:]}"
        shown = (await harness.client.get(url)).json()
        assert (shown["status"], shown["reopen_cause"]) == ("reopened", "repeat_call")
        assert shown["status_label"] == "因您再次来电重新交办（重办）"


async def test_other_text_other_caller_or_after_the_window_opens_a_new_ticket(
    harness: IntakeHarness, probe: Probe
) -> None:
    first = (await harness.post(REPORT)).json()["ticket_id"]
    other_text = {**REPORT, "text": "光岳路南段的下水道井盖丢了，很危险。"}
    other_caller = {**REPORT, "citizen": {"phone": "13900000000"}}
    answers = [await harness.post(other_text), await harness.post(other_caller)]
    clock_of(harness).advance(timedelta(hours=73))
    answers.append(await harness.post(REPORT))
    assert [a.json()["status"] for a in answers] == ["received"] * 3
    ids = {first, *(a.json()["ticket_id"] for a in answers)}
    assert len(ids) == 4
    assert len(await probe.wait_for("router", 4)) == 4


async def test_a_linked_request_retried_with_its_key_replays_the_link(
    harness: IntakeHarness, probe: Probe
) -> None:
    first = (await harness.post(REPORT)).json()["ticket_id"]
    linked = await harness.post(REPORT, key="dup-1")
    retried = await harness.post(REPORT, key="dup-1")
    assert linked.json()["duplicate_of"] == retried.json()["duplicate_of"] == first
    assert retried.json()["replayed"] is True
    assert await harness.parts.callers.links_of(first) == 1  # the retry is not a new link
    routed = await probe.wait_for("router", 2)
    assert [e.event_type for e in routed] == ["received", "linked"]  # one ticket, one link
    events = await probe.wait_for("stats", 2)
    assert [e.event_type for e in events] == ["received", "linked"]  # one link event


async def test_a_link_refused_while_the_broker_is_down_is_published_once_by_its_retry(
    harness: IntakeHarness, probe: Probe
) -> None:
    first = (await harness.post(REPORT)).json()["ticket_id"]
    await probe.wait_for("stats", 1)
    # The publisher's connection goes down; the harness's consumers keep theirs.
    await (await reconnect(harness)).close()
    refused = await harness.post(REPORT, key="dup-down")
    assert refused.status_code == 503, refused.text
    assert await harness.parts.callers.links_of(first) == 0  # not answered: not a link

    broker = await reconnect(harness)
    try:
        retried = await harness.post(REPORT, key="dup-down")
        again = await harness.post(REPORT, key="dup-down")
    finally:
        await broker.close()
    assert retried.status_code == again.status_code == 202, retried.text
    assert retried.json()["duplicate_of"] == again.json()["duplicate_of"] == first
    [linked] = await probe.wait_for("stats", 1)
    assert isinstance(linked, TicketLinked) and linked.ticket_id == first
    assert await harness.parts.callers.links_of(first) == 1
    # The first ticket and the one link (which changes nothing at the router).
    assert [e.event_type for e in await probe.wait_for("router", 2)] == ["received", "linked"]


async def test_an_answer_on_the_spot_is_never_linked(harness: IntakeHarness) -> None:
    await harness.post(REPORT)
    body = {**REPORT, "category": "consultation", "on_spot_answer": "已告知维修电话。"}
    answer = await harness.post(body)
    assert answer.json()["status"] == "resolved_on_spot"


# --- hotspots ---------------------------------------------------------------------------

STREETLIGHT = [
    "光岳路南段路灯坏了一个星期，晚上一片漆黑",
    "光岳路南段的路灯坏了好几天了，晚上很黑",
    "光岳路南段路灯一个星期都不亮，晚上一片漆黑",
]


async def test_many_callers_about_one_problem_at_one_place_make_a_hotspot(
    harness: IntakeHarness,
) -> None:
    ids = []
    for n, text in enumerate(STREETLIGHT):
        body = {**REPORT, "text": text, "citizen": {"phone": f"1370000000{n}"}}
        ids.append((await harness.post(body)).json()["ticket_id"])
    elsewhere = {
        **REPORT,
        "town": "柳园街道",
        "text": STREETLIGHT[0],
        "citizen": {"phone": "13600000009"},
    }
    await harness.post(elsewhere)
    staff = await harness.issue("staff", "zhang.san")

    response = await harness.client.get("/v1/hotspots", headers={"X-API-Key": staff})
    assert response.status_code == 200, response.text
    [spot] = response.json()
    assert (spot["district"], spot["town"], spot["callers"]) == ("dongchangfu", "古楼街道", 3)
    assert sorted(spot["tickets"]) == sorted(ids)
    assert "光岳路" in spot["sample"]


async def test_hotspots_are_for_staff_only(harness: IntakeHarness) -> None:
    agent = await harness.issue("channel", "agent")
    anonymous = await harness.client.get("/v1/hotspots")
    channel_key = await harness.client.get("/v1/hotspots", headers={"X-API-Key": agent})
    assert (anonymous.status_code, channel_key.status_code) == (401, 403)


# --- the citizen's lookup ---------------------------------------------------------------


async def publish_dispatch_and_accept(harness: IntakeHarness, ticket_id: str) -> None:
    """The router's events, the later one first: the projection must not care."""
    record = await harness.intake.repo.get(ticket_id)
    assert record is not None and record.draft is not None
    dims, now = TicketDims.of(record.draft), utcnow()
    department = "dongchangfu.urban-mgmt"
    publisher = Publisher(harness.infra.broker.exchange, "router")
    accepted = TicketAccepted(
        ticket_id=ticket_id,
        occurred_at=now + timedelta(minutes=30),
        actor=Actor(kind=ActorKind.DEPARTMENT, id=department),
        payload=AcceptedPayload(dims=dims, department=department, responded_in_time=True),
    )
    dispatched = TicketDispatched(
        ticket_id=ticket_id,
        occurred_at=now,
        actor=Actor(kind=ActorKind.SYSTEM, id="router"),
        payload=DispatchedPayload(
            dims=dims,
            ticket=record.draft,
            department=department,
            rule="lights",
            time_limit="general",
            deadline=now + timedelta(days=7),
            response_deadline=now + timedelta(hours=2),
        ),
    )
    for event in (accepted, dispatched, accepted):  # out of order, and once redelivered
        await publisher.publish(event)


LOOKUP_FIELDS = {
    "ticket_id",
    "status",
    "status_label",
    "received_at",
    "updated_at",
    "department",
    "expected_at",
    "reply",  # the department's answer, once resolved
    "reopen_cause",  # why it was reopened (重办), if it was
}


async def test_lookup_shows_progress_and_nothing_else(harness: IntakeHarness) -> None:
    ticket_id = (await harness.post(REPORT)).json()["ticket_id"]
    url = f"/v1/lookup?ticket={ticket_id}&phone_last4={PHONE[-4:]}"
    fresh = (await harness.client.get(url)).json()
    assert (fresh["status"], fresh["department"]) == ("received", None)

    await publish_dispatch_and_accept(harness, ticket_id)

    async def accepted() -> bool:
        shown = (await harness.client.get(url)).json()
        return bool(shown["status"] == "accepted" and shown["expected_at"] is not None)

    await eventually(accepted)
    shown = (await harness.client.get(url)).json()
    assert set(shown) == LOOKUP_FIELDS
    assert shown["status_label"] == "承办单位已签收，正在办理"
    assert shown["department"] is not None and shown["expected_at"] is not None
    assert shown["reply"] is None
    assert PHONE not in str(shown) and REPORT["text"] not in str(shown)


async def test_wrong_phone_and_unknown_ticket_get_the_same_answer(harness: IntakeHarness) -> None:
    ticket_id = (await harness.post(REPORT)).json()["ticket_id"]
    no_phone = {**REPORT, "citizen": None, "text": "匿名反映的问题"}
    anonymous = (await harness.post(no_phone)).json()["ticket_id"]
    answers = [
        await harness.client.get(f"/v1/lookup?ticket={ticket_id}&phone_last4=0000"),
        await harness.client.get("/v1/lookup?ticket=LC20000101000001&phone_last4=5678"),
        await harness.client.get(f"/v1/lookup?ticket={anonymous}&phone_last4=0000"),
    ]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert len({a.content for a in answers}) == 1


async def test_guessing_is_cut_off_without_locking_the_citizen_out(
    settings: CommonSettings,
) -> None:
    async with running(intake_settings_of(settings, lookup_failures_per_hour=3)) as harness:
        ticket_id = (await harness.post(REPORT)).json()["ticket_id"]
        guesser = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=harness.app, client=("203.0.113.9", 40000)),
            base_url="http://t",
        )
        url = f"/v1/lookup?ticket={ticket_id}&phone_last4="
        async with guesser:
            guesses = [await guesser.get(url + f"{n:04d}") for n in range(1, 9)]
            right_from_guesser = await guesser.get(url + PHONE[-4:])
        # The citizen, on another client, after the guesser's misses and a typo.
        typo = await harness.client.get(url + "9999")
        citizen = await harness.client.get(url + PHONE[-4:])
    codes = [g.status_code for g in guesses]
    assert codes == [404, 404, 404, 429, 429, 429, 429, 429]  # cut off after 3 misses
    assert int(guesses[3].headers["Retry-After"]) >= 59  # and told how long to wait
    assert right_from_guesser.status_code == 429  # no oracle while it waits
    assert typo.status_code == 404
    assert citizen.status_code == 200, citizen.text
    assert citizen.json()["ticket_id"] == ticket_id


@pytest.mark.parametrize("last4", ["12", "abcd", "123456"])
async def test_lookup_needs_four_digits(harness: IntakeHarness, last4: str) -> None:
    response = await harness.client.get(f"/v1/lookup?ticket=LC1&phone_last4={last4}")
    assert response.status_code == 422
