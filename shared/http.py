"""The HTTP app every service starts from: health, readiness, metrics, request metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.asgibody import replay_body
from shared.errors import UNAVAILABLE_ERRORS
from shared.metrics import DEPENDENCY_UP, HTTP_DURATION, HTTP_REQUESTS, method_label
from shared.problems import install_problems, problem, problem_response
from shared.textguard import TextGuardMiddleware

ReadinessCheck = Callable[[], Awaitable[bool]]
READINESS_TIMEOUT_S = 2.0


def create_app(
    service: str, checks: Mapping[str, ReadinessCheck], *, title: str, description: str = ""
) -> FastAPI:
    # /docs and /redoc load Swagger UI and ReDoc from this service itself
    # (/static-offline-docs), never from a CDN: a centre's intranet sees them.
    app = FastAPIOffline(title=title, description=description, version="1")

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    async def probe_all() -> dict[str, bool]:
        outcomes = await asyncio.gather(*(_probe(check) for check in checks.values()))
        results = dict(zip(checks, outcomes, strict=True))
        for name, up in results.items():
            DEPENDENCY_UP.labels(service, name).set(1 if up else 0)
        return results

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """Ready when every dependency (broker, store) answers."""
        results = await probe_all()
        ready = all(results.values())
        if ready:
            return JSONResponse({"ready": ready, "checks": results})
        down = ", ".join(name for name, up in results.items() if not up)
        body = {**problem(503, f"not ready: {down} unreachable"), "ready": False, "checks": results}
        return JSONResponse(body, status_code=503)

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        # Each scrape probes the dependencies, so hotline_dependency_up is as
        # fresh as the scrape, whoever (if anyone) polls /readyz.
        await probe_all()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # Inside the metrics middleware, so that its refusals are counted too.
    app.add_middleware(TextGuardMiddleware)
    app.add_middleware(MetricsMiddleware, service=service)
    install_problems(app)
    _install_unavailable_handler(app)
    return app


def _install_unavailable_handler(app: FastAPI) -> None:
    """A broker or store that cannot be reached is a 503 the client may retry.

    Registered per exception class rather than for Exception, so that Starlette
    handles it inside the middleware stack: the 503 is counted in the metrics and
    not logged as a crash."""

    async def unavailable(_: Request, exc: Exception) -> Response:
        return problem_response(
            503,
            "service temporarily unavailable; nothing was changed, retry later",
            headers={"Retry-After": "5"},
        )

    for exc_class in UNAVAILABLE_ERRORS:
        app.add_exception_handler(exc_class, unavailable)


async def _probe(check: ReadinessCheck) -> bool:
    try:
        return await asyncio.wait_for(check(), timeout=READINESS_TIMEOUT_S)
    except Exception:
        return False


def _route_template(scope: Scope) -> str:
    # The template ("/v1/tickets/{ticket_id}"), never the concrete path: label
    # values must stay a bounded set. The router leaves the matched route in the
    # scope; a request no route matched is "unmatched".
    route = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")


class MetricsMiddleware:
    """Counts and times every HTTP request by route and status. Plain ASGI:
    Starlette's BaseHTTPMiddleware (``app.middleware("http")``) ran each request
    through a task group and memory streams of its own."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _route_template(scope)
            method = method_label(str(scope.get("method", "")))
            HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
            HTTP_DURATION.labels(self.service, method, route).observe(time.perf_counter() - started)


class BodyLimitMiddleware:
    """Refuses a request body over the limit with 413 before the app sees it,
    whether the client declared its length or streams it in chunks.

    The body is read whole first (it is small by definition) and handed on only
    if it fits: an error raised half-way through the app's own read would reach
    the client as a 400 or 500 instead."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay_body(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(413, f"request body larger than {self.max_bytes} bytes")
        await response(scope, receive, send)
