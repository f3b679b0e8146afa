"""A clock control for a demo environment: hotline staff move every service's
clock forward to watch deadlines, urging, warnings and supervision happen on a
running stack, without touching the machine's clock.

All services of the stack read the same offset file (HOTLINE_CLOCK_OFFSET_FILE,
shared.clock); this route, mounted on the router, writes it. It answers only
where HOTLINE_ENVIRONMENT is `demo` and the file is configured; production
settings refuse an offset file outright (CommonSettings), so time there is the
machine's.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from shared.access import allow, refusal, refusal_responses
from shared.clock import Clock
from shared.keys import KeyKind, KeyOwner
from shared.settings import CommonSettings

Staff = Annotated[KeyOwner, Depends(allow(KeyKind.STAFF))]
MAX_OFFSET_S = 366 * 86400.0


class ClockMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advance_hours: float = Field(default=0, ge=0, le=24 * 60, description="move forward by")
    reset: bool = Field(default=False, description="back to the machine's time")


class ClockState(BaseModel):
    now: datetime
    offset_s: float


def clock_routes(settings: CommonSettings, clock: Clock) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["demo"], responses=refusal_responses(401, 403))
    path = settings.clock_offset_file

    def unavailable() -> JSONResponse | None:
        if settings.environment != "demo" or path is None:
            return refusal(
                409,
                "CLOCK_CONTROL_OFF",
                "the clock moves only in a demo environment (HOTLINE_ENVIRONMENT=demo"
                " with HOTLINE_CLOCK_OFFSET_FILE)",
            )
        return None

    def state() -> ClockState:
        now = clock.now()
        return ClockState(now=now, offset_s=round((now - datetime.now(now.tzinfo)).total_seconds()))

    @router.get("/clock", response_model=None)
    async def read_clock(_: Staff) -> ClockState | JSONResponse:
        """The services' time and how far it is ahead of the machine's. Staff only."""
        return unavailable() or state()

    @router.post("/clock", response_model=None)
    async def move_clock(_: Staff, move: ClockMove) -> ClockState | JSONResponse:
        """Move every service's clock forward (or back to the machine's time), in
        a demo environment only. Staff only."""
        refused = unavailable()
        if refused is not None:
            return refused
        assert path is not None  # unavailable() said so
        offset = 0.0 if move.reset else state().offset_s + move.advance_hours * 3600
        if offset > MAX_OFFSET_S:
            return refusal(422, "CLOCK_TOO_FAR", "the clock may run at most a year ahead")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(f"{offset}\n", encoding="utf-8")
        os.replace(tmp, path)  # a service never reads half a number
        return state()

    return router
