"""Building the deliveries of a notice: who gets it, by which channel, with
which text. Delivery ids are derived from what caused them, so building the same
notice twice schedules it once."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from services.notifier.channels import DeliveryChannel, channel_for
from services.notifier.ports import DeliveryStore
from services.notifier.templates import render
from shared.directory import Directory
from shared.mongo import Document
from shared.privacy import Contact, redact_known

logger = logging.getLogger(__name__)


def contact_line(contact: Contact) -> str:
    """The contact as the dispatch notice's text gives it to the lead department."""
    parts = [
        f"{label}{value}"
        for label, value in (
            ("联系人", contact.name),
            ("电话", contact.phone),
            ("镇街", contact.town),
            ("地址", contact.address),
        )
        if value
    ]
    return "。" + "，".join(parts) if parts else ""


def minimised(delivery: Document) -> Document:
    """What a delivery keeps once it is finished (delivered or dead): its text and
    body with the citizen's contact masked; the department has it from the notice."""
    contact = (delivery.get("body") or {}).get("contact")
    if not contact:
        return {}
    fields = {k: delivery[k] for k in ("subject", "text", "body") if k in delivery}
    return dict(redact_known(fields, Contact.model_validate(contact)))


async def notify(repo: DeliveryStore, *args: Any, **kwargs: Any) -> Document | None:
    """Schedule one notice (built by notice()); None if it was scheduled before."""
    return await repo.schedule(notice(*args, **kwargs))


def notice(
    directory: Directory,
    channels: dict[str, DeliveryChannel],
    *,
    cause: str,
    kind: str,
    ticket_id: str,
    department_id: str,
    fields: dict[str, Any],
    now: datetime,
    step: str | None = None,
    about: str | None = None,
) -> Document:
    """One notice to one department over its preferred channel, as a delivery
    to schedule. A department no channel can reach gets a dead delivery:
    recorded, counted. `step` (the dispatch a dispatch notice announces) and
    `about` (the department a deadline notice is about) say when it is no
    longer current (services.notifier.currency)."""
    department = directory.department(department_id)
    channel = channel_for(department, channels) if department else None
    target = channels[channel].target(department) if channel and department else None
    name = department.name if department else department_id
    subject, text = render(kind, {**fields, "ticket_id": ticket_id, "department_name": name})
    if target is None:
        logger.error("no channel reaches %s; %s notice recorded as dead", department_id, kind)
    return {
        "_id": f"{cause}:{department_id}:{channel or 'none'}",
        "ticket_id": ticket_id,
        "department": department_id,
        "kind": kind,
        "channel": channel or "none",
        "target": target,
        "subject": subject,
        "text": text,
        # The notice's own keys last: a template field (the dispatch's "text"
        # is the citizen's request, also under "ticket") must not replace them.
        "body": {
            **fields,
            "kind": kind,
            "ticket_id": ticket_id,
            "department": department_id,
            "department_name": name,
            "text": text,
        },
        "step": step,
        "about": about or department_id,
        "created_at": now,
        "next_attempt_at": now,
    }
