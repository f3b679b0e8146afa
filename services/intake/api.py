"""Intake's HTTP API, version 1: the web/app channel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, Path, Request
from fastapi.responses import JSONResponse

from services.intake.intake import IdempotencyConflict, Intake, SubmissionError, UnknownTicket
from services.intake.models import FeedbackSubmission, Receipt, TicketSubmission

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

    @router.post(
        "/tickets/{ticket_id}/feedback",
        status_code=202,
        responses={404: {"description": "no such ticket"}, 503: {"description": "retry"}},
    )
    async def submit_feedback(
        ticket_id: Annotated[str, Path(max_length=64)], feedback: FeedbackSubmission
    ) -> dict[str, str]:
        """The citizen's rating after the department replied (回访): satisfied or
        basically satisfied closes the ticket, unsatisfied reopens it."""
        await intake.feedback(ticket_id, feedback)
        return {"ticket_id": ticket_id, "status": "feedback_received"}

    return router


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SubmissionError)
    async def _submission(_: Request, exc: SubmissionError) -> JSONResponse:
        detail = [{"loc": ["body", exc.field], "msg": str(exc), "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(UnknownTicket)
    async def _unknown(_: Request, exc: UnknownTicket) -> JSONResponse:
        return JSONResponse({"detail": f"no ticket {exc}"}, status_code=404)

    @app.exception_handler(IdempotencyConflict)
    async def _conflict(_: Request, exc: IdempotencyConflict) -> JSONResponse:
        detail = [{"loc": ["header", "Idempotency-Key"], "msg": str(exc), "type": "conflict"}]
        return JSONResponse({"detail": detail}, status_code=422)
