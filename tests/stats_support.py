"""Ticket histories for the stats tests and bench, built as real event objects,
and the stats service wired in-process on a test's namespace.

A TicketStory is one ticket: each method returns the event of one step at a time
the test chooses, and keeps what the router would know (department, deadline,
dispatch time), so that the events carry the same payloads the router publishes.
StatsHarness holds the stats collections, an Aggregator and the HTTP API on a
ManualClock: the archive stamps arrival with that clock; the aggregator folds
what the consumer put in its inbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from services.stats.aggregator import Aggregator
from services.stats.api import StatsApi, build_router
from services.stats.handlers import archive_batch
from services.stats.repository import Counters, EventArchive, Meta, TicketViews
from shared.access import Access, install_access, open_access
from shared.clock import ManualClock
from shared.directory import load_directory
from shared.domain import Actor, ActorKind, Category, Channel, Priority, TicketDims, TicketDraft
from shared.events import (
    AcceptedPayload,
    ClosedPayload,
    DispatchedPayload,
    ExplanationPayload,
    ExtendedPayload,
    ExtensionRefusedPayload,
    ExtensionRequestedPayload,
    FeedbackPayload,
    LinkedPayload,
    OverduePayload,
    Rating,
    ReceivedPayload,
    ReopenCause,
    ReopenedPayload,
    ResolvedOnSpotPayload,
    ResolvedPayload,
    ReturnedPayload,
    SupervisedPayload,
    TicketAccepted,
    TicketClosed,
    TicketDispatched,
    TicketEvent,
    TicketExplained,
    TicketExtended,
    TicketExtensionRefused,
    TicketExtensionRequested,
    TicketFeedback,
    TicketLinked,
    TicketOverdue,
    TicketReceived,
    TicketReopened,
    TicketResolved,
    TicketResolvedOnSpot,
    TicketReturned,
    TicketSupervised,
    TicketUnroutable,
    TicketUrged,
    TicketWarning,
    UnroutablePayload,
    UrgedPayload,
    WarningPayload,
    utcnow,
)
from shared.keys import KeyKind
from shared.mongo import Document, create_client, service_database
from shared.settings import DATA_DIR, CommonSettings

CITY = ZoneInfo("Asia/Shanghai")
ROUTER = Actor(kind=ActorKind.SYSTEM, id="router")
NOTIFIER = Actor(kind=ActorKind.SYSTEM, id="notifier")
CITIZEN = Actor(kind=ActorKind.CITIZEN, id="citizen")


def city(day: str, hh: int, mm: int = 0) -> datetime:
    """A time in the city (UTC+8), e.g. city("2025-03-10", 9, 30)."""
    y, m, d = (int(part) for part in day.split("-"))
    return datetime(y, m, d, hh, mm, tzinfo=CITY)


def utc(day: str, hh: int, mm: int = 0) -> datetime:
    y, m, d = (int(part) for part in day.split("-"))
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


@dataclass
class TicketStory:
    ticket_id: str
    district: str = "guanxian"
    category: Category = Category.HELP
    channel: Channel = Channel.PHONE
    text: str = "村里安装自来水管道占用了我家的耕地，没有支付补偿款"
    town: str | None = None
    priority: Priority = Priority.NORMAL
    department: str = ""
    deadline: datetime | None = None
    response_deadline: datetime | None = None
    dispatched_at: datetime | None = None
    round: int = 0
    reopen_count: int = 0
    returned_by: list[str] = field(default_factory=list)
    # More fields of the draft: the citizen, the location.
    draft_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def draft(self) -> TicketDraft:
        return TicketDraft(
            channel=self.channel,
            district=self.district,
            town=self.town,
            category=self.category,
            priority=self.priority,
            text=self.text,
            **self.draft_fields,
        )

    @property
    def dims(self) -> TicketDims:
        return TicketDims.of(self.draft)

    def _dept(self) -> Actor:
        return Actor(kind=ActorKind.DEPARTMENT, id=self.department)

    def received(self, at: datetime, related_to: str | None = None) -> TicketReceived:
        return TicketReceived(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=Actor(kind=ActorKind.AGENT, id="seat-7"),
            payload=ReceivedPayload(ticket=self.draft, related_to=related_to),
        )

    def resolved_on_spot(self, at: datetime, answer: str = "已当场答复") -> TicketResolvedOnSpot:
        return TicketResolvedOnSpot(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=Actor(kind=ActorKind.AGENT, id="seat-7"),
            payload=ResolvedOnSpotPayload(ticket=self.draft, answer=answer),
        )

    def linked(
        self,
        at: datetime,
        channel: Channel = Channel.SMS,
        similarity: float = 96.0,
        reopen: bool = False,
    ) -> TicketLinked:
        """The same problem again, by another channel, merged into this ticket
        (with reopen: a repeat of it closed, reopening it under the reopen policy)."""
        draft = self.draft.model_copy(update={"channel": channel})
        return TicketLinked(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=Actor(kind=ActorKind.CITIZEN, id=f"channel:{channel.value}"),
            payload=LinkedPayload(ticket=draft, similarity=similarity, reopen=reopen),
        )

    def dispatched(
        self,
        at: datetime,
        department: str,
        hours: float,
        response_hours: float = 2.0,
        co_departments: tuple[str, ...] = (),
    ) -> TicketDispatched:
        previous = self.department or None
        self.department, self.dispatched_at, self.round = department, at, self.round + 1
        self.deadline = at + timedelta(hours=hours)
        self.response_deadline = at + timedelta(hours=response_hours)
        return TicketDispatched(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=ROUTER,
            payload=DispatchedPayload(
                dims=self.dims,
                ticket=self.draft,
                department=department,
                co_departments=co_departments,
                rule="test.rule",
                time_limit="general",
                deadline=self.deadline,
                response_deadline=self.response_deadline,
                round=self.round,
                previous_department=previous if self.round > 1 else None,
            ),
        )

    def unroutable(self, at: datetime, reason: str = "没有匹配的规则") -> TicketUnroutable:
        self.department = ""
        return TicketUnroutable(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=ROUTER,
            payload=UnroutablePayload(dims=self.dims, reason=reason),
        )

    def accepted(self, at: datetime) -> TicketAccepted:
        assert self.response_deadline is not None
        in_time = at <= self.response_deadline
        return TicketAccepted(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=self._dept(),
            payload=AcceptedPayload(
                dims=self.dims, department=self.department, responded_in_time=in_time
            ),
        )

    def returned(self, at: datetime, reason: str = "不属于本单位职责") -> TicketReturned:
        self.returned_by.append(self.department)
        return TicketReturned(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=self._dept(),
            payload=ReturnedPayload(dims=self.dims, department=self.department, reason=reason),
        )

    def extension_requested(
        self, at: datetime, days: int = 3, reason: str = "需要协调施工队"
    ) -> TicketExtensionRequested:
        return TicketExtensionRequested(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=self._dept(),
            payload=ExtensionRequestedPayload(
                dims=self.dims, department=self.department, days=days, reason=reason
            ),
        )

    def extended(self, at: datetime, new_deadline: datetime, days: int = 3) -> TicketExtended:
        self.deadline = new_deadline
        return TicketExtended(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=Actor(kind=ActorKind.STAFF, id="supervisor-1"),
            payload=ExtendedPayload(
                dims=self.dims, department=self.department, days=days, deadline=new_deadline
            ),
        )

    def extension_refused(self, at: datetime, reason: str = "理由不充分") -> TicketExtensionRefused:
        return TicketExtensionRefused(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=Actor(kind=ActorKind.STAFF, id="supervisor-1"),
            payload=ExtensionRefusedPayload(
                dims=self.dims, department=self.department, reason=reason
            ),
        )

    def resolved(self, at: datetime, reply: str = "已处理完毕") -> TicketResolved:
        assert self.deadline is not None and self.dispatched_at is not None
        return TicketResolved(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=self._dept(),
            payload=ResolvedPayload(
                dims=self.dims,
                department=self.department,
                reply=reply,
                on_time=at <= self.deadline,
                deadline=self.deadline,
                dispatched_at=self.dispatched_at,
            ),
        )

    def feedback(self, at: datetime, rating: Rating, solved: bool) -> TicketFeedback:
        return TicketFeedback(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=CITIZEN,
            payload=FeedbackPayload(dims=self.dims, rating=rating, solved=solved),
        )

    def closed(self, at: datetime, rating: Rating, solved: bool) -> TicketClosed:
        return TicketClosed(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=CITIZEN,
            payload=ClosedPayload(
                dims=self.dims, department=self.department, rating=rating, solved=solved
            ),
        )

    def reopened(
        self,
        at: datetime,
        hours: float,
        solved: bool = False,
        cause: ReopenCause = ReopenCause.RATING,
    ) -> TicketReopened:
        self.reopen_count += 1
        self.deadline = at + timedelta(hours=hours)
        self.response_deadline = at + timedelta(hours=2)
        rating = cause == ReopenCause.RATING
        return TicketReopened(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=CITIZEN,
            payload=ReopenedPayload(
                dims=self.dims,
                department=self.department,
                cause=cause,
                comment="还是没有解决" if rating else None,
                solved=solved,
                reopen_count=self.reopen_count,
                deadline=self.deadline,
                response_deadline=self.response_deadline,
            ),
        )

    def explained(self, at: datetime, text: str = "已向市民说明原因") -> TicketExplained:
        return TicketExplained(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=self._dept(),
            payload=ExplanationPayload(dims=self.dims, department=self.department, text=text),
        )

    def urged(self, at: datetime) -> TicketUrged:
        assert self.response_deadline is not None
        return TicketUrged(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=NOTIFIER,
            payload=UrgedPayload(
                dims=self.dims,
                department=self.department,
                response_deadline=self.response_deadline,
            ),
        )

    def warning(self, at: datetime) -> TicketWarning:
        assert self.deadline is not None
        return TicketWarning(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=NOTIFIER,
            payload=WarningPayload(
                dims=self.dims, department=self.department, deadline=self.deadline
            ),
        )

    def overdue(self, at: datetime | None = None) -> TicketOverdue:
        """The red card, fired at the deadline unless told otherwise."""
        assert self.deadline is not None
        return TicketOverdue(
            ticket_id=self.ticket_id,
            occurred_at=at or self.deadline,
            actor=NOTIFIER,
            payload=OverduePayload(
                dims=self.dims, department=self.department, deadline=self.deadline
            ),
        )

    def supervised(self, at: datetime, count: int = 1) -> TicketSupervised:
        assert self.deadline is not None
        return TicketSupervised(
            ticket_id=self.ticket_id,
            occurred_at=at,
            actor=NOTIFIER,
            payload=SupervisedPayload(
                dims=self.dims,
                department=self.department,
                deadline=self.deadline,
                supervisor="city.platform",
                count=count,
            ),
        )


# --- the stats service in-process ---------------------------------------------------------


@dataclass
class StatsHarness:
    db: AsyncDatabase[Document]
    clock: ManualClock
    archive: EventArchive
    views: TicketViews
    counters: Counters
    meta: Meta
    aggregator: Aggregator
    # Carries a hotline staff key; other keys come from issue().
    http: httpx.AsyncClient
    access: Access

    async def issue(self, kind: KeyKind, owner: str) -> dict[str, str]:
        """Headers with a new key of the owner."""
        return {"X-API-Key": (await self.access.store.issue(kind, owner, utcnow()))[1]}

    def aggregator_as(self, holder: str, batch: int = 2000) -> Aggregator:
        """Another aggregator on the same collections (another replica, or the CLI)."""
        return Aggregator(
            self.archive,
            self.views,
            self.counters,
            self.meta,
            CITY,
            self.clock,
            holder,
            batch,
            linger_s=0,  # the tests say when events have arrived
        )

    async def archive_events(self, events: Sequence[TicketEvent]) -> None:
        """Archive as the consumer does: one batch, stamped with the clock's now."""
        await archive_batch(list(events), archive=self.archive, clock=self.clock)
        self.clock.advance(timedelta(milliseconds=5))

    def settle(self) -> None:
        """A few seconds pass (the aggregator folds what is in the inbox at
        once; the tests' timelines keep this step)."""
        self.clock.advance(timedelta(seconds=3))

    async def ingest(self, events: Sequence[TicketEvent], chunk: int = 0) -> None:
        """Archive (in chunks of `chunk`, or all at once), let it settle, aggregate."""
        size = chunk or max(1, len(events))
        for start in range(0, len(events), size):
            await self.archive_events(events[start : start + size])
        self.settle()
        await self.aggregator.catch_up()

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.http.get(path, params=params)
        assert response.status_code == 200, (path, params, response.text)
        return response.json()


@asynccontextmanager
async def stats_harness(
    settings: CommonSettings, now: datetime, batch: int = 2000
) -> AsyncIterator[StatsHarness]:
    client = create_client(settings)
    try:
        db = service_database(client, settings, "stats")
        archive, views, counters, meta = EventArchive(db), TicketViews(db), Counters(db), Meta(db)
        for repo in (archive, views, counters):
            await repo.ensure_indexes()
        clock = ManualClock(now)
        aggregator = Aggregator(
            archive, views, counters, meta, CITY, clock, "live", batch, linger_s=0
        )
        app = FastAPI()
        directory = load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")
        names = {d.id: d.name for d in directory.departments.values()}
        app.include_router(build_router(StatsApi(views, counters, CITY, clock, names=names)))
        access = open_access(client, settings, None)
        install_access(app, access)
        staff = (await access.store.issue(KeyKind.STAFF, "stats.tester", utcnow()))[1]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://stats", headers={"X-API-Key": staff}
        ) as http:
            yield StatsHarness(db, clock, archive, views, counters, meta, aggregator, http, access)
    finally:
        await client.close()


# --- a hand-built history: ten tickets over three days --------------------------------------

D1, D2, D3 = "2025-03-10", "2025-03-11", "2025-03-12"
WATER = "guanxian.water"  # T1, T6, T9
URBAN = "yanggu.urban-mgmt"  # T2, T3, T10
HOUSING = "city.housing"  # T4 first, returns it
ENV = "city.env"  # T4 after the return, T7


def three_days() -> dict[str, list[TicketEvent]]:
    """Ten tickets received from 10 to 12 March 2025, city time; every figure the
    tests expect from them is worked out by hand in tests/integration/test_stats_api.py."""
    t1 = TicketStory("LC20250310-0001", "guanxian", town="贾镇")
    t2 = TicketStory(
        "LC20250310-0002",
        "yanggu",
        Category.COMPLAINT,
        Channel.WECHAT,
        "阳谷县紫荆街一家店铺门口北侧堆放建筑垃圾好几天了",
        "博济桥街道",
    )
    t3 = TicketStory("LC20250310-0003", "yanggu", Category.COMPLAINT, text="小区旁夜间施工噪音扰民")
    t4 = TicketStory(
        "LC20250310-0004", "dongchangfu", Category.REPORT, Channel.APP, "小区污水外溢", "古楼街道"
    )
    t5 = TicketStory(
        "LC20250311-0005", "linqing", Category.CONSULTATION, Channel.WEB, "医保报销流程"
    )
    t6 = TicketStory("LC20250310-0006", "guanxian", text="村里停水两天了")
    t7 = TicketStory("LC20250311-0007", "dongchangfu", Category.COMPLAINT, text="工厂夜间排放异味")
    t8 = TicketStory("LC20250311-0008", "linqing", Category.CONSULTATION, Channel.SMS, "咨询事项")
    t9 = TicketStory("LC20250312-0009", "guanxian", text="路灯不亮")
    t10 = TicketStory(
        "LC20250312-0010", "yanggu", Category.SUGGESTION, Channel.EMAIL, "建议增设公交站"
    )
    return {
        t1.ticket_id: [
            t1.received(city(D1, 9)),
            t1.dispatched(city(D1, 9, 5), WATER, hours=48),  # due D3 09:05
            t1.accepted(city(D1, 9, 40)),
            t1.resolved(city(D2, 10)),
            t1.feedback(city(D2, 15), Rating.SATISFIED, solved=True),
            t1.closed(city(D2, 15), Rating.SATISFIED, solved=True),
        ],
        t2.ticket_id: [
            t2.received(city(D1, 10)),
            t2.dispatched(city(D1, 10, 1), URBAN, hours=24),  # due D2 10:01
            t2.accepted(city(D1, 10, 30)),
            t2.resolved(city(D1, 16)),
            t2.feedback(city(D1, 18), Rating.BASICALLY_SATISFIED, solved=True),
            t2.closed(city(D1, 18), Rating.BASICALLY_SATISFIED, solved=True),
        ],
        t3.ticket_id: [
            t3.received(city(D1, 11)),
            t3.dispatched(city(D1, 11, 2), URBAN, hours=24),  # due D2 11:02, respond by 13:02
            t3.urged(city(D1, 13, 2)),
            t3.accepted(city(D1, 14)),  # late
            t3.warning(city(D2, 8)),
            t3.overdue(),  # D2 11:02
            t3.supervised(city(D2, 12)),
            t3.resolved(city(D2, 15)),  # late
            t3.feedback(city(D2, 20), Rating.BASICALLY_SATISFIED, solved=False),
            t3.closed(city(D2, 20), Rating.BASICALLY_SATISFIED, solved=False),
        ],
        t4.ticket_id: [
            t4.received(city(D1, 13)),
            t4.dispatched(city(D1, 13, 5), HOUSING, hours=24),
            t4.returned(city(D1, 14)),
            t4.dispatched(city(D1, 14), ENV, hours=24),  # round 2, same instant
            t4.accepted(city(D1, 15)),
            t4.extension_requested(city(D2, 9), days=1),
            t4.extended(city(D2, 10), city(D3, 18), days=1),  # due D3 18:00
            t4.resolved(city(D3, 16)),
            t4.feedback(city(D3, 19), Rating.SATISFIED, solved=True),
            t4.closed(city(D3, 19), Rating.SATISFIED, solved=True),
        ],
        t5.ticket_id: [t5.resolved_on_spot(city(D2, 9, 30), answer="已告知医保报销所需材料")],
        t6.ticket_id: [
            t6.received(city(D1, 15)),
            t6.dispatched(city(D1, 15, 10), WATER, hours=24),  # due D2 15:10
            t6.accepted(city(D1, 16)),
            t6.resolved(city(D2, 9)),
            t6.feedback(city(D2, 12), Rating.UNSATISFIED, solved=False),
            t6.reopened(city(D2, 12), hours=24),  # due D3 12:00, respond by D2 14:00
            t6.accepted(city(D2, 13)),
            t6.explained(city(D2, 17), text="管网老化，已安排整体更换"),
            t6.resolved(city(D3, 10)),
            t6.feedback(city(D3, 14), Rating.BASICALLY_SATISFIED, solved=True),
            t6.closed(city(D3, 14), Rating.BASICALLY_SATISFIED, solved=True),
        ],
        t7.ticket_id: [
            t7.received(city(D2, 8)),
            t7.dispatched(city(D2, 8, 10), ENV, hours=24),  # due D3 08:10
            t7.accepted(city(D2, 9)),
            t7.warning(city(D2, 16)),
            t7.overdue(),  # D3 08:10
            t7.supervised(city(D3, 9)),
        ],
        t8.ticket_id: [t8.received(city(D2, 11)), t8.unroutable(city(D2, 11, 1))],
        t9.ticket_id: [
            t9.received(utc(D2, 17, 30)),  # 01:30 on D3 in the city
            t9.dispatched(city(D3, 1, 35), WATER, hours=24),  # due D4 01:35, respond by 03:35
            t9.urged(city(D3, 3, 35)),
            t9.accepted(city(D3, 8)),  # late
        ],
        t10.ticket_id: [
            t10.received(city(D3, 9)),
            t10.dispatched(city(D3, 9, 5), URBAN, hours=48),  # due D5 09:05
            t10.accepted(city(D3, 10)),
            t10.extension_requested(city(D3, 11)),
            t10.extension_refused(city(D3, 12)),
        ],
    }
