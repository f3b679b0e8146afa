"""The Grafana dashboards of the compose stack, written as code.

`python -m tools.grafana` (or `make dashboards`) writes them to
deploy/grafana/dashboards/, where Grafana's provisioning loads them; a unit test
fails when the committed JSON differs from what these modules build.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.grafana.business import business
from tools.grafana.operations import errors, flow, timers

OUT_DIR = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
DASHBOARDS: dict[str, Callable[[], Any]] = {
    "flow": flow,
    "errors": errors,
    "timers": timers,
    "business": business,
}


def path_of(name: str) -> Path:
    return OUT_DIR / f"hotline-{name}.json"


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), ensure_ascii=False, indent=2) + "\n"


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in DASHBOARDS:
        path_of(name).write_text(render(name), encoding="utf-8")
    print(f"wrote {len(DASHBOARDS)} dashboards to {OUT_DIR}", file=sys.stderr)
    return 0
