"""The two kinds of failure a handler can meet, and how to tell them apart.

Permanent: the message itself is wrong (invalid, illegal transition); retrying
cannot help, so it goes to the dead-letter queue at once.
Unavailable: a server we depend on is down; the message is fine and is retried
without using up its bounded retries. Any other exception is treated as
transient and retried a bounded number of times.
"""

from __future__ import annotations

import asyncio

import aiormq.exceptions
import pymongo.errors


class PermanentError(Exception):
    """The message can never be handled as it is."""


class UnavailableError(Exception):
    """A dependency (broker, store) cannot be reached right now."""


UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    UnavailableError,
    pymongo.errors.ConnectionFailure,  # includes AutoReconnect, timeouts, server selection
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    asyncio.TimeoutError,
)


def is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, UNAVAILABLE_ERRORS)
