"""Settings read from HOTLINE_* environment variables, with defaults for a local machine.

One class per service, all built on the common part, so that docker-compose, the
Makefile and the tests name the same variables.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(__file__).parent / "data" / "liaocheng"


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
    http_host: str = "0.0.0.0"
    log_level: str = "INFO"
    # Tests only: a file holding seconds to add to the clock (shared.clock).
    clock_offset_file: Path | None = None

    @field_validator("queue_type")
    @classmethod
    def _queue_type(cls, value: str) -> str:
        if value not in {"classic", "quorum"}:
            raise ValueError("queue_type must be 'classic' or 'quorum'")
        return value


class IntakeSettings(CommonSettings):
    http_port: int = 8001
    ticket_prefix: str = Field(default="LC", pattern=r"^[A-Z]{1,6}$")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    publish_timeout_s: float = Field(default=5.0, gt=0)


class RouterSettings(CommonSettings):
    http_port: int = 8002
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # None means the shipped rules of the reference city.
    rules_file: Path | None = None
    calendar_overrides_file: Path | None = None


class NotifierSettings(CommonSettings):
    http_port: int = 8003
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    # Delivery retries: exponential from the base, capped, with jitter; after
    # delivery_max_attempts the delivery is recorded as dead.
    delivery_backoff_base_s: float = Field(default=2.0, gt=0)
    delivery_backoff_cap_s: float = Field(default=600.0, gt=0)
    delivery_max_attempts: int = Field(default=10, ge=1)
    delivery_poll_s: float = Field(default=1.0, gt=0)
    claim_lease_s: float = Field(default=60.0, gt=0)
    # Signs every webhook body (HMAC-SHA256); set a real secret in production.
    webhook_secret: str = "dev-only-secret"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "12345@hotline.local"
    sms_gateway_url: str | None = None
    # How often to look for due timers (warnings, overdue, supervision).
    timer_poll_s: float = Field(default=0.5, gt=0)
    # The unit supervision escalates to last: the hotline centre.
    hotline_centre: str = "city.platform"


class StatsSettings(CommonSettings):
    http_port: int = 8004
