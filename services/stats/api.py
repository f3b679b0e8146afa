"""Stats HTTP API, version 1: tickets, the measures, the department ranking."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from services.stats.access import StatsReader, TicketReader, ticket_contact
from services.stats.csvout import csv_response
from services.stats.dispatch_quality import city_day_bounds, dispatch_quality, from_rollups
from services.stats.exports import ExportLog, export_routes, with_contacts
from services.stats.projection import ordered_steps
from services.stats.ranking import COLUMNS, rank_departments
from services.stats.rates import add_up, measures
from services.stats.repository import Counters, TicketViews
from services.stats.rollups import department_place, place_of, unfield
from shared.access import refusal_responses
from shared.domain import Category, Channel
from shared.params import Offset, StatusQuery, UnitId

MAX_RANGE_DAYS = 366
Day = Annotated[date | None, Query()]
Format = Annotated[Literal["json", "csv"], Query(alias="format")]
Phone = Annotated[str | None, Query(pattern=r"^\+?[0-9]{5,20}$", description="staff, agents")]
REFUSALS = refusal_responses()


class StatsApi:
    def __init__(
        self,
        views: TicketViews,
        counters: Counters,
        tz: ZoneInfo,
        clock: Callable[[], datetime] | None = None,
        exports: ExportLog | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        self.views = views
        self.counters = counters
        self.exports = exports or ExportLog(views.collection.database)
        self.tz = tz
        # Department id -> its Chinese name in the directory (the ranking shows both).
        self.names: Mapping[str, str] = names or {}
        # The service's clock (shared.clock), so that "today" and "overdue" agree
        # with the notifier's deadlines when tests move time.
        self.clock = clock or (lambda: datetime.now(UTC))

    def period(
        self, start: date | None, end: date | None, default_days: int = 1
    ) -> tuple[date, date]:
        today = self.clock().astimezone(self.tz).date()
        end = end or today
        start = start or end - timedelta(days=default_days - 1)
        if end < start:
            raise HTTPException(422, "'to' is before 'from'")
        if (end - start).days >= MAX_RANGE_DAYS:
            raise HTTPException(422, f"a range is at most {MAX_RANGE_DAYS} days")
        return start, end

    async def totals(
        self, start: date, end: date, filters: dict[str, str], group_by: str | None = None
    ) -> dict[str, dict[str, float]]:
        """Counters summed over the days, per value of group_by ("day", or
        "department" for the whole city): one roll-up document per day."""
        days = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
        if group_by == "department":
            if filters:
                raise ValueError("counters by department are kept for the whole city only")
            groups = await self.counters.read([department_place(day) for day in days])
            rows = [{**c, "department": unfield(d)} for g in groups for d, c in g.items()]
            return add_up(rows, "department")
        found = await self.groups(start, end, filters)
        if group_by == "day":
            return add_up([{**g, "day": day} for day, g in zip(days, found, strict=True)], "day")
        return add_up(found)

    async def groups(self, start: date, end: date, filters: dict[str, str]) -> list[dict[str, Any]]:
        """Each day's roll-up group under these filters (empty for a day without)."""
        days = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
        return await self.counters.read([place_of(day, filters) for day in days])


def build_router(api: StatsApi) -> APIRouter:
    router = APIRouter(prefix="/v1", responses=REFUSALS)
    router.include_router(_ticket_routes(api))
    router.include_router(_stats_routes(api))
    router.include_router(export_routes(api.exports))
    return router


def _ticket_routes(api: StatsApi) -> APIRouter:
    router = APIRouter(tags=["tickets"])

    @router.get("/tickets/{ticket_id}")
    async def get_ticket(ticket_id: str, reader: TicketReader) -> dict[str, Any]:
        """One ticket: its current state, the citizen's contact and every step with
        actor, reason and time (the contact masked unless the key is entitled)."""
        view = await api.views.get(ticket_id)
        if view is None or not reader.may_read(view):
            raise HTTPException(404, f"no ticket {ticket_id}")
        history = ordered_steps(view)
        view.pop("steps", None)
        view["ticket_id"] = view.pop("_id")
        view["contact"] = ticket_contact(history).model_dump()
        view["history"] = history
        return reader.shown(view)

    @router.get("/tickets", response_model=None)
    async def list_tickets(
        reader: TicketReader,
        status: StatusQuery = None,
        department: UnitId = None,
        district: UnitId = None,
        overdue: bool | None = None,
        from_: Annotated[date | None, Query(alias="from")] = None,
        to: Day = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        offset: Offset = 0,
        format: Format = "json",
        phone: Phone = None,
        contacts: bool = False,
    ) -> dict[str, Any] | Response:
        """Tickets received in a range (default: all), newest first, with paging;
        a department's own only. overdue=true: open tickets past their deadline;
        phone: a caller's tickets (staff, agents); contacts=true with format=csv:
        the citizens' contacts in the export (staff only, recorded)."""
        filters = {"status": status, "department": department, "district": district}
        query: dict[str, Any] = {k: v for k, v in filters.items() if v is not None}
        query.update(reader.ticket_filter(phone, contacts, format == "csv"))
        if overdue:
            query.update(open=1, deadline={"$lt": api.clock()})
        if from_ or to:
            start, end = api.period(from_, to)
            query["received_at"] = {
                "$gte": datetime.combine(start, datetime.min.time(), api.tz),
                "$lt": datetime.combine(end + timedelta(days=1), datetime.min.time(), api.tz),
            }
        items, total = await api.views.search(query, offset, limit, with_steps=contacts)
        for item in items:
            item["ticket_id"] = item.pop("_id")
        if contacts:
            rows = with_contacts([reader.shown(item) for item in items])
            asked = {**filters, "overdue": overdue, "from": from_, "to": to, "offset": offset}
            await api.exports.record(reader.owner, api.clock(), _plain(asked), len(rows))
            return csv_response("tickets-contacts.csv", rows, TICKET_COLUMNS)
        shown = [reader.shown(item) for item in items]
        if format == "csv":
            return csv_response("tickets.csv", shown, TICKET_COLUMNS)
        return {"total": total, "offset": offset, "limit": limit, "items": shown}

    return router


# The columns every ticket export has, even an empty one; a row's others follow.
TICKET_COLUMNS = (
    "ticket_id",
    "status",
    "received_at",
    "district",
    "town",
    "category",
    "channel",
    "priority",
    "department",
    "deadline",
    "text",
)


def _stats_routes(api: StatsApi) -> APIRouter:
    router = APIRouter(prefix="/stats", tags=["stats"])

    @router.get("/summary", response_model=None)
    async def summary(
        reader: StatsReader,
        from_: Annotated[date | None, Query(alias="from")] = None,
        to: Day = None,
        department: UnitId = None,
        district: UnitId = None,
        category: Category | None = None,
        channel: Channel | None = None,
        format: Format = "json",
    ) -> dict[str, Any] | Response:
        """Every measure over a range of days (city time, both ends included;
        default today); each rate with its numerator and denominator. A
        department key reads its own."""
        start, end = api.period(from_, to)
        department = reader.measured_department(department)
        filters = {
            k: v
            for k, v in {
                "department": department,
                "district": district,
                "category": category,
                "channel": channel,
            }.items()
            if v is not None
        }
        groups = await api.groups(start, end, filters)
        result = {
            "from": start,
            "to": end,
            "filters": filters,
            **measures(add_up(groups).get("", {})),
        }
        result["dispatch_quality"] = from_rollups(groups)
        if format == "csv":
            return csv_response("summary.csv", [_flat(result)])
        return result

    @router.get("/ranking", response_model=None)
    async def ranking(
        reader: StatsReader,
        from_: Annotated[date | None, Query(alias="from")] = None,
        to: Day = None,
        format: Format = "json",
    ) -> dict[str, Any] | Response:
        """Departments ranked on response, resolution and satisfaction (default:
        the last 30 days), with their volume; laggards are flagged. A department
        key reads its own row (its place among all)."""
        start, end = api.period(from_, to, default_days=30)
        rows = await api.totals(start, end, {}, group_by="department")
        rows.pop("", None)  # receipts and other steps before any department
        ranked = rank_departments(rows, api.names)
        if reader.department is not None:
            ranked = [r for r in ranked if r["department"] == reader.department]
        if format == "csv":
            return csv_response("ranking.csv", ranked, COLUMNS)
        return {"from": start, "to": end, "departments": ranked}

    @router.get("/dispatch-quality")
    async def dispatch_quality_report(
        reader: StatsReader,
        from_: Annotated[date | None, Query(alias="from")] = None,
        to: Day = None,
        department: UnitId = None,
        district: UnitId = None,
    ) -> dict[str, Any]:
        """派单准确率 of the tickets received in a range (default: the last 30
        days): first-time right overall and by what decided, returns by reason,
        the most frequent misroutes. A department key: its own tickets only."""
        start, end = api.period(from_, to, default_days=30)
        department = reader.measured_department(department)
        filters = {k: v for k, v in {"department": department, "district": district}.items() if v}
        bounds = city_day_bounds(start, end, api.tz)
        report = await dispatch_quality(api.views, *bounds, filters)
        return {"from": start, "to": end, "filters": filters, **report}

    @router.get("/trend")
    async def trend(
        reader: StatsReader,
        from_: Annotated[date | None, Query(alias="from")] = None,
        to: Day = None,
        department: UnitId = None,
    ) -> dict[str, Any]:
        """Day by day (default: the last 30 days): volume and the main rates, of
        the city or of one department (a department key: its own)."""
        start, end = api.period(from_, to, default_days=30)
        department = reader.measured_department(department)
        filters = {"department": department} if department else {}
        rows = await api.totals(start, end, filters, group_by="day")
        days = []
        for i in range((end - start).days + 1):
            day = (start + timedelta(days=i)).isoformat()
            m = measures(rows.get(day, {}))
            days.append(
                {"day": day, **m["counts"], **{k: v["value"] for k, v in m["rates"].items()}}
            )
        return {"from": start, "to": end, "days": days}

    return router


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """The filters of a request as the export log keeps them."""
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items() if v}


def _flat(result: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"from": result["from"], "to": result["to"], **result["filters"]}
    row.update(result["counts"])
    for name, r in result["rates"].items():
        row[f"{name}_rate"] = r["value"]
        row[f"{name}_numerator"] = r["numerator"]
        row[f"{name}_denominator"] = r["denominator"]
    row.update({f"handling_{k}": v for k, v in result["handling_time_hours"].items()})
    first = result["dispatch_quality"]["first_time_right"]
    row.update(
        first_time_right_rate=first["value"],
        first_time_right_numerator=first["numerator"],
        first_time_right_denominator=first["denominator"],
    )
    return row
