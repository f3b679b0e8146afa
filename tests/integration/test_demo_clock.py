"""The demo clock control (issue #17, point 12): staff move every service's
clock in a demo environment; nobody else, and nowhere else. Against the real
key store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from shared.access import install_access, open_access
from shared.clock import Clock
from shared.democlock import clock_routes
from shared.events import utcnow
from shared.keys import KeyKind
from shared.mongo import create_client
from shared.settings import CommonSettings

pytestmark = pytest.mark.integration


@asynccontextmanager
async def clock_api(
    settings: CommonSettings, **changes: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], Clock]]:
    settings = settings.model_copy(update=changes)
    mongo = create_client(settings)
    access = open_access(mongo, settings, None)
    app = FastAPI()
    install_access(app, access)
    clock = Clock(settings.clock_offset_file)
    app.include_router(clock_routes(settings, clock))
    keys = {
        "staff": (await access.store.issue(KeyKind.STAFF, "demo.staff", utcnow()))[1],
        "water": (await access.store.issue(KeyKind.DEPARTMENT, "guanxian.water", utcnow()))[1],
    }
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client, keys, clock
    finally:
        await mongo.close()


async def test_staff_move_the_clock_in_a_demo(settings: CommonSettings, tmp_path: Path) -> None:
    offset_file = tmp_path / "clock-offset"
    async with clock_api(settings, environment="demo", clock_offset_file=offset_file) as (
        client,
        keys,
        _,
    ):
        staff = {"X-API-Key": keys["staff"]}
        moved = await client.post("/v1/clock", json={"advance_hours": 48}, headers=staff)
        assert moved.status_code == 200, moved.text
        assert abs(moved.json()["offset_s"] - 48 * 3600) <= 2
        assert abs(float(offset_file.read_text()) - 48 * 3600) <= 2
        # Every service reading the file sees the same time.
        ahead = (Clock(offset_file).now() - datetime.now(UTC)).total_seconds()
        assert abs(ahead - 48 * 3600) <= 2
        again = await client.post("/v1/clock", json={"advance_hours": 24}, headers=staff)
        assert abs(again.json()["offset_s"] - 72 * 3600) <= 4
        back = await client.post("/v1/clock", json={"reset": True}, headers=staff)
        assert abs(back.json()["offset_s"]) <= 2
        # Only staff; bad input refused.
        water = await client.post(
            "/v1/clock", json={"advance_hours": 1}, headers={"X-API-Key": keys["water"]}
        )
        anonymous = await client.post("/v1/clock", json={"advance_hours": 1})
        negative = await client.post("/v1/clock", json={"advance_hours": -5}, headers=staff)
        assert (water.status_code, anonymous.status_code, negative.status_code) == (403, 401, 422)
        assert water.json()["code"] and anonymous.json()["code"]
        assert abs(float(offset_file.read_text())) <= 2


async def test_outside_a_demo_the_clock_does_not_move(
    settings: CommonSettings, tmp_path: Path
) -> None:
    offset_file = tmp_path / "clock-offset"
    async with clock_api(settings, clock_offset_file=offset_file) as (client, keys, _):
        staff = {"X-API-Key": keys["staff"]}
        refused = await client.post("/v1/clock", json={"advance_hours": 48}, headers=staff)
        assert refused.status_code == 409
        assert refused.json()["code"] == "CLOCK_CONTROL_OFF"
        assert not offset_file.exists()


def test_production_settings_refuse_a_clock_offset(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="refused in production"):
        CommonSettings(environment="production", clock_offset_file=tmp_path / "offset")
    assert CommonSettings(environment="production").clock_offset_file is None
