"""CSV answers: UTF-8 with a byte-order mark, so spreadsheet programs show
Chinese text correctly when the file is opened directly."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from fastapi.responses import Response


def to_csv(rows: list[dict[str, Any]], header: Sequence[str] = ()) -> str:
    """`header`: the columns an answer always has, so that an empty one still
    has its header row; a row's other keys follow."""
    columns: list[str] = list(header)
    for row in rows:
        columns += [key for key in row if key not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}={v}" for k, v in value.items())
    return value


def csv_response(filename: str, rows: list[dict[str, Any]], header: Sequence[str] = ()) -> Response:
    body = "\ufeff" + to_csv(rows, header)
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
