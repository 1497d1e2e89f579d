"""`fixgate demo` as a person runs it: it trades for a few seconds, prints its summary, exits 0."""

import subprocess
import sys

from fixgate import config as configuration


def test_demo_when_run_for_a_few_seconds_prints_summaries_cleans_up_and_exits_0(tmp_path, config_for_ports):
    import json

    config_path = tmp_path / "demo.toml"
    config = config_for_ports()
    config_path.write_text(configuration.to_toml(config, mask_secrets=False))
    result = subprocess.run(
        [sys.executable, "-m", "fixgate", "demo", "-c", str(config_path), "--duration", "5",
         "--state-dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"status page   http://127.0.0.1:{config.admin.port}/   (admin token: {config.admin.token})" in lines[1]
    assert any(line.startswith("  logs ") and "gateway.log   (the gateway's, JSON lines)" in line for line in lines)
    summaries = [line for line in lines if "orders/s" in line]
    assert len(summaries) >= 4
    assert "NORMAL" in summaries[-1] and "p50 " in summaries[-1] and "fill reports" in summaries[-1]
    books = [line for line in lines if "positions (P&L)" in line or "positions:" in line]
    assert len(books) == len(summaries) and all("total P&L" in line for line in books)
    assert all(len(line) <= 120 for line in summaries + books + lines[-4:]), [
        line for line in summaries + books + lines[-4:] if len(line) > 120]
    # The client stopped first, the gateway cancelled what was open, then the simulator stopped.
    totals = next(line for line in lines if " orders received, " in line)
    assert totals.endswith("; 0 orders open at the venue"), totals
    accepted = int(totals.split(" orders received, ")[1].split(" accepted")[0].replace(",", ""))
    assert accepted > 20
    reasons = next(line for line in lines if line.startswith("rejected by reason:"))
    assert reasons != "rejected by reason: none"          # the flow sends orders that must be refused
    assert lines[-1].startswith("fixgate demo: total P&L ") and " on starting equity " in lines[-1]
    # The gateway's log is JSON lines in the state directory, as documented.
    records = [json.loads(line) for line in (tmp_path / "demo" / "gateway.log").read_text().splitlines()]
    events = {record["event"] for record in records}
    assert {"gateway_started", "gateway_stopped"} <= events
    assert all({"timestamp", "level", "logger", "pid"} <= set(record) for record in records)


def test_demo_when_the_configuration_has_no_clients_says_so(tmp_path, config_for_ports):
    config_path = tmp_path / "demo.toml"
    text = configuration.to_toml(config_for_ports(), mask_secrets=False)
    config_path.write_text(text)
    without = configuration.load(config_path)
    import dataclasses

    config_path.write_text(configuration.to_toml(dataclasses.replace(without, clients=()), mask_secrets=False))
    result = subprocess.run([sys.executable, "-m", "fixgate", "demo", "-c", str(config_path), "--duration", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "has no [[clients]]" in result.stderr and "Traceback" not in result.stderr


def test_demo_when_a_port_is_taken_says_so_and_fails(tmp_path, config_for_ports):
    import socket

    config = config_for_ports()
    config_path = tmp_path / "demo.toml"
    config_path.write_text(configuration.to_toml(config, mask_secrets=False))
    with socket.socket() as squatter:
        squatter.bind(("", config.acceptor.port))
        squatter.listen()
        result = subprocess.run([sys.executable, "-m", "fixgate", "demo", "-c", str(config_path), "--duration", "2"],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"port in use: acceptor.port {config.acceptor.port}" in result.stderr


def test_run_when_sent_sigterm_stops_gracefully_and_exits_0(tmp_path, config_for_ports):
    import signal
    import time

    config_path = tmp_path / "gateway.toml"
    config_path.write_text(configuration.to_toml(config_for_ports(), mask_secrets=False))
    process = subprocess.Popen([sys.executable, "-m", "fixgate", "run", "-c", str(config_path), "--state-dir",
                                str(tmp_path / "state")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (tmp_path / "state" / "sessions").exists():
        time.sleep(0.1)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert '"event":"gateway_started"' in stderr and '"event":"gateway_stopped"' in stderr


def test_demo_when_external_client_prints_how_to_connect(tmp_path, config_for_ports):
    config = config_for_ports()
    config_path = tmp_path / "demo.toml"
    config_path.write_text(configuration.to_toml(config, mask_secrets=False))
    result = subprocess.run([sys.executable, "-m", "fixgate", "demo", "-c", str(config_path), "--duration", "2",
                             "--external-client", "--state-dir", str(tmp_path / "demo")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (f"connect a FIX 4.4 client: host 127.0.0.1 port {config.acceptor.port}, SenderCompID CLIENT1, "
            "TargetCompID FIXGATE, Username(553) demo, Password(554) demo") in result.stdout


def test_run_when_a_listening_port_is_taken_names_the_port_and_the_setting(tmp_path, config_for_ports):
    import socket

    config = config_for_ports()
    config_path = tmp_path / "gateway.toml"
    config_path.write_text(configuration.to_toml(config, mask_secrets=False))
    for setting, port in (("acceptor.port", config.acceptor.port), ("admin.port", config.admin.port)):
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1" if setting == "admin.port" else "", port))
            squatter.listen()
            result = subprocess.run([sys.executable, "-m", "fixgate", "run", "-c", str(config_path), "--state-dir",
                                     str(tmp_path / f"state-{setting}")], capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        assert f"fixgate run: cannot start: {setting} {port} (" in result.stderr
        assert f"is already in use: another program listens there (another fixgate?); stop it or change {setting}" \
            in result.stderr
        assert "Traceback" not in result.stderr


def test_run_when_the_journal_is_where_a_relative_state_dir_used_to_point_refuses_to_start(tmp_path,
                                                                                           config_for_ports):
    import dataclasses

    config = config_for_ports()
    config = dataclasses.replace(config, gateway=dataclasses.replace(config.gateway, state_dir="state"))
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "gateway.toml").write_text(configuration.to_toml(config, mask_secrets=False))
    (tmp_path / "work" / "state").mkdir(parents=True)
    (tmp_path / "work" / "state" / "journal.sqlite3").write_bytes(b"")
    result = subprocess.run([sys.executable, "-m", "fixgate", "run", "-c", "../etc/gateway.toml"],
                            cwd=tmp_path / "work", capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert f"{tmp_path / 'etc' / 'state'}, which has no journal, while {tmp_path / 'work' / 'state'}" in result.stderr
    assert not (tmp_path / "etc" / "state" / "journal.sqlite3").exists()
