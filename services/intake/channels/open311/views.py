"""Service requests as Open311 shows them. Our lifecycle maps to open/closed:
resolved (awaiting the citizen's rating), closed and answered on the spot are
closed; everything before is open, with our status in status_notes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.intake.channels.open311.catalogue import Catalogue
from services.intake.channels.open311.render import Open311Error
from services.intake.progress import TicketView
from services.intake.repository import IntakeRecord
from shared.logmask import mask_phones

MAX_SPAN = timedelta(days=90)
MAX_RESULTS = 1000
STATUSES = ("open", "closed")


def request_view(record: IntakeRecord, view: TicketView, catalogue: Catalogue) -> dict[str, Any]:
    """One request; never the citizen's name, number or email."""
    draft = record.draft
    extra = record.extra
    service = catalogue.get(str(extra.get("service_code", "")))
    location = draft.location if draft else None
    return {
        "service_request_id": record.ticket_id,
        "status": "closed" if view.closed else "open",
        "status_notes": view.label,
        "service_name": service.service_name if service else None,
        "service_code": service.service_code if service else None,
        "description": mask_phones(draft.text) if draft else None,
        "agency_responsible": view.department,
        "service_notice": None,
        "requested_datetime": view.received_at,
        "updated_datetime": view.updated_at,
        "expected_datetime": view.deadline,
        "address": extra.get("address_string"),
        "address_id": extra.get("address_id"),
        "zipcode": extra.get("zipcode"),
        "lat": location.lat if location else None,
        "long": location.lon if location else None,
        "media_url": extra.get("media_url"),
    }


def parse_when(value: str | None, name: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise Open311Error(400, f"{name} is not a W3C date-time") from exc
    if when.tzinfo is None:
        raise Open311Error(400, f"{name} needs a time zone (Z or +08:00)")
    return when


def span(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    """[start, end] of a GET requests query: the last 90 days unless given."""
    until = parse_when(end, "end_date") or now
    since = parse_when(start, "start_date") or until - MAX_SPAN
    if since > until:
        raise Open311Error(400, "start_date is after end_date")
    if until - since > MAX_SPAN:
        raise Open311Error(400, "start_date and end_date may be at most 90 days apart")
    return since, until


def split(value: str | None) -> set[str]:
    return {v.strip() for v in (value or "").split(",") if v.strip()}


def statuses(value: str | None) -> set[str]:
    wanted = split(value)
    wrong = wanted - set(STATUSES)
    if wrong:
        raise Open311Error(400, f"status must be open or closed, not {sorted(wrong)[0]!r}")
    return wanted
