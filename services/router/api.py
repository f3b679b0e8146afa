"""The router's HTTP API, version 1: departments and hotline staff act on tickets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from services.router import api_models as m
from services.router.commands import Action, CommandService, PublishPending
from services.router.repository import StaleState, TicketRepository
from services.router.workflow import department as dep
from services.router.workflow import hotline
from services.router.workflow.state import Principal, Status, TicketState, WorkflowError
from shared.access import Access, Caller, forbidden, install_access, refusal
from shared.domain import ActorKind
from shared.keys import KeyKind
from shared.params import Offset, UnitId
from shared.problems import problem_response

REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid API key", "model": m.Refusal},
    403: {"description": "not your ticket, or staff only", "model": m.Refusal},
    404: {"description": "no such ticket", "model": m.Refusal},
    409: {"description": "not allowed in the ticket's current state", "model": m.Refusal},
    503: {"description": "broker or store unreachable", "model": m.Refusal},
}


ACTORS = {
    KeyKind.STAFF: ActorKind.STAFF,
    KeyKind.DEPARTMENT: ActorKind.DEPARTMENT,
    KeyKind.AGENT: ActorKind.AGENT,
}


async def authenticate(owner: Caller) -> Principal:
    """The staff member, department or agent behind the API key (X-API-Key or
    Bearer); channel keys only submit at intake."""
    kind = ACTORS.get(owner.kind)
    if kind is None:
        raise forbidden(f"a {owner.kind.value} key has nothing to read or do at the router")
    return Principal(kind=kind, id=owner.id)


Who = Annotated[Principal, Depends(authenticate)]


def install(app: FastAPI, commands: CommandService, repo: TicketRepository, access: Access) -> None:
    install_access(app, access)
    app.include_router(build_router(commands, repo))
    install_error_handlers(app)


def build_router(commands: CommandService, repo: TicketRepository) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["workflow"], responses=REFUSALS)

    async def act(who: Principal, ticket_id: str, name: str, action: Action) -> m.TicketView:
        return view_for(await commands.run(ticket_id, name, action), who)

    @router.get("/tickets/{ticket_id}")
    async def get_ticket(ticket_id: str, who: Who) -> m.TicketView:
        """One ticket; a department reads the tickets it was dispatched (lead or
        co-handler) or passed on to one of its units."""
        stored = await repo.get(ticket_id)
        if stored is None:
            raise WorkflowError("TICKET_NOT_FOUND", f"no ticket {ticket_id}", 404)
        _may_see(stored.state, who)
        return view_for(stored.state, who)

    @router.get("/tickets")
    async def list_tickets(
        who: Who,
        status: Status | None = None,
        department: UnitId = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Offset = 0,
    ) -> list[m.TicketView]:
        """Staff and agents see every ticket (status=unroutable is the manual
        dispatch queue); a department sees its own."""
        query: dict[str, Any] = {}
        if status:
            query["status"] = status
        if department:
            query["department"] = department
        if who.kind == ActorKind.DEPARTMENT:
            query["$or"] = [
                {field: who.id} for field in ("department", "co_departments", "handlers")
            ]
        return [view_for(s, who) for s in await repo.list(query, limit, offset)]

    @router.post("/tickets/{ticket_id}/accept")
    async def accept(ticket_id: str, who: Who) -> m.TicketView:
        """签收: the department owns the ticket."""
        return await act(who, ticket_id, "accept", lambda s, c: dep.accept(s, who, c))

    @router.post("/tickets/{ticket_id}/return")
    async def return_(ticket_id: str, body: m.ReturnBody, who: Who) -> m.TicketView:
        """退单: not ours, with the reason; within 2 working days of dispatch."""
        return await act(
            who, ticket_id, "return", lambda s, c: dep.return_ticket(s, who, body.reason, c)
        )

    @router.post("/tickets/{ticket_id}/extension")
    async def extension(ticket_id: str, body: m.ExtensionBody, who: Who) -> m.TicketView:
        """延期: ask hotline staff for more working days."""
        return await act(
            who,
            ticket_id,
            "request_extension",
            lambda s, c: dep.request_extension(s, who, body.days, body.reason, c),
        )

    @router.post("/tickets/{ticket_id}/extension/decision")
    async def extension_decision(
        ticket_id: str, body: m.ExtensionDecisionBody, who: Who
    ) -> m.TicketView:
        """Staff approve or refuse a pending extension."""
        return await act(
            who,
            ticket_id,
            "decide_extension",
            lambda s, c: hotline.decide_extension(s, who, body.approve, body.note, c),
        )

    @router.post("/tickets/{ticket_id}/resolve")
    async def resolve(ticket_id: str, body: m.ResolveBody, who: Who) -> m.TicketView:
        """办结: the reply to the citizen."""
        return await act(who, ticket_id, "resolve", lambda s, c: dep.resolve(s, who, body.reply, c))

    @router.post("/tickets/{ticket_id}/sub-dispatch")
    async def sub_dispatch(ticket_id: str, body: m.SubDispatchBody, who: Who) -> m.TicketView:
        """转派: a county sub-centre passes the ticket to one of its units."""
        return await act(
            who,
            ticket_id,
            "sub_dispatch",
            lambda s, c: dep.sub_dispatch(s, who, body.department, c),
        )

    @router.post("/tickets/{ticket_id}/dispatch")
    async def manual_dispatch(ticket_id: str, body: m.DispatchBody, who: Who) -> m.TicketView:
        """Manual dispatch by hotline staff."""
        co = tuple(body.co_departments)
        return await act(
            who,
            ticket_id,
            "manual_dispatch",
            lambda s, c: hotline.manual_dispatch(s, who, body.department, co, body.time_limit, c),
        )

    @router.post("/tickets/{ticket_id}/explanation")
    async def explanation(ticket_id: str, body: m.ExplanationBody, who: Who) -> m.TicketView:
        """一单一报: the written explanation for an unsatisfied citizen."""
        return await act(who, ticket_id, "explain", lambda s, c: dep.explain(s, who, body.text, c))

    return router


IN_HANDS = frozenset(
    {Status.DISPATCHED, Status.ACCEPTED, Status.EXTENSION_REQUESTED, Status.REOPENED}
)


def _may_see(state: TicketState, who: Principal) -> None:
    if who.kind in (ActorKind.STAFF, ActorKind.AGENT):
        return
    if who.id not in (state.department, *state.co_departments, *state.handlers):
        raise WorkflowError("NOT_YOUR_TICKET", f"ticket {state.ticket_id} is not yours", 403)


def sees_contact(state: TicketState, who: Principal) -> bool:
    """Staff and agents always; the lead department while the ticket is in its hands."""
    if who.kind in (ActorKind.STAFF, ActorKind.AGENT):
        return True
    return who.id == state.department and state.status in IN_HANDS


def view_for(state: TicketState, who: Principal) -> m.TicketView:
    return m.TicketView.of(state, sees_contact(state, who))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(WorkflowError)
    async def _refused(_: Request, exc: WorkflowError) -> JSONResponse:
        return refusal(exc.status, exc.code, exc.message)

    @app.exception_handler(StaleState)
    async def _stale(_: Request, exc: StaleState) -> JSONResponse:
        return problem_response(409, "the ticket changed meanwhile; read it and retry")

    @app.exception_handler(PublishPending)
    async def _pending(_: Request, exc: PublishPending) -> JSONResponse:
        message = "the change is recorded; its notification will follow. Do not repeat it."
        return problem_response(503, message, "PUBLISH_PENDING", headers={"Retry-After": "5"})
