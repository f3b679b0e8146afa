"""The HTTP base every service starts from (shared/http.py): health, readiness,
request metrics by route template, and the request-body limit."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator, Mapping

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

import shared.http
from shared.http import BodyLimitMiddleware, ReadinessCheck, create_app

LIMIT = 1024


async def up() -> bool:
    return True


async def down() -> bool:
    return False


async def broken() -> bool:
    raise ConnectionError("broker unreachable")


async def hanging() -> bool:
    await asyncio.sleep(30)
    return True


def unique_service() -> str:
    """Metrics live in the process-wide registry: each test counts under its own name."""
    return f"svc{uuid.uuid4().hex[:8]}"


def make_app(checks: Mapping[str, ReadinessCheck], service: str = "test") -> FastAPI:
    return create_app(service, checks, title="test")


def sample(name: str, labels: dict[str, str]) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


# --- health and readiness ------------------------------------------------------------


def test_healthz_answers_without_asking_dependencies() -> None:
    client = TestClient(make_app({"store": broken}))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_when_every_check_is_up() -> None:
    client = TestClient(make_app({"broker": up, "store": up}))
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "checks": {"broker": True, "store": True}}


def test_readyz_with_no_checks_is_ready() -> None:
    assert TestClient(make_app({})).get("/readyz").status_code == 200


@pytest.mark.parametrize("failing", [down, broken], ids=["false", "raises"])
def test_readyz_names_the_failing_check(failing: ReadinessCheck) -> None:
    client = TestClient(make_app({"broker": up, "store": failing}))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "checks": {"broker": True, "store": False}}


def test_readyz_gives_up_on_a_hanging_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared.http, "READINESS_TIMEOUT_S", 0.05)
    client = TestClient(make_app({"store": hanging, "broker": up}))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"store": False, "broker": True}


def test_readyz_sets_the_dependency_gauge() -> None:
    service = unique_service()
    client = TestClient(make_app({"broker": up, "store": down}, service))
    client.get("/readyz")
    assert sample("hotline_dependency_up", {"service": service, "dependency": "broker"}) == 1
    assert sample("hotline_dependency_up", {"service": service, "dependency": "store"}) == 0


def test_each_scrape_refreshes_the_dependency_gauge() -> None:
    service = unique_service()
    state = {"up": True}

    async def store() -> bool:
        return state["up"]

    client = TestClient(make_app({"store": store}, service))
    labels = {"service": service, "dependency": "store"}
    client.get("/metrics")
    assert sample("hotline_dependency_up", labels) == 1
    state["up"] = False
    scraped = client.get("/metrics").text
    assert sample("hotline_dependency_up", labels) == 0
    assert f'hotline_dependency_up{{dependency="store",service="{service}"}} 0.0' in scraped


def test_readiness_follows_the_dependency() -> None:
    state = {"up": False}

    async def flappy() -> bool:
        return state["up"]

    client = TestClient(make_app({"store": flappy}))
    assert client.get("/readyz").status_code == 503
    state["up"] = True
    assert client.get("/readyz").status_code == 200


# --- metrics ---------------------------------------------------------------------------


def test_metrics_count_requests_by_route_template_not_path() -> None:
    service = unique_service()
    app = make_app({}, service)

    @app.get("/v1/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    client = TestClient(app)
    assert client.get("/v1/items/123").json() == {"id": "123"}
    assert client.get("/v1/items/456").status_code == 200
    labels = {"service": service, "method": "GET", "route": "/v1/items/{item_id}", "status": "200"}
    assert sample("hotline_http_requests_total", labels) == 2

    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "hotline_http_requests_total" in metrics.text
    assert f'service="{service}"' in metrics.text
    assert 'route="/v1/items/{item_id}"' in metrics.text
    assert 'route="/v1/items/123"' not in metrics.text


def test_unknown_paths_share_one_label() -> None:
    service = unique_service()
    client = TestClient(make_app({}, service))
    assert client.get("/no/such/page-1").status_code == 404
    assert client.get("/no/such/page-2").status_code == 404
    labels = {"service": service, "method": "GET", "route": "unmatched", "status": "404"}
    assert sample("hotline_http_requests_total", labels) == 2
    text = client.get("/metrics").text
    assert "/no/such/page-1" not in text


def test_metrics_record_status_and_duration() -> None:
    service = unique_service()
    client = TestClient(make_app({"store": down}, service))
    client.get("/readyz")
    labels = {"service": service, "method": "GET", "route": "/readyz"}
    assert sample("hotline_http_requests_total", {**labels, "status": "503"}) == 1
    assert sample("hotline_http_request_duration_seconds_count", labels) == 1


def test_operations_routes_are_documented_except_metrics() -> None:
    schema = TestClient(make_app({})).get("/openapi.json").json()
    assert "/healthz" in schema["paths"]
    assert "/readyz" in schema["paths"]
    assert "/metrics" not in schema["paths"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_their_assets_from_the_service(page: str) -> None:
    client = TestClient(make_app({}))
    html = client.get(page).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/static-offline-docs/") for a in assets), assets
    assert "cdn." not in html and "fonts.googleapis" not in html
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 1000, asset


# --- BodyLimitMiddleware ---------------------------------------------------------------


class Item(BaseModel):
    text: str


def limited_app(service: str = "test") -> tuple[FastAPI, list[int]]:
    """An app like intake's: a JSON body parsed by FastAPI, and a raw-body route."""
    app = make_app({}, service)
    calls: list[int] = []

    @app.post("/v1/items")
    async def post_item(item: Item) -> dict[str, int]:
        calls.append(len(item.text))
        return {"length": len(item.text)}

    @app.post("/v1/raw")
    async def post_raw(request: Request) -> dict[str, int]:
        body = await request.body()
        calls.append(len(body))
        return {"length": len(body)}

    app.add_middleware(BodyLimitMiddleware, max_bytes=LIMIT)
    return app, calls


def json_body(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    overhead = len(b'{"text": ""}')
    return b'{"text": "' + b"x" * (size - overhead) + b'"}'


def chunks(body: bytes, size: int = 100) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


JSON = {"content-type": "application/json"}


def test_body_over_the_declared_limit_is_refused_before_the_handler() -> None:
    app, calls = limited_app()
    response = TestClient(app).post("/v1/items", content=json_body(LIMIT + 1), headers=JSON)
    assert response.status_code == 413
    assert response.json() == {"detail": f"request body larger than {LIMIT} bytes"}
    assert calls == []


@pytest.mark.parametrize("size", [20, LIMIT])
def test_body_within_the_limit_passes(size: int) -> None:
    app, calls = limited_app()
    response = TestClient(app).post("/v1/items", content=json_body(size), headers=JSON)
    assert response.status_code == 200
    assert calls == [size - len(b'{"text": ""}')]


def test_streamed_body_within_the_limit_passes() -> None:
    app, calls = limited_app()
    client = TestClient(app)
    response = client.post("/v1/items", content=chunks(json_body(LIMIT)), headers=JSON)
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 200
    assert len(calls) == 1


def test_get_without_body_passes_the_limit() -> None:
    app, _ = limited_app()
    assert TestClient(app).get("/healthz").status_code == 200


async def _echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI app that reads the whole body, then answers with its length."""
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def test_streamed_body_over_the_limit_is_refused_by_the_middleware_itself() -> None:
    client = TestClient(BodyLimitMiddleware(_echo_length, max_bytes=LIMIT))
    response = client.post("/", content=chunks(b"x" * (LIMIT + 1)))
    assert response.request.headers.get("content-length") is None
    assert response.status_code == 413
    under = client.post("/", content=chunks(b"x" * LIMIT))
    assert (under.status_code, under.text) == (200, str(LIMIT))


def test_streamed_body_over_the_limit_to_a_parsed_route_is_413() -> None:
    app, calls = limited_app()
    client = TestClient(app, raise_server_exceptions=False)
    response = client.post("/v1/items", content=chunks(json_body(LIMIT * 2)), headers=JSON)
    assert response.status_code == 413
    assert calls == []


def test_streamed_body_over_the_limit_to_a_raw_route_is_413() -> None:
    app, calls = limited_app()
    client = TestClient(app, raise_server_exceptions=False)
    response = client.post("/v1/raw", content=chunks(b"x" * (LIMIT * 2)))
    assert response.status_code == 413
    assert calls == []
