"""Settings from HOTLINE_* variables (shared/settings.py): local defaults, one port
per service, overrides from the environment, and refusal of bad values."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from shared.settings import (
    DATA_DIR,
    CommonSettings,
    IntakeSettings,
    NotifierSettings,
    RouterSettings,
    StatsSettings,
)

SERVICE_PORTS: list[tuple[type[CommonSettings], int]] = [
    (IntakeSettings, 8001),
    (RouterSettings, 8002),
    (NotifierSettings, 8003),
    (StatsSettings, 8004),
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The defaults under test, whatever the shell running the tests exports."""
    for name in list(os.environ):
        if name.upper().startswith("HOTLINE_"):
            monkeypatch.delenv(name)


def test_broker_and_store_default_to_this_machine() -> None:
    settings = CommonSettings()
    amqp, mongo = urlsplit(settings.amqp_url), urlsplit(settings.mongo_url)
    assert amqp.scheme == "amqp"
    assert amqp.hostname in LOCAL_HOSTS
    assert amqp.port == 5672
    assert mongo.scheme == "mongodb"
    assert mongo.hostname in LOCAL_HOSTS
    assert mongo.port == 27017


def test_common_defaults() -> None:
    settings = CommonSettings()
    assert settings.queue_type == "classic"
    assert settings.amqp_namespace == "hotline"
    assert settings.mongo_db_prefix == "hotline"
    assert settings.timezone == "Asia/Shanghai"
    assert settings.prefetch == 32
    assert settings.retry_delays == [1.0, 5.0, 30.0, 120.0, 600.0]


def test_default_retry_delays_grow() -> None:
    delays = CommonSettings().retry_delays
    assert delays, "at least one retry before dead-lettering"
    assert delays == sorted(delays)
    assert all(d > 0 for d in delays)


def test_default_data_files_are_the_shipped_reference_city() -> None:
    settings = CommonSettings()
    assert settings.directory_file == DATA_DIR / "departments.json"
    assert settings.districts_file == DATA_DIR / "districts.json"
    assert settings.directory_file.is_file()
    assert settings.districts_file.is_file()


@pytest.mark.parametrize(
    ("cls", "port"), SERVICE_PORTS, ids=[cls.__name__ for cls, _ in SERVICE_PORTS]
)
def test_each_service_has_its_own_port(cls: type[CommonSettings], port: int) -> None:
    settings = cls()
    assert getattr(settings, "http_port") == port  # noqa: B009 - not on the base class


def test_service_ports_are_distinct() -> None:
    ports = [getattr(cls(), "http_port") for cls, _ in SERVICE_PORTS]  # noqa: B009
    assert len(set(ports)) == len(ports)


def test_prefixed_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_AMQP_URL", "amqp://u:p@rabbit.example:5673/vh")
    monkeypatch.setenv("HOTLINE_MONGO_URL", "mongodb://mongo.example:27018/")
    monkeypatch.setenv("HOTLINE_AMQP_NAMESPACE", "staging")
    monkeypatch.setenv("HOTLINE_PREFETCH", "7")
    settings = RouterSettings()
    assert settings.amqp_url == "amqp://u:p@rabbit.example:5673/vh"
    assert settings.mongo_url == "mongodb://mongo.example:27018/"
    assert settings.amqp_namespace == "staging"
    assert settings.prefetch == 7


def test_port_of_a_service_is_overridable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_HTTP_PORT", "9100")
    assert StatsSettings().http_port == 9100
    assert IntakeSettings().http_port == 9100


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://elsewhere:5672/")
    monkeypatch.setenv("HTTP_PORT", "9999")
    assert CommonSettings().amqp_url != "amqp://elsewhere:5672/"
    assert IntakeSettings().http_port == 8001


def test_retry_delays_are_read_as_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_RETRY_DELAYS", "[0.5, 2, 10]")
    assert CommonSettings().retry_delays == [0.5, 2.0, 10.0]


def test_retry_delays_that_are_not_json_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_RETRY_DELAYS", "1, 5, 30")
    with pytest.raises(SettingsError):
        CommonSettings()


def test_retry_delays_with_a_non_number_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_RETRY_DELAYS", '[1, "soon"]')
    with pytest.raises(ValidationError):
        CommonSettings()


def test_notifier_backoff_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_DELIVERY_BACKOFF_BASE_S", "0.1")
    monkeypatch.setenv("HOTLINE_DELIVERY_BACKOFF_CAP_S", "2")
    settings = NotifierSettings()
    assert (settings.delivery_backoff_base_s, settings.delivery_backoff_cap_s) == (0.1, 2.0)


@pytest.mark.parametrize("value", ["classic", "quorum"])
def test_queue_type_accepts_classic_and_quorum(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HOTLINE_QUEUE_TYPE", value)
    assert CommonSettings().queue_type == value


@pytest.mark.parametrize("value", ["stream", "mirrored", "Quorum", ""])
def test_invalid_queue_type_is_refused_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HOTLINE_QUEUE_TYPE", value)
    with pytest.raises(ValidationError) as info:
        CommonSettings()
    assert "queue_type" in str(info.value)


def test_invalid_queue_type_is_refused_in_code() -> None:
    with pytest.raises(ValidationError):
        CommonSettings(queue_type="lazy")


@pytest.mark.parametrize("value", ["0", "1001", "many"])
def test_prefetch_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HOTLINE_PREFETCH", value)
    with pytest.raises(ValidationError):
        CommonSettings()


@pytest.mark.parametrize("value", ["lc", "TOOLONG", "L1", ""])
def test_ticket_prefix_must_be_capital_letters(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HOTLINE_TICKET_PREFIX", value)
    with pytest.raises(ValidationError):
        IntakeSettings()


def test_body_limit_below_one_kib_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_MAX_BODY_BYTES", "512")
    with pytest.raises(ValidationError):
        IntakeSettings()


def test_router_files_default_to_none_and_read_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RouterSettings().rules_file is None
    assert RouterSettings().calendar_overrides_file is None
    monkeypatch.setenv("HOTLINE_RULES_FILE", "/etc/hotline/rules.yaml")
    monkeypatch.setenv("HOTLINE_CALENDAR_OVERRIDES_FILE", "/etc/hotline/calendar.json")
    settings = RouterSettings()
    assert settings.rules_file == Path("/etc/hotline/rules.yaml")
    assert settings.calendar_overrides_file == Path("/etc/hotline/calendar.json")


def test_settings_of_another_service_are_ignored_not_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One environment (docker-compose .env) feeds every service.
    monkeypatch.setenv("HOTLINE_TICKET_PREFIX", "lowercase-is-invalid-for-intake")
    assert StatsSettings().http_port == 8004


def test_a_repeat_of_a_closed_ticket_opens_a_new_one_by_default() -> None:
    assert IntakeSettings().repeat_of_closed == "new"


def test_the_reopen_policy_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_REPEAT_OF_CLOSED", "reopen")
    assert IntakeSettings().repeat_of_closed == "reopen"


@pytest.mark.parametrize("value", ["Reopen", "yes", "", "close"])
def test_an_unknown_repeat_policy_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HOTLINE_REPEAT_OF_CLOSED", value)
    with pytest.raises(ValidationError, match="HOTLINE_REPEAT_OF_CLOSED must be 'new'"):
        IntakeSettings()
