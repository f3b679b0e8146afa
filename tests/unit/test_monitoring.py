"""The Prometheus config, alert rules and Grafana dashboards: promtool accepts
them, each alert is unit-tested firing and quiet, the dashboards are valid,
generated from tools/grafana, and query only metrics the code defines."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest

import services.notifier.metrics
import services.router.metrics
import services.router.reload
import services.stats.gauges
import shared.metrics
from services.stats.rates import measures
from tests.compose_support import PROMETHEUS_FILE, ROOT
from tests.monitoring_support import (
    ALERTS_FILE,
    ALERTS_TEST_FILE,
    alert_rules,
    check_metrics,
    dashboard_queries,
    dashboards,
    exposed_names,
    metric_names,
    promtool,
    queried_names,
    with_grafana_values,
)
from tools.grafana import DASHBOARDS, path_of, render

METRIC_MODULES = (
    shared.metrics,
    services.router.metrics,
    services.router.reload,
    services.notifier.metrics,
    services.stats.gauges,
)
# What the issue asks alerts for, each with the rule that covers it.
REQUIRED_ALERTS = {
    "a service down": "HotlineServiceDown",
    "dead letters piling up": "HotlineDeadLettersPilingUp",
    "consumer lag growing": "HotlineConsumerLagGrowing",
    "timer lag": "HotlineTimerLag",
    "overdue tickets rising": "HotlineOverdueRising",
    "intake refusing requests": "HotlineIntakeRefusing",
    "notices failing": "HotlineDeliveriesFailing",
    "notices given up": "HotlineDeliveriesDead",
    "delivery backlog growing": "HotlineDeliveryBacklogGrowing",
    "broker memory, disk or file-descriptor alarm": "RabbitMQResourceAlarm",
    "any consumed queue without consumers": "HotlineQueueWithoutConsumer",
    "dead letters while their service is down": "HotlineDeadLettersUnwatched",
    "invalid dispatch rules": "HotlineRulesInvalid",
    "failed publishes": "HotlinePublishFailing",
}
DATASOURCE_FILE = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"


def _ok(result: Any) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return str(result.stdout)


def test_prometheus_config_passes_promtool() -> None:
    out = _ok(promtool("check", "config", PROMETHEUS_FILE))
    assert "SUCCESS: 1 rule files found" in out


def test_alert_rules_pass_promtool() -> None:
    out = _ok(promtool("check", "rules", ALERTS_FILE))
    assert f"SUCCESS: {len(alert_rules())} rules found" in out


def test_alert_rule_unit_tests_pass() -> None:
    assert "SUCCESS" in _ok(promtool("test", "rules", ALERTS_TEST_FILE))


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load(ALERTS_TEST_FILE.read_text(encoding="utf-8"))["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    firing = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    alerts = {rule["alert"] for rule in alert_rules() if "alert" in rule}
    assert alerts - firing == set(), "never shown firing"
    # An absent() alert has no quiet case of its own: RabbitMQDown is quiet while up.
    assert alerts - quiet == set(), "never shown quiet"


@pytest.mark.parametrize(("need", "alert"), sorted(REQUIRED_ALERTS.items()))
def test_required_alert_exists_with_severity_and_summary(need: str, alert: str) -> None:
    rules = {rule.get("alert"): rule for rule in alert_rules()}
    assert alert in rules, f"no alert for {need}"
    assert rules[alert]["labels"]["severity"] in {"warning", "critical"}
    assert rules[alert]["annotations"]["summary"]


def test_dashboards_are_the_ones_the_code_builds() -> None:
    assert {path.name for path in path_of("x").parent.glob("*.json")} == {
        path_of(name).name for name in DASHBOARDS
    }
    for name in DASHBOARDS:
        assert path_of(name).read_text(encoding="utf-8") == render(name), (
            f"{path_of(name).name} is stale: run python -m tools.grafana"
        )


def test_dashboards_are_valid_and_use_the_provisioned_datasource() -> None:
    (datasource,) = yaml.safe_load(DATASOURCE_FILE.read_text(encoding="utf-8"))["datasources"]
    found = dashboards()
    assert len({d["uid"] for d in found.values()}) == len(found) == 4
    for file, dashboard in found.items():
        assert dashboard["title"] and dashboard["panels"], file
        cells: set[tuple[int, int]] = set()
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == datasource["uid"], (file, panel["title"])
            refs = [t["refId"] for t in panel["targets"]]
            assert len(set(refs)) == len(refs) > 0, (file, panel["title"])
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, (file, panel["title"])
            columns = range(pos["x"], pos["x"] + pos["w"])
            mine = {(x, y) for x in columns for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & mine, f"{file}: {panel['title']} overlaps another panel"
            cells |= mine


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query, written as a recording rule."""
    exprs = [with_grafana_values(e) for d in dashboards().values() for e in dashboard_queries(d)]
    rules = [{"record": f"dashboard:query:{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": rules}]}), encoding="utf-8")
    assert f"SUCCESS: {len(rules)} rules found" in _ok(promtool("check", "rules", path))


def test_metric_names_are_read_out_of_promql() -> None:
    expr = (
        'sum by (service, le) (rate(a_seconds_bucket{queue=~"x.+"}[5m])) / on (service) '
        "b:rec:max offset 1h > bool 0 unless c_total"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b:rec:max", "c_total"}


def _code_metrics() -> str:
    assert all(module.__name__ for module in METRIC_MODULES)  # imported: registered
    return generate_latest(REGISTRY).decode()


def test_every_queried_hotline_metric_is_defined_in_code() -> None:
    defined = exposed_names(_code_metrics())
    missing = {
        name: sorted(where)
        for name, where in queried_names().items()
        if name.startswith("hotline_") and name not in defined
    }
    assert not missing


def test_code_metrics_pass_promtool_check_metrics() -> None:
    result = check_metrics(_code_metrics())
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_business_label_values_are_measures_the_stats_service_sets() -> None:
    empty = measures({})
    values = {
        "measure": set(empty["counts"]) | set(services.stats.gauges.DEPARTMENT_MEASURES),
        "rate": set(empty["rates"]) | set(services.stats.gauges.DEPARTMENT_RATES),
    }
    used = 0
    for dashboard in dashboards().values():
        for expr in dashboard_queries(dashboard):
            for label, pattern in re.findall(r'\b(measure|rate)=~?"([^"]+)"', expr):
                for value in pattern.split("|"):
                    assert value in values[label], f"{label}={value!r} is never set"
                    used += 1
    assert used >= 5
