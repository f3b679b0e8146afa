"""Intake's own HTTP routes (lookup, hotspots, channels) and the error answers
every channel shares. The channels mount their routes themselves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.types import Scope

from services.intake.channels import ChannelContext, IntakeChannel
from services.intake.channels.open311 import PREFIX as OPEN311
from services.intake.channels.open311.render import Open311Error, format_of_path, render_error
from services.intake.intake import (
    FeedbackNotExpected,
    IdempotencyConflict,
    SubmissionError,
    UnknownTicket,
)
from services.intake.lookup import LookupResult, Lookups
from services.intake.protection import Forbidden, RateLimited, Unauthorized
from shared.access import Caller, forbidden, refusal, refusal_responses
from shared.problems import invalid_input, problem_response

NOT_FOUND = "no ticket matches this number and phone"


@dataclass(frozen=True, eq=False)
class StaffOnly:
    ctx: ChannelContext

    async def __call__(self, owner: Caller) -> str:
        if not owner.is_staff:
            raise forbidden("only hotline staff may see hotspots")
        self.ctx.guard.limit(f"key:{owner.key_id}", "staff")
        return owner.id


def build_router(
    ctx: ChannelContext, lookups: Lookups, channels: Sequence[IntakeChannel]
) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get(
        "/lookup",
        tags=["citizens"],
        response_model=LookupResult,
        responses={404: {"description": NOT_FOUND}, 429: {"description": "too many tries"}},
    )
    async def lookup(
        request: Request,
        ticket: Annotated[str, Query(min_length=1, max_length=64)],
        phone_last4: Annotated[str, Query(pattern=r"^[0-9]{4}$")],
    ) -> Response:
        """A ticket's progress for the citizen who reported it: the ticket number and
        the last four digits of the reporting phone. Nothing else is shown, and a
        wrong number and an unknown ticket get the same answer."""
        address = request.client.host if request.client else "unknown"
        ctx.guard.limit(f"lookup:{address}", "lookup")
        found = await lookups.find(ticket, phone_last4, address)
        if found is None:
            return problem_response(404, NOT_FOUND)
        return JSONResponse(found.model_dump(mode="json"))

    @router.get(
        "/hotspots",
        tags=["staff"],
        responses=refusal_responses(),
        dependencies=[Depends(StaffOnly(ctx))],
    )
    async def hotspots(
        district: Annotated[
            str | None, Query(max_length=50, pattern=r"^[a-z][a-z0-9.\-]*$")
        ] = None,
    ) -> list[dict[str, Any]]:
        """Problems many callers report at one place (hotline staff only)."""
        return await ctx.intake.hotspots.list(ctx.clock(), district)

    @router.get("/channels", tags=["operations"])
    async def list_channels() -> list[dict[str, Any]]:
        """The channels this intake runs, built in and plugged in."""
        return [{"name": c.name} for c in channels]

    return router


def error_response(scope: Scope, status: int, message: str) -> Response:
    """An error in the form the caller's API speaks: Open311's list, else ours."""
    path = str(scope.get("path", ""))
    if path.startswith(OPEN311):
        return render_error(format_of_path(path), status, message)
    return problem_response(status, message)


def install_error_handlers(app: FastAPI) -> None:
    def field_error(loc: list[str], msg: str, kind: str) -> JSONResponse:
        return invalid_input([{"loc": loc, "msg": msg, "type": kind}])

    @app.exception_handler(SubmissionError)
    async def _submission(request: Request, exc: SubmissionError) -> Response:
        if request.url.path.startswith(OPEN311):
            return error_response(request.scope, 400, str(exc))
        return field_error(["body", exc.field], str(exc), "value_error")

    @app.exception_handler(FeedbackNotExpected)
    async def _not_expected(request: Request, exc: FeedbackNotExpected) -> Response:
        return error_response(request.scope, 409, str(exc))

    @app.exception_handler(UnknownTicket)
    async def _unknown(request: Request, exc: UnknownTicket) -> Response:
        return error_response(request.scope, 404, f"no ticket {exc}")

    @app.exception_handler(IdempotencyConflict)
    async def _conflict(_: Request, exc: IdempotencyConflict) -> JSONResponse:
        # A call-centre seat's retry is keyed by its call_id: name what it sent.
        loc = ["body", "call_id"] if exc.key_name == "call_id" else ["header", "Idempotency-Key"]
        return field_error(loc, str(exc), "conflict")

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, exc: Unauthorized) -> Response:
        if request.url.path.startswith(OPEN311):
            return error_response(request.scope, 403, str(exc))
        return refusal(401, "UNAUTHENTICATED", str(exc))

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        if request.url.path.startswith(OPEN311):
            return error_response(request.scope, 403, str(exc))
        return refusal(403, "FORBIDDEN", str(exc))

    @app.exception_handler(RateLimited)
    async def _limited(request: Request, exc: RateLimited) -> Response:
        response = error_response(request.scope, 429, str(exc))
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(Open311Error)
    async def _open311(request: Request, exc: Open311Error) -> Response:
        return render_error(format_of_path(request.url.path), exc.status, exc.description)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if not request.url.path.startswith(OPEN311):
            return invalid_input(exc.errors())
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(request.scope, 400, f"{where}: {first.get('msg', 'invalid')}")
