"""The event envelope and its payloads (shared/events.py) and the ticket draft
(shared/domain.py): what goes on the wire, and what is refused before it does."""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

import shared.events
from shared.domain import (
    Actor,
    ActorKind,
    Category,
    Channel,
    Citizen,
    Location,
    Priority,
    TicketDims,
    TicketDraft,
)
from shared.events import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    DispatchedPayload,
    Envelope,
    ReceivedPayload,
    ResolvedOnSpotPayload,
    TicketDispatched,
    TicketEvent,
    TicketReceived,
    TicketResolvedOnSpot,
    TicketUnroutable,
    UnroutablePayload,
    dump_event,
    parse_event,
)

AT = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
CST = timezone(timedelta(hours=8))
ACTOR = Actor(kind=ActorKind.SYSTEM, id="router")


def make_draft(**overrides: Any) -> TicketDraft:
    fields: dict[str, Any] = {
        "channel": "phone",
        "district": "guanxian",
        "town": "贾镇",
        "category": "help",
        "priority": "normal",
        "text": "村里安装自来水管道占用了我家的耕地，没有补偿。",
        "citizen": {"name": "张三", "phone": "+8613800000000"},
        "location": {"lat": 36.48, "lon": 115.44, "address": "冠县贾镇"},
        "external_id": "S001",
    }
    fields.update(overrides)
    return TicketDraft.model_validate(fields)


def received() -> TicketReceived:
    return TicketReceived(
        ticket_id="LC20261126-0001",
        occurred_at=AT,
        actor=Actor(kind=ActorKind.CITIZEN, id="web"),
        payload=ReceivedPayload(ticket=make_draft()),
    )


def resolved_on_spot() -> TicketResolvedOnSpot:
    return TicketResolvedOnSpot(
        ticket_id="LC20261126-0002",
        occurred_at=AT,
        actor=Actor(kind=ActorKind.AGENT, id="seat-17"),
        payload=ResolvedOnSpotPayload(
            ticket=make_draft(category="consultation", channel="wechat"),
            answer="公积金提取请携带身份证到市公积金中心办理。",
        ),
    )


def dispatched() -> TicketDispatched:
    # The dims deliberately differ from the draft: consumers must use the dims.
    dims = TicketDims(
        district="yanggu", category=Category.COMPLAINT, channel=Channel.APP, priority="urgent"
    )
    return TicketDispatched(
        ticket_id="LC20261126-0003",
        occurred_at=AT,
        actor=ACTOR,
        payload=DispatchedPayload(
            dims=dims,
            ticket=make_draft(),
            department="guanxian.water",
            co_departments=("city.natres",),
            rule="water",
            time_limit="general",
            deadline=datetime(2026, 12, 3, 17, 30, tzinfo=CST),
            response_deadline=datetime(2026, 11, 26, 19, 30, tzinfo=CST),
            round=2,
        ),
    )


def unroutable() -> TicketUnroutable:
    dims = TicketDims(district="econ-zone", category=Category.SUGGESTION, channel=Channel.SMS)
    return TicketUnroutable(
        ticket_id="LC20261126-0004",
        occurred_at=AT,
        actor=ACTOR,
        payload=UnroutablePayload(dims=dims, reason="no rule matched"),
    )


FACTORIES: dict[str, Callable[[], Envelope]] = {
    "received": received,
    "resolved_on_spot": resolved_on_spot,
    "dispatched": dispatched,
    "unroutable": unroutable,
}
CLASSES: dict[str, type[Envelope]] = {
    "received": TicketReceived,
    "resolved_on_spot": TicketResolvedOnSpot,
    "dispatched": TicketDispatched,
    "unroutable": TicketUnroutable,
}


def raw(event: Envelope) -> dict[str, Any]:
    """The event as a JSON object, ready to be broken."""
    value: dict[str, Any] = json.loads(dump_event(event))
    return value


def error_types(exc: ValidationError) -> set[str]:
    return {str(err["type"]) for err in exc.errors()}


def error_locs(exc: ValidationError) -> set[tuple[str | int, ...]]:
    return {tuple(err["loc"]) for err in exc.errors()}


# --- round trip and discriminator -------------------------------------------------


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_round_trip_gives_an_equal_event_of_the_same_class(kind: str) -> None:
    event = FACTORIES[kind]()
    parsed = parse_event(dump_event(event))
    assert type(parsed) is CLASSES[kind]
    assert parsed == event
    assert parsed.event_id == event.event_id


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_parse_accepts_text_as_well_as_bytes(kind: str) -> None:
    event = FACTORIES[kind]()
    assert parse_event(dump_event(event).decode()) == event


def test_dump_is_json_with_the_envelope_fields() -> None:
    event = dispatched()
    body = json.loads(dump_event(event))
    assert body["event_type"] == "dispatched"
    assert body["schema_version"] == SCHEMA_VERSION == 1
    assert UUID(body["event_id"]) == event.event_id
    assert datetime.fromisoformat(body["occurred_at"].replace("Z", "+00:00")) == AT
    assert body["payload"]["department"] == "guanxian.water"
    assert body["payload"]["co_departments"] == ["city.natres"]
    assert body["payload"]["round"] == 2


def test_round_trip_keeps_the_instant_of_a_non_utc_deadline() -> None:
    parsed = parse_event(dump_event(dispatched()))
    assert isinstance(parsed, TicketDispatched)
    assert parsed.payload.deadline == datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    assert parsed.payload.deadline.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_discriminator_picks_the_class_named_by_event_type(kind: str) -> None:
    body = raw(FACTORIES[kind]())
    parsed = parse_event(json.dumps(body))
    assert isinstance(parsed, CLASSES[kind])
    assert parsed.event_type == kind


def test_event_type_decides_the_schema_rather_than_the_payload_shape() -> None:
    # A received payload labelled "dispatched" is a dispatched event missing its fields,
    # not a received event: the discriminator does not guess.
    body = raw(received())
    body["event_type"] = "dispatched"
    with pytest.raises(ValidationError) as info:
        parse_event(json.dumps(body))
    missing = {loc for loc in error_locs(info.value) if "department" in loc}
    assert missing, info.value.errors()


def test_event_types_lists_every_event_class() -> None:
    union_members = typing.get_args(typing.get_args(TicketEvent)[0])
    in_union = {cls.model_fields["event_type"].default: cls for cls in union_members}
    assert set(EVENT_TYPES) == set(in_union)
    # Every event class the package exports is in the union a consumer parses.
    exported = {
        obj
        for obj in vars(shared.events).values()
        if isinstance(obj, type) and issubclass(obj, Envelope) and obj is not Envelope
    }
    assert exported == set(union_members)
    for kind, cls in CLASSES.items():
        assert in_union[kind] is cls


# --- refusals --------------------------------------------------------------------


def test_unknown_event_type_is_refused() -> None:
    body = raw(received())
    body["event_type"] = "teleported"
    with pytest.raises(ValidationError) as info:
        parse_event(json.dumps(body))
    assert "union_tag_invalid" in error_types(info.value)


def test_missing_event_type_is_refused() -> None:
    body = raw(received())
    del body["event_type"]
    with pytest.raises(ValidationError) as info:
        parse_event(json.dumps(body))
    assert "union_tag_not_found" in error_types(info.value)


def test_unknown_schema_version_is_refused() -> None:
    body = raw(received())
    body["schema_version"] = 2
    with pytest.raises(ValidationError) as info:
        parse_event(json.dumps(body))
    assert any("schema_version" in loc for loc in error_locs(info.value))


def test_schema_version_cannot_be_set_to_another_value_in_code() -> None:
    with pytest.raises(ValidationError):
        TicketReceived(
            ticket_id="T1",
            actor=ACTOR,
            schema_version=2,
            payload=ReceivedPayload(ticket=make_draft()),
        )


def test_naive_occurred_at_is_refused_on_the_wire() -> None:
    body = raw(received())
    body["occurred_at"] = "2026-11-26T09:30:00"
    with pytest.raises(ValidationError) as info:
        parse_event(json.dumps(body))
    assert "timezone_aware" in error_types(info.value)
    assert any("occurred_at" in loc for loc in error_locs(info.value))


def test_naive_occurred_at_is_refused_in_code() -> None:
    with pytest.raises(ValidationError) as info:
        TicketReceived(
            ticket_id="T1",
            actor=ACTOR,
            occurred_at=datetime(2026, 11, 26, 9, 30),
            payload=ReceivedPayload(ticket=make_draft()),
        )
    assert "timezone_aware" in error_types(info.value)


def test_naive_deadline_in_a_dispatch_is_refused() -> None:
    body = raw(dispatched())
    body["payload"]["deadline"] = "2026-12-03T17:30:00"
    with pytest.raises(ValidationError) as info:
        parse_event(json.dumps(body))
    assert "timezone_aware" in error_types(info.value)


@pytest.mark.parametrize(
    "path",
    [(), ("payload",), ("payload", "ticket"), ("actor",)],
    ids=["envelope", "payload", "ticket", "actor"],
)
def test_extra_field_is_refused_at_every_level(path: tuple[str, ...]) -> None:
    body = raw(received())
    target = body
    for key in path:
        target = target[key]
    target["surprise"] = 1
    with pytest.raises(ValidationError) as info:
        parse_event(json.dumps(body))
    assert "extra_forbidden" in error_types(info.value)


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_missing_payload_is_refused(kind: str) -> None:
    body = raw(FACTORIES[kind]())
    del body["payload"]
    with pytest.raises(ValidationError) as info:
        parse_event(json.dumps(body))
    assert "missing" in error_types(info.value)
    assert any(loc[-1] == "payload" for loc in error_locs(info.value))


@pytest.mark.parametrize("field", ["ticket_id", "actor"])
def test_missing_envelope_field_is_refused(field: str) -> None:
    body = raw(received())
    del body[field]
    with pytest.raises(ValidationError):
        parse_event(json.dumps(body))


@pytest.mark.parametrize("ticket_id", ["", "x" * 65])
def test_ticket_id_length_is_bounded(ticket_id: str) -> None:
    body = raw(received())
    body["ticket_id"] = ticket_id
    with pytest.raises(ValidationError):
        parse_event(json.dumps(body))


def test_event_id_must_be_a_uuid() -> None:
    body = raw(received())
    body["event_id"] = "not-a-uuid"
    with pytest.raises(ValidationError):
        parse_event(json.dumps(body))


def test_dispatch_round_starts_at_one() -> None:
    body = raw(dispatched())
    body["payload"]["round"] = 0
    with pytest.raises(ValidationError):
        parse_event(json.dumps(body))


def test_empty_on_spot_answer_is_refused() -> None:
    body = raw(resolved_on_spot())
    body["payload"]["answer"] = ""
    with pytest.raises(ValidationError):
        parse_event(json.dumps(body))


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"null"])
def test_garbage_is_refused(body: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_event(body)


def test_events_are_frozen() -> None:
    event = received()
    with pytest.raises(ValidationError):
        event.ticket_id = "other"  # type: ignore[misc]


# --- defaults, routing keys and dims -----------------------------------------------


def test_defaults_give_a_fresh_uuid_and_an_aware_utc_time() -> None:
    before = datetime.now(UTC)
    first = TicketReceived(
        ticket_id="T1", actor=ACTOR, payload=ReceivedPayload(ticket=make_draft())
    )
    second = TicketReceived(
        ticket_id="T1", actor=ACTOR, payload=ReceivedPayload(ticket=make_draft())
    )
    assert first.event_id != second.event_id
    assert first.event_id.version == 4
    assert first.occurred_at.utcoffset() == timedelta(0)
    assert before <= first.occurred_at <= datetime.now(UTC)
    assert first.schema_version == 1


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("received", "ticket.received"),
        ("resolved_on_spot", "ticket.resolved_on_spot"),
        ("dispatched", "ticket.dispatched"),
        ("unroutable", "ticket.unroutable"),
    ],
)
def test_routing_key_is_ticket_dot_event_type(kind: str, key: str) -> None:
    assert FACTORIES[kind]().routing_key == key


def test_dims_of_received_come_from_the_draft() -> None:
    assert received().dims() == TicketDims(
        district="guanxian", category=Category.HELP, channel=Channel.PHONE, priority="normal"
    )


def test_dims_of_resolved_on_spot_come_from_the_draft() -> None:
    assert resolved_on_spot().dims() == TicketDims(
        district="guanxian",
        category=Category.CONSULTATION,
        channel=Channel.WECHAT,
        priority=Priority.NORMAL,
    )


def test_dims_of_dispatched_come_from_the_payload_dims_not_the_draft() -> None:
    dims = dispatched().dims()
    assert dims == TicketDims(
        district="yanggu", category=Category.COMPLAINT, channel=Channel.APP, priority="urgent"
    )


def test_dims_of_unroutable_come_from_the_payload() -> None:
    assert unroutable().dims() == TicketDims(
        district="econ-zone", category=Category.SUGGESTION, channel=Channel.SMS
    )


def test_bare_envelope_has_no_dims() -> None:
    envelope = Envelope(ticket_id="T1", actor=ACTOR, event_type="received")
    with pytest.raises(NotImplementedError):
        envelope.dims()


def test_ticket_dims_of_copies_the_four_dimensions() -> None:
    draft = make_draft(district="yanggu", category="report", channel="email", priority="urgent")
    assert TicketDims.of(draft) == TicketDims(
        district="yanggu",
        category=Category.REPORT,
        channel=Channel.EMAIL,
        priority=Priority.URGENT,
    )


# --- the ticket draft ------------------------------------------------------------


def test_a_minimal_draft_defaults_to_normal_priority() -> None:
    draft = TicketDraft.model_validate(
        {"channel": "web", "district": "yanggu", "category": "complaint", "text": "x"}
    )
    assert draft.priority is Priority.NORMAL
    assert draft.citizen is None and draft.location is None and draft.town is None


def test_text_of_4000_characters_is_accepted() -> None:
    assert len(make_draft(text="字" * 4000).text) == 4000


@pytest.mark.parametrize("text", ["", "字" * 4001], ids=["empty", "4001"])
def test_text_length_is_bounded(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_draft(text=text)
    assert any(loc == ("text",) for loc in error_locs(info.value))


@pytest.mark.parametrize(
    ("phone", "stored"),
    [
        ("13800000000", "13800000000"),
        ("12345", "12345"),
        # Written forms (issue #17): one number, digits only, without China's code.
        ("+8613800000000", "13800000000"),
        ("+86 138-0000-0000", "13800000000"),
        ("138-0000-0000", "13800000000"),
        ("138 0000 0000", "13800000000"),
        ("0086 138.0000.0000", "13800000000"),
        ("(0635) 8888-123", "06358888123"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_good_phone_numbers_are_accepted_and_normalised(phone: str, stored: str) -> None:
    assert Citizen(phone=phone).phone == stored


@pytest.mark.parametrize("phone", ["phone", "1234", "+86 138", "1" * 21, "++8613800000000"])
def test_bad_phone_numbers_are_refused(phone: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_draft(citizen={"phone": phone})
    assert "string_pattern_mismatch" in error_types(info.value)


@pytest.mark.parametrize(("lat", "lon"), [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0)])
def test_coordinates_on_the_bounds_are_accepted(lat: float, lon: float) -> None:
    assert Location(lat=lat, lon=lon).lat == lat


@pytest.mark.parametrize(("lat", "lon"), [(90.01, 0.0), (-90.5, 0.0), (0.0, 180.5), (0.0, -181)])
def test_coordinates_out_of_range_are_refused(lat: float, lon: float) -> None:
    with pytest.raises(ValidationError):
        make_draft(location={"lat": lat, "lon": lon})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("channel", "fax"),
        ("category", "rant"),
        ("priority", "very"),
        ("town", "镇" * 51),
        ("external_id", "x" * 101),
    ],
)
def test_draft_fields_outside_their_vocabulary_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        make_draft(**{field: value})


def test_draft_refuses_extra_fields() -> None:
    with pytest.raises(ValidationError) as info:
        make_draft(expected_department="guanxian.water")
    assert "extra_forbidden" in error_types(info.value)


def test_actor_id_must_not_be_empty() -> None:
    with pytest.raises(ValidationError):
        Actor(kind=ActorKind.STAFF, id="")
