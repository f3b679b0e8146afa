"""`hotline dispatch train` on the router's own store: every resolved or closed
ticket's final department is a label; open tickets are not learnt from."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.cli import main as hotline
from services.router.model import load_model
from services.router.repository import TicketRepository
from services.router.training import history_from_store
from services.router.workflow.state import Status, TicketState
from shared.directory import Directory, load_directory
from shared.domain import Priority, TicketDraft
from shared.mongo import create_client, service_database
from shared.settings import DATA_DIR, RouterSettings
from tests.support import purge_namespace, unique_namespace
from tests.unit.test_dispatch_model import history

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@pytest.fixture
async def settings(servers: None, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RouterSettings]:
    namespace = unique_namespace()
    monkeypatch.setenv("HOTLINE_MONGO_DB_PREFIX", namespace)
    monkeypatch.setenv("HOTLINE_AMQP_NAMESPACE", namespace)
    settings = RouterSettings()
    try:
        yield settings
    finally:
        await purge_namespace(settings)


def state(ticket_id: str, draft: TicketDraft, department: str, status: Status) -> TicketState:
    return TicketState(
        ticket_id=ticket_id,
        status=status,
        draft=draft,
        priority=Priority.NORMAL,
        department=department,
        round=1,
    )


async def store(settings: RouterSettings, directory: Directory) -> None:
    """60 closed tickets of the simulated history, and 5 still open."""
    client = create_client(settings)
    try:
        repo = TicketRepository(service_database(client, settings, "router"))
        for i, ticket in enumerate(history(65, seed=7)):
            assert ticket.expected is not None
            status = Status.CLOSED if i < 40 else Status.RESOLVED if i < 60 else Status.ACCEPTED
            await repo.create(state(f"LC{i:06d}", ticket.draft, ticket.expected, status), [], NOW)
    finally:
        await client.close()


async def test_training_reads_the_closed_tickets_of_the_store(
    settings: RouterSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")
    await store(settings, directory)
    examples = await history_from_store(settings, directory)
    assert len(examples) == 60
    assert {e.label for e in examples} <= {
        "water",
        "power",
        "market",
        "hrss",
        "police",
        "sub-centre",
    }
    model = tmp_path / "model.joblib"
    # The CLI runs its own event loop: off this one.
    code = await asyncio.to_thread(hotline, ["dispatch", "train", "--out", str(model)])
    assert code == 0
    assert capsys.readouterr().out.startswith("ok: model v1 from 60 tickets")
    assert load_model(model).tickets == 60


async def test_training_on_an_empty_store_is_refused(
    settings: RouterSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.joblib"
    code = await asyncio.to_thread(hotline, ["dispatch", "train", "--out", str(model)])
    assert code == 1
    assert "0 labelled tickets; training needs 20" in capsys.readouterr().err
    assert not model.exists()
