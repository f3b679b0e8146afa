"""At most one log line per key per interval, with a count of what was held back.

A department's endpoint that fails for an hour must be visible in the log, but
not as thousands of identical lines that bury everything else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

MAX_KEYS = 10_000


@dataclass
class LogThrottle:
    interval_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _last: dict[Hashable, float] = field(default_factory=dict)
    _held: dict[Hashable, int] = field(default_factory=dict)

    def admit(self, key: Hashable) -> int | None:
        """None when a line for this key was logged within the interval (it is
        counted); otherwise the number of lines held back since the last one."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        if len(self._last) >= MAX_KEYS and key not in self._last:
            self._last.clear()  # keys are departments × channels; this bounds a surprise
            self._held.clear()
        self._last[key] = now
        return self._held.pop(key, 0)
