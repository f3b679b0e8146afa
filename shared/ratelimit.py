"""A token bucket per key, held in the process: intake's per-channel-key and
per-address limits and the workbench's citizen pages use the same one.

With N replicas behind a balancer a key gets up to N times the rate: the
documented trade-off for needing no shared state on every request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_BUCKETS = 100_000


@dataclass
class TokenBuckets:
    per_minute: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, bucket: str) -> float:
        """Take one token: 0 if allowed, else the seconds until one is free."""
        now = self.clock()
        rate = self.per_minute / 60.0
        tokens, stamp = self._buckets.get(bucket, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - stamp) * rate)
        if tokens < 1.0:
            self._buckets[bucket] = (tokens, now)
            return (1.0 - tokens) / rate
        if len(self._buckets) >= MAX_BUCKETS and bucket not in self._buckets:
            self._buckets.clear()  # a flood of addresses must not grow memory forever
        self._buckets[bucket] = (tokens - 1.0, now)
        return 0.0
