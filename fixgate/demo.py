"""The demo: the venue simulator, the gateway and a client trading a realistic flow through it.

The simulator and the client run as child processes (each has its own interpreter, as they would in
production); the gateway runs in this process, which prints a one-line summary every second.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from fixgate import config as configuration
from fixgate.config import Config

RISK_STATES = {0: "NORMAL", 1: "WARNING", 2: "CIRCUIT_BREAKER", 3: "KILL_SWITCH"}


def port_free(port: int) -> bool:
    """Return True when nothing listens on `port` (QuickFIX listens on every interface)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return False
    return True


def write_config(config: Config, directory: Path) -> Path:
    """Write `config` (secrets included) as TOML for the child processes; return the path."""
    path = directory / "demo.toml"
    path.write_text(configuration.to_toml(config, mask_secrets=False))
    return path


# -- THE CLIENT FLOW (child process) ---------------------------------------------------------------

def run_client_flow(config: Config, state_dir: Path, duration: float, rate: float, seed: int) -> int:
    """Trade through the gateway for `duration` seconds at about `rate` orders per second.

    Mostly limit orders near the last traded price (some cross and fill, some rest and are later
    cancelled or replaced), and now and then an order the gateway must refuse: too large, outside the
    collar, off the tick, an unknown symbol, and once a burst that trips the rate limit.
    """
    from fixgate.core.messages import CancelReject
    from fixgate.fix.client import FixClient

    client_settings = config.clients[0]
    client = FixClient(client_settings.comp_id, config.gateway.comp_id, config.acceptor.host, config.acceptor.port,
                       state_dir, username=client_settings.username, password=client_settings.password)
    client.start()
    if not client.wait_logged_on(15):
        print("demo client: could not log on to the gateway", file=sys.stderr)
        client.stop()
        return 1
    rng = random.Random(seed)
    instruments = {instrument.symbol: instrument for instrument in config.instruments}
    last_price = {symbol: instrument.reference_price for symbol, instrument in instruments.items()}
    resting: list[tuple[str, str, str, str]] = []       # cl_ord_id, symbol, side, qty
    seen_reports = 0
    interval = 1.0 / rate
    deadline = time.monotonic() + duration
    burst_at = time.monotonic() + min(5.0, duration / 2)
    sent = 0
    while time.monotonic() < deadline:
        for report in client.reports[seen_reports:]:
            if not isinstance(report, CancelReject) and report.last_px:
                last_price[report.symbol] = type(last_price[report.symbol])(report.last_px)
        seen_reports = len(client.reports)
        if burst_at is not None and time.monotonic() >= burst_at:
            burst_at = None
            burst_symbol = rng.choice(list(instruments))
            for _ in range(client_settings.burst + 10):
                client.new_order(burst_symbol, "1", format(instruments[burst_symbol].lot_size, "f"), None)
            continue
        symbol = rng.choice(list(instruments))
        instrument = instruments[symbol]
        tick, lot = instrument.tick_size, instrument.lot_size
        side = rng.choice(("1", "2"))
        offset = rng.randint(-4, 3) * (1 if side == "1" else -1)
        price = (last_price[symbol] / tick).to_integral_value() * tick + offset * tick
        qty = lot * rng.randint(1, 10)
        roll = rng.random()
        if roll < 0.03 and instrument.max_order_qty:
            qty = instrument.max_order_qty * 3                         # too large
        elif roll < 0.06:
            price = ((price * (1 + Decimal(str(instrument.price_collar or 0.05)) * 3)) / tick
                     ).to_integral_value() * tick                       # outside the collar
        elif roll < 0.08:
            price = price + tick / 3                                    # off the tick
        elif roll < 0.10:
            symbol = "NOPE-USD"                                         # unknown symbol
        elif roll < 0.25 and resting:
            cl_ord_id, resting_symbol, resting_side, resting_qty = resting.pop(rng.randrange(len(resting)))
            if rng.random() < 0.5:
                client.cancel(cl_ord_id, resting_symbol, resting_side)
            else:
                resting_instrument = instruments[resting_symbol]
                new_price = ((last_price[resting_symbol] / resting_instrument.tick_size).to_integral_value()
                             * resting_instrument.tick_size)
                client.replace(cl_ord_id, resting_symbol, resting_side, resting_qty, format(new_price, "f"))
            time.sleep(interval)
            continue
        cl_ord_id = client.new_order(symbol, side, format(qty, "f"), format(price, "f"))
        if abs(offset) >= 2 and symbol in instruments:
            resting.append((cl_ord_id, symbol, side, format(qty, "f")))
            del resting[:-30]
        sent += 1
        time.sleep(interval)
    client.stop()
    return 0


# -- THE DEMO (this process) ------------------------------------------------------------------------

def _summary(status: dict, previous_received: int, elapsed: float, symbols: list[str]) -> str:
    orders = status["orders"]
    rejected = orders["rejected"]
    reasons = ", ".join(f"{name} {count}" for name, count in sorted(rejected.items(), key=lambda item: -item[1]))
    positions = {row["symbol"]: row for row in status["positions"]["positions"]}
    books = []
    for symbol in symbols:
        row = positions.get(symbol)
        if row is not None:
            pnl = float(row["realized_pnl"]) + float(row["unrealized_pnl"])
            books.append(f"{symbol} {row['quantity']} pnl {pnl:+.2f}")
    latency = status["latency_ns"]
    p50 = f"{latency['p50'] / 1000:.0f}µs" if latency["p50"] is not None else "-"
    p99 = f"{latency['p99'] / 1000:.0f}µs" if latency["p99"] is not None else "-"
    return (f"t={elapsed:4.0f}s  {orders['received'] - previous_received:3d} orders/s  "
            f"accepted {orders['accepted']}  rejected {sum(rejected.values())}"
            f"{' (' + reasons + ')' if reasons else ''}  fills {orders['fills']}  open {orders['open']}  |  "
            f"{'  '.join(books) or 'flat'}  |  latency p50 {p50} p99 {p99}  |  risk "
            f"{RISK_STATES.get(status['risk_state'], status['risk_state'])}")


def run_demo(config: Config, *, duration: float | None, external_client: bool, rate: float, seed: int,
             state_dir: Path | None) -> int:
    """Start the simulator (child), the gateway (here) and the client flow (child); print a summary
    each second until `duration` passes or Ctrl-C."""
    from fixgate.gateway import Gateway
    from fixgate.ops import logging as logs

    ports = {"acceptor.port": config.acceptor.port, "simulator.port": config.simulator.port}
    busy = [f"{name} {port}" for name, port in ports.items() if not port_free(port)]
    if busy:
        print(f"fixgate demo: port in use: {', '.join(busy)} (another fixgate running?)", file=sys.stderr)
        return 1
    work = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="fixgate-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    config_path = write_config(config, work)
    logs.configure("WARNING", "console", file=str(work / "gateway.log"))
    children: list[subprocess.Popen] = []
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    venue_log = open(work / "simulator.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
    children.append(subprocess.Popen(
        [sys.executable, "-m", "fixgate", "venue", "-c", str(config_path), "--state-dir", str(work / "simulator"),
         "--log-level", "WARNING"], stdout=venue_log, stderr=subprocess.STDOUT, env=environment))
    gateway = Gateway(config, state_dir=work / "gateway")
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        gateway.start()
        if not gateway.wait_for_venues(15):
            print("fixgate demo: the gateway could not log on to the simulator; see "
                  f"{work / 'simulator.log'}", file=sys.stderr)
            return 1
        print(f"fixgate demo: simulator on 127.0.0.1:{config.simulator.port}, gateway acceptor on "
              f"127.0.0.1:{config.acceptor.port}; logs and FIX stores in {work}")
        client = config.clients[0]
        if external_client:
            print(f"connect a FIX 4.4 client: host 127.0.0.1 port {config.acceptor.port}, SenderCompID "
                  f"{client.comp_id}, TargetCompID {config.gateway.comp_id}, Username(553) {client.username}, "
                  f"Password(554) {client.password}; symbols "
                  f"{', '.join(instrument.symbol for instrument in config.instruments)}. Ctrl-C stops.")
        else:
            client_duration = duration if duration is not None else 365 * 24 * 3600.0
            children.append(subprocess.Popen(
                [sys.executable, "-m", "fixgate", "demo-client", "-c", str(config_path), "--state-dir",
                 str(work / "client"), "--duration", str(client_duration), "--rate", str(rate), "--seed", str(seed)],
                env=environment))
        started = time.monotonic()
        previous = 0
        symbols = [instrument.symbol for instrument in config.instruments]
        while not stop["now"]:
            time.sleep(1.0)
            elapsed = time.monotonic() - started
            status = gateway.status()
            print(_summary(status, previous, elapsed, symbols), flush=True)
            previous = status["orders"]["received"]
            if duration is not None and elapsed >= duration:
                break
            if any(child.poll() not in (None, 0) for child in children):
                print("fixgate demo: a child process stopped; see the logs in " + str(work), file=sys.stderr)
                return 1
        status = gateway.status()
        print(f"fixgate demo: {status['orders']['received']} orders, {status['orders']['accepted']} accepted, "
              f"{sum(status['orders']['rejected'].values())} rejected, {status['orders']['fills']} fills; "
              f"equity {status['positions']['equity']}")
        return 0
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        gateway.stop()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        venue_log.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--external-client", action="store_true",
                        help="start only the simulator and the gateway, and print how to connect a FIX client")
    parser.add_argument("--rate", type=float, default=40.0, help="orders per second of the demo client")
    parser.add_argument("--seed", type=int, default=7, help="seed of the demo client's flow")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="keep logs and FIX stores here (default: a new temporary folder)")

