"""Sign in with a key `hotline keys` issued, and sign out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from services.workbench.clients import KeyRejected, Refused
from services.workbench.metrics import SIGN_INS, SIGNED_OUT
from services.workbench.sessions import COOKIE
from services.workbench.web import HOME, posted_form, render, session_of, set_cookie, wb

NOTICES = {
    "revoked": "您的密钥已过期或被吊销，已退出登录。请向管理员申请新密钥后重新登录。",
    "signed_out": "您已安全退出。",
    "idle": "登录已过期，请重新登录。",
}
SIGN_IN_KINDS = frozenset({"staff", "department", "agent"})


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def root(request: Request) -> Response:
        session = await session_of(request)
        target = HOME.get(session.kind, "/signin") if session else "/signin"
        return RedirectResponse(target, status_code=303)

    @router.get("/signin")
    async def signin_page(request: Request, notice: str = "") -> Response:
        return render(request, "signin.html", notice=NOTICES.get(notice, ""))

    @router.post("/signin")
    async def signin(request: Request) -> Response:
        fields = await posted_form(request, None)
        key = fields.get("key", "")
        bench = wb(request)
        error = ""
        who: dict[str, str] = {}
        if not key:
            error = "请输入密钥。"
        else:
            try:
                who = await bench.services.get("router", "/v1/whoami", key)
            except (KeyRejected, Refused):
                error = "密钥无效、已过期或已被吊销。"
        if not error and who.get("kind") not in SIGN_IN_KINDS:
            error = "此密钥不能登录工作台（仅限热线工作人员、承办单位和坐席的密钥）。"
        if error:
            SIGN_INS.labels("refused", "").inc()
            return render(request, "signin.html", 401, error=error, notice="")
        SIGN_INS.labels("ok", who["kind"]).inc()
        session_id = await bench.sessions.create(who, key, bench.clock())
        response = RedirectResponse(HOME[who["kind"]], status_code=303)
        set_cookie(request, response, COOKIE, session_id)
        return response

    @router.post("/signout")
    async def signout(request: Request) -> Response:
        session = await session_of(request)
        await posted_form(request, session)
        await wb(request).sessions.delete(request.cookies.get(COOKIE, ""))
        SIGNED_OUT.labels("user").inc()
        response = RedirectResponse("/signin?notice=signed_out", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return router
