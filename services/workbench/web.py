"""What every page shares: the workbench's parts, the signed-in user, CSRF
checks, rendering, security headers and the error pages."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.workbench import viewlogic as vl
from services.workbench.clients import KeyRejected, ServiceDown, Services
from services.workbench.metrics import SIGNED_OUT
from services.workbench.sessions import COOKIE, Session, SessionStore
from shared.directory import Directory
from shared.ratelimit import TokenBuckets
from shared.settings import WorkbenchSettings
from shared.workcalendar import WorkCalendar

logger = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "templates"
ANON_COOKIE = "wb_anon"
HOME = {"staff": "/staff/queue", "department": "/dept", "agent": "/agent"}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass
class Workbench:
    settings: WorkbenchSettings
    services: Services
    sessions: SessionStore
    directory: Directory
    calendar: WorkCalendar
    templates: Jinja2Templates
    buckets: TokenBuckets
    clock: Callable[[], datetime]


class NotSignedIn(Exception):
    def __init__(self, notice: str = "") -> None:
        super().__init__(notice)
        self.notice = notice


class WrongRole(Exception):
    """A signed-in user on a page of another role: a 403 page."""


class CsrfRejected(Exception):
    """A form posted without the token this session (or this browser) was given."""


def wb(request: Request) -> Workbench:
    bench: Workbench = request.app.state.workbench
    return bench


def districts_of(request: Request) -> list[dict[str, Any]]:
    """The directory's districts with their towns, for the place cascade."""
    return [
        {"id": d.id, "name": d.name, "towns": list(d.towns)}
        for d in wb(request).directory.districts.values()
    ]


def make_templates(tz_name: str, directory: Directory) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env
    calendar = WorkCalendar(tz_name)
    tz = calendar.tz
    env.filters["city_time"] = lambda value: vl.city_time(value, tz)
    env.filters["deadline_time"] = lambda value: vl.deadline_time(value, calendar)
    env.filters["district_name"] = lambda key: getattr(directory.district(str(key)), "name", key)
    env.globals.update(
        status_label=lambda s: vl.STATUS_LABELS.get(str(s), str(s)),
        categories=vl.CATEGORY_LABELS,
        priorities=vl.PRIORITY_LABELS,
        ratings=vl.RATINGS,
    )
    return templates


async def session_of(request: Request) -> Session | None:
    bench = wb(request)
    return await bench.sessions.get(request.cookies.get(COOKIE, ""), bench.clock())


async def signed_in(request: Request, *kinds: str) -> Session:
    """The signed-in user, who must be of one of the kinds (any when none given)."""
    session = await session_of(request)
    if session is None:
        raise NotSignedIn()
    request.state.session = session
    # Every page asks whether the key still holds, so a revoked key signs the
    # user out at the next click, even on a page that calls nothing else.
    await wb(request).services.get("router", "/v1/whoami", session.key)
    if kinds and session.kind not in kinds:
        raise WrongRole()
    return session


def anon_token(request: Request, response_cookies: dict[str, str]) -> str:
    """The CSRF token of a browser without a session (sign-in, citizen pages):
    an HMAC of a random value it holds in its own cookie (double submit)."""
    nonce = request.cookies.get(ANON_COOKIE) or ""
    if len(nonce) < 20 or len(nonce) > 100:
        nonce = secrets.token_urlsafe(24)
        response_cookies[ANON_COOKIE] = nonce
    return _sign(wb(request).settings.workbench_secret, nonce)


def _sign(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), nonce.encode(), hashlib.sha256).hexdigest()


async def posted_form(request: Request, session: Session | None) -> dict[str, str]:
    """The fields of a posted form, after its CSRF token was checked."""
    form = await request.form()
    fields = {k: v.strip() for k, v in form.items() if isinstance(v, str)}
    sent = fields.pop("csrf", "")
    if session is not None:
        expected = session.csrf
    else:
        nonce = request.cookies.get(ANON_COOKIE, "")
        expected = _sign(wb(request).settings.workbench_secret, nonce) if nonce else ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRejected()
    return fields


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    session: Session | None = getattr(request.state, "session", None)
    cookies: dict[str, str] = {}
    csrf = session.csrf if session else anon_token(request, cookies)
    response = wb(request).templates.TemplateResponse(
        request,
        template,
        {"session": session, "csrf": csrf, "home": HOME, **context},
        status_code=status,
    )
    for name, value in cookies.items():
        set_cookie(request, response, name, value)
    return response


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=wb(request).settings.cookie_secure,
        path="/",
    )


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", status, title=title, message=message)


def install_pages_support(app: FastAPI) -> None:
    """Error pages instead of stack traces, and security headers on every answer."""

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        target = "/signin" + (f"?notice={exc.notice}" if exc.notice else "")
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(KeyRejected)
    async def _key_rejected(request: Request, exc: KeyRejected) -> Response:
        await wb(request).sessions.delete(request.cookies.get(COOKIE, ""))
        SIGNED_OUT.labels("key_rejected").inc()
        response = RedirectResponse("/signin?notice=revoked", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.exception_handler(WrongRole)
    async def _wrong_role(request: Request, exc: WrongRole) -> Response:
        return error_page(request, 403, "无权访问", "此页面不对您的账号类型开放。")

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, exc: CsrfRejected) -> Response:
        message = "表单校验失败（缺少或错误的 CSRF 令牌）。请回到页面刷新后重新提交，未做任何更改。"
        return error_page(request, 403, "表单已失效", message)

    @app.exception_handler(ServiceDown)
    async def _down(request: Request, exc: ServiceDown) -> Response:
        message = f"{exc.label}暂时无法连接，请稍后重试。本次操作没有做任何更改。"
        return error_page(request, 503, "服务暂时不可用", message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        title = "页面不存在" if exc.status_code == 404 else "请求有误"
        return error_page(request, exc.status_code, title, str(exc.detail))

    app.middleware("http")(_security_headers)


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.url.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response
