"""The department worklist, a ticket's page with its history, and the actions
taken on it (by the department and by hotline staff)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import RedirectResponse

from services.workbench import viewlogic as vl
from services.workbench.actions import ACTIONS, BadField, dispatch_choices, offered, units_of
from services.workbench.clients import Refused, ServiceDown
from services.workbench.sessions import Session
from services.workbench.web import error_page, posted_form, render, signed_in, wb
from services.workbench.worklist import closed_tickets, live_tickets

NOTICE_READERS = frozenset({"staff", "department"})
# After these the ticket is no longer the department's to see.
LEAVES = frozenset({"return", "sub-dispatch"})
TicketId = Path(max_length=64, pattern=r"^[A-Za-z0-9\-]+$")


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/dept")
    async def worklist(request: Request, tab: str = "pending", done: str = "") -> Response:
        session = await signed_in(request, "department")
        bench = wb(request)
        tab = tab if tab in dict(vl.TABS) else "pending"
        tickets = await live_tickets(bench.services, session.key)
        closed, closed_total = await closed_tickets(bench.services, session.key)
        now = bench.clock()
        shown, counts = vl.worklist(tickets + closed, tab, now, bench.calendar)
        counts["done"] += closed_total - len(closed)
        for ticket in shown:
            ticket["remaining"] = vl.remaining(ticket.get("deadline"), now, bench.calendar)
        notice = ACTIONS[done].done if done in ACTIONS else ""
        return render(
            request,
            "worklist.html",
            tabs=vl.TABS,
            tab=tab,
            tickets=shown,
            counts=counts,
            notice=notice,
        )

    @router.get("/tickets/{ticket_id}")
    async def ticket_page(request: Request, ticket_id: str = TicketId, done: str = "") -> Response:
        session = await signed_in(request)
        return await show_ticket(request, session, ticket_id, notice=done)

    @router.post("/tickets/{ticket_id}/{action}")
    async def act(request: Request, action: str, ticket_id: str = TicketId) -> Response:
        session = await signed_in(request)
        fields = await posted_form(request, session)
        spec = ACTIONS.get(action)
        if spec is None:
            return error_page(request, 404, "页面不存在", f"没有“{action}”这个操作。")
        if session.kind not in spec.kinds:
            return error_page(request, 403, "无权操作", "您的账号不能执行此操作。")
        try:
            body = spec.body(fields)
            if spec.service == "intake" and session.kind == "agent":
                body["agent_id"] = session.id
            path = f"/v1/tickets/{ticket_id}/{spec.path}"
            await wb(request).services.post(spec.service, path, session.key, body)
        except BadField as exc:
            return await show_ticket(request, session, ticket_id, {action: str(exc)}, fields, 422)
        except Refused as exc:
            error = {action: vl.refusal_text(exc.code, exc.message)}
            return await show_ticket(request, session, ticket_id, error, fields, exc.status)
        return RedirectResponse(_after(action, ticket_id, fields), status_code=303)

    return router


def _after(action: str, ticket_id: str, fields: dict[str, str]) -> str:
    """Where the browser goes after an action: back to a staff list it came
    from; to the worklist when the ticket left the department's hands."""
    back = fields.get("back", "")
    if back.startswith("/staff/"):
        return back
    if action in LEAVES:
        return f"/dept?done={action}"
    return f"/tickets/{ticket_id}?done={action}"


async def show_ticket(
    request: Request,
    session: Session,
    ticket_id: str,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
    notice: str = "",
) -> Response:
    """The ticket as the router holds it (the router decides who may see it),
    with its history from stats."""
    bench = wb(request)
    try:
        ticket = await bench.services.get("router", f"/v1/tickets/{ticket_id}", session.key)
    except Refused as exc:
        title = "无权查看" if exc.status == 403 else "无法打开工单"
        return error_page(request, exc.status, title, vl.refusal_text(exc.code, exc.message))
    history, history_note = await _history(request, session, ticket_id)
    names = {d.id: d.name for d in bench.directory.departments.values()}
    notices = await _notices(request, session, ticket_id)
    now = bench.clock()
    ticket["remaining"] = vl.remaining(ticket.get("deadline"), now, bench.calendar)
    context: dict[str, Any] = {
        "ticket": ticket,
        "history": [vl.step_summary(step, names) for step in history],
        "history_note": history_note,
        "notices": [vl.notice_summary(n, names) for n in notices or []],
        "notices_note": "" if notices is not None else "通知服务暂时无法连接，通知记录稍后可见。",
        "actions": offered(ticket, session.kind, session.id, bench.directory),
        "errors": errors or {},
        "values": values or {},
        "notice": ACTIONS[notice].done if notice in ACTIONS else "",
        "units": units_of(session.id, bench.directory),
        "choices": dispatch_choices(str(ticket.get("district")), bench.directory),
        "names": names,
    }
    return render(request, "ticket.html", status, **context)


async def _history(
    request: Request, session: Session, ticket_id: str
) -> tuple[list[dict[str, Any]], str]:
    try:
        view = await wb(request).services.get("stats", f"/v1/tickets/{ticket_id}", session.key)
    except ServiceDown:
        return [], "统计服务暂时无法连接，办理记录稍后可见。"
    except Refused:
        return [], "办理记录尚未同步，请稍后刷新。"
    return list(view.get("history") or []), ""


async def _notices(
    request: Request, session: Session, ticket_id: str
) -> list[dict[str, Any]] | None:
    """The notices sent about the ticket, as the notifier shows them to this key
    (staff all, a department its own); None while the notifier is unreachable."""
    if session.kind not in NOTICE_READERS:
        return []
    try:
        found: list[dict[str, Any]] = await wb(request).services.get(
            "notifier", "/v1/deliveries", session.key, ticket_id=ticket_id
        )
    except ServiceDown:
        return None
    except Refused:
        return []
    return found
