"""The risk state, the kill switch and the admin API, end to end over real sessions."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal

from prometheus_client.parser import text_string_to_metric_families

from fixgate.core.messages import ExecType, OrdStatus
from fixgate.gateway import Gateway

from .conftest import wait_until

BUY, SELL = "1", "2"
TOKEN = "demo-admin-token"


def admin(stack, path, body=None, token=TOKEN, method=None):
    url = f"http://127.0.0.1:{stack.config.admin.port}{path}"
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = response.read()
            return response.status, payload if path == "/metrics" or path == "/" else json.loads(payload)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def cli(stack, *arguments):
    return subprocess.run([sys.executable, "-m", "fixgate", *arguments, "--url",
                           f"http://127.0.0.1:{stack.config.admin.port}", "--token", TOKEN],
                          capture_output=True, text=True, timeout=60)




def test_kill_switch_when_commanded_cancels_everything_logs_out_survives_restart_until_resumed(stack):
    client = stack.client()
    resting = [client.new_order("AAPL", BUY, "5", "189.00"), client.new_order("AAPL", SELL, "5", "191.00")]
    for cl_ord_id in resting:
        assert client.wait_report(cl_ord_id, exec_type=ExecType.NEW)
    assert len(stack.venue.engine.open_orders("FIXGATE")) == 2

    result = cli(stack, "kill", "--reason", "runaway strategy on desk 3")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["risk_state"] == "KILL_SWITCH"

    refused = client.new_order("AAPL", BUY, "1", "189.00")
    assert client.wait_report(refused, exec_type=ExecType.REJECTED).text == (
        "KILL_SWITCH: kill switch active: runaway strategy on desk 3")
    for cl_ord_id in resting:                                   # a cancel reached the venue for each
        assert client.wait_for(lambda: [report for report in client.reports
                                        if report.orig_cl_ord_id == cl_ord_id
                                        and getattr(report, "exec_type", None) == ExecType.CANCELED])
    assert stack.venue.engine.open_orders("FIXGATE") == []
    assert wait_until(lambda: not stack.gateway.venues_logged_on())
    time.sleep(1.5)                                             # and stay out: no reconnect
    assert not stack.gateway.venues_logged_on()
    assert client.logged_on                                     # clients stay connected
    audit = stack.gateway.audit.records()
    assert any(record.get("event") == "risk_state_changed" and record["to"] == "KILL_SWITCH"
               and record["actor"] == "admin" for record in audit)
    assert any(record.get("event") == "admin_command" and record["actor"] == "admin"
               and record["via"].startswith("cli:") for record in audit)

    # A restart comes back killed.
    stack.gateway.stop(cancel_open_orders=False, logout_timeout=0.2)
    stack.gateway = Gateway(stack.config, state_dir=stack.directory / "gateway", message_log=False)
    stack.gateway.start()
    assert stack.gateway.book.risk_state == 3
    assert client.wait_logged_on(15)
    again = client.new_order("AAPL", BUY, "1", "189.00")
    assert client.wait_report(again, exec_type=ExecType.REJECTED).text.startswith("KILL_SWITCH: kill switch active")

    result = cli(stack, "resume")                               # waits for the venues to be ready again
    assert result.returncode == 0, result.stderr
    resumed = json.loads(result.stdout)
    assert resumed["risk_state"] == "NORMAL" and resumed["ready"] and resumed["venue_states"] == {"simvenue": "ready"}
    trading = client.new_order("AAPL", BUY, "1", "189.00")
    assert client.wait_report(trading, exec_type=ExecType.NEW) is not None


def test_drawdown_when_prices_fall_goes_warning_then_breaker_and_only_reduces(make_stack):
    stack = make_stack(starting_equity=Decimal(10_000), max_leverage=None,
                       simulator_overrides={"levels": 5, "quote_qty_lots": 50})
    client = stack.client()
    bought = client.new_order("AAPL", BUY, "200", "190.05")
    assert client.wait_for(lambda: client.reports_for(bought) and client.reports_for(bought)[-1].ord_status
                           == OrdStatus.FILLED)
    resting = client.new_order("AAPL", SELL, "10", "195.00")
    assert client.wait_report(resting, exec_type=ExecType.NEW)
    stack.venue.apply_fault({"action": "shock", "symbol": "AAPL", "fraction": -0.015})
    assert wait_until(lambda: stack.gateway.book.risk_state == 1), stack.gateway.risk_agent.describe()
    too_big = client.new_order("AAPL", BUY, "1500", "187.00")
    assert client.wait_report(too_big, exec_type=ExecType.REJECTED).text.startswith(
        "WARNING_MAX_ORDER_QUANTITY: quantity 1500 exceeds max order qty 1000 in WARNING state")
    stack.venue.apply_fault({"action": "shock", "symbol": "AAPL", "fraction": -0.035})
    assert wait_until(lambda: stack.gateway.book.risk_state == 2), stack.gateway.risk_agent.describe()
    assert client.wait_for(lambda: [report for report in client.reports
                                    if report.orig_cl_ord_id == resting
                                    and getattr(report, "exec_type", None) == ExecType.CANCELED])
    increase = client.new_order("AAPL", BUY, "1", "181.00")
    assert client.wait_report(increase, exec_type=ExecType.REJECTED).text.startswith("CIRCUIT_BREAKER")
    bid = stack.venue.engine.top_of_book("AAPL")[0]
    reduce = client.new_order("AAPL", SELL, "10", format(bid, "f"))
    assert client.wait_report(reduce, exec_type=ExecType.TRADE) is not None
    status, result = admin(stack, "/reset-breaker", {})
    assert status == 409 and "cooldown" in result["error"]


def test_runaway_client_when_it_floods_is_throttled_then_killed_and_the_venue_sees_little(make_stack):
    import quickfix as fix

    from fixgate.core.messages import NewOrder
    from fixgate.fix import codec

    stack = make_stack(kill_order_rate=300.0, client_overrides={"max_order_rate": 50.0, "burst": 10})
    client = stack.client()
    # A runaway algorithm: one message re-sent with a new ClOrdID as fast as the binding allows.
    message = codec.write_new_order(NewOrder("R0", "AAPL", BUY, "2", "1", "189.00"), time.time_ns())
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < 3.0:
        sent += 1
        message.setField(codec.CL_ORD_ID, f"R{sent}")
        fix.Session.sendToTarget(message, client.session_id)
    elapsed = time.monotonic() - started
    assert wait_until(lambda: stack.gateway.book.risk_state == 3)
    time.sleep(0.5)
    # client1 may send 50 orders/s with a burst of 10: whatever the flood, the venue saw at most that.
    assert stack.venue.orders_received <= 10 + 50 * elapsed, (stack.venue.orders_received, sent)
    assert sent > stack.venue.orders_received * 2
    families = {family.name: family for family in
                text_string_to_metric_families(admin(stack, "/metrics")[1].decode())}
    breaches = {sample.labels["scope"]: sample.value for sample in families["fixgate_throttle_breaches"].samples
                if sample.name.endswith("_total")}
    assert breaches["session"] > 0
    transitions = {sample.labels["to"]: sample.value
                   for sample in families["fixgate_risk_state_transitions"].samples if sample.name.endswith("_total")}
    assert transitions["KILL_SWITCH"] == 1
    states = {sample.labels["fixgate_risk_state"]: sample.value for sample in families["fixgate_risk_state"].samples}
    assert states["KILL_SWITCH"] == 1 and states["NORMAL"] == 0
    reason = stack.gateway.risk_agent.machine.reason
    assert reason.startswith("order rate") or "circuit-breaker trips" in reason


def test_admin_api_when_token_missing_or_wrong_refuses_and_audits(stack):
    assert admin(stack, "/kill", {"reason": "x"}, token=None)[0] == 401
    assert admin(stack, "/kill", {"reason": "x"}, token="guess")[0] == 401
    assert stack.gateway.book.risk_state == 0
    unauthorized = [record for record in stack.gateway.audit.records() if record["event"] == "admin_unauthorized"]
    assert len(unauthorized) == 2 and unauthorized[0]["path"] == "/kill"


def test_admin_api_when_body_is_bad_answers_400_with_a_message(stack):
    status, document = admin(stack, "/kill", b"{not json")
    assert status == 400 and "JSON" in document["error"]
    status, document = admin(stack, "/kill", {"reason": "x", "force": "yes"})
    assert status == 400 and "unknown fields ['force']" in document["error"]
    status, document = admin(stack, "/kill", {"reason": 5})
    assert status == 400 and "reason must be a string" in document["error"]
    assert admin(stack, "/kill", method="GET")[0] == 405
    assert admin(stack, "/nowhere")[0] == 404
    assert stack.gateway.book.risk_state == 0


def test_admin_api_when_asked_reports_health_readiness_status_and_metrics(stack):
    status, health = admin(stack, "/health")
    assert status == 200 and health["status"] == "ok" and health["version"]
    assert health["config_sha256"] == stack.config.sha256 and health["uptime_s"] > 0
    assert "git_commit" in health
    status, ready = admin(stack, "/ready")
    assert status == 200 and ready["ready"] and ready["venues"] == {"simvenue": True}
    assert ready["venue_states"] == {"simvenue": "ready"} and ready["state_thread_alive"] and ready["watchdog"]["ok"]
    status, document = admin(stack, "/status")
    assert status == 200 and document["risk"]["risk_state"] == "NORMAL" and "positions" in document
    status, text = admin(stack, "/metrics")
    names = {family.name for family in text_string_to_metric_families(text.decode())}
    assert {"fixgate_orders_received", "fixgate_check_latency_seconds", "fixgate_risk_state",
            "fixgate_session_logged_on", "fixgate_build_info"} <= names
    stack.venue.apply_fault({"action": "drop"})
    assert wait_until(lambda: admin(stack, "/ready")[0] == 503)


def test_cancel_all_when_commanded_cancels_every_open_order(stack):
    client = stack.client()
    for _ in range(3):
        assert client.wait_report(client.new_order("AAPL", BUY, "1", "189.00"), exec_type=ExecType.NEW)
    result = cli(stack, "cancel-all")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cancels_sent"] == 3
    assert wait_until(lambda: stack.gateway.book.live_orders == 0)
    assert stack.gateway.book.risk_state == 0                  # cancel-all is not a kill


def test_cancel_all_when_the_session_is_unknown_is_refused_and_nothing_else_happens(stack):
    client = stack.client()
    resting = client.new_order("AAPL", BUY, "1", "189.00")
    assert client.wait_report(resting, exec_type=ExecType.NEW)
    result = cli(stack, "cancel-all", "--session", "nobody")
    assert result.returncode == 1
    assert "no client session named 'nobody'; sessions: client1" in result.stderr
    # Straight to the state thread as well: refused, not a failure of the state thread.
    from fixgate.core.safety import Command

    refused = stack.gateway.risk_agent.submit(Command("cancel-all", "test", session="nobody"))
    assert refused["ok"] is False and "no client session named 'nobody'" in refused["error"]
    time.sleep(0.2)
    assert stack.gateway.state_thread.alive and stack.gateway.book.risk_state == 0
    assert stack.gateway.book.live_orders == 1 and not stack.gateway.alarm_counts


def test_status_cli_when_gateway_down_says_it_cannot_reach_it():
    result = subprocess.run([sys.executable, "-m", "fixgate", "status", "--url", "http://127.0.0.1:9"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "cannot reach the admin API" in result.stderr


def test_state_thread_when_an_agent_fails_trips_the_kill_switch(stack, monkeypatch):
    def broken():
        raise RuntimeError("positions out of balance")

    monkeypatch.setattr(stack.gateway.marking, "do_work", broken)
    assert wait_until(lambda: stack.gateway.book.risk_state == 3)
    assert stack.gateway.risk_agent.machine.reason == (
        "fatal error: marking failed: RuntimeError: positions out of balance")


def test_run_when_the_risk_state_file_is_corrupt_refuses_to_start(tmp_path, config_for_ports):
    from fixgate import config as configuration

    state = tmp_path / "state"
    state.mkdir()
    (state / "risk_state.json").write_text("{half a file")
    config_path = tmp_path / "gateway.toml"
    config_path.write_text(configuration.to_toml(config_for_ports(), mask_secrets=False))
    result = subprocess.run([sys.executable, "-m", "fixgate", "run", "-c", str(config_path), "--state-dir", str(state)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "cannot start" in result.stderr and "unreadable risk state" in result.stderr


def test_status_cli_when_asked_prints_a_summary_json_or_a_watch_and_checks_the_build(stack):
    import fixgate

    client = stack.client()
    assert client.wait_report(client.new_order("AAPL", BUY, "1", "189.00"), exec_type=ExecType.NEW)
    client.new_order("NOPE", BUY, "1", "1.00")
    assert wait_until(lambda: sum(stack.gateway.status()["orders"]["rejected"].values()) == 1)
    result = cli(stack, "status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"fixgate {stack.config.gateway.name} {fixgate.__version__} (commit ")
    labels = [line.split()[0] for line in lines[1:]]
    assert labels == ["risk", "sessions", "today", "process", "rejects", "latency", "positions", "account", "alarms",
                      "journal"]
    assert "clients: client1 on" in result.stdout and "simvenue on (ready)" in result.stdout
    assert "1 open now" in result.stdout and "UNKNOWN_INSTRUMENT 1" in result.stdout
    assert "today      1 accepted, 1 rejected" in result.stdout
    assert all(len(line) <= 120 for line in lines[1:])

    document = json.loads(cli(stack, "status", "--json").stdout)
    assert document["risk"]["risk_state"] == "NORMAL" and document["time"].endswith("Z") and "T" in document["time"]

    watched = cli(stack, "status", "--watch", "0.1", "--count", "2")
    assert watched.returncode == 0 and watched.stdout.count("\nrisk ") + watched.stdout.startswith("risk") == 2

    good = cli(stack, "status", "--json", "--expect-version", fixgate.__version__, "--expect-config",
               stack.config.sha256)
    assert good.returncode == 0, good.stderr
    stale = cli(stack, "status", "--expect-version", "0.0.1")
    assert stale.returncode == 4
    assert f"runs version {fixgate.__version__} (expected 0.0.1)" in stale.stderr
    other = cli(stack, "status", "--expect-config", "0" * 64)
    assert other.returncode == 4 and f"configuration sha256 {stack.config.sha256}" in other.stderr


def test_admin_tokens_when_named_with_roles_name_the_actor_and_keep_read_only_tokens_from_commanding(
        tmp_path, config_for_ports):
    import dataclasses

    from fixgate.config import TokenSettings

    base = config_for_ports()
    config = dataclasses.replace(base, admin=dataclasses.replace(base.admin, read_requires_token=True, tokens=(
        TokenSettings("alice", "alice-operator-token", "operator"),
        TokenSettings("viewer", "viewer-read-only-token", "read-only"))))
    gateway = Gateway(config, state_dir=tmp_path / "gateway", message_log=False)
    gateway.start()
    stack = type("Stack", (), {"config": config})()
    try:
        assert admin(stack, "/status", token=None)[0] == 401                 # reads need a token here
        assert admin(stack, "/status", token="viewer-read-only-token")[0] == 200
        assert admin(stack, "/health", token=None)[0] in (200, 503)          # never gated
        status, document = admin(stack, "/kill", {"reason": "x"}, token="viewer-read-only-token")
        assert status == 403 and document["error"] == "the token 'viewer' is read-only: it may not command"
        assert gateway.book.risk_state == 0
        # The actor is the token's name, whatever the body says.
        status, _ = admin(stack, "/kill", {"reason": "drill", "actor": "mallory"}, token="alice-operator-token")
        assert status == 200 and gateway.book.risk_state == 3
        assert gateway.risk_agent.machine.actor == "alice"
        records = gateway.audit.records()
        assert any(record["event"] == "admin_forbidden" and record["actor"] == "viewer" for record in records)
        command = next(record for record in records if record["event"] == "admin_command")
        assert (command["actor"], command["via"], command["reason"]) == ("alice", "mallory", "drill")
        changed = next(record for record in records if record["event"] == "risk_state_changed")
        assert changed["actor"] == "alice"
    finally:
        gateway.stop(cancel_open_orders=False, logout_timeout=0.2)


def test_drain_when_commanded_refuses_new_orders_cancels_working_ones_and_logs_the_venues_out(stack):
    client = stack.client()
    resting = [client.new_order("AAPL", BUY, "2", "185.00"), client.new_order("AAPL", SELL, "2", "195.00")]
    for cl_ord_id in resting:
        assert client.wait_report(cl_ord_id, exec_type=ExecType.NEW)
    result = cli(stack, "drain", "--reason", "switching to the blue gateway")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("fixgate drain: closed to new orders (switching to the blue gateway); 2 orders working, "
                        "2 cancels sent")
    assert lines[-1].startswith("fixgate drain: drained at ") and "0 orders open" in lines[-1]
    for cl_ord_id in resting:
        assert client.wait_for(lambda: [report for report in client.reports if report.orig_cl_ord_id == cl_ord_id
                                        and getattr(report, "exec_type", None) == ExecType.CANCELED])
    assert stack.venue.engine.open_orders("FIXGATE") == []
    assert wait_until(lambda: not stack.gateway.venues_logged_on())
    refused = client.new_order("AAPL", BUY, "1", "185.00")
    report = client.wait_report(refused, exec_type=ExecType.REJECTED)
    assert report.text == "GATEWAY_CLOSED: gateway closed: switching to the blue gateway"
    assert stack.gateway.book.risk_state == 0 and client.logged_on          # not a kill; clients stay
    events = [record["event"] for record in stack.gateway.audit.records()]
    assert "drain_started" in events and "drain_finished" in events
    again = cli(stack, "drain")                                             # a second drain: already done
    assert again.returncode == 0 and "drained at" in again.stdout


def test_drain_when_asked_to_wait_lets_working_orders_work_then_cancels_what_is_left(stack):
    client = stack.client()
    resting = client.new_order("AAPL", BUY, "2", "185.00")
    assert client.wait_report(resting, exec_type=ExecType.NEW)
    started = time.monotonic()
    drain = subprocess.Popen([sys.executable, "-m", "fixgate", "drain", "--wait-orders", "--timeout", "1.5", "--url",
                              f"http://127.0.0.1:{stack.config.admin.port}", "--token", TOKEN],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_until(lambda: stack.gateway.risk_agent.drain is not None)
    client.replace(resting, "AAPL", BUY, "4", "185.00")                    # while draining: cancels only
    from fixgate.core.messages import CancelReject

    refused = client.wait_for(lambda: [report for report in client.reports if isinstance(report, CancelReject)])
    assert refused[0].text.startswith("GATEWAY_CLOSED: gateway closed: the gateway is draining")
    stdout, stderr = drain.communicate(timeout=60)
    assert drain.returncode == 0, stdout + stderr
    assert "left to work for up to 1.5 s, then cancelled" in stdout.splitlines()[0]
    assert client.wait_for(lambda: [report for report in client.reports if report.orig_cl_ord_id == resting
                                    and getattr(report, "exec_type", None) == ExecType.CANCELED])
    assert time.monotonic() - started >= 1.5
    assert stack.gateway.book.live_orders == 0
    status, document = admin(stack, "/drain", {"mode": "later"})
    assert status == 409 and document["error"] == "drain mode must be 'cancel' or 'wait', got 'later'"
