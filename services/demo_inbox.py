"""A stand-in for the departments' webhook endpoints during `hotline demo`.

The reference directory points every department at 127.0.0.1:9900; the demo
listens there so the dispatch notices the notifier sends can be seen."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class Inbox:
    def __init__(self, host: str = "127.0.0.1", port: int = 9900) -> None:
        self.notices: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib names it so
                length = int(self.headers.get("Content-Length", "0"))
                body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
                department = urlsplit(self.path).path.rsplit("/", 1)[-1]
                with inbox._lock:
                    inbox.notices.setdefault(str(body.get("ticket_id")), []).append(department)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the demo prints its own table

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Inbox:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def departments_of(self, ticket_id: str) -> list[str]:
        with self._lock:
            return list(self.notices.get(ticket_id, []))
