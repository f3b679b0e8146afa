"""Settings read from HOTLINE_* environment variables, with defaults for a local machine.

One class per service, all built on the common part, so that docker-compose, the
Makefile and the tests name the same variables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(__file__).parent / "data" / "liaocheng"

# What a caller's near-identical repeat of a closed ticket does (docs/DOMAIN.md §2).
RepeatOfClosed = Literal["new", "reopen"]
REPEAT_OF_CLOSED_CHOICES: tuple[RepeatOfClosed, ...] = ("new", "reopen")


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", extra="ignore")

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    mongo_url: str = "mongodb://127.0.0.1:27017/"
    # Each service keeps its collections in its own database "<prefix>_<service>";
    # a test or a second installation on the same servers picks another prefix.
    mongo_db_prefix: str = "hotline"
    # Exchange and queue names derive from this namespace, for the same reason.
    amqp_namespace: str = "hotline"
    # "quorum" on a RabbitMQ cluster; "classic" is lighter on one node.
    queue_type: str = "classic"
    prefetch: int = Field(default=32, ge=1, le=1000)
    # Delays (seconds) of the bounded retries of a failing message; their count is
    # the number of retries before the message is dead-lettered.
    retry_delays: list[float] = Field(default_factory=lambda: [1.0, 5.0, 30.0, 120.0, 600.0])
    timezone: str = "Asia/Shanghai"
    directory_file: Path = DATA_DIR / "departments.json"
    districts_file: Path = DATA_DIR / "districts.json"
    # Loopback by default: a service is reachable from other machines only when
    # the operator says so (compose sets 0.0.0.0 inside its containers).
    http_host: str = "127.0.0.1"
    log_level: str = "INFO"
    # The one key store every service verifies API keys against; empty means
    # "<mongo_db_prefix>_keys" (hotline_keys).
    keys_db: str = Field(default="", pattern=r"^[A-Za-z0-9_\-]{0,60}$")
    # How long a verified key is trusted without asking the store again: a revoked
    # key stops working at most this many seconds later.
    key_cache_s: float = Field(default=2.0, ge=0, le=10)
    # Tests and demos only: a file holding seconds to add to the clock
    # (shared.clock); staff move it with POST /v1/clock on the router in a demo
    # environment (shared.democlock). Refused in production.
    clock_offset_file: Path | None = None
    # development (the default), demo (the clock control answers) or production
    # (no clock offset: time is the machine's).
    environment: Literal["development", "demo", "production"] = "development"

    @property
    def keys_database(self) -> str:
        return self.keys_db or f"{self.mongo_db_prefix}_keys"

    @model_validator(mode="after")
    def _production_keeps_real_time(self) -> CommonSettings:
        if self.environment == "production" and self.clock_offset_file is not None:
            raise ValueError("HOTLINE_CLOCK_OFFSET_FILE is refused in production")
        return self

    @field_validator("queue_type")
    @classmethod
    def _queue_type(cls, value: str) -> str:
        if value not in {"classic", "quorum"}:
            raise ValueError("queue_type must be 'classic' or 'quorum'")
        return value


class MailRelaySettings(CommonSettings):
    """The mail relay a service sends through (notices, replies to citizens)."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "12345@hotline.local"


class IntakeSettings(MailRelaySettings):
    http_port: int = 8001
    ticket_prefix: str = Field(default="LC", pattern=r"^[A-Z]{1,6}$")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    publish_timeout_s: float = Field(default=5.0, gt=0)
    # Group commit: how long a group of store writes waits for other requests'
    # writes to join it (shared.groupcommit); 0 sends each group as soon as the
    # one before it is acknowledged.
    group_commit_ms: float = Field(default=2.0, ge=0, le=100)
    # Off: a request without a key is served (anonymous, rate-limited by address);
    # a wrong key is refused either way. On in production: every channel endpoint
    # needs a key issued to that channel (`hotline keys issue --channel web`).
    require_channel_keys: bool = False
    # Token bucket per key (or per address without one), per replica.
    rate_limit_per_minute: float = Field(default=600.0, gt=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    # Citizen lookups (phone_last4 guessing), per client and ticket: misses allowed
    # per hour, then a wait doubling from lookup_backoff_s with each further miss.
    lookup_failures_per_hour: int = Field(default=5, ge=1)
    lookup_backoff_s: float = Field(default=60.0, gt=0, le=3600)
    # Where a request no district can be found for goes: a district id the rules
    # do not know sends it to the manual dispatch queue.
    fallback_district: str = "unknown"
    # Duplicates (并单) and hotspots.
    duplicate_window_hours: float = Field(default=72.0, gt=0)
    duplicate_similarity: float = Field(default=90.0, gt=0, le=100)
    # A repeat of the caller's closed ticket within the window: "new" opens a new
    # ticket recording the closed one (related_to); "reopen" records the call on
    # the closed ticket and the router reopens it (重办) to its last department.
    repeat_of_closed: RepeatOfClosed = "new"
    hotspot_similarity: float = Field(default=60.0, gt=0, le=100)
    hotspot_min_callers: int = Field(default=3, ge=2)
    hotspot_window_days: float = Field(default=7.0, gt=0)
    # SMS gateway webhook: HMAC-SHA256 of "<timestamp>.<body>"; stale ones refused.
    sms_webhook_secret: str = "dev-only-sms-secret"
    sms_max_skew_s: int = Field(default=300, ge=1)
    # The SMTP listener for citizens' email; None turns it off, 0 picks a free port.
    email_listen_host: str = "127.0.0.1"
    email_listen_port: int | None = 8025
    # Open311 discovery names this base URL.
    public_url: str = "http://127.0.0.1:8001"

    @field_validator("repeat_of_closed", mode="before")
    @classmethod
    def _repeat_of_closed(cls, value: object) -> object:
        if value not in REPEAT_OF_CLOSED_CHOICES:
            raise ValueError(
                "HOTLINE_REPEAT_OF_CLOSED must be 'new' (a new ticket recording the closed "
                f"one) or 'reopen' (the closed ticket is reopened), not {value!r}"
            )
        return value


class RouterSettings(CommonSettings):
    http_port: int = 8002
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # None means the shipped rules of the reference city.
    rules_file: Path | None = None
    # None means the reference city's responsibility lists; dispatch_lists off
    # dispatches by the rules alone (a city that has not written its lists yet).
    lists_file: Path | None = None
    dispatch_lists: bool = True
    # A model `hotline dispatch train` wrote; None: no model (a city without history).
    dispatch_model_file: Path | None = None
    # A model or plugin suggestion decides from this probability on.
    dispatch_min_probability: float = Field(default=0.6, gt=0, le=1)
    # The seed model (services/router/seed.py): learnt from labelled requests
    # (None: the reference city's) and the lists, asked where the lists' best
    # type leads the next by less than dispatch_seed_margin; it decides from
    # dispatch_seed_min_share. dispatch_seed off: the lists' close calls decide.
    dispatch_seed: bool = True
    dispatch_seed_file: Path | None = None
    dispatch_seed_margin: float = Field(default=7.0, ge=0)
    dispatch_seed_min_share: float = Field(default=0.2, gt=0, le=1)
    calendar_overrides_file: Path | None = None
    # Extension requests a department may make per dispatch, a refused one included.
    extension_requests_per_dispatch: int = Field(default=1, ge=1)
    # The time limit (a name of the rules' time_limits) a reopened ticket (重办)
    # gets from the reopening; None: the limit its rule gave it.
    reopen_time_limit: str | None = None


class NotifierSettings(MailRelaySettings):
    http_port: int = 8003
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    # Delivery retries: exponential from the base, capped, with jitter; after
    # delivery_max_attempts the delivery is recorded as dead.
    delivery_backoff_base_s: float = Field(default=2.0, gt=0)
    delivery_backoff_cap_s: float = Field(default=600.0, gt=0)
    delivery_max_attempts: int = Field(default=10, ge=1)
    # How often each replica scans the store for deliveries and timers due soon
    # (created by another replica, or left by one that died); what a replica
    # creates itself it runs on time without waiting for a scan.
    delivery_poll_s: float = Field(default=2.0, gt=0)
    claim_lease_s: float = Field(default=60.0, gt=0)
    # Signs every webhook body (HMAC-SHA256); set a real secret in production.
    webhook_secret: str = "dev-only-secret"
    sms_gateway_url: str | None = None
    timer_poll_s: float = Field(default=2.0, gt=0)
    # The unit supervision escalates to last: the hotline centre.
    hotline_centre: str = "city.platform"


class StatsSettings(CommonSettings):
    http_port: int = 8004


class WorkbenchSettings(CommonSettings):
    """The workbench calls the other services over HTTP with the signed-in
    user's key; it keeps nothing but sessions."""

    http_port: int = 8005
    intake_url: str = "http://127.0.0.1:8001"
    router_url: str = "http://127.0.0.1:8002"
    notifier_url: str = "http://127.0.0.1:8003"
    stats_url: str = "http://127.0.0.1:8004"
    # Where people's browsers reach the stats dashboard (linked, never copied).
    stats_public_url: str = "http://127.0.0.1:8004/"
    # The workbench's own web channel key (`hotline keys issue --channel web`),
    # used only for the citizen pages; empty submits without a key.
    web_channel_key: str = ""
    # Signs the CSRF tokens of pages without a session (sign-in, citizen pages);
    # one secret for every replica.
    workbench_secret: str = "dev-only-workbench-secret"
    session_idle_s: int = Field(default=8 * 3600, ge=60)
    # Send the cookie only over HTTPS (behind the centre's TLS proxy in production).
    cookie_secure: bool = False
    call_timeout_s: float = Field(default=10.0, gt=0)
    # Citizen submissions and lookups per client address and minute.
    citizen_rate_per_minute: float = Field(default=20.0, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # The same calendar as the router's, for the working time left.
    calendar_overrides_file: Path | None = None
