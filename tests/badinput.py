"""Bad requests for every HTTP endpoint, generated from one valid request each.

An endpoint is declared once (ENDPOINTS, with a body and query that would be
accepted); the variants are derived: bodies that are malformed, not JSON
objects, not UTF-8, oversized, or carry a wrong type, a Mongo operator object,
an unknown field, a lone surrogate or a NUL in each field; path parameters and
query values that carry operators, script tags, SQL, bytes that are not
UTF-8, or are far too long; API keys that are themselves injections. A new
endpoint is one more line in ENDPOINTS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

SERVICES = ("intake", "router", "notifier", "stats")
TICKET = "{ticket}"  # replaced by a real ticket number when sent
OPERATOR = {"$gt": ""}
INJECTIONS = (
    '{"$gt": ""}',
    '{"$where": "sleep(5000)"}',
    "<script>alert(1)</script>",
    "' OR '1'='1' --",
    "1; DROP TABLE tickets",
    "../../../../etc/passwd",
)


@dataclass(frozen=True)
class Endpoint:
    service: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    query: dict[str, str] = field(default_factory=dict)
    auth: str | None = None  # the key to send: "staff", "department" or "intake-staff"


FEEDBACK = {"rating": "satisfied", "solved": True}
TICKET_BODY = {
    "channel": "web",
    "district": "冠县",
    "town": "贾镇",
    "category": "help",
    "text": "村里的自来水管道漏水三天了。",
    "citizen": {"name": "张三", "phone": "13800000000"},
    "location": {"lat": 36.48, "lon": 115.45, "address": "贾镇"},
}
AGENT_BODY = {
    "agent_id": "seat-042",
    "caller_number": "13912345678",
    "call_id": "call-bad-input",
    "district": "阳谷县",
    "category": "consultation",
    "text": "咨询社保卡补办需要带什么材料。",
}
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("intake", "POST", "/v1/tickets", TICKET_BODY),
    Endpoint("intake", "POST", f"/v1/tickets/{TICKET}/feedback", FEEDBACK),
    Endpoint("intake", "POST", "/v1/agent/tickets", AGENT_BODY),
    Endpoint("intake", "GET", "/v1/lookup", query={"ticket": TICKET, "phone_last4": "0000"}),
    Endpoint("intake", "GET", "/v1/hotspots", query={"district": "guanxian"}, auth="intake-staff"),
    Endpoint("intake", "GET", "/v1/channels"),
    Endpoint("intake", "GET", "/open311/v2/services.json"),
    Endpoint("intake", "GET", "/open311/v2/services/streetlight.json"),
    Endpoint(
        "intake",
        "GET",
        "/open311/v2/requests.json",
        query={"status": "open", "start_date": "2026-11-01T00:00:00Z"},
    ),
    Endpoint("intake", "GET", f"/open311/v2/requests/{TICKET}.xml"),
    Endpoint("router", "GET", f"/v1/tickets/{TICKET}", auth="staff"),
    Endpoint(
        "router",
        "GET",
        "/v1/tickets",
        query={"status": "dispatched", "department": "guanxian.water", "limit": "5", "offset": "0"},
        auth="staff",
    ),
    Endpoint("router", "POST", f"/v1/tickets/{TICKET}/accept", auth="department"),
    Endpoint(
        "router",
        "POST",
        f"/v1/tickets/{TICKET}/return",
        {"reason": "不属于本单位"},
        auth="department",
    ),
    Endpoint(
        "router",
        "POST",
        f"/v1/tickets/{TICKET}/extension",
        {"days": 2, "reason": "需要协调"},
        auth="department",
    ),
    Endpoint(
        "router",
        "POST",
        f"/v1/tickets/{TICKET}/extension/decision",
        {"approve": True, "note": "同意"},
        auth="staff",
    ),
    Endpoint(
        "router",
        "POST",
        f"/v1/tickets/{TICKET}/resolve",
        {"reply": "已处理完毕"},
        auth="department",
    ),
    Endpoint(
        "router",
        "POST",
        f"/v1/tickets/{TICKET}/sub-dispatch",
        {"department": "guanxian.water"},
        auth="department",
    ),
    Endpoint(
        "router",
        "POST",
        f"/v1/tickets/{TICKET}/dispatch",
        {"department": "guanxian.water", "co_departments": ["city.water"], "time_limit": "general"},
        auth="staff",
    ),
    Endpoint(
        "router",
        "POST",
        f"/v1/tickets/{TICKET}/explanation",
        {"text": "已说明情况"},
        auth="department",
    ),
    Endpoint(
        "notifier",
        "GET",
        "/v1/deliveries",
        query={"ticket_id": TICKET, "status": "dead", "limit": "5"},
        auth="staff",
    ),
    Endpoint("notifier", "GET", "/v1/timers", query={"ticket_id": TICKET}, auth="staff"),
    Endpoint("stats", "GET", f"/v1/tickets/{TICKET}", auth="staff"),
    Endpoint(
        "stats",
        "GET",
        "/v1/tickets",
        query={
            "status": "dispatched",
            "department": "guanxian.water",
            "district": "guanxian",
            "overdue": "true",
            "from": "2026-11-01",
            "to": "2026-11-30",
            "limit": "5",
            "offset": "0",
            "format": "json",
            "phone": "13800000000",
        },
        auth="staff",
    ),
    Endpoint(
        "stats",
        "GET",
        "/v1/stats/summary",
        query={
            "from": "2026-11-01",
            "to": "2026-11-30",
            "department": "guanxian.water",
            "district": "guanxian",
            "category": "help",
            "channel": "web",
            "format": "json",
        },
        auth="staff",
    ),
    Endpoint(
        "stats",
        "GET",
        "/v1/stats/ranking",
        query={"from": "2026-11-01", "to": "2026-11-30"},
        auth="staff",
    ),
    Endpoint(
        "stats",
        "GET",
        "/v1/stats/trend",
        query={"from": "2026-11-01", "to": "2026-11-30", "department": "guanxian.water"},
        auth="staff",
    ),
    Endpoint("stats", "GET", "/v1/exports", query={"limit": "5"}, auth="staff"),
    *(Endpoint(service, "GET", "/v1/whoami", auth="staff") for service in SERVICES),
)


@dataclass(frozen=True)
class Bad:
    """One bad request. `ignored` marks variants the API may answer 2xx to
    because it ignores what is bad (an unknown query parameter)."""

    endpoint: Endpoint
    name: str
    path: str
    query: str = ""  # raw, already encoded
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    ignored: bool = False

    @property
    def id(self) -> str:
        return f"{self.endpoint.service} {self.endpoint.method} {self.endpoint.path} {self.name}"


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


JSON = {"Content-Type": "application/json"}


def body_variants(e: Endpoint) -> list[Bad]:
    if e.body is None:
        return []
    path, q = e.path, _query(e.query)
    raw = {
        "malformed json": b'{"text": "unterminated',
        "json array": b"[]",
        "json string": b'"text"',
        "json null": b"null",
        "not utf-8": _json(e.body).replace("\u3002".encode(), b"\xff\xfe") + b"\xc3",
        "oversized": _json({**e.body, "padding": "x" * 300_000}),
        "unknown field $where": _json({**e.body, "$where": "sleep(5000)"}),
        "empty": b"",
    }
    text = json.dumps(e.body, ensure_ascii=False)
    if not text.isascii():  # what a legacy system in China sends; JSON is UTF-8 (RFC 8259)
        raw["gbk"] = text.encode("gbk")
    cases = [Bad(e, name, path, q, content, JSON) for name, content in raw.items()]
    cases.append(Bad(e, "text/plain", path, q, _json(e.body), {"Content-Type": "text/plain"}))
    for key in e.body:
        for label, value in (("operator", OPERATOR), ("list", [1]), ("huge", "x" * 20_000)):
            cases.append(Bad(e, f"{key}={label}", path, q, _json({**e.body, key: value}), JSON))
        text = json.dumps({**e.body, key: "PLACEHOLDER"}, ensure_ascii=False)
        for label, escaped in (("lone surrogate", '"\\ud800x"'), ("nul", '"a\\u0000b"')):
            content = text.replace('"PLACEHOLDER"', escaped).encode()
            if isinstance(e.body[key], str):
                cases.append(Bad(e, f"{key}={label}", path, q, content, JSON))
    return cases


def path_variants(e: Endpoint) -> list[Bad]:
    if TICKET not in e.path:
        return []
    q, body = _query(e.query), (_json(e.body) if e.body is not None else None)
    values = [quote(v, safe="") for v in INJECTIONS] + ["%ff%fe", "%00", "x" * 300]
    return [
        Bad(e, f"path {v[:20]}", e.path.replace(TICKET, v), q, body, JSON if body else {})
        for v in values
    ]


def query_variants(e: Endpoint) -> list[Bad]:
    body = _json(e.body) if e.body is not None else None
    headers = JSON if body else {}
    cases = []
    for key, valid in e.query.items():
        numeric = ["-1", "99999999999999999999999"] if valid.isdigit() else []
        for value in [*INJECTIONS, "x" * 5000, *numeric]:
            q = _query({**e.query, key: value})
            cases.append(Bad(e, f"{key}={value[:20]}", e.path, q, body, headers))
        q = _query(e.query) + f"&{quote(key)}=%ff%fe"
        cases.append(Bad(e, f"{key} not utf-8 (repeated)", e.path, q, body, headers, ignored=True))
        q = _query(e.query) + f"&{quote(key + '[$ne]')}=1"
        cases.append(Bad(e, f"{key}[$ne]", e.path, q, body, headers, ignored=True))
    return cases


def key_variants(e: Endpoint) -> list[Bad]:
    if e.auth is None:
        return []
    body = _json(e.body) if e.body is not None else None
    keys = [*INJECTIONS[:4], "hk_" + "a" * 5000]
    return [
        Bad(e, f"api key {k[:20]}", e.path, _query(e.query), body, {**JSON, "X-API-Key": k})
        for k in keys
    ]


def header_variants(e: Endpoint) -> list[Bad]:
    if e.service != "intake" or e.path != "/v1/tickets":
        return []
    body = _json(e.body)
    # Any printable ASCII without spaces is a valid, opaque key (stored as a
    # value, never interpreted); these are not.
    keys = ['{"$gt": ""}', "' OR '1'='1' --", "<script> alert(1)", "k" * 201, ""]
    return [
        Bad(e, f"idempotency key {k[:20]!r}", e.path, "", body, {**JSON, "Idempotency-Key": k})
        for k in keys
    ]


def all_variants() -> list[Bad]:
    cases: list[Bad] = []
    for e in ENDPOINTS:
        for make in (body_variants, path_variants, query_variants, key_variants, header_variants):
            cases.extend(make(e))
    return cases
