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
from fixgate.ops.net import port_free

RISK_STATES = {0: "NORMAL", 1: "WARNING", 2: "CIRCUIT_BREAKER", 3: "KILL_SWITCH"}


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

def _micros(nanoseconds: float | None) -> str:
    if nanoseconds is None:
        return "-"
    if nanoseconds >= 1_000_000:
        return f"{nanoseconds / 1e6:.1f} ms"
    return f"{nanoseconds / 1e3:.0f} µs"


def _money(value: Decimal) -> str:
    return f"{value:+,.2f}"


def summary_lines(status: dict, previous_received: int, elapsed: float, symbols: list[str]) -> list[str]:
    """Two lines of at most 120 columns: the orders (this second, then since the start), the books."""
    from fixgate.core.positions import by_symbol as positions_by_symbol

    orders = status["orders"]
    rejected = sum(orders["rejected"].values())
    latency = status["latency_ns"]
    risk = RISK_STATES.get(status["risk_state"], str(status["risk_state"]))
    first = (f"t={elapsed:4.0f}s {orders['received'] - previous_received:5d} orders/s | {orders['accepted']:,} accepted, "
             f"{rejected:,} rejected, {orders['fills']:,} fill reports, {orders['open']:,} open | p50 "
             f"{_micros(latency['p50'])}, p99 {_micros(latency['p99'])} | {risk}")
    books = [f"{symbol} {quantity.normalize():+f} ({_money(pnl)})" for symbol, quantity, pnl in
             positions_by_symbol(status["positions"], symbols)]
    positions = status["positions"]
    total = Decimal(positions["realized_pnl"]) + Decimal(positions["unrealized_pnl"])
    second = f"         positions (P&L): {'  '.join(books) or 'flat'} | total P&L {_money(total)}"
    if len(second) > 120:
        second = f"         positions: {len(books)} instruments | total P&L {_money(total)}"
    return [first, second]


def reject_lines(status: dict) -> list[str]:
    """The rejects since the start by reason, most frequent first, wrapped at 120 columns."""
    reasons = sorted(status["orders"]["rejected"].items(), key=lambda item: (-item[1], item[0]))
    if not reasons:
        return ["rejected by reason: none"]
    lines, line = [], "rejected by reason:"
    for name, count in reasons:
        part = f" {name} {count:,};"
        if len(line) + len(part) > 120:
            lines.append(line)
            line = "   "
        line += part
    lines.append(line.rstrip(";"))
    return lines


def _venue_open_orders(control_port: int, owner: str) -> int | None:
    """How many orders the simulator holds open for `owner` (None when it cannot be asked)."""
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{control_port}/ledger/{owner}", timeout=5) as response:
            return len(json.loads(response.read())["open_orders"])
    except (OSError, ValueError, KeyError):
        return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop_child(child: subprocess.Popen, timeout: float = 10.0) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(5)


def run_demo(config: Config, *, duration: float | None, external_client: bool, rate: float, seed: int,
             state_dir: Path | None) -> int:
    """Start the simulator (child), the gateway (here) and the client flow (child); print a summary
    each second until `duration` passes or Ctrl-C; then stop in order: the client, the gateway
    (which cancels what is open), the simulator, and say what the venue still holds."""
    from fixgate.gateway import Gateway
    from fixgate.ops import logging as logs

    if not config.clients:
        print("fixgate demo: the configuration has no [[clients]]; the demo trades as the first client",
              file=sys.stderr)
        return 2
    if not any(venue.host in ("127.0.0.1", "localhost") and venue.port == config.simulator.port
               for venue in config.venues):
        print(f"fixgate demo: no venue connects to the simulator (simulator.port {config.simulator.port} on "
              "127.0.0.1); the demo runs the gateway against the simulator", file=sys.stderr)
        return 2
    ports = {"acceptor.port": config.acceptor.port, "simulator.port": config.simulator.port}
    if config.admin.enabled:
        ports["admin.port"] = config.admin.port
    busy = [f"{name} {port}" for name, port in ports.items() if not port_free(port)]
    if busy:
        print(f"fixgate demo: port in use: {', '.join(busy)} (another fixgate running? change the setting "
              "in a configuration file and pass it with -c)", file=sys.stderr)
        return 1
    work = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="fixgate-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    config_path = write_config(config, work)
    gateway_log = work / "gateway.log"
    logs.configure(config.logging.level, "json", file=str(gateway_log), console_level="WARNING")
    children: list[subprocess.Popen] = []
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    control_port = _free_port()
    venue_log = open(work / "simulator.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
    simulator = subprocess.Popen(
        [sys.executable, "-m", "fixgate", "venue", "-c", str(config_path), "--state-dir", str(work / "simulator"),
         "--log-level", "WARNING", "--control-port", str(control_port)],
        stdout=venue_log, stderr=subprocess.STDOUT, env=environment)
    client_process: subprocess.Popen | None = None
    gateway = Gateway(config, state_dir=work / "gateway")
    stop = {"now": False}
    outcome = 0

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
        starting_equity = Decimal(gateway.positions_snapshot()["equity"])
        print(f"fixgate demo: simulator on 127.0.0.1:{config.simulator.port}, gateway acceptor on "
              f"127.0.0.1:{config.acceptor.port}")
        if config.admin.enabled:
            print(f"  status page   http://{config.admin.host}:{config.admin.port}/   (admin token: "
                  f"{config.admin.token})")
        print(f"  state         {work / 'gateway'}   (journal, FIX stores, audit trail)")
        print(f"  logs          {gateway_log}   (the gateway's, JSON lines)")
        print(f"                {work / 'gateway' / 'fixlog'}   (FIX messages, per session)")
        print(f"                {work / 'simulator.log'}   (the simulator's)")
        print("  each second:  orders received that second; since the start: accepted, rejected, fill reports")
        print("                (one per fill, partial or whole); orders open now; latency; the risk state")
        print(f"                net position and P&L per instrument, then in total, from starting equity "
              f"{starting_equity:,.2f}", flush=True)
        client = config.clients[0]
        if external_client:
            print(f"connect a FIX 4.4 client: host 127.0.0.1 port {config.acceptor.port}, SenderCompID "
                  f"{client.comp_id}, TargetCompID {config.gateway.comp_id}, Username(553) {client.username}, "
                  f"Password(554) {client.password}; symbols "
                  f"{', '.join(instrument.symbol for instrument in config.instruments)}. Ctrl-C stops.")
        else:
            client_duration = duration if duration is not None else 365 * 24 * 3600.0
            client_process = subprocess.Popen(
                [sys.executable, "-m", "fixgate", "demo-client", "-c", str(config_path), "--state-dir",
                 str(work / "client"), "--duration", str(client_duration), "--rate", str(rate), "--seed", str(seed)],
                env=environment)
            children.append(client_process)
        children.append(simulator)
        started = time.monotonic()
        previous = 0
        symbols = [instrument.symbol for instrument in config.instruments]
        while not stop["now"]:
            time.sleep(1.0)
            elapsed = time.monotonic() - started
            status = gateway.status()
            for line in summary_lines(status, previous, elapsed, symbols):
                print(line, flush=True)
            previous = status["orders"]["received"]
            if duration is not None and elapsed >= duration:
                break
            if any(child.poll() not in (None, 0) for child in children):
                print("fixgate demo: a child process stopped; see the logs in " + str(work), file=sys.stderr)
                outcome = 1
                break
        # Stop in order: the client first (its orders are cancelled on disconnect), then the gateway
        # (it cancels what is still open and waits for the venue's answers), the simulator last.
        if client_process is not None:
            _stop_child(client_process)
        gateway.stop()
        status = gateway.status()
        open_at_venue = _venue_open_orders(control_port, config.gateway.comp_id)
        orders = status["orders"]
        positions = status["positions"]
        equity = Decimal(positions["equity"])
        print(f"fixgate demo: stopped after {time.monotonic() - started:.0f} s")
        for line in reject_lines(status):
            print(line)
        venue_text = (f"{open_at_venue} orders open at the venue" if open_at_venue is not None
                      else "the venue could not be asked for its open orders")
        print(f"  {orders['received']:,} orders received, {orders['accepted']:,} accepted, "
              f"{sum(orders['rejected'].values()):,} rejected, {orders['fills']:,} fill reports, "
              f"{orders['cancels']:,} cancels; {venue_text}")
        print(f"fixgate demo: total P&L {_money(equity - starting_equity)} on starting equity "
              f"{starting_equity:,.2f} (equity {equity:,.2f})", flush=True)
        if open_at_venue:
            outcome = outcome or 1
        return outcome
    finally:
        for child in (client_process, simulator):
            if child is not None:
                _stop_child(child)
        gateway.stop()
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

