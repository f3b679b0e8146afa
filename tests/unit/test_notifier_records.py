"""The notifier's record words: one enum per kind of state, the same values the
store, the API's filter and the gauge use."""

from __future__ import annotations

from datetime import UTC, datetime

from services.notifier.records import Attempt, DeliveryStatus, JobStatus, TimerKind, timer_id
from services.notifier.repository import DELIVERY_STATUSES


def test_delivery_statuses_are_the_enum_and_pending_is_the_jobs() -> None:
    assert [str(s) for s in DELIVERY_STATUSES] == ["pending", "delivered", "dead", "superseded"]
    # The job worker claims pending jobs of both kinds by the same word.
    assert DeliveryStatus.PENDING.value == JobStatus.PENDING.value


def test_an_attempt_is_stored_as_the_history_shows_it() -> None:
    at = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    attempt = Attempt(2, at, False, 500, "HTTP 500")
    assert attempt.doc() == {"n": 2, "at": at, "ok": False, "status_code": 500, "error": "HTTP 500"}


def test_a_timer_id_is_built_one_way() -> None:
    assert timer_id("LC1", "g1", TimerKind.OVERDUE, 3) == "LC1:g1:overdue:3"
