"""Intake's HTTP API, version 1: the web/app channel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.responses import JSONResponse

from services.intake.intake import IdempotencyConflict, Intake, SubmissionError
from services.intake.models import Receipt, TicketSubmission

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="retrying with the same key returns the same ticket",
    ),
]


def build_router(intake: Intake) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["tickets"])

    @router.post(
        "/tickets",
        status_code=202,
        response_model=Receipt,
        responses={
            413: {"description": "body too large"},
            422: {"description": "invalid request, with the field errors"},
            503: {"description": "broker or store unreachable; nothing was accepted"},
        },
    )
    async def submit_ticket(
        submission: TicketSubmission, idempotency_key: IdempotencyKey = None
    ) -> JSONResponse:
        """Accept a citizen's request. Answers 202 with the ticket number once the
        event is safely with the broker."""
        receipt = await intake.submit(submission, idempotency_key)
        return JSONResponse(receipt.model_dump(), status_code=202)

    return router


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SubmissionError)
    async def _submission(_: Request, exc: SubmissionError) -> JSONResponse:
        detail = [{"loc": ["body", exc.field], "msg": str(exc), "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(IdempotencyConflict)
    async def _conflict(_: Request, exc: IdempotencyConflict) -> JSONResponse:
        detail = [{"loc": ["header", "Idempotency-Key"], "msg": str(exc), "type": "conflict"}]
        return JSONResponse({"detail": detail}, status_code=422)
