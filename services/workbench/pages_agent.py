"""The call-centre agent's page (坐席): register a call with a live preview of
where the rules would send it, similar open tickets offered for 并单, an answer
on the spot, the ticket number to read out, and a caller's earlier tickets."""

from __future__ import annotations

import contextlib
import re
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from services.workbench import viewlogic as vl
from services.workbench.clients import Refused, ServiceDown
from services.workbench.sessions import Session
from services.workbench.web import districts_of, posted_form, render, signed_in, wb

AGENT_KINDS = ("agent", "staff")
TICKET_NUMBER = re.compile(r"^[A-Z]{1,6}[0-9]{8,}$")
PHONE = re.compile(r"^\+?[0-9]{5,20}$")
SIMILARITY = 60.0
FORM_FIELDS = (
    "caller_name",
    "caller_number",
    "district",
    "town",
    "category",
    "priority",
    "text",
    "address",
    "on_spot_answer",
    "call_id",
)


def entry_of(fields: dict[str, str], agent_id: str) -> dict[str, Any]:
    """The intake agent entry of the form; the address joins the text, since a
    location without coordinates is not one the API takes."""
    text = fields.get("text", "")
    if fields.get("address"):
        text = f"{text}（地点：{fields['address']}）"
    entry: dict[str, Any] = {
        "agent_id": agent_id,
        "caller_number": fields.get("caller_number", ""),
        "call_id": fields.get("call_id") or None,
        "district": fields.get("district", ""),
        "category": fields.get("category", ""),
        "priority": fields.get("priority") or "normal",
        "text": text,
    }
    for optional in ("caller_name", "town", "on_spot_answer"):
        if fields.get(optional):
            entry[optional] = fields[optional]
    return entry


def build_router() -> APIRouter:
    router = APIRouter(prefix="/agent", include_in_schema=False)

    @router.get("")
    async def agent_page(request: Request) -> Response:
        await signed_in(request, *AGENT_KINDS)
        return _page(request, {"call_id": f"call-{uuid.uuid4().hex}"})

    @router.post("/preview")
    async def preview(request: Request) -> Response:
        session = await signed_in(request, *AGENT_KINDS)
        fields = await posted_form(request, session)
        found = await _preview(request, session, fields)
        if request.headers.get("x-partial") == "1":
            return render(request, "agent_preview.html", **found)
        return _page(request, fields, **found)

    @router.post("/submit")
    async def submit(request: Request) -> Response:
        session = await signed_in(request, *AGENT_KINDS)
        fields = await posted_form(request, session)
        try:
            receipt = await wb(request).services.post(
                "intake", "/v1/agent/tickets", session.key, entry_of(fields, session.id)
            )
        except Refused as exc:
            error = vl.refusal_text(exc.code, exc.message)
            return _page(request, fields, status=exc.status, error=error)
        return render(request, "agent_done.html", receipt=receipt)

    @router.get("/lookup")
    async def lookup(request: Request, q: str = "") -> Response:
        session = await signed_in(request, *AGENT_KINDS)
        number = q.strip().upper()
        if TICKET_NUMBER.match(number):
            return RedirectResponse(f"/tickets/{number}", status_code=303)
        fresh = {"call_id": f"call-{uuid.uuid4().hex}"}
        if not PHONE.match(number):
            message = "请输入完整的工单号（如 LC20261126000046）或来电号码。"
            return _page(request, fresh, status=422, lookup_error=message)
        found = await _callers_tickets(request, session, number)
        return _page(request, fresh | {"caller_number": number}, lookup=found, looked_up=number)

    return router


def _page(
    request: Request, values: dict[str, str], status: int = 200, **extra: Any
) -> HTMLResponse:
    districts = districts_of(request)
    return render(request, "agent.html", status, values=values, districts=districts, **extra)


async def _preview(request: Request, session: Session, fields: dict[str, str]) -> dict[str, Any]:
    """The router's decision for the call as typed so far, and open tickets of
    the same place with a similar text (offered for 并单)."""
    bench = wb(request)
    body = {k: fields.get(k) or None for k in ("district", "town", "category", "text")}
    body["priority"] = fields.get("priority") or "normal"
    try:
        decision = await bench.services.post("router", "/v1/explain", session.key, body)
    except Refused as exc:
        return {"preview_error": vl.refusal_text(exc.code, exc.message)}
    except ServiceDown as exc:
        return {"preview_error": f"{exc.label}暂时无法连接，无法预览派单。"}
    names = {d.id: d.name for d in bench.directory.departments.values()}
    return {
        "decision": decision,
        "names": names,
        "similar": await _similar(request, session, fields),
    }


async def _callers_tickets(request: Request, session: Session, phone: str) -> list[dict[str, Any]]:
    """The caller's tickets, newest first (stats answers agents and staff)."""
    page = await wb(request).services.get(
        "stats", "/v1/tickets", session.key, phone=phone, limit=50
    )
    found: list[dict[str, Any]] = page.get("items", [])
    return found


async def _similar(
    request: Request, session: Session, fields: dict[str, str]
) -> list[dict[str, Any]]:
    """The caller's own open tickets first, then open tickets of the same place
    whose text resembles this one."""
    text = fields.get("text", "")
    if not text:
        return []
    phone = fields.get("caller_number", "")
    mine: list[dict[str, Any]] = []
    if PHONE.match(phone):
        with contextlib.suppress(Refused, ServiceDown):
            mine = [t for t in await _callers_tickets(request, session, phone) if t.get("open")]
    here = await _same_place(request, session, fields)
    seen = {t["ticket_id"] for t in mine}
    caller = [{**t, "same_caller": True} for t in vl.similar(text, mine, 0, limit=5)]
    return caller + [t for t in vl.similar(text, here, SIMILARITY) if t["ticket_id"] not in seen]


async def _same_place(
    request: Request, session: Session, fields: dict[str, str]
) -> list[dict[str, Any]]:
    bench = wb(request)
    district = bench.directory.district(fields.get("district", ""))
    if district is None:
        return []
    try:
        page = await bench.services.get(
            "stats", "/v1/tickets", session.key, district=district.id, limit=300
        )
    except (Refused, ServiceDown):
        return []
    town = fields.get("town")
    return [
        t
        for t in page.get("items", [])
        if t.get("open") and (not town or not t.get("town") or t.get("town") == town)
    ]
