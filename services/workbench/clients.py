"""Calls to the other services' public HTTP APIs, always with a caller's key.

Their answers come back as data or as one of three errors the pages know how
to show: the service cannot be reached, the key was refused (the user is
signed out), or the API refused the request with a message."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from services.workbench.metrics import CALL_DURATION, CALLS

logger = logging.getLogger(__name__)

SERVICE_NAMES = {
    "intake": "受理服务",
    "router": "派单服务",
    "notifier": "通知服务",
    "stats": "统计服务",
}


class ServiceDown(Exception):
    """A service did not answer, or answered that it cannot serve now (5xx)."""

    def __init__(self, service: str) -> None:
        super().__init__(service)
        self.service = service

    @property
    def label(self) -> str:
        return SERVICE_NAMES.get(self.service, self.service)


class KeyRejected(Exception):
    """401: the key is unknown, expired or revoked."""


class Refused(Exception):
    """A 4xx other than 401: the API's code and message, shown next to the form."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def message_of(body: Any) -> tuple[str, str]:
    """(code, message) of an error body in any of the services' shapes:
    {"code","message"}, {"detail": "..."} or FastAPI's list of field errors."""
    if not isinstance(body, dict):
        return "ERROR", str(body)[:300]
    if "message" in body:
        return str(body.get("code", "ERROR")), str(body["message"])
    detail = body.get("detail")
    if isinstance(detail, list):
        parts = []
        for item in detail[:5]:
            if not isinstance(item, dict):
                parts.append(str(item))
                continue
            where = ".".join(str(p) for p in item.get("loc", ())[1:])
            parts.append(f"{where}: {item.get('msg', '')}" if where else str(item.get("msg")))
        return "INVALID", "; ".join(parts)
    return "ERROR", str(detail)


def _outcome(status: int) -> str:
    if status >= 500:
        return "down"
    if status == 401:
        return "key_rejected"
    return "refused" if status >= 400 else "ok"


@dataclass
class Services:
    """One HTTP client for all calls; the base URL of each service by name."""

    http: httpx.AsyncClient
    urls: dict[str, str]

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        key: str | None,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        sent = dict(headers or {})
        if key:
            sent["X-API-Key"] = key
        started = time.perf_counter()
        try:
            response = await self.http.request(
                method, self.urls[service] + path, json=json, params=params, headers=sent
            )
        except httpx.HTTPError as exc:
            logger.warning("%s unreachable: %s %s: %r", service, method, path, exc)
            CALLS.labels(service, "down").inc()
            raise ServiceDown(service) from exc
        CALL_DURATION.labels(service).observe(time.perf_counter() - started)
        CALLS.labels(service, _outcome(response.status_code)).inc()
        return self._answer(service, response)

    def _answer(self, service: str, response: httpx.Response) -> Any:
        if response.status_code >= 500:
            logger.warning("%s answered %d", service, response.status_code)
            raise ServiceDown(service)
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:300]}
        if response.status_code == 401:
            raise KeyRejected()
        if response.status_code >= 400:
            raise Refused(response.status_code, *message_of(body))
        return body

    async def get(self, service: str, path: str, key: str | None, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        return await self.call(service, "GET", path, key, params=query)

    async def post(
        self, service: str, path: str, key: str | None, body: Any, **headers: str
    ) -> Any:
        return await self.call(service, "POST", path, key, json=body, headers=headers)

    async def answers(self, service: str) -> bool:
        """Readiness: the service says it is ready."""
        try:
            response = await self.http.get(self.urls[service] + "/readyz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200
