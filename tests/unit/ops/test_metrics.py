"""Every metric the alert rules and the dashboard name is one the gateway exports."""

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from fixgate import config as configuration
from fixgate.gateway import Gateway
from fixgate.ops.metrics import METRICS

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
NAME = re.compile(r"\bfixgate_[a-z_]+")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    gateway = Gateway(configuration.load(), state_dir=tmp_path_factory.mktemp("gateway"), message_log=False,
                      admin=False)
    families = list(text_string_to_metric_families(gateway.metrics_text().decode()))
    gateway.engine.stop(0)
    # Every series' name, and each family's own: a labelled family with no series in the bundled
    # configuration (the firm's budgets, without a firm) is still declared.
    return ({sample.name for family in families for sample in family.samples}
            | {family.name for family in families})


def test_alert_rules_when_loaded_name_only_exported_metrics(exported):
    rules = yaml.safe_load((DEPLOY / "alert-rules.yml").read_text())["groups"][0]["rules"]
    alerts = {rule["alert"] for rule in rules}
    assert {"FixgateKillSwitchActive", "FixgateCircuitBreakerActive", "FixgateVenueDown", "FixgateStaleFeed",
            "FixgateRejectRateSpike", "FixgateDrawdownWarning"} <= alerts
    for rule in rules:
        for name in NAME.findall(rule["expr"]):
            assert name in exported, f"{rule['alert']} uses {name}"


def test_dashboard_when_loaded_names_only_exported_metrics(exported):
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    expressions += [annotation["expr"] for annotation in dashboard["annotations"]["list"]]
    used = {name for expression in expressions for name in NAME.findall(expression)}
    assert len(used) >= 15
    for name in used:
        assert name in exported, name


def test_catalogue_when_scraped_is_exported_in_full(exported):
    suffixes = {"counter": "_total", "histogram": "_count", "info": "_info", "gauge": "", "stateset": ""}
    for name, (kind, _) in METRICS.items():
        assert name + ("" if name.endswith("_total") else suffixes[kind]) in exported, name


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    gateway = Gateway(configuration.load(), state_dir=tmp_path_factory.mktemp("gateway"), message_log=False,
                      admin=False)
    text = gateway.metrics_text().decode()
    openmetrics, content_type = gateway.metrics_exposition("application/openmetrics-text; version=1.0.0,text/plain")
    gateway.engine.stop(0)
    return text, openmetrics.decode(), content_type


def test_histogram_bucket_labels_when_exported_are_the_decimal_bounds_without_float_noise(scraped):
    text, _, _ = scraped
    labels = re.findall(r'fixgate_check_latency_seconds_bucket\{le="([^"]+)"\}', text)
    assert labels[:3] == ["1e-07", "2e-07", "3e-07"] and labels[-1] == "+Inf"
    internal = re.findall(r'fixgate_internal_latency_seconds_bucket\{le="([^"]+)"\}', text)
    for label in labels[:-1] + internal[:-1]:
        mantissa = label.split("e")[0]
        assert len(mantissa.replace("0.", "").strip("0")) <= 3, labels + internal     # 7.5e-07, 0.00025


def test_exposition_when_scraped_carries_process_and_platform_collectors(scraped):
    text, _, _ = scraped
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "python_info",
                 "python_gc_objects_collected_total"):
        assert f"\n{name}" in text, name


def test_exposition_when_the_scraper_asks_for_openmetrics_gets_it(scraped):
    _, openmetrics, content_type = scraped
    assert content_type.startswith("application/openmetrics-text")
    assert openmetrics.rstrip().endswith("# EOF")
    assert "# TYPE fixgate_risk_state stateset" in openmetrics


def test_dashboard_when_loaded_filters_by_instance_and_maps_the_risk_state_and_sessions():
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["instance"]["query"]["query"] == "label_values(fixgate_build_info, instance)"
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for selector in re.findall(r"\b(?:fixgate|process)_[a-z_]+\{([^}]*)\}", target["expr"]):
                assert 'instance=~"$instance"' in selector, (panel["title"], target["expr"])
    panels = {panel["title"]: panel for panel in dashboard["panels"]}
    risk = panels["Risk state"]["fieldConfig"]["defaults"]
    texts = {key: value["text"] for key, value in risk["mappings"][0]["options"].items()}
    assert texts == {"0": "NORMAL", "1": "WARNING", "2": "CIRCUIT_BREAKER", "3": "KILL_SWITCH"}
    assert [step["value"] for step in risk["thresholds"]["steps"]] == [None, 1, 2, 3]
    sessions = panels["Sessions"]["fieldConfig"]["defaults"]
    assert sessions["mappings"][0]["options"]["0"]["text"] == "DOWN"
    assert sessions["thresholds"]["steps"][0]["color"] == "red"
    pnl = panels["P&L"]
    assert any("fixgate_pnl_realized" in target["expr"] and "fixgate_pnl_unrealized" in target["expr"]
               for target in pnl["targets"]) and pnl["fieldConfig"]["defaults"]["unit"] == "currencyUSD"


def test_trace_sampling_when_a_ratio_is_given_takes_that_share_of_consecutive_ids():
    from fixgate.ops.tracing import sampled

    for ratio in (0.01, 0.1, 0.5, 0.7):
        share = sum(sampled(order_id, int(ratio * 2**64)) for order_id in range(1, 100_001)) / 100_000
        assert abs(share - ratio) < 0.01, (ratio, share)
    assert all(sampled(order_id, 2**64) for order_id in range(1, 1000))
