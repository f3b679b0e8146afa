"""`hotline dispatch train`: the history a model learns from, and the training.

The history is the router's own store (every resolved or closed ticket, with
the department that finally handled it after returns, manual dispatch and
转派) or a JSON-lines file in the sample-request format with
`expected_department` (an export from another system).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from services.router.backtest import Ticket
from services.router.model import DispatchModel, next_version, save_model, train, unit_type
from services.router.repository import TicketRepository
from services.router.workflow.state import Status, TicketState
from shared.directory import Directory
from shared.mongo import create_client, service_database
from shared.settings import RouterSettings

logger = logging.getLogger(__name__)

FINAL = (Status.RESOLVED.value, Status.CLOSED.value)
PAGE = 500
MIN_TICKETS = 20


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # the department type


def examples(pairs: Iterable[tuple[str, str | None]], directory: Directory) -> list[Example]:
    """(text, final department) pairs as examples; a department the directory
    does not know (any more) teaches nothing."""
    found = []
    for text, department in pairs:
        label = unit_type(department, directory) if department else None
        if label is not None:
            found.append(Example(text, label))
    return found


def examples_from_tickets(tickets: Iterable[Ticket], directory: Directory) -> list[Example]:
    return examples(((t.draft.text, t.expected) for t in tickets), directory)


def examples_from_states(states: Iterable[TicketState], directory: Directory) -> list[Example]:
    return examples(((s.draft.text, s.department) for s in states), directory)


async def history_from_store(settings: RouterSettings, directory: Directory) -> list[Example]:
    """The router's resolved and closed tickets, page by page."""
    client = create_client(settings)
    try:
        repo = TicketRepository(service_database(client, settings, "router"))
        states: list[TicketState] = []
        while page := await repo.list({"status": {"$in": list(FINAL)}}, PAGE, len(states)):
            states += page
        return examples_from_states(states, directory)
    finally:
        await client.close()


def train_and_save(examples: list[Example], path: Path) -> DispatchModel:
    """A new version of the model at path, written whole or not at all."""
    if len(examples) < MIN_TICKETS:
        raise ValueError(f"{len(examples)} labelled tickets; training needs {MIN_TICKETS}")
    model = train(
        [e.text for e in examples], [e.label for e in examples], version=next_version(path)
    )
    save_model(model, path)
    logger.info("dispatch model v%d from %d tickets at %s", model.version, model.tickets, path)
    return model
