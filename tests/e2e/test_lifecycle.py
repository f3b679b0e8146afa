"""A ticket's whole life over the public APIs of the four services, each its own
process on the real broker and store (issue #17, points 1, 2, 4 and 7):

- the water company's endpoint is down, so its dispatch notice is retried; it
  returns the ticket, and the retries stop: superseded, not delivered (4);
- the return reasons are in the router's ticket view; after three returns the
  ticket waits in the manual queue and the hotline centre is told (7);
- staff dispatch it by hand; the department's extension request reaches the
  centre too (7);
- resolved, the citizen is unsatisfied: the reopened ticket has a new
  deadline from the reopening, with its timers, and the citizen's lookup shows
  it (2);
- closed, the same caller calls again about it: a new ticket, dispatched,
  recording the earlier one, counted as a repeat (1);
- that one closed too, the centre turns the reopen policy on
  (HOTLINE_REPEAT_OF_CLOSED=reopen) and the caller calls once more: the latest
  ticket is reopened (重办) to its department with a new deadline from the call,
  its timers and a notice saying why; the lookup and the router's view show it,
  and stats count a repeat and a reopening (1, 2).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.keys import KeyKind
from tests.e2e.cluster import Cluster, Receiver, running_cluster
from tests.support import eventually, issue_keys, make_settings

pytestmark = pytest.mark.e2e

PHONE = "13605356789"
REQUEST = dict(
    channel="phone",
    district="冠县",
    town="贾镇",
    category="help",
    text="村里安装自来水管道占用了我家的耕地，补偿款至今未付。",
    citizen={"name": "李四", "phone": PHONE},
)
CENTRE = "city.platform"
WATER, GUANXIAN = "guanxian.water", "guanxian"


@pytest.fixture
async def cluster(servers: None, tmp_path: Path) -> AsyncIterator[tuple[Cluster, Receiver]]:
    async with running_cluster(tmp_path, with_clock=True) as value:
        yield value


class Walk:
    """The public calls of the walk, with each actor's key."""

    def __init__(self, cluster: Cluster, keys: dict[str, str], client: httpx.AsyncClient):
        self.cluster, self.keys, self.client = cluster, keys, client

    async def call(self, method: str, service: str, path: str, who: str, **kw: Any) -> Any:
        url = f"{self.cluster.url(service)}{path}"
        headers = {"X-API-Key": self.keys[who]} if who else {}
        response = await self.client.request(method, url, headers=headers, **kw)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json()

    async def issue(self, department: str) -> None:
        """A key for a department the rules or lists chose, if it has none yet."""
        if department not in self.keys:
            owners = {department: (KeyKind.DEPARTMENT, department)}
            self.keys |= await issue_keys(make_settings(self.cluster.namespace), owners)

    async def ticket(self, ticket_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "GET", "router", f"/v1/tickets/{ticket_id}", "staff"
        )
        return result

    async def act(self, ticket_id: str, who: str, action: str, body: Any = None) -> Any:
        return await self.call(
            "POST", "router", f"/v1/tickets/{ticket_id}/{action}", who, json=body
        )

    async def until(
        self, ticket_id: str, status: str, department: str | None = None
    ) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def there() -> bool:
            response = await self.client.get(
                f"{self.cluster.url('router')}/v1/tickets/{ticket_id}",
                headers={"X-API-Key": self.keys["staff"]},
            )
            seen.update(response.json() if response.status_code == 200 else {})
            return seen.get("status") == status and (
                department is None or seen.get("department") == department
            )

        await eventually(there, timeout_s=30)
        return seen

    async def deliveries(self, ticket_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.call(
            "GET", "notifier", f"/v1/deliveries?ticket_id={ticket_id}", "staff"
        )
        return result

    async def delivery(self, ticket_id: str, kind: str, department: str, status: str) -> None:
        async def recorded() -> bool:
            return any(
                (d["kind"], d["department"], d["status"]) == (kind, department, status)
                for d in await self.deliveries(ticket_id)
            )

        await eventually(recorded, timeout_s=30)

    async def rate(self, ticket_id: str, rating: str, solved: bool) -> None:
        body = {"rating": rating, "solved": solved, "comment": "回访"}
        await self.call("POST", "intake", f"/v1/tickets/{ticket_id}/feedback", "staff", json=body)

    async def lookup(self, ticket_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "GET", "intake", f"/v1/lookup?ticket={ticket_id}&phone_last4={PHONE[-4:]}", ""
        )
        return result


async def test_a_ticket_lives_its_whole_life(cluster: tuple[Cluster, Receiver]) -> None:
    procs, receiver = cluster
    owners = {
        "staff": (KeyKind.STAFF, "e2e.lifecycle"),
        WATER: (KeyKind.DEPARTMENT, WATER),
    }
    keys = await issue_keys(make_settings(procs.namespace), owners)
    receiver.failing.add(WATER)
    async with httpx.AsyncClient(timeout=10.0) as client:
        walk = Walk(procs, keys, client)
        first = (await walk.call("POST", "intake", "/v1/tickets", "", json=REQUEST))["ticket_id"]
        await walk.until(first, "dispatched", WATER)
        await returns_stop_stale_notices_and_reach_the_centre(walk, receiver, first)
        await extension_requests_reach_the_centre(walk, receiver, first)
        await a_reopened_ticket_has_a_new_deadline(walk, first)
        again = await a_repeat_of_the_closed_ticket_is_a_new_ticket(walk, first)
        await under_the_reopen_policy_a_repeat_reopens_the_ticket(walk, receiver, again)


async def returns_stop_stale_notices_and_reach_the_centre(
    walk: Walk, receiver: Receiver, ticket: str
) -> None:
    # Point 4: the notice is being retried against the failing endpoint.
    async def retried() -> bool:
        return receiver.refused >= 1

    await eventually(retried, timeout_s=30)
    reason = {"reason": "不属于本单位职责。"}
    await walk.act(ticket, WATER, "return", reason)
    receiver.failing.clear()  # the endpoint is back: a stale retry would now land
    await walk.delivery(ticket, "dispatch", WATER, "superseded")
    assert WATER not in [d for d, body, _ in receiver.notices if body["ticket_id"] == ticket]

    # Point 7: returned by every department the rules and lists choose (the
    # county sub-centre last), it waits for a person; the centre is told.
    returned_by = [WATER]
    state = await walk.ticket(ticket)
    while state["status"] != "unroutable":
        department = state["department"]
        assert department not in returned_by and len(returned_by) < 6, state
        returned_by.append(department)
        await walk.issue(department)
        state = await walk.act(ticket, department, "return", reason)
    assert GUANXIAN in returned_by
    assert [(r["department"], r["reason"]) for r in state["returns"]] == [
        (department, reason["reason"]) for department in returned_by
    ]
    await walk.delivery(ticket, "manual_queue", CENTRE, "delivered")
    [queued] = [b for d, b, _ in receiver.notices if b["kind"] == "manual_queue"]
    assert queued["ticket_id"] == ticket and "人工派单" in queued["text"]


async def extension_requests_reach_the_centre(walk: Walk, receiver: Receiver, ticket: str) -> None:
    await walk.act(ticket, "staff", "dispatch", {"department": WATER, "time_limit": "general"})
    await walk.until(ticket, "dispatched", WATER)
    await walk.act(ticket, WATER, "accept")
    await walk.act(ticket, WATER, "extension", {"days": 3, "reason": "需协调村委会。"})
    await walk.delivery(ticket, "extension_request", CENTRE, "delivered")
    [asked] = [b for d, b, _ in receiver.notices if b["kind"] == "extension_request"]
    assert d_of(asked) == CENTRE and "延期3个工作日" in asked["text"]
    await walk.act(ticket, "staff", "extension/decision", {"approve": False, "note": "理由不足"})
    await walk.act(ticket, WATER, "resolve", {"reply": "补偿款已发放到户。"})


async def overdue_timer_at(walk: Walk, ticket: str, deadline: datetime) -> None:
    """The red card's timer is set at this deadline."""

    async def timers_set() -> bool:
        timers = await walk.call("GET", "notifier", f"/v1/timers?ticket_id={ticket}", "staff")
        return any(
            t["kind"] == "overdue"
            and t["status"] == "pending"
            and datetime.fromisoformat(t["due_at"]) == deadline
            for t in timers
        )

    await eventually(timers_set, timeout_s=30)


def d_of(body: dict[str, Any]) -> str:
    return str(body["department"])


async def a_reopened_ticket_has_a_new_deadline(walk: Walk, ticket: str) -> None:
    resolved = await walk.until(ticket, "resolved")
    first_deadline = datetime.fromisoformat(resolved["deadline"])
    # The citizen is called back two days later (every service's clock moves).
    walk.cluster.set_clock_offset(2 * 86400)
    await walk.rate(ticket, "unsatisfied", solved=False)
    reopened = await walk.until(ticket, "reopened")
    deadline = datetime.fromisoformat(reopened["deadline"])
    assert deadline > first_deadline  # counted from the reopening, not the dispatch

    async def shown() -> bool:
        seen = await walk.lookup(ticket)
        at = seen["expected_at"]
        return seen["status"] == "reopened" and at and datetime.fromisoformat(at) == deadline

    await eventually(shown, timeout_s=30)

    await overdue_timer_at(walk, ticket, deadline)
    await walk.act(ticket, WATER, "accept")
    await walk.act(ticket, WATER, "explanation", {"text": "补偿标准由县里统一确定。"})
    await walk.act(ticket, WATER, "resolve", {"reply": "已再次核实并答复。"})
    await walk.until(ticket, "resolved")
    await walk.rate(ticket, "basically_satisfied", solved=True)
    await walk.until(ticket, "closed")


async def closed_for_intake(walk: Walk, ticket: str) -> None:
    async def closed() -> bool:
        return bool((await walk.lookup(ticket))["status"] == "closed")

    await eventually(closed, timeout_s=30)


async def a_repeat_of_the_closed_ticket_is_a_new_ticket(walk: Walk, first: str) -> str:
    await closed_for_intake(walk, first)
    again = await walk.call("POST", "intake", "/v1/tickets", "", json=REQUEST)
    assert again["status"] == "received" and again["related_to"] == first
    assert again["ticket_id"] != first
    await walk.until(again["ticket_id"], "dispatched", WATER)

    async def counted() -> bool:
        summary = await walk.call("GET", "stats", "/v1/stats/summary", "staff")
        return bool(summary["counts"]["repeated"] == 1)

    await eventually(counted, timeout_s=30)
    view = await walk.call("GET", "stats", f"/v1/tickets/{again['ticket_id']}", "staff")
    assert view["related_to"] == first
    return str(again["ticket_id"])


async def under_the_reopen_policy_a_repeat_reopens_the_ticket(
    walk: Walk, receiver: Receiver, ticket: str
) -> None:
    await walk.act(ticket, WATER, "accept")
    await walk.act(ticket, WATER, "resolve", {"reply": "补偿款已核实发放。"})
    await walk.until(ticket, "resolved")
    await walk.rate(ticket, "satisfied", solved=True)
    closed = await walk.until(ticket, "closed")
    await closed_for_intake(walk, ticket)
    await walk.cluster.restart("intake", HOTLINE_REPEAT_OF_CLOSED="reopen")

    called = await walk.call("POST", "intake", "/v1/tickets", "", json=REQUEST)
    assert (called["ticket_id"], called["status"], called["duplicate_of"]) == (
        ticket,
        "reopened",
        ticket,
    )
    reopened = await walk.until(ticket, "reopened", WATER)
    assert reopened["reopens"][-1]["cause"] == "repeat_call"
    assert reopened["reopen_count"] == 0  # no rating reopened it: no explanation asked
    deadline = datetime.fromisoformat(reopened["deadline"])
    assert deadline > datetime.fromisoformat(closed["deadline"])  # from the call
    await reopened_shows_everywhere(walk, receiver, ticket, deadline)


async def reopened_shows_everywhere(
    walk: Walk, receiver: Receiver, ticket: str, deadline: datetime
) -> None:
    await walk.delivery(ticket, "reopen", WATER, "delivered")
    [notice] = [
        b for _, b, _ in receiver.notices if (b["kind"], b["ticket_id"]) == ("reopen", ticket)
    ]
    assert "再次来电" in notice["text"] and notice["cause"] == "repeat_call"

    async def shown() -> bool:
        seen = await walk.lookup(ticket)
        at = seen["expected_at"]
        return (seen["status"], seen["reopen_cause"]) == ("reopened", "repeat_call") and bool(
            at and datetime.fromisoformat(at) == deadline
        )

    await eventually(shown, timeout_s=30)
    await overdue_timer_at(walk, ticket, deadline)

    async def counted() -> bool:
        counts = (await walk.call("GET", "stats", "/v1/stats/summary", "staff"))["counts"]
        return bool((counts["repeated"], counts["reopened"]) == (2, 2))

    await eventually(counted, timeout_s=30)
