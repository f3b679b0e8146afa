"""Waiting for an event with a time limit, safely under cancellation.

Python 3.11's asyncio.wait_for can swallow a cancellation that arrives just as
the awaited event is set: the waiting task then carries on as if never
cancelled, and whoever awaits its end waits forever (seen here: a notifier
worker whose event was set often hung a test's teardown). asyncio.timeout
does not have that race."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """True if the event was set within timeout_s seconds."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True
