"""What the stats service makes of each event (services/stats/projection.py):
counter buckets by local day, archive records, history steps, view fields and
the current status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.stats.projection import (
    NEUTRAL_EVENTS,
    STATUS_AFTER,
    archive_record,
    bucket,
    current_status,
    day_of,
    department_of,
    history_step,
    view_fields,
)
from shared.domain import Actor, ActorKind, Category, Channel, TicketDims, TicketDraft
from shared.events import (
    EVENT_TYPES,
    DispatchedPayload,
    ReceivedPayload,
    ResolvedOnSpotPayload,
    TicketDispatched,
    TicketEvent,
    TicketReceived,
    TicketResolvedOnSpot,
    TicketUnroutable,
    UnroutablePayload,
    parse_event,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
LATE_EVENING_UTC = datetime(2026, 11, 26, 17, 30, tzinfo=UTC)  # 01:30 on 27 Nov in Shanghai
TICKET = "LC20261126-0001"
DIMS = TicketDims(district="guanxian", category=Category.HELP, channel=Channel.PHONE)
DIM_KEYS = {"district", "category", "channel"}


def make_draft() -> TicketDraft:
    return TicketDraft(
        channel=Channel.PHONE,
        district="guanxian",
        town="贾镇",
        category=Category.HELP,
        text="自来水管道占用耕地未补偿",
    )


def received(at: datetime = LATE_EVENING_UTC) -> TicketReceived:
    return TicketReceived(
        ticket_id=TICKET,
        occurred_at=at,
        actor=Actor(kind=ActorKind.CITIZEN, id="web"),
        payload=ReceivedPayload(ticket=make_draft()),
    )


def resolved_on_spot(at: datetime = LATE_EVENING_UTC) -> TicketResolvedOnSpot:
    return TicketResolvedOnSpot(
        ticket_id=TICKET,
        occurred_at=at,
        actor=Actor(kind=ActorKind.AGENT, id="seat-3"),
        payload=ResolvedOnSpotPayload(ticket=make_draft(), answer="已当场答复"),
    )


def dispatched(at: datetime = LATE_EVENING_UTC) -> TicketDispatched:
    return TicketDispatched(
        ticket_id=TICKET,
        occurred_at=at,
        actor=Actor(kind=ActorKind.SYSTEM, id="router"),
        payload=DispatchedPayload(
            dims=DIMS,
            ticket=make_draft(),
            department="guanxian.water",
            co_departments=("city.natres", "guanxian"),
            rule="water",
            time_limit="general",
            deadline=at + timedelta(days=7),
            response_deadline=at + timedelta(hours=2),
        ),
    )


def unroutable(at: datetime = LATE_EVENING_UTC) -> TicketUnroutable:
    return TicketUnroutable(
        ticket_id=TICKET,
        occurred_at=at,
        actor=Actor(kind=ActorKind.SYSTEM, id="router"),
        payload=UnroutablePayload(dims=DIMS, reason="no rule matched", rule=None),
    )


ALL_EVENTS: list[TicketEvent] = [received(), resolved_on_spot(), dispatched(), unroutable()]


# --- days and buckets --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "day"),
    [
        (datetime(2026, 11, 26, 17, 30, tzinfo=UTC), "2026-11-27"),
        (datetime(2026, 11, 26, 15, 59, 59, tzinfo=UTC), "2026-11-26"),
        (datetime(2026, 11, 26, 16, 0, tzinfo=UTC), "2026-11-27"),
        (datetime(2026, 11, 27, 0, 30, tzinfo=SHANGHAI), "2026-11-27"),
        (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), "2027-01-01"),
    ],
)
def test_day_is_the_local_day_in_shanghai(at: datetime, day: str) -> None:
    assert day_of(at, SHANGHAI) == day


def test_day_depends_on_the_configured_zone() -> None:
    assert day_of(LATE_EVENING_UTC, ZoneInfo("UTC")) == "2026-11-26"


def test_bucket_of_a_received_event() -> None:
    assert bucket(received(), SHANGHAI) == {
        "day": "2026-11-27",
        "measure": "received",
        "district": "guanxian",
        "category": "help",
        "channel": "phone",
        "department": "",
    }


def test_bucket_of_a_dispatched_event_names_the_department() -> None:
    result = bucket(dispatched(), SHANGHAI)
    assert result["measure"] == "dispatched"
    assert result["department"] == "guanxian.water"
    assert result["day"] == "2026-11-27"


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.event_type)
def test_bucket_values_are_plain_strings(event: TicketEvent) -> None:
    result = bucket(event, SHANGHAI)
    assert result["measure"] == event.event_type
    assert all(type(value) is str for value in result.values()), result


def test_department_of_other_events_is_empty() -> None:
    assert [department_of(e) for e in ALL_EVENTS] == ["", "", "guanxian.water", ""]


# --- archive records ----------------------------------------------------------------------


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.event_type)
def test_archive_record_is_keyed_by_event_id(event: TicketEvent) -> None:
    record = archive_record(event, SHANGHAI)
    assert record["_id"] == str(event.event_id)
    assert record["ticket_id"] == TICKET
    assert record["occurred_at"] == event.occurred_at
    assert record["day"] == "2026-11-27"
    assert record["measure"] == event.event_type


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.event_type)
def test_archive_record_keeps_the_whole_event(event: TicketEvent) -> None:
    record = archive_record(event, SHANGHAI)
    assert parse_event(json.dumps(record["event"])) == event


def test_two_deliveries_of_one_event_give_one_record_id() -> None:
    event = dispatched()
    again = parse_event(event.model_dump_json())
    assert archive_record(event, SHANGHAI)["_id"] == archive_record(again, SHANGHAI)["_id"]
    assert archive_record(received(), SHANGHAI)["_id"] != archive_record(event, SHANGHAI)["_id"]


# --- history steps -------------------------------------------------------------------------


def test_history_step_of_each_kind() -> None:
    base = {"event_id", "event_type", "at", "actor"}
    steps = {e.event_type: history_step(e) for e in ALL_EVENTS}
    assert set(steps["received"]) == base
    assert steps["received"]["actor"] == {"kind": "citizen", "id": "web"}
    assert steps["dispatched"]["department"] == "guanxian.water"
    assert steps["dispatched"]["rule"] == "water"
    assert set(steps["dispatched"]) == base | {"department", "rule", "via"}
    assert steps["unroutable"]["reason"] == "no rule matched"
    assert set(steps["unroutable"]) == base | {"reason"}
    assert steps["resolved_on_spot"]["answer"] == "已当场答复"
    assert set(steps["resolved_on_spot"]) == base | {"answer"}


# --- view fields -----------------------------------------------------------------------------


def test_view_fields_of_received() -> None:
    event = received()
    assert view_fields(event) == {
        "district": "guanxian",
        "category": "help",
        "channel": "phone",
        "text": "自来水管道占用耕地未补偿",
        "town": "贾镇",
        "received_at": event.occurred_at,
    }


def test_view_fields_of_resolved_on_spot() -> None:
    fields = view_fields(resolved_on_spot())
    assert set(fields) == DIM_KEYS | {"text", "town", "received_at"}
    assert fields["text"] == "自来水管道占用耕地未补偿"


def test_view_fields_of_dispatched() -> None:
    event = dispatched()
    assert view_fields(event) == {
        "district": "guanxian",
        "category": "help",
        "channel": "phone",
        "department": "guanxian.water",
        "co_departments": ["city.natres", "guanxian"],
        "deadline": event.payload.deadline,
        "response_deadline": event.payload.response_deadline,
        "dispatched_at": event.occurred_at,
        "time_limit": "general",
    }


def test_view_fields_of_unroutable_are_the_dims_only() -> None:
    assert view_fields(unroutable()) == {
        "district": "guanxian",
        "category": "help",
        "channel": "phone",
    }


def test_each_kind_of_event_owns_its_fields() -> None:
    # Apart from the dims they all carry, received and dispatched set disjoint fields,
    # so applying them in either order gives the same view.
    own_received = set(view_fields(received())) - DIM_KEYS
    own_dispatched = set(view_fields(dispatched())) - DIM_KEYS
    assert own_received and own_dispatched
    assert not own_received & own_dispatched
    forward: dict[str, Any] = {**view_fields(received()), **view_fields(dispatched())}
    backward: dict[str, Any] = {**view_fields(dispatched()), **view_fields(received())}
    assert forward == backward


# --- current status ---------------------------------------------------------------------------


def test_current_status_of_no_history() -> None:
    assert current_status([]) == "unknown"


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
def test_current_status_is_the_latest_step_whatever_the_order(reverse: bool) -> None:
    t0 = LATE_EVENING_UTC
    history = [history_step(received(t0)), history_step(dispatched(t0 + timedelta(seconds=1)))]
    if reverse:
        history.reverse()
    assert current_status(history) == "dispatched"


def test_current_status_compares_instants_across_zones() -> None:
    earlier_utc = history_step(dispatched(datetime(2026, 11, 26, 2, 0, tzinfo=UTC)))
    # 09:30 in Shanghai is 01:30 UTC: earlier, though its wall-clock reads later.
    first_local = history_step(received(datetime(2026, 11, 26, 9, 30, tzinfo=SHANGHAI)))
    assert current_status([earlier_utc, first_local]) == "dispatched"


def test_current_status_of_an_unknown_step_is_its_type() -> None:
    history = [
        history_step(received()),
        {"event_type": "accepted", "at": LATE_EVENING_UTC + timedelta(hours=1)},
    ]
    assert current_status(history) == "accepted"


def test_every_event_type_has_a_status_or_leaves_it() -> None:
    # Each event either moves the ticket to a status or is declared neutral.
    assert set(STATUS_AFTER) | NEUTRAL_EVENTS == set(EVENT_TYPES)
    assert not set(STATUS_AFTER) & NEUTRAL_EVENTS
