"""The time every service reads, and that tests can move.

Production reads the system clock. A test moves time forward for in-process code
with a ManualClock, and for running service processes by writing an offset (in
seconds) into the file named by HOTLINE_CLOCK_OFFSET_FILE: a week of deadlines
passes in a second without touching the machine's clock.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

logger = logging.getLogger(__name__)


class Clock:
    """System time plus an optional offset read from a file (checked when it changes)."""

    def __init__(self, offset_file: Path | None = None) -> None:
        self._file = offset_file
        self._mtime: float | None = None
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        return self.now()

    def now(self) -> datetime:
        if self._file is not None:
            self._refresh()
        return datetime.now(UTC) + self._offset

    def _refresh(self) -> None:
        assert self._file is not None
        try:
            mtime = os.stat(self._file).st_mtime
        except FileNotFoundError:
            self._offset, self._mtime = timedelta(0), None
            return
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                self._offset = timedelta(seconds=float(self._file.read_text().strip() or 0))
            except ValueError:
                logger.error("clock offset file %s does not hold a number", self._file)


class ManualClock:
    """A clock that stands still until moved."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, when: datetime) -> None:
        self._now = when
