"""The alert rules, tested by Prometheus's own `promtool test rules`: every alert fires on the series
that should fire it, with the summary an operator reads, and holds back when it should (an intentional
kill pages once)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
RULES = DEPLOY / "alert-rules.yml"
GW = {"instance": "gw1:9822", "job": "fixgate"}


def labels(**extra):
    return ", ".join(f'{key}="{value}"' for key, value in {**GW, **extra}.items())


def series(name, values, **extra):
    return {"series": f"{name}{{{labels(**extra)}}}", "values": values}


def killed(values="0x20"):
    return series("fixgate_risk_state", values, fixgate_risk_state="KILL_SWITCH")


def draining(values="0x20"):
    return series("fixgate_draining", values)


# (alert, input series, eval time, expected: list of (labels beyond instance/job, summary) or [] for none)
CASES = [
    ("FixgateDown", [series("up", "1 1 0x10")], "1m30s",
     [({"severity": "page"}, "fixgate gw1:9822: not answering its metrics scrape for 30 s")]),
    ("FixgateDown", [series("up", "1 1 0x10")], "45s", []),
    ("FixgateKillSwitchActive", [killed("0 1x10")], "1m",
     [({"severity": "page", "fixgate_risk_state": "KILL_SWITCH"},
       "fixgate gw1:9822: kill switch active, every order is rejected")]),
    ("FixgateCircuitBreakerActive", [series("fixgate_risk_state", "1x5", fixgate_risk_state="CIRCUIT_BREAKER")],
     "30s", [({"severity": "page", "fixgate_risk_state": "CIRCUIT_BREAKER"},
              "fixgate gw1:9822: circuit breaker active, only position-reducing orders")]),
    ("FixgateVenueDown", [series("fixgate_session_logged_on", "0x10", session="simvenue", side="venue"), killed()],
     "1m", [({"severity": "page", "session": "simvenue", "side": "venue"},
             "fixgate gw1:9822: venue simvenue not logged on for 30 s")]),
    ("FixgateVenueDown", [series("fixgate_session_logged_on", "0x10", session="simvenue", side="venue"),
                          killed("1x10")], "1m", []),                           # killed on purpose: no page
    ("FixgateVenueDown", [series("fixgate_session_logged_on", "0x10", session="simvenue", side="venue"),
                          killed(), draining("1x10")], "1m", []),                # drained on purpose: no page
    ("FixgateVenueDown", [series("fixgate_session_logged_on", "0 0 1x10", session="simvenue", side="venue"),
                          killed()], "1m", []),                                 # back within 30 s
    ("FixgateVenueNotReady", [series("fixgate_session_logged_on", "1x10", session="simvenue", side="venue"),
                              series("fixgate_venue_ready", "0x10", venue="simvenue"), killed()], "1m",
     [({"severity": "page", "session": "simvenue", "side": "venue"},
       "fixgate gw1:9822: venue simvenue logged on but not reconciled")]),
    ("FixgateVenueNotReady", [series("fixgate_session_logged_on", "1x10", session="simvenue", side="venue"),
                              series("fixgate_venue_ready", "1x10", venue="simvenue"), killed()], "1m", []),
    ("FixgateVenueNotReady", [series("fixgate_session_logged_on", "1x10", session="simvenue", side="venue"),
                              series("fixgate_venue_ready", "0x10", venue="simvenue"), killed("1x10")], "1m", []),
    ("FixgateStaleFeed", [series("fixgate_quote_stale", "1x10", symbol="AAPL"), killed()], "30s",
     [({"severity": "warning", "symbol": "AAPL"}, "fixgate gw1:9822: no valid quote for AAPL for 10 s")]),
    ("FixgateStaleFeed", [series("fixgate_quote_stale", "1x10", symbol="AAPL"), killed("1x10")], "30s", []),
    ("FixgateRejectRateSpike", [series("fixgate_orders_rejected_total", "0+90x20", reason="PRICE_COLLAR"),
                                series("fixgate_orders_received_total", "0+100x20")], "3m",
     [({"severity": "warning"}, "fixgate gw1:9822: more than half the orders rejected for a minute")]),
    ("FixgateRejectRateSpike", [series("fixgate_orders_rejected_total", "0+90x20", reason="GATEWAY_CLOSED"),
                                series("fixgate_orders_received_total", "0+100x20"), draining("1x20")], "3m", []),
    ("FixgateRejectRateSpike", [series("fixgate_orders_rejected_total", "0+10x20", reason="PRICE_COLLAR"),
                                series("fixgate_orders_received_total", "0+100x20")], "3m", []),
    ("FixgateDrawdownWarning", [series("fixgate_drawdown_ratio", "0.06x10")], "1m",
     [({"severity": "warning"}, "fixgate gw1:9822: drawdown 6% of the day's peak")]),
    ("FixgateDrawdownWarning", [series("fixgate_drawdown_ratio", "0.04x10")], "1m", []),
    ("FixgateThrottleBreaches", [series("fixgate_throttle_breaches_total", "0+50x10", scope="session")], "1m",
     [({"severity": "warning", "scope": "session"},
       "fixgate gw1:9822: rate limits hit 200 times in a minute (session)")]),
    ("FixgateAlarm", [series("fixgate_alarms_total", "0 0 1x20", alarm="overfill")], "1m",
     [({"severity": "page", "alarm": "overfill"}, "fixgate gw1:9822: alarm overfill raised")]),
    ("FixgateAlarm", [series("fixgate_alarms_total", "0x40", alarm="overfill")], "5m", []),
    ("FixgateEngineStalled", [series("fixgate_engine_stalled", "0 1x10")], "1m",
     [({"severity": "page"}, "fixgate gw1:9822: a thread of the gateway has stopped making progress")]),
    ("FixgateSlowConsumer", [series("fixgate_slow_consumers_total", "0 0 1x20", session="client1", side="client")],
     "1m", [({"severity": "warning", "session": "client1", "side": "client"},
             "fixgate gw1:9822: client client1 disconnected as a slow consumer")]),
]


def rules() -> dict:
    return {rule["alert"]: rule for rule in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]}


def promtool_tests(directory: Path) -> Path:
    """Write the cases as a promtool test file; the runbook text is the rule's own (static text)."""
    by_name = rules()
    tests = []
    for alert, inputs, eval_time, expected in CASES:
        runbook = " ".join(by_name[alert]["annotations"]["runbook"].split())
        exp_alerts = [{"exp_labels": {**GW, **extra},
                       "exp_annotations": {"summary": summary, "runbook": runbook}} for extra, summary in expected]
        tests.append({"interval": "15s", "input_series": inputs,
                      "alert_rule_test": [{"eval_time": eval_time, "alertname": alert, "exp_alerts": exp_alerts}]})
    path = directory / "alert-tests.yml"
    path.write_text(yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "15s", "tests": tests},
                                   sort_keys=False))
    return path


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: the test command installs Debian's prometheus package, which has it")
    return found


def test_alert_rules_when_checked_by_promtool_are_valid():
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_every_alert_when_tested_by_promtool_fires_as_it_should_and_holds_back_as_it_should(tmp_path):
    assert {alert for alert, _, _, expected in CASES if expected} == set(rules())      # each fires in a case
    result = subprocess.run([promtool(), "test", "rules", str(promtool_tests(tmp_path))], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_when_read_has_a_summary_a_runbook_and_a_severity():
    for name, rule in rules().items():
        assert rule["labels"]["severity"] in ("page", "warning"), name
        assert "{{ $labels.instance }}" in rule["annotations"]["summary"], name
        assert len(rule["annotations"]["runbook"].split()) >= 15, name


def test_the_kill_switch_when_on_holds_back_the_alerts_it_causes():
    for name in ("FixgateVenueDown", "FixgateVenueNotReady", "FixgateStaleFeed"):
        assert 'unless on (instance) fixgate_risk_state{fixgate_risk_state="KILL_SWITCH"} == 1' in rules()[name]["expr"]
        assert "unless on (instance) fixgate_draining == 1" in rules()[name]["expr"]
        assert any(alert == name and not expected and "1x" in inputs[-1]["values"]
                   for alert, inputs, _, expected in CASES), name


def test_dashboard_expressions_when_parsed_by_promtool_are_valid_promql(tmp_path):
    import json

    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    expressions += [annotation["expr"] for annotation in dashboard["annotations"]["list"]]
    recording = [{"record": f"dashboard:expression_{index}", "expr": expression.replace("$instance", ".*")}
                 for index, expression in enumerate(expressions)]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recording}]}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
