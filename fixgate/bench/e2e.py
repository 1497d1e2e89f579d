"""End-to-end benchmarks on 127.0.0.1, each side in its own process.

(a) client -> simulator directly; (b) client -> gateway -> simulator -> gateway -> client; (c) a raw
TCP ping-pong of a 200-byte message, the floor of one round trip between two Python processes here.
The client is this process; the simulator (`fixgate venue`), the gateway (`fixgate run`) and the
echo server are child processes. Orders are IOC limit orders priced away from the market: the
venue acknowledges (NEW) and cancels them at once, so the book stays still and the limits hold.
The gateway's added latency is (b) - (a) at each percentile.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from fixgate import config as configuration

PAYLOAD_BYTES = 200
SYMBOL = "AAPL"
AWAY_PRICE = "187.00"          # below the market, inside the collar: an IOC buy there is acknowledged and cancelled


# -- RAW TCP ------------------------------------------------------------------------------------------

def echo_server(port: int) -> None:
    """Serve TCP echo of fixed 200-byte messages on 127.0.0.1:`port` until the client leaves."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(1)
        while True:
            connection, _ = server.accept()
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buffer = bytearray(PAYLOAD_BYTES)
            view = memoryview(buffer)
            with connection:
                while True:
                    received = 0
                    while received < PAYLOAD_BYTES:
                        count = connection.recv_into(view[received:])
                        if not count:
                            break
                        received += count
                    if received < PAYLOAD_BYTES:
                        break
                    connection.sendall(buffer)


def tcp_round_trips(port: int, count: int) -> list[int]:
    """Return `count` round trips (ns) of a 200-byte message to the echo server."""
    payload = b"8=FIX.4.4|" + b"x" * (PAYLOAD_BYTES - 10)
    buffer = bytearray(PAYLOAD_BYTES)
    view = memoryview(buffer)
    samples = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            started = time.perf_counter_ns()
            connection.sendall(payload)
            received = 0
            while received < PAYLOAD_BYTES:
                received += connection.recv_into(view[received:])
            samples.append(time.perf_counter_ns() - started)
    return samples


# -- THE PROCESSES ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def bench_config(message_log: bool = True) -> configuration.Config:
    """The bundled configuration on free ports, without the rate limits that would cap a benchmark."""
    base = configuration.load()
    simulator_port = free_port()
    client = dataclasses.replace(base.clients[0], max_order_rate=1e7, burst=1_000_000)
    instruments = tuple(dataclasses.replace(instrument, max_open_orders=None, max_position=None,
                                            max_order_notional=None, requires_live_quote=False)
                        for instrument in base.instruments)
    return dataclasses.replace(
        base,
        gateway=dataclasses.replace(base.gateway, message_log=message_log),
        acceptor=dataclasses.replace(base.acceptor, port=free_port()),
        admin=dataclasses.replace(base.admin, port=free_port()),
        simulator=dataclasses.replace(base.simulator, port=simulator_port, quote_interval_ms=1000),
        venues=tuple(dataclasses.replace(venue, port=simulator_port) for venue in base.venues),
        clients=(client,),
        instruments=instruments,
        risk=dataclasses.replace(base.risk, global_max_order_rate=None, kill_order_rate=None, max_daily_orders=None,
                                 max_daily_notional=None, max_gross_exposure=None, max_leverage=None,
                                 max_order_notional=None),
    )


class Stack:
    """Simulator, gateway and echo server as child processes; clients in this process."""

    def __init__(self, directory: Path, config: configuration.Config) -> None:
        self.directory = directory
        self.config = config
        self.config_path = directory / "bench.toml"
        self.config_path.write_text(configuration.to_toml(config, mask_secrets=False))
        self.echo_port = free_port()
        self.processes: list[subprocess.Popen] = []
        self.clients = []

    def _spawn(self, arguments: list[str], name: str) -> subprocess.Popen:
        log = open(self.directory / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen([sys.executable, "-m", *arguments], stdout=log, stderr=subprocess.STDOUT,
                                   env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.processes.append(process)
        return process

    def start(self) -> "Stack":
        self._spawn(["fixgate.bench.e2e", "echo", str(self.echo_port)], "echo")
        self._spawn(["fixgate", "venue", "-c", str(self.config_path), "--state-dir", str(self.directory / "venue"),
                     "--counterparty", self.config.gateway.comp_id, "--counterparty", "DIRECT",
                     "--log-level", "WARNING"], "venue")
        self.gateway = self._spawn(["fixgate", "run", "-c", str(self.config_path), "--state-dir",
                                    str(self.directory / "gateway"), "--log-level", "WARNING"], "gateway")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.admin("/ready") is not None:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"the gateway did not become ready; see {self.directory}")

    def admin(self, path: str) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.config.admin.port}{path}", timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            return None

    def client(self, sender: str, target: str, port: int, **credentials):
        from fixgate.fix.client import FixClient

        client = FixClient(sender, target, "127.0.0.1", port, self.directory / f"client-{sender}", message_log=False,
                           **credentials)
        client.start()
        if not client.wait_logged_on(15):
            raise RuntimeError(f"{sender} could not log on to {target}")
        self.clients.append(client)
        return client

    def stop(self) -> None:
        for client in self.clients:
            client.stop(0.5)
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


# -- MEASUREMENTS -------------------------------------------------------------------------------------

def round_trips(client, count: int) -> list[int]:
    """Send `count` orders one at a time; return the times (ns) from send to the first report."""
    samples = []
    for _ in range(count):
        cl_ord_id = client.next_id("L")
        arrived = client.expect(cl_ord_id)
        started = time.perf_counter_ns()
        client.new_order(SYMBOL, "1", "1", AWAY_PRICE, time_in_force="3", cl_ord_id=cl_ord_id)
        if not arrived.wait(10):
            raise RuntimeError(f"no report for {cl_ord_id}")
        samples.append(client.first_report_ns[cl_ord_id] - started)
    return samples


def windowed(client, count: int, window: int, rate: float | None = None) -> dict[str, Any]:
    """Send `count` orders with at most `window` outstanding (and at most `rate` per second).

    Returns orders/s completed, the latencies, and how many got no report (lost).
    """
    slots = threading.BoundedSemaphore(window)
    sent_at: dict[str, int] = {}
    client.on_first_report = lambda cl_ord_id: slots.release() if cl_ord_id in sent_at else None
    started = time.perf_counter_ns()
    interval = 1e9 / rate if rate else 0.0
    for index in range(count):
        if not slots.acquire(timeout=10):
            break
        if interval:
            due = started + index * interval
            while time.perf_counter_ns() < due:
                time.sleep(0)
        cl_ord_id = client.next_id("T")
        sent_at[cl_ord_id] = time.perf_counter_ns()
        client.new_order(SYMBOL, "1", "1", AWAY_PRICE, time_in_force="3", cl_ord_id=cl_ord_id)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(cl_ord_id not in client.first_report_ns for cl_ord_id in sent_at):
        time.sleep(0.01)
    client.on_first_report = None
    done = [client.first_report_ns[cl_ord_id] - sent for cl_ord_id, sent in sent_at.items()
            if cl_ord_id in client.first_report_ns]
    last = max((client.first_report_ns[cl_ord_id] for cl_ord_id in sent_at if cl_ord_id in client.first_report_ns),
               default=started)
    return {"sent": len(sent_at), "completed": len(done), "lost": len(sent_at) - len(done),
            "orders_per_second": len(done) / max((last - started) / 1e9, 1e-9), "latencies": done}


def percentiles(samples: list[int]) -> dict[str, float]:
    """Return count, mean and p50/p90/p99/p99.9 in microseconds."""
    if not samples:
        return {"count": 0}
    values = np.asarray(samples, dtype=np.float64) / 1e3
    p50, p90, p99, p999 = np.percentile(values, [50, 90, 99, 99.9])
    return {"count": len(samples), "mean_us": float(values.mean()), "p50_us": float(p50), "p90_us": float(p90),
            "p99_us": float(p99), "p999_us": float(p999)}


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def run(output: Path, *, quick: bool = False) -> dict[str, Any]:
    """Run (a), (b), (c), the throughput and the sustained-rate steps; write results.json; return it."""
    output.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fixgate-bench-"))
    counts = {"warmup": 200 if quick else 1_000, "latency": 500 if quick else 5_000,
              "throughput": 1_000 if quick else 10_000}
    stack = Stack(work, bench_config()).start()
    results: dict[str, Any] = {"machine": machine(), "quick": quick, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                            time.gmtime())}
    try:
        config = stack.config
        direct = stack.client("DIRECT", config.simulator.comp_id, config.simulator.port)
        gateway = stack.client(config.clients[0].comp_id, config.gateway.comp_id, config.acceptor.port,
                               username=config.clients[0].username, password=config.clients[0].password)
        time.sleep(0.5)
        tcp = tcp_round_trips(stack.echo_port, counts["warmup"] + counts["latency"])[counts["warmup"]:]
        round_trips(direct, counts["warmup"])
        a = round_trips(direct, counts["latency"])
        round_trips(gateway, counts["warmup"])
        b = round_trips(gateway, counts["latency"])
        results["latency"] = {"a_direct": percentiles(a), "b_gateway": percentiles(b), "c_tcp": percentiles(tcp)}
        added = {key: results["latency"]["b_gateway"][key] - results["latency"]["a_direct"][key]
                 for key in ("p50_us", "p90_us", "p99_us", "p999_us")}
        results["gateway_added_us"] = added
        results["ratios_to_tcp"] = {"added_p50": added["p50_us"] / results["latency"]["c_tcp"]["p50_us"],
                                    "added_p99": added["p99_us"] / results["latency"]["c_tcp"]["p99_us"]}
        through_a = windowed(direct, counts["throughput"], 64)
        through_b = windowed(gateway, counts["throughput"], 64)
        results["throughput"] = {
            "a_direct": {**{k: v for k, v in through_a.items() if k != "latencies"},
                         "latency": percentiles(through_a["latencies"])},
            "b_gateway": {**{k: v for k, v in through_b.items() if k != "latencies"},
                          "latency": percentiles(through_b["latencies"])},
        }
        status = stack.admin("/status") or {}
        results["stages_us"] = {stage: {key: (value / 1e3 if key != "count" else value)
                                        for key, value in figures.items()}
                                for stage, figures in status.get("stages_ns", {}).items()}
        results["sustained"] = sustained(stack, gateway, quick=quick)
        samples = {"a_direct": a, "b_gateway": b, "c_tcp": tcp}
    finally:
        stack.stop()
    (output / "results.json").write_text(json.dumps(results, indent=2))
    plot(results, samples, output)
    return results


def sustained(stack: Stack, client, *, quick: bool) -> list[dict[str, Any]]:
    """Hold rising order rates for a while each; stop at the first with loss or a shortfall."""
    seconds = 2.0 if quick else 30.0
    steps = []
    for rate in ((250, 500) if quick else (250, 500, 1000, 2000, 5000, 10000, 20000)):
        memory_before = (stack.admin("/status") or {}).get("memory_rss_bytes")
        outcome = windowed(client, int(rate * seconds), window=max(64, rate // 10), rate=rate)
        memory_after = (stack.admin("/status") or {}).get("memory_rss_bytes")
        step = {"target_per_second": rate, "seconds": seconds, "sent": outcome["sent"], "lost": outcome["lost"],
                "achieved_per_second": round(outcome["orders_per_second"], 1),
                "latency": percentiles(outcome["latencies"]), "gateway_rss_before": memory_before,
                "gateway_rss_after": memory_after}
        steps.append(step)
        if outcome["lost"] or outcome["orders_per_second"] < 0.95 * rate:
            break
    return steps


def plot(results: dict[str, Any], samples: dict[str, list[int]], output: Path) -> None:
    """Write latency.png (percentile distributions) and throughput.png (rate against latency)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        (output / "plots-missing.txt").write_text("install matplotlib (pip install -e '.[dev]') for the plots\n")
        return
    quantiles = np.array([50, 75, 90, 95, 99, 99.5, 99.9])
    figure, axis = plt.subplots(figsize=(8, 5))
    labels = {"a_direct": "(a) client -> simulator", "b_gateway": "(b) client -> gateway -> simulator",
              "c_tcp": "(c) raw TCP 200 B ping-pong"}
    for key, values in samples.items():
        axis.plot(range(len(quantiles)), np.percentile(np.asarray(values) / 1e3, quantiles), marker="o",
                  label=labels[key])
    axis.set_xticks(range(len(quantiles)), [f"p{q:g}" for q in quantiles])
    axis.set_ylabel("round trip (µs)")
    _save(plt, figure, axis, "fixgate round trips on 127.0.0.1", output / "latency.png")
    steps = results.get("sustained", [])
    if steps:
        figure, axis = plt.subplots(figsize=(8, 5))
        rates = [step["achieved_per_second"] for step in steps]
        for key, label in (("p50_us", "p50"), ("p99_us", "p99")):
            axis.plot(rates, [step["latency"].get(key, 0) for step in steps], marker="o", label=label)
        axis.set_xlabel("orders per second through the gateway")
        axis.set_ylabel("order to first report (µs)")
        _save(plt, figure, axis, "fixgate sustained throughput against latency", output / "throughput.png")


def _save(plt, figure, axis, title: str, path: Path) -> None:
    """Finish a plot the same way for every figure (log scale, grid, legend) and write it."""
    axis.set_yscale("log")
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "echo":
        echo_server(int(sys.argv[2]))
    else:
        print("usage: python -m fixgate.bench.e2e echo PORT", file=sys.stderr)
        sys.exit(2)
