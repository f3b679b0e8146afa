"""Bench only: counts the store commands of a service process.

tests/bench/bench_pipeline.py puts this folder on the services' PYTHONPATH and
names a folder in HOTLINE_BENCH_STORE_OPS_DIR; Python imports this module at
start-up (site), before any service code, so the listener sees every client the
service opens. Nothing in the product imports it. Every half second, and at
exit, the counts so far go to <dir>/<service>-<pid>.json as
{"counts": {"<command> <collection>": n}, "micros": {...}} (micros: the time
from sending each command to its answer, summed: where the service waits for
the store); tests/bench/store_ops.py sums them.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from collections import Counter
from pathlib import Path

from pymongo import monitoring

# Commands a driver sends about the connection, not the data.
_HOUSEKEEPING = {"hello", "ismaster", "isMaster", "ping", "endSessions", "buildInfo", "saslStart"}


class _Counting(monitoring.CommandListener):
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.counts: Counter[str] = Counter()
        self.micros: Counter[str] = Counter()
        self.keys: dict[int, str] = {}
        self.lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name in _HOUSEKEEPING:
            return
        target = event.command.get(name)
        collection = target if isinstance(target, str) else "-"
        with self.lock:
            self.counts[f"{name} {collection}"] += 1
            self.keys[event.request_id] = f"{name} {collection}"

    def _timed(self, request_id: int, micros: int) -> None:
        with self.lock:
            key = self.keys.pop(request_id, None)
            if key is not None:
                self.micros[key] += micros

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._timed(event.request_id, event.duration_micros)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._timed(event.request_id, event.duration_micros)

    def write(self) -> None:
        service = os.path.basename(sys.argv[1]) if len(sys.argv) > 1 else "unknown"
        with self.lock:
            data = {"counts": dict(self.counts), "micros": dict(self.micros)}
        path = self.folder / f"{service}-{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)


def _writing(listener: _Counting) -> None:
    stop = threading.Event()
    while not stop.wait(0.5):
        listener.write()


def _install() -> None:
    folder = os.environ.get("HOTLINE_BENCH_STORE_OPS_DIR")
    if not folder:
        return
    listener = _Counting(Path(folder))
    monitoring.register(listener)
    threading.Thread(target=_writing, args=(listener,), daemon=True).start()
    atexit.register(listener.write)


_install()
