"""A real Prometheus (Debian's 2.42) scrapes the gateway and evaluates the alert rules on what it scraped."""

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from .conftest import free_port

RULES = Path(__file__).resolve().parents[2] / "deploy" / "alert-rules.yml"


def query(port, expression):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())["data"]["result"]


def api(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())["data"]


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.25)
    return None


@pytest.fixture
def prometheus(stack, tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("this test needs Prometheus: the test command installs Debian's prometheus package")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["{RULES}"]
scrape_configs:
  - job_name: fixgate
    static_configs:
      - targets: ["127.0.0.1:{stack.config.admin.port}"]
""")
    process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                               stderr=open(tmp_path / "prometheus.log", "w"))
    try:
        assert wait_for(lambda: query(port, 'up{job="fixgate"} == 1')), (tmp_path / "prometheus.log").read_text()[-2000:]
        yield port
    finally:
        process.terminate()
        process.wait(20)


def test_prometheus_when_scraping_the_gateway_reads_every_family_and_fires_the_kill_switch_alert_once(stack, prometheus):
    client = stack.client()
    client.new_order("AAPL", "1", "1", "189.00")
    targets = api(prometheus, "/api/v1/targets")["activeTargets"]
    assert len(targets) == 1 and targets[0]["health"] == "up" and targets[0]["lastError"] == ""
    assert wait_for(lambda: query(prometheus, "fixgate_orders_received_total == 1"))
    labels = {item["metric"]["le"] for item in query(prometheus, "fixgate_check_latency_seconds_bucket")}
    assert {"1e-07", "1e-06", "+Inf"} <= labels and not any("0000000" in label for label in labels)
    assert query(prometheus, "process_resident_memory_bytes") and query(prometheus, 'fixgate_orders_today{kind="accepted"}')
    assert query(prometheus, 'fixgate_risk_state{fixgate_risk_state="NORMAL"} == 1')
    rules = [rule for group in api(prometheus, "/api/v1/rules")["groups"] for rule in group["rules"]]
    assert all(rule["health"] == "ok" for rule in rules), [rule for rule in rules if rule["health"] != "ok"]

    request = urllib.request.Request(f"http://127.0.0.1:{stack.config.admin.port}/kill",
                                     data=json.dumps({"reason": "drill"}).encode(), method="POST",
                                     headers={"Authorization": "Bearer demo-admin-token"})
    urllib.request.urlopen(request, timeout=10).read()
    firing = wait_for(lambda: [alert for alert in api(prometheus, "/api/v1/alerts")["alerts"]
                               if alert["state"] == "firing"])
    assert "FixgateKillSwitchActive" in {alert["labels"]["alertname"] for alert in firing}
    # The kill logs the venue out on purpose: Prometheus sees it, and VenueDown does not even go pending.
    assert wait_for(lambda: query(prometheus, 'fixgate_session_logged_on{side="venue"} == 0'))
    time.sleep(3)
    states = {(alert["labels"]["alertname"], alert["state"]) for alert in api(prometheus, "/api/v1/alerts")["alerts"]}
    assert ("FixgateKillSwitchActive", "firing") in states
    assert not {name for name, _ in states} & {"FixgateVenueDown", "FixgateVenueNotReady", "FixgateStaleFeed"}, states
