"""One log line per key per interval, and a count of the lines held back."""

from __future__ import annotations

from shared.logthrottle import LogThrottle


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_first_line_passes_repeats_are_held_and_counted() -> None:
    ticks = Ticks()
    throttle = LogThrottle(interval_s=60, clock=ticks)
    assert throttle.admit("a") == 0
    ticks.now = 10
    assert throttle.admit("a") is None
    assert throttle.admit("a") is None
    assert throttle.admit("b") == 0  # another key is not held back by "a"
    ticks.now = 61
    assert throttle.admit("a") == 2
    assert throttle.admit("a") is None
    ticks.now = 200
    assert throttle.admit("a") == 1
