"""Notifier handlers: turn ticket events into scheduled deliveries."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from services.notifier.repository import DeliveryRepository
from shared.directory import Directory
from shared.events import TicketDispatched
from shared.mongo import Document

logger = logging.getLogger(__name__)


def dispatch_notice(event: TicketDispatched, department: str, role: str, name: str) -> Document:
    """The body a department receives: the request and its time limits."""
    p = event.payload
    return {
        "kind": "dispatch",
        "ticket_id": event.ticket_id,
        "event_id": str(event.event_id),
        "department": department,
        "department_name": name,
        "role": role,
        "lead_department": p.department,
        "co_departments": list(p.co_departments),
        "time_limit": p.time_limit,
        "deadline": p.deadline.isoformat(),
        "response_deadline": p.response_deadline.isoformat(),
        "ticket": p.ticket.model_dump(mode="json", exclude={"citizen"}),
        "dispatched_at": event.occurred_at.isoformat(),
    }


async def handle_dispatched(
    event: TicketDispatched,
    *,
    repo: DeliveryRepository,
    directory: Directory,
    clock: Callable[[], datetime],
    wake: Callable[[], None],
) -> None:
    """Schedule one dispatch notice per department (lead and co-handlers)."""
    now = clock()
    roles = [(event.payload.department, "lead")] + [
        (dep, "co") for dep in event.payload.co_departments
    ]
    for dep_id, role in roles:
        department = directory.department(dep_id)
        webhook = department.contact.webhook if department else None
        doc = {
            "_id": f"{event.event_id}:{dep_id}:webhook",
            "ticket_id": event.ticket_id,
            "department": dep_id,
            "channel": "webhook",
            "target": webhook,
            "body": dispatch_notice(event, dep_id, role, department.name if department else dep_id),
            "created_at": now,
            "next_attempt_at": now,
        }
        if webhook is None:
            logger.error("department %s has no webhook; notice recorded as dead", dep_id)
        await repo.schedule(doc)
    wake()
