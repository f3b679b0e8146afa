"""HMAC-SHA256 signatures of webhook bodies, both directions: the notifier signs
what it sends departments, intake checks what the SMS gateway sends it."""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>": the receiver recomputes it with the
    shared secret and refuses a stale timestamp, which stops replays."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float, skew: int
) -> str | None:
    """None if the signature is right and fresh, else what is wrong."""
    if not timestamp or not signature:
        return "missing signature or timestamp"
    try:
        sent = int(timestamp)
    except ValueError:
        return "timestamp is not a number of seconds"
    if abs(now - sent) > skew:
        return "stale timestamp"
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        return "bad signature"
    return None
