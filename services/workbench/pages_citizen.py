"""Citizen pages, no sign-in: submit a request on the web channel and look up
its progress with the ticket number and the phone's last four digits."""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from fastapi import APIRouter, Request, Response

from services.workbench import viewlogic as vl
from services.workbench.clients import KeyRejected, Refused
from services.workbench.web import districts_of, error_page, posted_form, render, wb

logger = logging.getLogger(__name__)
HONEYPOT = "website"
LAST4 = re.compile(r"^[0-9]{4}$")


def submission_of(fields: dict[str, str]) -> dict[str, Any]:
    """The web channel's submission of the citizen form."""
    text = fields.get("text", "")
    if fields.get("address"):
        text = f"{text}（地点：{fields['address']}）"
    body: dict[str, Any] = {
        "channel": "web",
        "district": fields.get("district", ""),
        "category": fields.get("category", ""),
        "text": text,
    }
    if fields.get("town"):
        body["town"] = fields["town"]
    citizen = {k: fields[k] for k in ("name", "phone") if fields.get(k)}
    if citizen:
        body["citizen"] = citizen
    return body


def build_router() -> APIRouter:
    router = APIRouter(prefix="/citizen", include_in_schema=False)

    @router.get("")
    async def submit_page(request: Request) -> Response:
        return _form(request, {"form_id": secrets.token_urlsafe(16)})

    @router.post("/submit")
    async def submit(request: Request) -> Response:
        fields = await posted_form(request, None)
        if not _admit(request):
            return error_page(request, 429, "提交过于频繁", "请稍候几分钟再提交。")
        if fields.get(HONEYPOT):
            # A bot filled the field people never see: nothing is submitted.
            return error_page(request, 400, "无法提交", "提交未被受理，请刷新页面后重试。")
        bench = wb(request)
        idempotency = f"workbench-web-{fields.get('form_id', '')[:60]}"
        try:
            receipt = await bench.services.post(
                "intake",
                "/v1/tickets",
                bench.settings.web_channel_key or None,
                submission_of(fields),
                **{"Idempotency-Key": idempotency},
            )
        except Refused as exc:
            error = vl.refusal_text(exc.code, exc.message)
            return _form(request, fields, status=exc.status, error=error)
        except KeyRejected:
            # The workbench's own web channel key, not the citizen's doing.
            logger.error("intake refused the workbench's web channel key (HOTLINE_WEB_CHANNEL_KEY)")
            message = "网上受理暂时不可用，请稍后再试或拨打 12345 热线。本次没有提交任何内容。"
            return error_page(request, 503, "暂时无法受理", message)
        return render(request, "citizen_done.html", receipt=receipt)

    @router.get("/lookup")
    async def lookup_page(request: Request) -> Response:
        return render(request, "citizen_lookup.html", values={})

    @router.post("/lookup")
    async def lookup(request: Request) -> Response:
        fields = await posted_form(request, None)
        if not _admit(request):
            return error_page(request, 429, "查询过于频繁", "请稍候几分钟再查询。")
        ticket, last4 = fields.get("ticket", "").upper(), fields.get("phone_last4", "")
        values = {"ticket": ticket}
        if not ticket or not LAST4.match(last4):
            error = "请填写工单号和手机号码后四位数字。"
            return render(request, "citizen_lookup.html", 422, values=values, error=error)
        try:
            found = await wb(request).services.get(
                "intake", "/v1/lookup", None, ticket=ticket, phone_last4=last4
            )
        except Refused as exc:
            error = _lookup_error(exc.status)
            return render(request, "citizen_lookup.html", exc.status, values=values, error=error)
        return render(request, "citizen_lookup.html", values=values, found=found)

    return router


def _lookup_error(status: int) -> str:
    if status == 429:
        return "查询次数过多，请一小时后再试。"
    return "没有找到与该工单号和手机号后四位相符的工单。"


def _admit(request: Request) -> bool:
    """The per-address limit on citizen posts (bots), on top of intake's own."""
    address = request.client.host if request.client else "unknown"
    return wb(request).buckets.take(f"citizen:{address}") == 0


def _form(request: Request, values: dict[str, str], status: int = 200, **extra: Any) -> Response:
    districts = districts_of(request)
    return render(
        request, "citizen_submit.html", status, values=values, districts=districts, **extra
    )
