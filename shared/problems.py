"""The one error shape of every service's HTTP API (README, "The HTTP APIs"):

    {"code": "INVALID_INPUT", "message": "…", "detail": "…", "errors": [...]}

`code` is machine-readable (the status's name, or a workflow's own code such
as ILLEGAL_TRANSITION), `message` is for people, `detail` repeats it for
clients written against FastAPI's form, and `errors` (422 only) lists each
field's problem as {"loc", "msg", "type"}: never the input itself, so a large
or personal value is not echoed back. Open311's paths keep their own error
format, as GeoReport v2 requires (services/intake/channels/open311).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_INPUT",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "UNAVAILABLE",
}
MAX_MESSAGE = 300


def problem(
    status: int, message: str, code: str | None = None, errors: Sequence[Any] | None = None
) -> dict[str, Any]:
    message = message[:MAX_MESSAGE]
    body: dict[str, Any] = {
        "code": code or CODES.get(status, "ERROR"),
        "message": message,
        "detail": message,
    }
    if errors:
        body["errors"] = list(errors)
    return body


def problem_response(
    status: int,
    message: str,
    code: str | None = None,
    errors: Sequence[Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(problem(status, message, code, errors), status_code=status, headers=headers)


def field_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each field's problem without the value given (it may be large, or a
    citizen's number)."""
    return [
        {
            "loc": list(e.get("loc", ())),
            "msg": str(e.get("msg", "invalid"))[:MAX_MESSAGE],
            "type": str(e.get("type", "value_error")),
        }
        for e in errors[:50]
    ]


def invalid_input(errors: Sequence[Mapping[str, Any]]) -> JSONResponse:
    listed = field_errors(errors)
    said = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in listed[:3])
    return problem_response(422, said or "invalid input", errors=listed)


def install_problems(app: FastAPI) -> None:
    """Every 4xx and 5xx the framework raises in the one shape."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid_input(exc.errors())

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        logger.error("%s %s failed: %r", request.method, request.url.path, exc)
        return problem_response(500, "internal error; the failure is logged")
