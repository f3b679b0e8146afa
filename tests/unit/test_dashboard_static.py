"""The dashboard's static files: nothing is loaded from another host (the page
must work on a network without internet), no data is ever parsed as HTML, and
the element ids the end-to-end test reads are there."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
from fastapi import FastAPI

from services.stats.dashboard import STATIC, mount_dashboard

FILES = ("index.html", "app.js", "session.js", "style.css")
# An XML namespace is a name, never fetched; createElementNS needs it.
NAMESPACES = {"http://www.w3.org/2000/svg"}
IDS = (
    "today-received",
    "today-dispatched",
    "today-resolved",
    "today-overdue",
    "rate-completion",
    "rate-response",
    "rate-resolution",
    "rate-satisfaction",
    "trend-chart",
    "ranking-table",
    "overdue-list",
    "status",
    "signin",
    "api-key",
    "ticket-detail",
)


def text(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data") and value:
                self.urls.append(value)
            if name == "id" and value:
                self.ids.append(value)


def is_local(url: str) -> bool:
    """A path on the serving host, or inline data."""
    return (url.startswith("/") and not url.startswith("//")) or url.startswith("data:")


def test_no_absolute_url_outside_namespaces() -> None:
    for name in FILES:
        found = set(re.findall(r"""(?:https?:|wss?:|ftp:)?//[^\s"'`)<>]+""", text(name)))
        # "//" also opens a JS comment: only what looks like host/path counts.
        hosts = {u for u in found if re.match(r"(?:[a-z]+:)?//[\w.-]+\.[a-z]{2,}", u)}
        assert hosts <= NAMESPACES, f"{name} names another host: {sorted(hosts - NAMESPACES)}"


def test_html_loads_only_from_its_own_server() -> None:
    page = Links()
    page.feed(text("index.html"))
    assert page.urls, "the page links its script and style sheet"
    assert all(is_local(url) for url in page.urls), page.urls
    assert "default-src 'self'" in text("index.html"), "the CSP keeps the browser on this host"


def test_script_fetches_only_relative_paths() -> None:
    script = text("app.js")
    paths = re.findall(r"""["'](/v1/[^"']*)["']""", script)
    assert {p.split("?")[0] for p in paths} >= {
        "/v1/stats/summary",
        "/v1/stats/trend",
        "/v1/stats/ranking",
        "/v1/tickets",
    }
    session = text("session.js")
    assert "fetch(url" in session and 'fetch("' not in script + session
    assert "fetch(" not in script, "every data call goes through the session (its key)"


def test_the_key_stays_in_the_tab() -> None:
    session = text("session.js")
    assert "sessionStorage" in session and "localStorage" not in session + text("app.js")
    assert '"X-API-Key": key()' in session


def test_data_is_never_parsed_as_html() -> None:
    script = text("app.js") + text("session.js")
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "Function(",
    ):
        assert sink not in script, sink


def test_css_imports_nothing() -> None:
    css = text("style.css")
    assert "@import" not in css and "url(" not in css and "@font-face" not in css


def test_ids_the_tests_read_are_there() -> None:
    page = Links()
    page.feed(text("index.html"))
    assert set(IDS) <= set(page.ids), set(IDS) - set(page.ids)
    assert len(page.ids) == len(set(page.ids)), "ids are unique"


async def test_served_at_root_and_static() -> None:
    app = FastAPI()
    mount_dashboard(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://stats") as client:
        root = await client.get("/")
        assert root.status_code == 200 and root.headers["content-type"].startswith("text/html")
        assert "12345" in root.text
        for name in FILES:
            assert (await client.get(f"/static/{name}")).status_code == 200, name
