"""Citizens' personal data in what the services show: who may see it, and the
masked form everyone else gets.

A name keeps its first character (张三 -> 张*, 欧阳娜娜 -> 欧***), a phone number
its first three and last four digits (138****5678), an address nothing but a
marker. Masking walks a whole document, so a new field under `citizen` or an
`address` anywhere is masked without a change here, and phone numbers inside
free text (a citizen often types one into the request) are masked too.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import BaseModel

from shared.logmask import mask_phone, mask_phones

MASKED = "***"
NAME_KEYS = frozenset({"name", "caller_name"})
PHONE_KEYS = frozenset({"phone", "caller_number"})
ADDRESS_KEYS = frozenset({"address", "address_string"})
# Objects whose "name" is a person's (elsewhere a "name" may be a department's).
PERSON_KEYS = frozenset({"citizen", "contact"})


class Contact(BaseModel):
    """What the handling department needs to call the citizen back."""

    name: str | None = None
    phone: str | None = None
    town: str | None = None
    address: str | None = None

    def masked(self) -> Contact:
        return Contact(
            name=mask_name(self.name),
            phone=mask_phone(self.phone) if self.phone else None,
            town=self.town,
            address=MASKED if self.address else None,
        )


def normalise_phone(raw: str | None) -> str | None:
    """Digits only, without the country code: one caller, one form."""
    if not raw:
        return None
    digits = re.sub(r"\D", "", raw)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits or None


def caller_digest(phone: str | None) -> str | None:
    """What a ticket is found by from its caller's number, without the number
    itself in an index (a digest of so few digits hides it from a glance only:
    the views holding it are as protected as the number)."""
    digits = normalise_phone(phone)
    return hashlib.sha256(f"caller:{digits}".encode()).hexdigest()[:32] if digits else None


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    name = name.strip()
    return name[:1] + "*" * max(1, len(name) - 1)


def contact_of(ticket: dict[str, Any] | None) -> Contact:
    """The contact in a ticket draft (as events carry it, in JSON form)."""
    ticket = ticket or {}
    citizen = ticket.get("citizen") or {}
    location = ticket.get("location") or {}
    return Contact(
        name=citizen.get("name"),
        phone=citizen.get("phone"),
        town=ticket.get("town"),
        address=location.get("address"),
    )


def mask_personal(value: Any, person: bool = False) -> Any:
    """A copy of the value with names, phone numbers and addresses masked."""
    if isinstance(value, dict):
        return {k: _mask_field(k, v, person) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_personal(v, person) for v in value]
    if isinstance(value, str):
        return mask_phones(value)
    return value


def _mask_field(key: str, value: Any, person: bool) -> Any:
    if value is None:
        return None
    if key in PHONE_KEYS:
        return mask_phone(str(value))
    if key in ADDRESS_KEYS:
        return MASKED
    if key in NAME_KEYS and (person or key == "caller_name") and isinstance(value, str):
        return mask_name(value)
    return mask_personal(value, key in PERSON_KEYS)


def redact_known(value: Any, contact: Contact) -> Any:
    """A copy with this contact's own values replaced by their masked forms
    wherever they occur, free text included (a notice's text names the caller)."""
    masked = contact.masked()
    pairs = [
        (getattr(contact, f), getattr(masked, f))
        for f in ("name", "phone", "address")
        if getattr(contact, f)
    ]

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        if isinstance(item, str):
            for clear, hidden in pairs:
                item = item.replace(clear, hidden)
        return item

    return mask_personal(walk(value))
