"""Reading an Open311 POST requests form into a ticket draft."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from pydantic import ValidationError

from services.intake.channels.open311.catalogue import Catalogue, Service
from services.intake.channels.open311.render import Open311Error
from services.intake.textparse import guess_place
from shared.directory import Directory
from shared.domain import Channel, Citizen, Location, TicketDraft

ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")
MAX_FIELDS = 100
MAX_FIELD = 4000


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def get(self, name: str) -> str | None:
        value = self.fields.get(name, "").strip()
        return value or None


def parse_form(body: str) -> Form:
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError as exc:
        raise Open311Error(400, f"the form cannot be read: {exc}") from exc
    form = Form()
    for name, value in pairs:
        if len(value) > MAX_FIELD:
            raise Open311Error(400, f"{name} is longer than {MAX_FIELD} characters")
        match = ATTRIBUTE.match(name)
        if match:
            form.attributes[match.group(1)].append(value)
        else:
            form.fields[name] = value
    return form


def _location(form: Form) -> Location | None:
    lat, lon = form.get("lat"), form.get("long")
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        raise Open311Error(400, "lat and long must be given together")
    try:
        return Location(lat=float(lat), lon=float(lon), address=form.get("address_string"))
    except (ValueError, ValidationError) as exc:
        raise Open311Error(400, "lat/long are not a valid position") from exc


def _attribute_lines(service: Service, form: Form) -> list[str]:
    known = {a.code: a for a in service.attributes}
    unknown = sorted(set(form.attributes) - set(known))
    if unknown:
        raise Open311Error(400, f"attribute[{unknown[0]}] is not an attribute of this service")
    lines = []
    for attribute in sorted(service.attributes, key=lambda a: a.order):
        answers = [a for a in form.attributes.get(attribute.code, []) if a.strip()]
        if not answers:
            if attribute.required:
                raise Open311Error(400, f"attribute[{attribute.code}] is required")
            continue
        try:
            lines.append(f"【{attribute.description}】{attribute.read(answers)}")
        except ValueError as exc:
            raise Open311Error(400, str(exc)) from exc
    return lines


def _citizen(form: Form) -> Citizen | None:
    name = " ".join(p for p in (form.get("last_name"), form.get("first_name")) if p) or None
    phone = form.get("phone")
    if name is None and phone is None:
        return None
    try:
        return Citizen(name=name[:100] if name else None, phone=phone)
    except ValidationError as exc:
        raise Open311Error(400, "phone is not a telephone number") from exc


def draft_of(
    form: Form, catalogue: Catalogue, directory: Directory, fallback_district: str
) -> tuple[Service, TicketDraft]:
    code = form.get("service_code")
    if code is None:
        raise Open311Error(400, "service_code was not provided")
    service = catalogue.get(code)
    if service is None:
        raise Open311Error(400, f"service_code {code!r} is not a service of this jurisdiction")
    location = _location(form)
    address = form.get("address_string")
    if location is None and address is None and form.get("address_id") is None:
        raise Open311Error(
            400, "a location is required: lat and long, address_string or address_id"
        )
    lines = [form.get("description") or service.service_name, *_attribute_lines(service, form)]
    if address:
        lines.append(f"【地址】{address}")
    district, town = guess_place(address or "", directory)
    text = "\n".join(lines)[:MAX_FIELD]
    draft = TicketDraft(
        channel=Channel.OPEN311,
        district=district or fallback_district,
        town=town,
        category=service.category,
        text=text,
        citizen=_citizen(form),
        location=location,
    )
    return service, draft
