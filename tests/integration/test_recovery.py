"""Crashes: kill -9 the gateway mid-flow, restart it, and the books still match the venue's.

The simulator and the gateway run as separate processes (`fixgate venue`, `fixgate run`); the client
trades through the gateway from this process.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from decimal import Decimal

import pytest

from fixgate import config as configuration
from fixgate.core.messages import CancelReject, ExecType
from fixgate.fix.client import FixClient

from .conftest import wait_until


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return None, None




class Processes:
    def __init__(self, tmp_path, config, control_port):
        self.tmp_path = tmp_path
        self.config = config
        self.control_port = control_port
        self.config_path = tmp_path / "config.toml"
        self.config_path.write_text(configuration.to_toml(config, mask_secrets=False))
        self.venue = self._spawn("venue", "--state-dir", str(tmp_path / "simulator"), "--control-port",
                                 str(control_port))
        self.gateway = None
        self.gateway_starts = 0

    def _spawn(self, *arguments):
        log = open(self.tmp_path / f"{arguments[0]}-{time.monotonic_ns()}.log", "w")
        return subprocess.Popen([sys.executable, "-m", "fixgate", *arguments, "-c", str(self.config_path),
                                 "--log-level", "INFO"], stdout=log, stderr=subprocess.STDOUT)

    def start_gateway(self):
        self.gateway = self._spawn("run", "--state-dir", str(self.tmp_path / "gateway"))
        self.gateway_starts += 1
        assert wait_until(lambda: get(self.admin("/ready"))[0] == 200, 30), "the gateway did not become ready"

    def kill_gateway(self):
        os.kill(self.gateway.pid, signal.SIGKILL)
        self.gateway.wait(10)

    def admin(self, path):
        return f"http://127.0.0.1:{self.config.admin.port}{path}"

    def ledger(self):
        return get(f"http://127.0.0.1:{self.control_port}/ledger/FIXGATE")[1]

    def stop(self):
        for process in (self.gateway, self.venue):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()


@pytest.mark.parametrize("seed", [11, 23, 37])
def test_gateway_when_killed_mid_flow_restarts_with_books_equal_to_the_venue(tmp_path, config_for_ports, free_ports,
                                                                         seed):
    config = config_for_ports(simulator_overrides={"quote_interval_ms": 150, "quote_qty_lots": 30})
    processes = Processes(tmp_path, config, free_ports())
    client = None
    try:
        processes.start_gateway()
        client = FixClient("CLIENT1", "FIXGATE", "127.0.0.1", config.acceptor.port, tmp_path / "client",
                           username="demo", password="demo")
        client.start()
        assert client.wait_logged_on(15)
        rng = random.Random(seed)
        orders = 700
        kills = sorted(rng.sample(range(100, orders - 100), 2))
        resting = []
        for index in range(orders):
            if kills and index == kills[0]:
                kills.pop(0)
                # Crash in the middle of a burst: orders, fills and acks are in flight.
                for _ in range(30):
                    client.new_order("AAPL", rng.choice(("1", "2")), "1", rng.choice(("190.10", "189.90")))
                time.sleep(rng.uniform(0.0, 0.02))
                processes.kill_gateway()
                processes.start_gateway()
                assert client.wait_logged_on(20), "the client did not log on again"
            assert wait_until(lambda: client.logged_on, 20)
            roll = rng.random()
            if roll < 0.15 and resting:
                cl_ord_id, symbol, side = resting.pop(rng.randrange(len(resting)))
                client.cancel(cl_ord_id, symbol, side)
            else:
                symbol = "AAPL"
                side = rng.choice(("1", "2"))
                cross = roll < 0.75
                price = ("190.10" if side == "1" else "189.90") if cross else ("189.50" if side == "1" else "190.50")
                cl_ord_id = client.new_order(symbol, side, str(rng.randint(1, 5)), price)
                if not cross:
                    resting.append((cl_ord_id, symbol, side))
            time.sleep(0.008)
        time.sleep(3)
        status_code, status = get(processes.admin("/status"))
        assert status_code == 200
        ledger = processes.ledger()
        # Positions, open orders: the gateway's books equal the venue's.
        gateway_positions = {row["symbol"]: Decimal(row["quantity"]) for row in status["positions"]["positions"]}
        venue_positions = {symbol: Decimal(quantity) for symbol, quantity in ledger["positions"].items()}
        assert {k: v for k, v in gateway_positions.items() if v} == {k: v for k, v in venue_positions.items() if v}
        assert status["open_orders"] == ledger["open_orders"]
        assert ledger["duplicate_cl_ord_ids"] == []                       # no venue ClOrdID twice
        assert status["illegal_transitions"] == 0
        assert status["journal"]["replay_illegal_transitions"] == 0
        # The client's reports: every fill once (by ExecID), adding up to the venue's position.
        fills = {}
        for report in client.reports:
            if not isinstance(report, CancelReject) and report.exec_type == ExecType.TRADE:
                fills[report.exec_id] = report
        client_positions = defaultdict(Decimal)
        for report in fills.values():
            client_positions[report.symbol] += Decimal(report.last_qty) * (1 if report.side == "1" else -1)
        assert {k: v for k, v in client_positions.items() if v} == {k: v for k, v in venue_positions.items() if v}
        assert processes.gateway_starts == 3
        assert status["journal"]["replayed"] > 0
    finally:
        if client is not None:
            client.stop(0.5)
        processes.stop()


def test_gateway_when_restarted_gracefully_resumes_open_orders_positions_and_ids(stack):
    from fixgate.gateway import Gateway

    client = stack.client()
    filled = client.new_order("AAPL", "1", "10", "190.01")
    assert client.wait_report(filled, exec_type=ExecType.TRADE)
    resting = client.new_order("AAPL", "1", "5", "189.00")
    assert client.wait_report(resting, exec_type=ExecType.NEW)
    unknown = client.new_order("NOPE", "1", "1", "1.00")
    assert client.wait_report(unknown, exec_type=ExecType.REJECTED)
    stack.settle()
    today = stack.gateway.status()["orders"]["today"]
    assert today["accepted"] == 2 and today["rejected"] == 1 and today["fills"] >= 1
    assert today["rejected_by_reason"] == {"UNKNOWN_INSTRUMENT": 1}
    stack.gateway.stop(cancel_open_orders=False, logout_timeout=0.2)
    stack.gateway = Gateway(stack.config, state_dir=stack.directory / "gateway", message_log=False)
    stack.gateway.start()
    assert stack.gateway.wait_for_venues(15) and client.wait_logged_on(15)
    # Today's figures come back from the journal; the process's own counters start again from zero.
    orders = stack.gateway.status()["orders"]
    assert orders["today"] == today and orders["accepted"] == 0 and orders["received"] == 0
    book = stack.gateway.book
    aapl = book.instruments.id_of("AAPL")
    assert stack.gateway.recovered.entries > 0 or stack.gateway.recovered.snapshot_seq > 0
    assert book.live_orders == 1 and book.exposure(aapl)["position_lots"] == 10
    assert book.exposure(aapl)["open_buy_lots"] == 5
    assert stack.gateway.positions.net_quantity("AAPL") == 10
    cancel = client.cancel(resting, "AAPL", "1")
    assert client.wait_report(cancel, exec_type=ExecType.CANCELED) is not None
    client.new_order("AAPL", "1", "1", "189.00", cl_ord_id=filled)
    assert client.wait_report(filled, exec_type=ExecType.REJECTED).text.startswith("DUPLICATE_CL_ORD_ID")
    fresh = client.new_order("AAPL", "1", "1", "189.00")
    report = client.wait_report(fresh, exec_type=ExecType.NEW)
    assert report.order_id.split("-")[-1] != "1" and int(report.order_id.split("-")[-1]) > 2   # ids go on


def test_run_when_the_journal_is_unreadable_refuses_to_trade(tmp_path, config_for_ports):
    state = tmp_path / "state"
    state.mkdir()
    (state / "journal.sqlite3").write_bytes(b"not a journal" * 500)
    config_path = tmp_path / "gateway.toml"
    config_path.write_text(configuration.to_toml(config_for_ports(), mask_secrets=False))
    result = subprocess.run([sys.executable, "-m", "fixgate", "run", "-c", str(config_path), "--state-dir",
                             str(state)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "cannot start" in result.stderr and "fixgate recover" in result.stderr


def test_venue_when_it_asks_for_a_resend_after_a_reconnect_gets_a_gap_fill_not_a_stale_order(stack):
    from fixgate.simulator.venue import VenueSimulator

    client = stack.client()
    resting = client.new_order("AAPL", "1", "5", "189.00")
    assert client.wait_report(resting, exec_type=ExecType.NEW)
    stack.venue.stop(0.2)
    # The venue comes back having lost what it received: it expects the gateway's messages from 1 again,
    # so its logon is followed by a ResendRequest for everything the gateway ever sent it.
    seqnums = next((stack.directory / "simulator" / "store").glob("*FIXGATE.seqnums"))
    sender, _, _ = seqnums.read_text().partition(" : ")
    seqnums.write_text(f"{sender} : {1:010d}")
    stack.venue = VenueSimulator(stack.config, stack.directory / "simulator", message_log=False)
    stack.venue.start()
    assert stack.gateway.wait_for_venues(15)
    time.sleep(1.0)                                   # the resend request and its answer
    assert stack.venue.orders_received == 0          # the order of before the disconnect was not sent again
