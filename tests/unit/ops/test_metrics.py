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
    return {sample.name for family in families for sample in family.samples}


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
