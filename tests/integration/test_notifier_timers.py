"""The notifier's timers on a clock the test moves: urging, warnings, overdue
notices and the daily supervision, against the real store and broker.

The notifier is wired in-process as services/notifier/main.py wires it, with a
shared.clock.ManualClock; the events it publishes are read back from the stats
queue of the test's namespace (bound to ticket.#). Notices go to a webhook
receiver that verifies every signature, or through a real SMTP server
(aiosmtpd) for a department that takes e-mail.

Dates: November 2026 has no public holiday. The tickets are dispatched on
Monday 2 November at 10:00 (Asia/Shanghai) with a deadline of Monday 9 November
10:00 and a response deadline of 12:00 the same day.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY

from services.notifier.firing import EVENT_IDS
from services.notifier.records import TimerKind
from services.notifier.schedule import Planned
from services.notifier.timers import TicketTimers
from shared.clock import ManualClock
from shared.directory import Directory
from shared.domain import Actor, ActorKind
from shared.events import (
    AcceptedPayload,
    Envelope,
    ExtendedPayload,
    ResolvedPayload,
    ReturnedPayload,
    TicketAccepted,
    TicketDispatched,
    TicketEvent,
    TicketExtended,
    TicketOverdue,
    TicketResolved,
    TicketReturned,
    TicketSupervised,
    TicketUrged,
    TicketWarning,
    parse_event,
)
from shared.messaging.broker import Broker
from shared.messaging.ports import EventPublisher
from shared.mongo import Document
from shared.settings import CommonSettings
from tests.e2e.cluster import free_port
from tests.integration.test_notifier_delivery import (
    Notifiers,
    Receiver,
    Replica,
    directory_for,
    dispatched,
    notifiers_on,
)
from tests.mail_support import smtp_server
from tests.support import eventually

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
WATER = "guanxian.water"
CENTRE = "city.platform"
DEPARTMENT = Actor(kind=ActorKind.DEPARTMENT, id=WATER)


def sh(month: int, day: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(2026, month, day, hh, mm, tzinfo=SHANGHAI)


START = sh(11, 2, 10)  # Monday
RESPONSE = sh(11, 2, 12)
WARNING = sh(11, 6, 10)  # Friday: one working day before
DEADLINE = sh(11, 9, 10)  # Monday
SUPERVISIONS = [sh(11, 10, 10), sh(11, 11, 10), sh(11, 12, 10), sh(11, 13, 10), sh(11, 16, 10)]


# --- reading what the notifier published ------------------------------------------------


@dataclass
class Published:
    """Events read from the stats queue of the test's namespace."""

    broker: Broker
    events: list[TicketEvent] = field(default_factory=list)

    async def drain(self) -> list[TicketEvent]:
        topology = self.broker.topology
        queue = await self.broker.channel.get_queue(topology.queue_name(topology.spec("stats")))
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            self.events.append(parse_event(message.body))
        return self.events

    def of(self, event_type: str, ticket_id: str | None = None) -> list[TicketEvent]:
        return [
            e
            for e in self.events
            if e.event_type == event_type and (ticket_id is None or e.ticket_id == ticket_id)
        ]

    async def wait_for(self, event_type: str, count: int, ticket_id: str | None = None) -> None:
        async def enough() -> bool:
            await self.drain()
            return len(self.of(event_type, ticket_id)) >= count

        await eventually(enough, timeout_s=20)


@dataclass
class Timed:
    """One notifier replica, both workers running, on a manual clock."""

    notifiers: Notifiers
    clock: ManualClock
    n: Replica
    published: Published

    @property
    def receiver(self) -> Receiver:
        return self.notifiers.receiver

    def move_to(self, when: datetime) -> None:
        self.clock.set(when)
        self.n.wake()

    async def timers(self, ticket_id: str) -> list[Document]:
        return await self.n.timers.for_ticket(ticket_id)

    async def timer(self, ticket_id: str, kind: str, seq: int = 0) -> Document:
        [doc] = [
            t
            for t in await self.timers(ticket_id)
            if t["kind"] == kind and t["seq"] == seq and t["status"] != "cancelled"
        ]
        return doc

    async def wait_timer(self, ticket_id: str, kind: str, status: str, seq: int = 0) -> Document:
        found: list[Document] = []

        async def reached() -> bool:
            found[:] = [
                t
                for t in await self.timers(ticket_id)
                if (t["kind"], t["seq"], t["status"]) == (kind, seq, status)
            ]
            return bool(found)

        await eventually(reached, timeout_s=20)
        return found[0]

    async def wait_calls(self, kind: str, count: int, ticket_id: str | None = None) -> None:
        async def arrived() -> bool:
            return len(self.receiver.of_kind(kind, ticket_id)) >= count

        await eventually(arrived, timeout_s=20)

    async def dispatch(self, ticket_id: str, department: str = WATER) -> TicketDispatched:
        event = dispatched(
            ticket_id,
            department,
            at=START,
            deadline=DEADLINE,
            response_deadline=RESPONSE,
        )
        await self.n.handle(event)
        return event


def step(event: TicketDispatched, department: str = WATER) -> dict[str, Any]:
    return {"dims": event.payload.dims, "department": department}


def accepted(event: TicketDispatched, at: datetime) -> TicketAccepted:
    return TicketAccepted(
        ticket_id=event.ticket_id,
        occurred_at=at,
        actor=DEPARTMENT,
        payload=AcceptedPayload(**step(event), responded_in_time=at <= RESPONSE),
    )


def resolved(event: TicketDispatched, at: datetime, on_time: bool = True) -> TicketResolved:
    return TicketResolved(
        ticket_id=event.ticket_id,
        occurred_at=at,
        actor=DEPARTMENT,
        payload=ResolvedPayload(
            **step(event),
            reply="已协调补偿款，于当日支付到位。",
            on_time=on_time,
            deadline=DEADLINE,
            dispatched_at=START,
        ),
    )


def event_id_of(timer: Document) -> uuid.UUID:
    return uuid.uuid5(EVENT_IDS, str(timer["_id"]))


def fired_total(kind: str) -> float:
    return REGISTRY.get_sample_value("hotline_notifier_timers_fired_total", {"kind": kind}) or 0.0


# --- fixtures ------------------------------------------------------------------------------


@asynccontextmanager
async def open_timed(
    settings: CommonSettings, receiver: Receiver, directory: Directory, **overrides: Any
) -> AsyncIterator[Timed]:
    clock = ManualClock(START)
    async with notifiers_on(settings, receiver, directory, clock) as notifiers:
        n = await notifiers.replica(**overrides)
        n.start_deliveries()
        n.start_timers()
        yield Timed(notifiers, clock, n, Published(n.infra.broker))


# --- scheduling ------------------------------------------------------------------------------


async def test_dispatch_schedules_urge_warning_and_overdue(timed: Timed) -> None:
    event = await timed.dispatch("LC-PLAN")

    timers = await timed.timers("LC-PLAN")
    assert [(t["kind"], t["due_at"], t["status"]) for t in timers] == [
        ("urge", RESPONSE, "pending"),
        ("warning", WARNING, "pending"),
        ("overdue", DEADLINE, "pending"),
    ]
    for timer in timers:
        assert timer["generation"] == str(event.event_id)
        assert timer["department"] == WATER and timer["deadline"] == DEADLINE
        assert timer["original_due_at"] == timer["due_at"]
    await timed.wait_calls("dispatch", 1)
    await timed.published.drain()
    assert timed.published.events == []  # nothing is due yet


async def test_urge_fires_once_past_the_response_deadline(timed: Timed) -> None:
    await timed.dispatch("LC-URGE")
    timed.move_to(RESPONSE + timedelta(minutes=1))

    await timed.published.wait_for("urged", 1)
    urge = await timed.wait_timer("LC-URGE", "urge", "fired")
    [urged] = timed.published.of("urged")
    assert isinstance(urged, TicketUrged)
    assert urged.event_id == event_id_of(urge)
    assert urged.payload.department == WATER and urged.payload.response_deadline == RESPONSE
    assert urged.actor.id == "notifier"
    await timed.wait_calls("urge", 1)
    [call] = timed.receiver.of_kind("urge")
    assert call.department == WATER
    assert "已超过签收时限（2026-11-02 12:00）仍未签收" in call.body["text"]
    assert urge["fired_at"] == RESPONSE + timedelta(minutes=1)

    timed.move_to(RESPONSE + timedelta(hours=3))  # still before the warning
    assert (await timed.timer("LC-URGE", "warning"))["status"] == "pending"
    assert len(timed.receiver.of_kind("urge")) == 1


async def test_accepted_in_time_is_never_urged(timed: Timed) -> None:
    event = await timed.dispatch("LC-ACCEPT")
    await timed.n.handle(accepted(event, START + timedelta(minutes=30)))
    timed.move_to(WARNING + timedelta(minutes=1))

    # The warning fires after the urge would have: by then an urge would show.
    await timed.published.wait_for("warning", 1)
    await timed.wait_calls("warning", 1)
    assert timed.published.of("urged") == []
    assert (await timed.timer("LC-ACCEPT", "warning"))["status"] == "fired"
    [urge] = [t for t in await timed.timers("LC-ACCEPT") if t["kind"] == "urge"]
    assert urge["status"] == "cancelled" and "fired_at" not in urge
    # The dispatch notice may still be on its way when the warning fires.
    assert sorted(c.kind for c in timed.receiver.calls) == ["dispatch", "warning"]


@pytest.mark.parametrize(
    ("department", "above"),
    [
        (WATER, "guanxian"),  # a county unit: its county's sub-centre first
        ("city.power", CENTRE),  # a city department: the hotline centre at once
    ],
)
async def test_a_week_later_warning_overdue_and_daily_supervision(
    timed: Timed, department: str, above: str
) -> None:
    fired_before = fired_total("supervision")
    await timed.dispatch("LC-LATE", department)
    await timed.wait_calls("dispatch", 1)
    timed.move_to(sh(11, 13, 12))  # Friday of the next week, noon

    await timed.published.wait_for("supervised", 4)
    fifth = await timed.wait_timer("LC-LATE", "supervision", "pending", seq=5)
    assert fifth["due_at"] == SUPERVISIONS[4]  # Monday: the weekend is skipped
    events = timed.published
    assert [len(events.of(kind)) for kind in ("urged", "warning", "overdue")] == [1, 1, 1]
    [warning] = events.of("warning")
    [overdue] = events.of("overdue")
    assert isinstance(warning, TicketWarning) and warning.payload.deadline == DEADLINE
    assert isinstance(overdue, TicketOverdue) and overdue.payload.department == department
    supervised = sorted(
        (cast(TicketSupervised, e) for e in events.of("supervised")), key=lambda e: e.payload.count
    )
    assert [(e.payload.count, e.payload.supervisor) for e in supervised] == [
        (1, above),
        (2, CENTRE),
        (3, CENTRE),
        (4, CENTRE),
    ]
    assert {e.payload.department for e in supervised} == {department}
    for n, due in enumerate(SUPERVISIONS[:4], 1):
        timer = await timed.timer("LC-LATE", "supervision", n)
        assert (timer["status"], timer["original_due_at"]) == ("fired", due)
        assert supervised[n - 1].event_id == event_id_of(timer)

    timed.move_to(sh(11, 16, 10, 30))  # Monday
    await timed.published.wait_for("supervised", 5)
    await timed.wait_timer("LC-LATE", "supervision", "pending", seq=6)
    await timed.wait_calls("supervision", 5)
    notices = sorted(timed.receiver.of_kind("supervision"), key=lambda c: c.body["count"])
    assert [(c.body["count"], c.department) for c in notices] == [
        (1, above),
        (2, CENTRE),
        (3, CENTRE),
        (4, CENTRE),
        (5, CENTRE),
    ]
    assert all(c.body["handler"] == department for c in notices)
    assert "已超期5个工作日" in notices[4].body["text"]
    assert [len(timed.receiver.of_kind(k)) for k in ("urge", "warning", "overdue")] == [1, 1, 1]
    assert set(timed.receiver.per_delivery().values()) == {1}
    assert fired_total("supervision") == fired_before + 5


# --- events that stop or move the clock ------------------------------------------------------


async def test_resolved_before_the_warning_gets_nothing_more(timed: Timed) -> None:
    done = await timed.dispatch("LC-DONE")
    await timed.dispatch("LC-OPEN")  # the same times, left open: the yardstick
    await timed.n.handle(accepted(done, START + timedelta(minutes=20)))
    await timed.n.handle(resolved(done, sh(11, 4, 15)))
    timed.move_to(sh(11, 13, 12))

    await timed.published.wait_for("supervised", 4, "LC-OPEN")
    await timed.wait_calls("supervision", 4, "LC-OPEN")
    assert [t["status"] for t in await timed.timers("LC-DONE")] == ["cancelled"] * 3
    assert [e for e in timed.published.events if e.ticket_id == "LC-DONE"] == []
    assert [c.kind for c in timed.receiver.calls if c.body["ticket_id"] == "LC-DONE"] == [
        "dispatch"
    ]


async def test_extension_moves_warning_and_overdue(timed: Timed) -> None:
    event = await timed.dispatch("LC-EXT")
    await timed.n.handle(accepted(event, START + timedelta(minutes=20)))
    timed.move_to(sh(11, 4, 10))
    new_deadline = sh(11, 16, 10)
    extended = TicketExtended(
        ticket_id="LC-EXT",
        occurred_at=sh(11, 4, 10),
        actor=Actor(kind=ActorKind.STAFF, id="zhang.san"),
        payload=ExtendedPayload(**step(event), days=5, deadline=new_deadline),
    )
    await timed.n.handle(extended)

    timers = await timed.timers("LC-EXT")
    live = [(t["kind"], t["due_at"]) for t in timers if t["status"] == "pending"]
    assert live == [("warning", sh(11, 13, 10)), ("overdue", new_deadline)]
    old = [(t["kind"], t["status"]) for t in timers if t["generation"] == str(event.event_id)]
    assert sorted(old) == [
        ("overdue", "cancelled"),
        ("urge", "cancelled"),
        ("warning", "cancelled"),
    ]

    timed.move_to(sh(11, 13, 12))  # past the old deadline, before the new one
    await timed.published.wait_for("warning", 1)
    [warning] = timed.published.of("warning")
    assert isinstance(warning, TicketWarning) and warning.payload.deadline == new_deadline
    assert timed.published.of("overdue") == []
    await timed.wait_calls("warning", 1)
    assert "2026-11-16 10:00" in timed.receiver.of_kind("warning")[0].body["text"]


async def test_late_redelivery_of_an_older_event_cancels_nothing(timed: Timed) -> None:
    first = await timed.dispatch("LC-AGAIN")
    returned = TicketReturned(
        ticket_id="LC-AGAIN",
        occurred_at=START + timedelta(hours=1),
        actor=DEPARTMENT,
        payload=ReturnedPayload(**step(first), reason="不属于本单位职责"),
    )
    await timed.n.handle(returned)
    second = dispatched(
        "LC-AGAIN",
        "guanxian.env",
        at=START + timedelta(hours=2),
        deadline=sh(11, 9, 12),
        response_deadline=sh(11, 2, 14),
        round_no=2,
    )
    await timed.n.handle(second)
    for late in (returned, first):  # redelivered by the broker after the newer one
        await timed.n.handle(late)

    timers = await timed.timers("LC-AGAIN")
    live = {(t["generation"], t["kind"]) for t in timers if t["status"] == "pending"}
    gen = str(second.event_id)
    assert live == {(gen, "urge"), (gen, "warning"), (gen, "overdue")}
    assert len(timers) == 6  # the first round's three, cancelled; nothing recreated
    # The second round's notice arrives. The first round's went out if its
    # attempt came before the return was handled, else it was superseded
    # (issue #17, point 4): never both sent late and counted otherwise.
    await timed.wait_calls("dispatch", 1, "LC-AGAIN")
    docs = await timed.n.deliveries.for_ticket("LC-AGAIN")

    async def settled() -> bool:
        docs[:] = await timed.n.deliveries.for_ticket("LC-AGAIN")
        return all(d["status"] in ("delivered", "superseded") for d in docs)

    await eventually(settled)
    by_department = {d["department"]: d["status"] for d in docs}
    assert by_department["guanxian.env"] == "delivered"
    notified = {c.department for c in timed.receiver.of_kind("dispatch")}
    assert (WATER in notified) == (by_department[WATER] == "delivered")


# --- firing exactly once -----------------------------------------------------------------------


async def test_firing_again_after_a_crash_republishes_the_same_event(timed: Timed) -> None:
    await timed.n.stop()  # this test fires by hand
    await timed.dispatch("LC-CRASH")
    n = timed.n
    n.start_deliveries()
    timed.clock.set(DEADLINE + timedelta(minutes=5))
    overdue = await timed.timer("LC-CRASH", "overdue")

    await n.firer.fire(overdue)
    # The process died after its effects, before anything recorded the firing:
    # the timer is due again under the next attempt number.
    await n.timers.jobs.update_one(
        {"_id": overdue["_id"]},
        {"$set": {"status": "pending", "attempt_no": 2, "due_at": timed.clock()}},
    )
    again = await timed.timer("LC-CRASH", "overdue")
    assert again["attempt_no"] == 2
    await n.firer.fire(again)

    await timed.published.wait_for("overdue", 2)
    ids = [e.event_id for e in timed.published.of("overdue")]
    assert ids == [event_id_of(overdue)] * 2  # consumers apply it once
    assert (await timed.timer("LC-CRASH", "overdue"))["status"] == "fired"
    supervisions = [t for t in await timed.timers("LC-CRASH") if t["kind"] == "supervision"]
    assert [(t["seq"], t["status"]) for t in supervisions] == [(1, "pending")]
    docs = await n.wait_for_status("LC-CRASH", "delivered")
    assert sorted(d["kind"] for d in docs) == ["dispatch", "overdue"]
    await timed.wait_calls("overdue", 1)
    assert set(timed.receiver.per_delivery().values()) == {1}


async def test_two_replicas_fire_each_of_fifty_timers_once(timed: Timed) -> None:
    await timed.n.stop()
    one, two = await timed.notifiers.replica(), await timed.notifiers.replica()
    event = dispatched("LC-X", at=START, deadline=DEADLINE, response_deadline=RESPONSE)
    context = {
        "department": WATER,
        "deadline": DEADLINE,
        "response_deadline": RESPONSE,
        "dims": event.payload.dims.model_dump(mode="json"),
    }
    expected: dict[uuid.UUID, str] = {}
    for i in range(50):
        ticket = f"LC-MANY-{i:02d}"
        planned = Planned(TimerKind.WARNING, START + timedelta(seconds=i))
        await one.timers.schedule(ticket, "g1", [planned], context)
        timer_id = f"{ticket}:g1:warning:0"
        expected[uuid.uuid5(EVENT_IDS, timer_id)] = timer_id
    timed.clock.set(START + timedelta(minutes=1))
    for replica in (one, two):
        replica.start_timers()
        replica.start_deliveries()

    async def all_fired() -> bool:
        return await one.timers.count({"status": "fired"}) == 50

    await eventually(all_fired, timeout_s=30)
    await timed.published.wait_for("warning", 50)
    await timed.wait_calls("warning", 50)
    await asyncio.sleep(0.5)  # a second firing of any timer would land by now
    await timed.published.drain()
    fired = Counter(e.event_id for e in timed.published.of("warning"))
    assert set(fired) == set(expected) and set(fired.values()) == {1}
    assert len(timed.receiver.of_kind("warning")) == 50
    assert set(timed.receiver.per_delivery().values()) == {1}


class ResolvingPublisher:
    """Runs a hook (the ticket resolving) while the timer's event is on its way."""

    def __init__(self, inner: EventPublisher, hook: Callable[[], Awaitable[None]]) -> None:
        self._inner, self._hook = inner, hook

    async def publish(self, event: Envelope) -> None:
        await self._hook()
        await self._inner.publish(event)


async def test_resolved_while_overdue_fires_stops_the_supervision(timed: Timed) -> None:
    await timed.n.stop()
    event = await timed.dispatch("LC-RACE")
    timed.clock.set(DEADLINE + timedelta(minutes=1))
    firer = replace(
        timed.n.firer,
        publisher=ResolvingPublisher(
            timed.n.firer.publisher, lambda: timed.n.handle(resolved(event, timed.clock()))
        ),
    )
    await firer.fire(await timed.timer("LC-RACE", "overdue"))

    # The overdue notice went out, but no supervision is left to escalate a
    # resolved ticket.
    await timed.published.wait_for("overdue", 1)
    timers = await timed.timers("LC-RACE")
    assert [t for t in timers if t["status"] == "pending"] == []
    assert [t["seq"] for t in timers if t["kind"] == "supervision"] == [1]


async def test_resolved_late_while_no_notifier_fired_sends_the_missed_overdue_event(
    timed: Timed,
) -> None:
    """No notifier fired the red card at the deadline; the late resolution
    still gets the ticket counted overdue on its deadline's day (one overdue
    event, the id firing would have given it), and no notice goes out."""
    await timed.n.stop()
    event = await timed.dispatch("LC-LATE")
    overdue = await timed.timer("LC-LATE", "overdue")
    timed.clock.set(DEADLINE + timedelta(hours=3))
    late = resolved(event, timed.clock(), on_time=False)
    await timed.n.handle(late)
    await timed.n.handle(late)  # redelivered: nothing more

    await timed.published.wait_for("overdue", 1)
    [sent] = timed.published.of("overdue")
    assert sent.event_id == event_id_of(overdue)
    assert isinstance(sent, TicketOverdue) and sent.payload.deadline == DEADLINE
    timers = {t["kind"]: t["status"] for t in await timed.timers("LC-LATE")}
    assert timers == {"urge": "cancelled", "warning": "cancelled", "overdue": "fired"}
    kinds = [d["kind"] for d in await timed.n.deliveries.for_ticket("LC-LATE")]
    assert kinds == ["dispatch"]
    await timed.published.drain()
    assert len(timed.published.of("overdue")) == 1


async def test_resolved_late_after_the_red_card_fired_sends_nothing_more(timed: Timed) -> None:
    event = await timed.dispatch("LC-LATE2")
    timed.move_to(DEADLINE + timedelta(seconds=1))
    await timed.published.wait_for("overdue", 1)
    await timed.wait_timer("LC-LATE2", "overdue", "fired")
    await timed.n.handle(resolved(event, DEADLINE + timedelta(hours=1), on_time=False))
    await timed.published.drain()
    assert len(timed.published.of("overdue", "LC-LATE2")) == 1


async def test_timer_cancelled_after_it_was_read_does_not_fire(timed: Timed) -> None:
    await timed.n.stop()
    event = await timed.dispatch("LC-STALE")
    timed.clock.set(RESPONSE + timedelta(minutes=1))
    urge = await timed.timer("LC-STALE", "urge")  # a worker read it as due ...
    await timed.n.handle(accepted(event, RESPONSE))  # ... then the ticket was accepted

    await timed.n.firer.fire(urge)
    [doc] = [t for t in await timed.timers("LC-STALE") if t["kind"] == "urge"]
    assert doc["status"] == "cancelled"
    await timed.published.drain()
    assert timed.published.events == []
    assert [d["kind"] for d in await timed.n.deliveries.for_ticket("LC-STALE")] == ["dispatch"]


# --- e-mail through a real SMTP server ----------------------------------------------------------


MAIL = "water@guanxian.example.gov.cn"


@pytest.fixture
async def by_mail(
    settings: CommonSettings, receiver: Receiver, tmp_path: Path
) -> AsyncIterator[tuple[Timed, int]]:
    """The water group reads e-mail: it has a webhook too, but lists only email."""
    port = free_port()
    hook = f"http://127.0.0.1:{receiver.port}/hooks/{WATER}"
    contacts = {WATER: {"webhook": hook, "email": MAIL, "channels": ["email"]}}
    directory = directory_for(receiver, tmp_path, contacts)
    overrides = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "delivery_backoff_base_s": 1.0,
        "delivery_backoff_cap_s": 2.0,
    }
    async with open_timed(settings, receiver, directory, **overrides) as value:
        yield value, port


def assert_chinese_dispatch_mail(message: EmailMessage, ticket_id: str, text: str) -> None:
    assert message["Subject"] == f"【12345派单】{ticket_id}"
    assert message["To"] == MAIL and message["From"] == "12345@hotline.local"
    assert message["X-Hotline-Delivery"].endswith(f":{WATER}:email")
    body = message.get_body(("plain",))
    assert body is not None
    content = body.get_content()
    # The mail carries the contact the store keeps masked once the notice is sent.
    assert "13800000000" in content and "138****0000" not in content
    assert content.strip().replace("13800000000", "138****0000").replace("张三", "张*") == text
    assert content.startswith("冠县水务集团：12345热线向你单位派发工单")
    assert "村里安装自来水管道占用了我家的耕地" in content


async def test_email_department_gets_its_notice_by_smtp(by_mail: tuple[Timed, int]) -> None:
    timed, port = by_mail
    async with smtp_server(port) as mailbox:
        await timed.dispatch("LC-MAIL")
        [doc] = await timed.n.wait_for_status("LC-MAIL", "delivered")
        [envelope] = mailbox.envelopes
    assert doc["channel"] == "email" and doc["target"] == MAIL
    assert envelope.rcpt_tos == [MAIL]
    [message] = mailbox.messages()
    assert_chinese_dispatch_mail(message, "LC-MAIL", doc["text"])
    assert timed.receiver.calls == []  # the webhook it also has was not used


async def test_smtp_down_then_up(by_mail: tuple[Timed, int]) -> None:
    timed, port = by_mail
    await timed.dispatch("LC-SMTP")

    async def attempts(count: int) -> None:
        async def made() -> bool:
            [doc] = await timed.n.deliveries.for_ticket("LC-SMTP")
            return len(doc["attempts"]) >= count

        await eventually(made)

    await attempts(1)
    timed.move_to(timed.clock() + timedelta(seconds=3))  # past the longest backoff
    await attempts(2)
    [doc] = await timed.n.deliveries.for_ticket("LC-SMTP")
    assert doc["status"] == "pending"
    assert [a["ok"] for a in doc["attempts"]] == [False, False]
    assert all("SMTPConnect" in a["error"] for a in doc["attempts"])

    async with smtp_server(port) as mailbox:
        timed.move_to(timed.clock() + timedelta(seconds=3))
        [doc] = await timed.n.wait_for_status("LC-SMTP", "delivered")
        [message] = mailbox.messages()
    assert [a["ok"] for a in doc["attempts"]] == [False, False, True]
    assert_chinese_dispatch_mail(message, "LC-SMTP", doc["text"])


async def test_timers_set_before_generations_were_recorded_are_still_cancelled(
    timed: Timed,
) -> None:
    """A ticket whose notifier record predates the generations list: cancel()
    falls back to finding its timers by ticket."""
    await timed.n.stop()
    event = dispatched("LC-OLD", at=START, deadline=DEADLINE, response_deadline=RESPONSE)
    context = {"department": WATER, "deadline": DEADLINE, "response_deadline": RESPONSE}
    plan = [
        Planned(TimerKind.URGE, RESPONSE),
        Planned(TimerKind.WARNING, DEADLINE - timedelta(days=1)),
    ]
    await timed.n.timers.schedule("LC-OLD", "g-old", plan, context)
    await timed.n.infra.db["timer_tickets"].insert_one({"_id": "LC-OLD", "last_at": START})

    known = await timed.n.timers.accept_event("LC-OLD", START)
    assert known == TicketTimers("LC-OLD", None)  # no generations recorded: cancel queries
    assert await timed.n.timers.cancel(known, keep=str(event.event_id)) == 2
    assert {t["status"] for t in await timed.timers("LC-OLD")} == {"cancelled"}


async def test_scheduling_again_inserts_only_the_timers_not_there(timed: Timed) -> None:
    """A redelivered event schedules its timers again in one unordered insert:
    those already stored are left alone and not returned, the rest are added."""
    await timed.n.stop()
    context = {"department": WATER, "deadline": DEADLINE, "response_deadline": RESPONSE}
    first = [
        Planned(TimerKind.URGE, RESPONSE),
        Planned(TimerKind.WARNING, DEADLINE - timedelta(days=1)),
    ]
    inserted = await timed.n.timers.schedule("LC-AGAIN", "g1", first, context)
    assert [t["kind"] for t in inserted] == ["urge", "warning"]
    await timed.n.timers.cancel_one("LC-AGAIN:g1:urge:0")

    again = [*first, Planned(TimerKind.OVERDUE, DEADLINE)]
    inserted = await timed.n.timers.schedule("LC-AGAIN", "g1", again, context)

    assert [t["_id"] for t in inserted] == ["LC-AGAIN:g1:overdue:0"]
    stored = {t["_id"]: t["status"] for t in await timed.timers("LC-AGAIN")}
    assert stored == {
        "LC-AGAIN:g1:urge:0": "cancelled",
        "LC-AGAIN:g1:warning:0": "pending",
        "LC-AGAIN:g1:overdue:0": "pending",
    }
    assert await timed.n.timers.schedule("LC-AGAIN", "g1", again, context) == []
