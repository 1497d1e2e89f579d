"""`fixgate demo` as a person runs it: it trades for a few seconds, prints its summary, exits 0."""

import subprocess
import sys

from fixgate import config as configuration


def test_demo_when_run_for_a_few_seconds_prints_summaries_and_exits_0(tmp_path, config_for_ports):
    config_path = tmp_path / "demo.toml"
    config_path.write_text(configuration.to_toml(config_for_ports(), mask_secrets=False))
    result = subprocess.run(
        [sys.executable, "-m", "fixgate", "demo", "-c", str(config_path), "--duration", "5",
         "--state-dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    summaries = [line for line in lines if "orders/s" in line]
    assert len(summaries) >= 4
    assert "risk NORMAL" in summaries[-1] and "latency p50" in summaries[-1]
    final = lines[-1]
    assert final.startswith("fixgate demo: ") and " accepted, " in final and " fills" in final
    accepted = int(final.split(" orders, ")[1].split(" accepted")[0])
    assert accepted > 20
    assert "rejected" in summaries[-1] and "(" in summaries[-1]     # some orders were refused, with reasons


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
