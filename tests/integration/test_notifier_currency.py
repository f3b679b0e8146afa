"""Issue #17 in the notifier, against the real broker-free notifier parts and the
real store: a notice that is no longer current is dropped as superseded before
its next attempt (point 4), and the hotline centre is told when staff must act
(point 7). The harness is test_notifier_delivery's."""

from __future__ import annotations

from datetime import timedelta

from shared.domain import Actor, ActorKind, TicketDims
from shared.events import (
    ExtendedPayload,
    ExtensionRequestedPayload,
    ReopenCause,
    ReopenedPayload,
    ResolvedPayload,
    ReturnedPayload,
    TicketDispatched,
    TicketExtended,
    TicketExtensionRequested,
    TicketReopened,
    TicketResolved,
    TicketReturned,
    TicketUnroutable,
    UnroutablePayload,
)
from shared.events.envelope import Envelope
from shared.mongo import Document
from tests.integration.test_notifier_delivery import (
    Notifiers,
    Replica,
    delivery_id,
    dispatched,
    draft,
    notifiers,
)
from tests.support import eventually

__all__ = ["notifiers"]  # a fixture used below
WATER = Actor(kind=ActorKind.DEPARTMENT, id="guanxian.water")
STAFF = Actor(kind=ActorKind.STAFF, id="zhang.san")
ROUTER = Actor(kind=ActorKind.SYSTEM, id="router")
DIMS = TicketDims.of(draft())
CENTRE = "city.platform"


def after(event: Envelope, seconds: float = 1.0) -> dict[str, object]:
    return {
        "ticket_id": event.ticket_id,
        "occurred_at": event.occurred_at + timedelta(seconds=seconds),
    }


def extension_requested(dispatch: Envelope) -> TicketExtensionRequested:
    return TicketExtensionRequested(
        **after(dispatch, 3600),
        actor=WATER,
        payload=ExtensionRequestedPayload(
            dims=DIMS, department="guanxian.water", days=3, reason="需协调村委会"
        ),
    )


async def one_failed_attempt(n: Replica, delivery: str) -> None:
    async def tried() -> bool:
        doc = await n.deliveries.get(delivery)
        return doc is not None and len(doc["attempts"]) >= 1

    await eventually(tried)


async def notice_failing(
    notifiers: Notifiers, ticket_id: str
) -> tuple[Replica, TicketDispatched, str]:
    """A ticket dispatched to the water company, whose endpoint fails: its
    notice has been tried once and waits for its retry."""
    notifiers.receiver.failing.add("guanxian.water")
    n = await notifiers.replica(delivery_backoff_base_s=0.5, delivery_backoff_cap_s=0.5)
    n.start_deliveries()
    first = dispatched(ticket_id)
    await n.handle(first)
    water = delivery_id(first.event_id, "guanxian.water")
    await one_failed_attempt(n, water)
    return n, first, water


async def delivery_of(n: Replica, delivery: str, status: str) -> Document:
    found: list[Document] = []

    async def settled() -> bool:
        doc = await n.deliveries.get(delivery)
        found[:] = [doc] if doc is not None and doc["status"] == status else []
        return bool(found)

    await eventually(settled)
    return found[0]


async def test_a_returned_tickets_notice_is_superseded_not_retried(notifiers: Notifiers) -> None:
    n, first, water = await notice_failing(notifiers, "LC-STALE-R")
    # The department returns it (through the workbench, say); the rules send it on.
    returned = TicketReturned(
        **after(first),
        actor=WATER,
        payload=ReturnedPayload(dims=DIMS, department="guanxian.water", reason="不是我单位"),
    )
    again = dispatched("LC-STALE-R", "guanxian.housing", at=returned.occurred_at, round_no=2)
    await n.handle(returned)
    await n.handle(again)
    notifiers.receiver.failing.clear()  # the old endpoint would take it now

    doc = await delivery_of(n, water, "superseded")
    assert doc["attempts"][-1]["error"].startswith("superseded")
    housing = await delivery_of(n, delivery_id(again.event_id, "guanxian.housing"), "delivered")
    assert housing["attempts"][-1]["ok"] is True
    assert [c.department for c in notifiers.receiver.of_kind("dispatch")] == [
        "guanxian.water",  # the failed attempt only
        "guanxian.housing",
    ]
    counts = await n.deliveries.count_by_status()
    assert (counts["superseded"], counts["delivered"]) == (1, 1)
    async with n.api() as api:
        listed = await api.get("/v1/deliveries?ticket_id=LC-STALE-R&status=superseded")
    assert [d["delivery_id"] for d in listed.json()] == [water]


async def test_a_resolved_tickets_notices_are_superseded(notifiers: Notifiers) -> None:
    n, first, water = await notice_failing(notifiers, "LC-STALE-C")
    p = first.payload
    await n.handle(
        TicketResolved(
            **after(first),
            actor=WATER,
            payload=ResolvedPayload(
                dims=DIMS,
                department="guanxian.water",
                reply="已办结。",
                on_time=True,
                deadline=p.deadline,
                dispatched_at=first.occurred_at,
            ),
        )
    )
    notifiers.receiver.failing.clear()
    await delivery_of(n, water, "superseded")


async def test_the_centre_is_told_of_the_manual_queue_and_extension_requests(
    notifiers: Notifiers,
) -> None:
    n = await notifiers.replica()
    n.start_deliveries()
    queued = TicketUnroutable(
        ticket_id="LC-CENTRE-Q",
        actor=ROUTER,
        payload=UnroutablePayload(dims=DIMS, reason="no rule matched"),
    )
    await n.handle(queued)
    await delivery_of(n, delivery_id(queued.event_id, CENTRE), "delivered")
    [notice] = notifiers.receiver.of_kind("manual_queue", "LC-CENTRE-Q")
    assert notice.department == CENTRE
    assert "人工派单" in notice.body["text"] and "冠县" in notice.body["text"]

    first = dispatched("LC-CENTRE-E")
    await n.handle(first)
    asked = extension_requested(first)
    await n.handle(asked)
    await delivery_of(n, delivery_id(asked.event_id, CENTRE), "delivered")
    [request] = notifiers.receiver.of_kind("extension_request", "LC-CENTRE-E")
    assert request.department == CENTRE
    assert "延期3个工作日" in request.body["text"] and "冠县水务" in request.body["text"]


async def test_a_decided_extension_requests_notice_is_superseded(notifiers: Notifiers) -> None:
    notifiers.receiver.failing.add(CENTRE)
    n = await notifiers.replica(delivery_backoff_base_s=0.5, delivery_backoff_cap_s=0.5)
    n.start_deliveries()
    first = dispatched("LC-CENTRE-D")
    await n.handle(first)
    asked = extension_requested(first)
    await n.handle(asked)
    notice = delivery_id(asked.event_id, CENTRE)
    await one_failed_attempt(n, notice)
    await n.handle(
        TicketExtended(
            **after(asked, 60),
            actor=STAFF,
            payload=ExtendedPayload(
                dims=DIMS,
                department="guanxian.water",
                days=3,
                deadline=first.payload.deadline + timedelta(days=3),
            ),
        )
    )
    notifiers.receiver.failing.clear()
    await delivery_of(n, notice, "superseded")


async def test_a_department_is_told_of_each_reopening_and_why(notifiers: Notifiers) -> None:
    n = await notifiers.replica()
    n.start_deliveries()
    first = dispatched("LC-REOPEN")
    await n.handle(first)
    for seconds, cause, words in (
        (86400, ReopenCause.RATING, "回访市民不满意"),
        (3 * 86400, ReopenCause.REPEAT_CALL, "再次来电"),
    ):
        reopened = TicketReopened(
            **after(first, seconds),
            actor=Actor(kind=ActorKind.CITIZEN, id="channel:phone"),
            payload=ReopenedPayload(
                dims=DIMS,
                department="guanxian.water",
                cause=cause,
                reopen_count=1,
                deadline=first.occurred_at + timedelta(days=10),
                response_deadline=first.occurred_at + timedelta(seconds=seconds + 7200),
            ),
        )
        await n.handle(reopened)
        await delivery_of(n, delivery_id(reopened.event_id, "guanxian.water"), "delivered")
        notice = notifiers.receiver.of_kind("reopen", "LC-REOPEN")[-1]
        assert notice.department == "guanxian.water"
        assert "重新交办" in notice.body["text"] and words in notice.body["text"]
        assert notice.body["cause"] == cause.value
    assert len(notifiers.receiver.of_kind("reopen", "LC-REOPEN")) == 2
