"""The four services running as processes on the real servers expose every
metric the alert rules and dashboards query, `promtool check metrics` finds
nothing to fault in their /metrics, and no label carries a ticket number or a
phone number. RabbitMQ's series are checked against the broker's own plugin,
scraped at the paths Prometheus uses: the services run on a RabbitMQ node of
the test's own with the plugin, so the check does not depend on how the shared
node was set up."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from services.demo import sample_requests, submission_of
from shared.directory import load_directory
from shared.settings import DATA_DIR, CommonSettings
from tests.compose_support import scrape_jobs
from tests.e2e.cluster import SERVICES, Cluster, Receiver, directory_pointing_at
from tests.monitoring_support import (
    SYNTHETIC,
    check_metrics,
    exposed_names,
    label_values,
    queried_names,
)
from tests.servers import own_broker
from tests.support import eventually, make_settings, purge_namespace, unique_namespace

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

TICKET_NUMBER = re.compile(r"[A-Z]{1,6}\d{8}\d{6}")
PHONE_NUMBER = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
SAMPLES = 3


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def metrics(
    servers: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, str]]:
    """/metrics of each service, and the broker's under the key "rabbitmq:<job>",
    after a few tickets went through (one cluster for the module: starting four
    processes is the slow part)."""
    tmp_path = tmp_path_factory.mktemp("metrics")
    settings = make_settings(unique_namespace())
    with own_broker(metrics=True) as broker:
        async for scraped in _cluster_metrics(settings, broker.url, tmp_path):
            yield {**scraped, **(await _rabbitmq_metrics(broker.metrics_url))}


async def _cluster_metrics(
    settings: CommonSettings, amqp_url: str, tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    receiver = Receiver()
    await receiver.start()
    cluster = Cluster(
        settings.amqp_namespace,
        directory_pointing_at(receiver, tmp_path / "d.json"),
        tmp_path,
        extra_env={"HOTLINE_AMQP_URL": amqp_url},
    )
    try:
        for service in SERVICES:
            await cluster.start(service)
        async with httpx.AsyncClient(timeout=10.0) as client:
            for n, sample in enumerate(sample_requests()[:SAMPLES]):
                body = {**submission_of(sample), "citizen": {"name": "王", "phone": "13800138000"}}
                response = await client.post(
                    f"{cluster.url('intake')}/v1/tickets",
                    json=body,
                    headers={"Idempotency-Key": f"metrics-{n}"},
                )
                assert response.status_code == 202, response.text

            async def scrape() -> dict[str, str]:
                return {s: (await client.get(f"{cluster.url(s)}/metrics")).text for s in SERVICES}

            async def departments_counted() -> bool:
                # The stats gauges refresh every 15 s: wait for one after the dispatches.
                return "hotline_department_today_tickets{" in (await scrape())["stats"]

            await eventually(departments_counted, timeout_s=60.0, interval_s=1.0)
            yield await scrape()
    finally:
        await cluster.stop_all()
        await receiver.stop()
        await purge_namespace(settings)


async def _rabbitmq_metrics(base_url: str) -> dict[str, str]:
    """The broker's metrics at each path Prometheus scrapes it at."""
    texts: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=10.0) as client:
        for name, job in scrape_jobs().items():
            if not name.startswith("rabbitmq"):
                continue
            response = await client.get(
                f"{base_url}{job['metrics_path']}", params=job.get("params", {})
            )
            assert response.status_code == 200, (name, response.status_code)
            texts[f"rabbitmq:{name}"] = response.text
    assert len(texts) >= 2
    return texts


def _services(metrics: dict[str, str]) -> dict[str, str]:
    return {name: text for name, text in metrics.items() if name in SERVICES}


async def test_every_queried_metric_is_exposed(metrics: dict[str, str]) -> None:
    assert any(name.startswith("rabbitmq:") for name in metrics), "no broker metrics scraped"
    exposed = set().union(*(exposed_names(text) for text in metrics.values()))
    missing = {
        name: sorted(where)
        for name, where in queried_names().items()
        if name not in exposed | SYNTHETIC
    }
    assert not missing, f"queried but exposed by nothing: {missing}"


async def test_service_metrics_pass_promtool(metrics: dict[str, str]) -> None:
    for service, text in _services(metrics).items():
        assert "hotline_http_requests_total{" in text, f"{service}: no request counted"
        result = check_metrics(text)
        assert result.returncode == 0, f"{service}: {result.stdout}{result.stderr}"
        assert not (result.stdout + result.stderr).strip(), f"{service}: {result.stderr}"


async def test_no_label_carries_a_ticket_or_phone_number(metrics: dict[str, str]) -> None:
    directory = load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")
    departments = 0
    for service, text in _services(metrics).items():
        for series, label, value in label_values(text):
            assert not TICKET_NUMBER.search(value), f"{service} {series}{{{label}={value!r}}}"
            assert not PHONE_NUMBER.search(value), f"{service} {series}{{{label}={value!r}}}"
            if label == "department":
                assert value in directory.departments or value == "unassigned", value
                departments += 1
    assert departments > 0, "no per-department series to check"
