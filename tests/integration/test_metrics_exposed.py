"""The four services running as processes on the real servers expose every
metric the alert rules and dashboards query, `promtool check metrics` finds
nothing to fault in their /metrics, and no label carries a ticket number or a
phone number. RabbitMQ's series are checked against the broker's own plugin,
scraped at the paths Prometheus uses: the services run on a RabbitMQ node of
the test's own with the plugin, so the check does not depend on how the shared
node was set up."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    dashboard_queries,
    dashboards,
    exposed_names,
    label_values,
    queried_names,
)
from tests.prometheus_support import OwnPrometheus, own_prometheus
from tests.servers import own_broker
from tests.support import eventually, make_settings, purge_namespace, unique_namespace

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

TICKET_NUMBER = re.compile(r"[A-Z]{1,6}\d{8}\d{6}")
PHONE_NUMBER = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
SAMPLES = 3


@dataclass
class Run:
    metrics: dict[str, str]  # /metrics of each service, the broker's as "rabbitmq:<job>"
    prometheus: OwnPrometheus  # scraping all of them every second, with the rules


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(servers: None, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """The four services and a broker with its plugin, scraped by a Prometheus of
    the test's own, after a few tickets went through (one run for the module:
    starting the processes is the slow part)."""
    tmp_path = tmp_path_factory.mktemp("metrics")
    settings = make_settings(unique_namespace())
    with own_broker(metrics=True) as broker:
        async with _cluster(settings, broker.url, tmp_path) as cluster:
            jobs = _scrape_jobs(cluster, broker.metrics_url)
            with own_prometheus(tmp_path, jobs) as prometheus:
                await _feed(cluster)
                scraped = await _scrape_when_counted(cluster)
                yield Run({**scraped, **(await _rabbitmq_metrics(broker.metrics_url))}, prometheus)


@pytest.fixture(scope="module")
def metrics(run: Run) -> dict[str, str]:
    return run.metrics


@asynccontextmanager
async def _cluster(
    settings: CommonSettings, amqp_url: str, tmp_path: Path
) -> AsyncIterator[Cluster]:
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
        yield cluster
    finally:
        await cluster.stop_all()
        await receiver.stop()
        await purge_namespace(settings)


async def _feed(cluster: Cluster) -> None:
    """A few tickets, one answered on the spot and one repeat (并单), so that
    every kind of receipt the dashboards count occurs."""
    bodies = [submission_of(sample) for sample in sample_requests()[:SAMPLES]]
    for body in bodies:
        body["citizen"] = {"name": "王", "phone": "13800138000"}
    on_spot = {**bodies[0], "text": "社保卡丢了去哪里补办？", "on_spot_answer": "到区政务大厅补办"}
    bodies.append({**on_spot, "citizen": {"name": "李", "phone": "13900139000"}})
    bodies.append(dict(bodies[1]))  # the same caller, the same text: linked
    async with httpx.AsyncClient(timeout=10.0) as client:
        for n, body in enumerate(bodies):
            response = await client.post(
                f"{cluster.url('intake')}/v1/tickets",
                json=body,
                headers={"Idempotency-Key": f"metrics-{n}"},
            )
            assert response.status_code == 202, response.text


async def _scrape_when_counted(cluster: Cluster) -> dict[str, str]:
    async with httpx.AsyncClient(timeout=10.0) as client:

        async def scrape() -> dict[str, str]:
            return {s: (await client.get(f"{cluster.url(s)}/metrics")).text for s in SERVICES}

        async def departments_counted() -> bool:
            # The stats gauges refresh every 15 s: wait for one after the dispatches.
            return "hotline_department_today_tickets{" in (await scrape())["stats"]

        await eventually(departments_counted, timeout_s=60.0, interval_s=1.0)
        return await scrape()


def _scrape_jobs(cluster: Cluster, broker_metrics_url: str) -> list[dict[str, Any]]:
    """The production scrape jobs (deploy/prometheus/prometheus.yml), pointed at
    this run's processes: the services by static target with their service
    label (production finds replicas by DNS), the broker's paths as they are."""
    hotline = {
        "job_name": "hotline",
        "honor_labels": True,
        "static_configs": [
            {"targets": [f"127.0.0.1:{cluster.ports[s]}"], "labels": {"service": s}}
            for s in SERVICES
        ],
    }
    broker = broker_metrics_url.removeprefix("http://")
    jobs = [hotline]
    for name, job in scrape_jobs().items():
        if name.startswith("rabbitmq"):
            jobs.append({**job, "static_configs": [{"targets": [broker]}]})
    return jobs


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


# Dashboard expressions that nothing in this short run feeds, and why. Every
# other expression must return data: a panel that stays empty after the traffic
# that should fill it is a broken query (a wrong label value, a metric renamed).
QUIET_IN_A_CLEAN_RUN = {
    "hotline_router_rules_reloads_total": "the rules file is not edited",
    "hotline_handler_errors_total": "no handler fails",
    'outcome="failed"': "no publish fails",
    'status=~"5.."': "no request fails",
    'outcome!="delivered"': "every notice arrives",
    'outcome!="ok"': "no department action is refused",
    "hotline_notifier_timer_lag_seconds_bucket": "no timer falls due in a minute",
    "hotline_notifier_timers_fired_total": "no timer falls due in a minute",
    'outcome=~"dead_lettered|retried|requeued"': "no message is retried",
    'queue=~".+\\\\.dlq"': "no message is dead-lettered",
}


def _grafana_to_promql(expr: str) -> str:
    """Grafana's variables as Grafana fills them for "All" over a short range."""
    return expr.replace("$__rate_interval", "20s").replace("$department", ".*")


async def test_every_dashboard_panel_has_data_after_traffic(run: Run) -> None:
    prometheus = run.prometheus
    # The slowest feeder: the stats gauges, refreshed every 15 s, through a scrape.
    await prometheus.wait_for('hotline_department_today_tickets{measure="dispatched"}')
    await prometheus.wait_for("rabbitmq_detailed_queue_consumers")
    await asyncio.sleep(5)  # a few more scrapes, so that rate() has two samples
    empty: dict[str, list[str]] = {}
    checked = 0
    for file, dashboard in dashboards().items():
        for expr in dashboard_queries(dashboard):
            if any(marker in expr for marker in QUIET_IN_A_CLEAN_RUN):
                continue
            checked += 1
            if not await prometheus.query(_grafana_to_promql(expr)):
                empty.setdefault(file, []).append(expr)
    assert not empty, f"panels without data after traffic that should feed them: {empty}"
    assert checked >= 25, checked
