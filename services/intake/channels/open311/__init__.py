"""Open311 GeoReport v2 (wiki.open311.org/GeoReport_v2): discovery, services,
service definitions, POST requests (form-encoded, with api_key), GET requests
with its filters and GET requests/{id}, in JSON and XML, under /open311/v2/.

Only requests that came in through Open311 are shown by its GET methods: the
hotline's other tickets (phone calls, SMS) were not made public by the citizens
who made them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from services.intake.channels import BaseChannel, ChannelContext
from services.intake.channels.open311.catalogue import Catalogue, load_catalogue
from services.intake.channels.open311.form import Form, draft_of, parse_form
from services.intake.channels.open311.render import Open311Error, render
from services.intake.channels.open311.views import (
    MAX_RESULTS,
    request_view,
    span,
    split,
    statuses,
)
from services.intake.intake import Submission, fingerprint
from services.intake.progress import view_of
from services.intake.protection import Forbidden, Unauthorized
from shared.domain import Actor, ActorKind, TicketDraft

PREFIX = "/open311/v2"
JURISDICTION_ID = "liaocheng"
SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-26T00:00:00Z"
Fmt = Annotated[str, Path(pattern="^(json|xml)$", description="json or xml")]
Jurisdiction = Annotated[str | None, Query(max_length=100)]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "an Open311 error list: [{code, description}]"},
    403: {"description": "api_key missing or invalid"},
    404: {"description": "not found"},
}
FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        name: {"type": "string"}
                        for name in (
                            "api_key",
                            "jurisdiction_id",
                            "service_code",
                            "lat",
                            "long",
                            "address_string",
                            "address_id",
                            "email",
                            "device_id",
                            "account_id",
                            "first_name",
                            "last_name",
                            "phone",
                            "description",
                            "media_url",
                        )
                    },
                    "additionalProperties": {"type": "string"},
                }
            }
        },
    }
}


def _check_jurisdiction(jurisdiction_id: str | None) -> None:
    if jurisdiction_id is not None and jurisdiction_id != JURISDICTION_ID:
        raise Open311Error(404, f"jurisdiction_id {jurisdiction_id!r} not found")


class Open311Channel(BaseChannel):
    name = "open311"

    def __init__(self) -> None:
        self.catalogue: Catalogue = load_catalogue()

    def to_draft(self, raw: Any, ctx: ChannelContext) -> TicketDraft:
        form = raw if isinstance(raw, Form) else parse_form(str(raw))
        return draft_of(form, self.catalogue, ctx.directory, ctx.settings.fallback_district)[1]

    def routes(self, ctx: ChannelContext) -> APIRouter:
        router = APIRouter(prefix=PREFIX, tags=["open311"], responses=ERRORS)
        self._discovery_routes(router, ctx)
        self._request_routes(router, ctx)
        return router

    def _discovery_routes(self, router: APIRouter, ctx: ChannelContext) -> None:
        @router.get("/discovery.{fmt}")
        async def discovery(fmt: Fmt) -> Response:
            """Service discovery: where this endpoint is and what it speaks."""
            endpoint = {
                "specification": SPEC,
                "url": f"{ctx.settings.public_url.rstrip('/')}{PREFIX}",
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
            body = {
                "changeset": CHANGESET,
                "contact": "12345 政务服务便民热线",
                "key_service": "API keys are issued by the hotline centre (hotline keys issue)",
                "endpoints": [endpoint],
            }
            return render(fmt, "discovery", body)

        @router.get("/services.{fmt}")
        async def services(fmt: Fmt, jurisdiction_id: Jurisdiction = None) -> Response:
            """The kinds of problem that can be reported."""
            _check_jurisdiction(jurisdiction_id)
            listing = [s.listing() for s in self.catalogue.services.values()]
            return render(fmt, "services", listing)

        @router.get("/services/{service_code}.{fmt}")
        async def service_definition(
            service_code: Annotated[str, Path(max_length=100)],
            fmt: Fmt,
            jurisdiction_id: Jurisdiction = None,
        ) -> Response:
            """The attributes a request of this service carries."""
            _check_jurisdiction(jurisdiction_id)
            service = self.catalogue.get(service_code)
            if service is None:
                raise Open311Error(404, f"service_code {service_code!r} not found")
            attributes = [a.model_dump(mode="json") for a in service.attributes]
            body = {"service_code": service.service_code, "attributes": attributes}
            return render(fmt, "service_definition", body)

    def _request_routes(self, router: APIRouter, ctx: ChannelContext) -> None:
        @router.post("/requests.{fmt}", status_code=201, openapi_extra=FORM_BODY)
        async def post_request(fmt: Fmt, request: Request) -> Response:
            """Report a problem (form-encoded, with api_key)."""
            return render(fmt, "service_requests", [await self._post(request, ctx)], 201)

        @router.get("/requests.{fmt}")
        async def get_requests(
            fmt: Fmt,
            service_request_id: Annotated[str | None, Query(max_length=2000)] = None,
            service_code: Annotated[str | None, Query(max_length=2000)] = None,
            start_date: Annotated[str | None, Query(max_length=40)] = None,
            end_date: Annotated[str | None, Query(max_length=40)] = None,
            status: Annotated[str | None, Query(max_length=20)] = None,
            jurisdiction_id: Jurisdiction = None,
        ) -> Response:
            """Requests made through Open311; by id (comma-separated, other filters
            then ignored) or by service code, status and date (90 days at most)."""
            _check_jurisdiction(jurisdiction_id)
            if service_request_id:
                found = [await self._one(i, ctx) for i in sorted(split(service_request_id))]
                return render(fmt, "service_requests", [v for v in found if v is not None])
            since, until = span(start_date, end_date, ctx.clock())
            views = await self._list(ctx, since, until, statuses(status), split(service_code))
            return render(fmt, "service_requests", views)

        @router.get("/requests/{service_request_id}.{fmt}")
        async def get_request(
            service_request_id: Annotated[str, Path(max_length=64)], fmt: Fmt
        ) -> Response:
            """One request and its progress."""
            view = await self._one(service_request_id, ctx)
            if view is None:
                raise Open311Error(404, f"service_request_id {service_request_id!r} not found")
            return render(fmt, "service_requests", [view])

    async def _list(
        self,
        ctx: ChannelContext,
        since: datetime,
        until: datetime,
        wanted_status: set[str],
        codes: set[str],
    ) -> list[dict[str, Any]]:
        views = []
        records = await ctx.intake.repo.find_published(self.name, since, until, MAX_RESULTS)
        for record in records:
            if codes and record.extra.get("service_code") not in codes:
                continue
            view = await view_of(record, ctx.status, ctx.directory)
            shown = request_view(record, view, self.catalogue)
            if not wanted_status or shown["status"] in wanted_status:
                views.append(shown)
        return views

    async def _one(self, ticket_id: str, ctx: ChannelContext) -> dict[str, Any] | None:
        record = await ctx.intake.repo.get(ticket_id)
        if record is None or not record.published or record.channel != self.name:
            return None
        return request_view(
            record, await view_of(record, ctx.status, ctx.directory), self.catalogue
        )

    async def _post(self, request: Request, ctx: ChannelContext) -> dict[str, Any]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise Open311Error(400, "POST requests must be application/x-www-form-urlencoded")
        form = parse_form((await request.body()).decode("utf-8"))
        _check_jurisdiction(form.get("jurisdiction_id"))
        api_key = form.get("api_key")
        if api_key is None:
            raise Open311Error(403, "api_key was not provided")
        try:
            await ctx.guard.check(request, self.name, api_key)
        except (Unauthorized, Forbidden) as exc:
            raise Open311Error(403, f"invalid api_key: {exc}") from exc
        service, draft = draft_of(
            form, self.catalogue, ctx.directory, ctx.settings.fallback_district
        )
        extra = {k: form.get(k) for k in ("address_string", "address_id", "zipcode", "media_url")}
        account = form.get("account_id")
        submission = Submission(
            draft=draft,
            actor=Actor(kind=ActorKind.CITIZEN, id="channel:open311"),
            fingerprint=fingerprint(sorted(form.fields.items())),
            email=form.get("email"),
            extra={"service_code": service.service_code, **{k: v for k, v in extra.items() if v}},
        )
        receipt = await ctx.intake.accept(submission, None)
        notice = (
            f"与您此前反映的问题相同，已并入工单 {receipt.duplicate_of}"
            if receipt.duplicate_of
            else "已受理，将按时限转交有关部门办理"
        )
        return {
            "service_request_id": receipt.ticket_id,
            "service_notice": notice,
            "account_id": account,
        }
