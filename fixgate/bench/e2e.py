"""End-to-end benchmarks on 127.0.0.1, each party in its own process, pinned to one core and not.

- (c) the floor: a 200-byte ping-pong over loopback TCP, in C and in Python;
- (a) a native load client straight to a native echo venue (QuickFIX C++ on both sides);
- (b) the same client through the gateway: client -> gateway -> venue -> gateway -> client;
- the gateway's added latency (b - a) at each percentile, and (b - a) / (a), (b - a) / (c), from the
  same run and the same pinning;
- throughput at 64 and 256 orders outstanding; a sustained rate held for a while, with the orders
  lost, the state thread's backlog and the gateway's memory before and after;
- the Python FIX client against the Python simulator, direct and through the gateway (what a user
  of the demo sees).

"Pinned" runs every process of a measurement on CPU 0 (``taskset -c 0``): on this kind of VM a
hand-off to the other vCPU costs tens of microseconds, so pinned figures are the reproducible ones
and unpinned ones show what the scheduler adds. Latency runs use an echo venue that acknowledges
(one report per order); throughput and sustained runs one that cancels IOC orders at once, so
that nothing rests. Orders are IOC or day limits priced away from the market.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
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
AWAY_PRICE = "187.00"          # below the market, inside the collar: acknowledged, never filled
PIN = ["taskset", "-c", "0"]
# Every process of a measurement: no OpenBLAS thread pool (NumPy starts one per core at import).
ENVIRONMENT = dict(os.environ, PYTHONUNBUFFERED="1", OPENBLAS_NUM_THREADS="1")


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
    """Return `count` round trips (ns) of a 200-byte message to the echo server, from Python."""
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def _prefix(pinned: bool) -> list[str]:
    return PIN if pinned and shutil.which("taskset") else []


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def tcp_measurement(directory: Path, *, native: bool, pinned: bool, count: int, warmup: int) -> list[int]:
    """(c): the round trips of a 200-byte ping-pong between two processes (C or Python)."""
    port = free_port()
    ready = directory / f"tcp-{port}.ready"
    server = subprocess.Popen([*_prefix(pinned), sys.executable, "-m", "fixgate.bench.e2e", "tcp-echo", str(port),
                               "--c" if native else "--python", str(ready)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=ENVIRONMENT)
    try:
        _wait_for(lambda: ready.exists(), 10, "the TCP echo server")
        output = directory / f"tcp-{port}.json"
        subprocess.run([*_prefix(pinned), sys.executable, "-m", "fixgate.bench.e2e", "tcp-client", str(port),
                        str(count + warmup), str(output), "--c" if native else "--python"], check=True, timeout=300,
                       env=ENVIRONMENT)
        return json.loads(output.read_text())[warmup:]
    finally:
        server.kill()
        server.wait()


# -- THE NATIVE STACK ---------------------------------------------------------------------------------

def bench_config(message_log: bool = True, *, message_store: str = "mapped") -> configuration.Config:
    """The bundled configuration on free ports, without the rate limits that would cap a benchmark."""
    base = configuration.load()
    simulator_port = free_port()
    client = dataclasses.replace(base.clients[0], max_order_rate=1e7, burst=1_000_000)
    instruments = tuple(dataclasses.replace(instrument, max_open_orders=None, max_position=None,
                                            max_order_notional=None, requires_live_quote=False)
                        for instrument in base.instruments)
    return dataclasses.replace(
        base,
        gateway=dataclasses.replace(base.gateway, message_log=message_log, message_store=message_store),
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


class NativeStack:
    """A native echo venue and the gateway as child processes; native load clients run against them.

    Parameters
    ----------
    directory : Path
        Settings, state and logs.
    config : Config
        The gateway's configuration (its venue is the echo venue).
    pinned : bool
        Run every process on CPU 0.
    venue_mode : str
        "ack" (one report per order) or "ioc" (acknowledged, then cancelled).
    """

    def __init__(self, directory: Path, config: configuration.Config, *, pinned: bool, venue_mode: str) -> None:
        self.directory = directory
        self.config = config
        self.pinned = pinned
        self.venue_mode = venue_mode
        self.config_path = directory / "bench.toml"
        self.config_path.write_text(configuration.to_toml(config, mask_secrets=False))
        self.processes: list[subprocess.Popen] = []
        self.gateway: subprocess.Popen | None = None
        self.runs = 0

    def _spawn(self, arguments: list[str], name: str) -> subprocess.Popen:
        log = open(self.directory / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen([*_prefix(self.pinned), sys.executable, "-m", *arguments], stdout=log,
                                   stderr=subprocess.STDOUT, env=ENVIRONMENT)
        self.processes.append(process)
        return process

    def start(self) -> "NativeStack":
        ready = self.directory / "venue.ready"
        config = self.config
        self._spawn(["fixgate.bench.native_peers", "venue", "--port", str(config.simulator.port), "--sender",
                     config.simulator.comp_id, "--target", config.gateway.comp_id, "--target", "DIRECT", "--mode",
                     self.venue_mode, "--quote", f"{SYMBOL}=189.99/190.01", "--ready-file", str(ready),
                     "--state-dir", str(self.directory / "venue")], "venue")
        _wait_for(lambda: ready.exists(), 20, "the echo venue")
        self.gateway = self._spawn(["fixgate", "run", "-c", str(self.config_path), "--state-dir",
                                    str(self.directory / "gateway"), "--log-level", "WARNING"], "gateway")
        _wait_for(lambda: (self.admin("/ready") or {}).get("ready"), 30, "the gateway to be ready")
        return self

    def admin(self, path: str) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.config.admin.port}{path}", timeout=5) as response:
                return json.loads(response.read())
        except OSError as error:
            if hasattr(error, "read"):
                try:
                    return json.loads(error.read())
                except ValueError:
                    return None
            return None

    def gateway_cpu_seconds(self) -> float:
        """The gateway process's CPU time so far (user + system), from /proc."""
        try:
            fields = Path(f"/proc/{self.gateway.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def client(self, target: str, *, mode: str, orders: int | None, warmup: int, outstanding: int = 1,
               rate: float | None = None, duration: float | None = None, tif: str = "0",
               complete_on: str = "first") -> dict[str, Any]:
        """Run one native load client to `target` ("direct" or "gateway"); return its result and samples."""
        self.runs += 1
        config = self.config
        output = self.directory / f"client-{self.runs}-{target}-{mode}.json"
        if target == "direct":
            session = ["--port", str(config.simulator.port), "--sender", "DIRECT", "--target", config.simulator.comp_id]
        else:
            session = ["--port", str(config.acceptor.port), "--sender", config.clients[0].comp_id, "--target",
                       config.gateway.comp_id, "--username", config.clients[0].username, "--password",
                       config.clients[0].password]
        arguments = [*_prefix(self.pinned), sys.executable, "-m", "fixgate.bench.native_peers", "client", *session,
                     "--mode", mode, "--warmup", str(warmup), "--outstanding", str(outstanding), "--symbol", SYMBOL,
                     "--qty", "1", "--price", AWAY_PRICE, "--tif", tif, "--complete-on", complete_on,
                     "--output", str(output), "--state-dir", str(self.directory / f"client-{self.runs}")]
        if orders is not None:
            arguments += ["--orders", str(orders)]
        if rate is not None:
            arguments += ["--rate", str(rate)]
        if duration is not None:
            arguments += ["--duration", str(duration)]
        subprocess.run(arguments, check=True, timeout=900, stdout=subprocess.DEVNULL, env=ENVIRONMENT,
                       stderr=open(self.directory / f"client-{self.runs}.log", "w"))  # noqa: SIM115
        result = json.loads(output.read_text())
        samples = np.load(output.with_name(output.stem + ".samples.npz"))
        result["samples_ns"] = samples["latency_ns"]
        return result

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


# -- FIGURES ------------------------------------------------------------------------------------------

def percentiles(samples) -> dict[str, float]:
    """Return count, mean and p50/p90/p99/p99.9 in microseconds (samples in ns; < 0 left out)."""
    values = np.asarray(samples, dtype=np.float64)
    values = values[values >= 0] / 1e3
    if not values.size:
        return {"count": 0}
    p50, p90, p99, p999 = np.percentile(values, [50, 90, 99, 99.9])
    return {"count": int(values.size), "mean_us": float(values.mean()), "p50_us": float(p50), "p90_us": float(p90),
            "p99_us": float(p99), "p999_us": float(p999)}


KEYS = ("p50_us", "p90_us", "p99_us", "p999_us")


def added(a: dict[str, float], b: dict[str, float], c: dict[str, float]) -> dict[str, Any]:
    """(b - a) at each percentile, and its ratios to (a) and to (c) at p50 and p99."""
    difference = {key: b[key] - a[key] for key in KEYS}
    return {**difference,
            "over_direct_p50": difference["p50_us"] / a["p50_us"], "over_direct_p99": difference["p99_us"] / a["p99_us"],
            "over_tcp_p50": difference["p50_us"] / c["p50_us"], "over_tcp_p99": difference["p99_us"] / c["p99_us"]}


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def _stages(status: dict | None) -> dict[str, dict[str, float]]:
    return {stage: {key: (value / 1e3 if key != "count" else value) for key, value in figures.items()}
            for stage, figures in (status or {}).get("stages_ns", {}).items()}


# -- SCENARIOS ----------------------------------------------------------------------------------------

def latency_section(work: Path, *, pinned: bool, counts: dict[str, int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(c) in C and Python, then (a) and (b) with one order outstanding; return figures and samples."""
    name = "pinned" if pinned else "unpinned"
    directory = work / f"latency-{name}"
    directory.mkdir(parents=True)
    c_native = tcp_measurement(directory, native=True, pinned=pinned, count=counts["latency"], warmup=counts["warmup"])
    c_python = tcp_measurement(directory, native=False, pinned=pinned, count=counts["latency"],
                               warmup=counts["warmup"])
    stack = NativeStack(directory, bench_config(), pinned=pinned, venue_mode="ack").start()
    try:
        a = stack.client("direct", mode="latency", orders=counts["latency"], warmup=counts["warmup"])
        before = stack.gateway_cpu_seconds()
        b = stack.client("gateway", mode="latency", orders=counts["latency"], warmup=counts["warmup"])
        cpu = stack.gateway_cpu_seconds() - before
        stages = _stages(stack.admin("/status"))
    finally:
        stack.stop()
    figures = {"c_tcp_c": percentiles(c_native), "c_tcp_python": percentiles(c_python),
               "a_direct": percentiles(a["samples_ns"]), "b_gateway": percentiles(b["samples_ns"]),
               "lost": a["orders_lost"] + b["orders_lost"], "rejects": a["rejects"] + b["rejects"],
               "gateway_cpu_us_per_order": cpu * 1e6 / max(b["orders_sent"], 1), "stages_us": stages}
    figures["added"] = added(figures["a_direct"], figures["b_gateway"], figures["c_tcp_c"])
    samples = {"c_tcp_c": c_native, "a_direct": a["samples_ns"], "b_gateway": b["samples_ns"]}
    return figures, samples


def throughput_section(work: Path, *, counts: dict[str, int], store: str = "mapped") -> dict[str, Any]:
    """Orders per second with 64 and 256 outstanding, direct and through the gateway (unpinned)."""
    directory = work / f"throughput-{store}"
    directory.mkdir(parents=True)
    stack = NativeStack(directory, bench_config(message_store=store), pinned=False, venue_mode="ioc").start()
    rows = {}
    try:
        for outstanding in (64, 256):
            for target in (("direct", "gateway") if store == "mapped" else ("gateway",)):
                before = stack.gateway_cpu_seconds()
                result = stack.client(target, mode="throughput", orders=counts["throughput"], warmup=counts["warmup"],
                                      outstanding=outstanding, tif="3", complete_on="final")
                cpu = stack.gateway_cpu_seconds() - before
                rows[f"{target}_{outstanding}"] = {
                    "orders_per_second": result["orders_per_second"], "lost": result["orders_lost"],
                    "rejects": result["rejects"], "latency": percentiles(result["samples_ns"]),
                    "gateway_cpu_us_per_order": cpu * 1e6 / max(result["orders_sent"], 1) if target == "gateway"
                    else None}
    finally:
        stack.stop()
    return rows


def sustained_section(work: Path, *, quick: bool) -> list[dict[str, Any]]:
    """Hold rising rates through the gateway (IOC, unpinned); the last step is the long one.

    Each step records the orders lost, the achieved rate, the latency, the state thread's backlog
    (ring occupancy and journal events waiting, sampled every 0.5 s) and the gateway's memory.
    """
    directory = work / "sustained"
    directory.mkdir(parents=True)
    stack = NativeStack(directory, bench_config(), pinned=False, venue_mode="ioc").start()
    steps: list[dict[str, Any]] = []
    # Rising rates for a short while each, up to the first that loses orders, falls short or leaves the
    # state thread behind; then the highest rate that held, for a long while.
    plan = [(1000, 2.0), (2000, 3.0)] if quick else [(rate, 10.0) for rate in (2500, 5000, 6000, 7000, 8000, 10000,
                                                                                15000, 20000, 25000)]
    long_seconds = 5.0 if quick else 60.0

    def step(rate: int, seconds: float) -> dict[str, Any]:
        before = stack.admin("/status") or {}
        backlog: list[tuple[int, int]] = []
        stop = threading.Event()

        def sample():
            while not stop.wait(0.5):
                status = stack.admin("/status") or {}
                ring = status.get("ring", {})
                backlog.append((ring.get("occupancy", 0) + ring.get("overflow", 0),
                                status.get("journal", {}).get("pending_events", 0)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = stack.client("gateway", mode="rate", orders=None, warmup=100, rate=rate, duration=seconds,
                              tif="3", complete_on="final")
        stop.set()
        sampler.join()
        after = stack.admin("/status") or {}
        figures = {
            "target_per_second": rate, "seconds": seconds, "sent": result["measured_orders_sent"],
            "lost": result["orders_lost"], "achieved_per_second": round(result["orders_per_second"], 1),
            "latency": percentiles(result["samples_ns"]),
            "backlog_max_events": max((ring for ring, _ in backlog), default=0),
            "journal_pending_max": max((pending for _, pending in backlog), default=0),
            "backlog_last_events": backlog[-1][0] if backlog else 0,
            "gateway_rss_before": before.get("memory_rss_bytes"), "gateway_rss_after": after.get("memory_rss_bytes"),
            "gateway_heap_before": before.get("memory_anon_bytes"), "gateway_heap_after": after.get("memory_anon_bytes"),
        }
        steps.append(figures)
        return figures

    try:
        held = None
        for rate, seconds in plan:
            figures = step(rate, seconds)
            # Held: nothing lost, the rate reached, and the state thread within a fraction of a second
            # of the engine (each order is about three events).
            if figures["lost"] or figures["achieved_per_second"] < 0.95 * rate or figures["backlog_max_events"] > rate:
                break
            held = rate
        if held is not None:
            step(held, long_seconds)
    finally:
        stack.stop()
    return steps


def python_section(work: Path, *, counts: dict[str, int]) -> dict[str, Any]:
    """The Python FIX client and the Python simulator: direct, and through the gateway (unpinned)."""
    from fixgate.fix.client import FixClient

    directory = work / "python"
    directory.mkdir(parents=True)
    config = bench_config()
    config_path = directory / "bench.toml"
    config_path.write_text(configuration.to_toml(config, mask_secrets=False))
    processes = [
        subprocess.Popen([sys.executable, "-m", "fixgate", "venue", "-c", str(config_path), "--state-dir",
                          str(directory / "venue"), "--counterparty", config.gateway.comp_id, "--counterparty",
                          "DIRECT", "--log-level", "WARNING"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "fixgate", "run", "-c", str(config_path), "--state-dir",
                          str(directory / "gateway"), "--log-level", "WARNING"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
    ]
    clients = []
    try:
        stack = NativeStack.__new__(NativeStack)
        stack.config = config
        _wait_for(lambda: (stack.admin("/ready") or {}).get("ready"), 30, "the gateway to be ready")

        def client(sender, target, port, **credentials):
            fix_client = FixClient(sender, target, "127.0.0.1", port, directory / f"client-{sender}", message_log=False,
                                   **credentials)
            fix_client.start()
            if not fix_client.wait_logged_on(15):
                raise RuntimeError(f"{sender} could not log on")
            clients.append(fix_client)
            return fix_client

        direct = client("DIRECT", config.simulator.comp_id, config.simulator.port)
        gateway = client(config.clients[0].comp_id, config.gateway.comp_id, config.acceptor.port,
                         username=config.clients[0].username, password=config.clients[0].password)
        time.sleep(0.5)
        round_trips(direct, counts["warmup"])
        a = round_trips(direct, counts["python"])
        round_trips(gateway, counts["warmup"])
        b = round_trips(gateway, counts["python"])
    finally:
        for fix_client in clients:
            fix_client.stop(0.5)
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
    return {"a_direct": percentiles(a), "b_gateway": percentiles(b)}


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


def run(output: Path, *, quick: bool = False) -> dict[str, Any]:
    """Run every section; write results.json and the plots to `output`; return the results."""
    output.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fixgate-bench-"))
    counts = {"warmup": 300 if quick else 2_000, "latency": 1_000 if quick else 20_000,
              "throughput": 2_000 if quick else 50_000, "python": 300 if quick else 3_000}
    results: dict[str, Any] = {"machine": machine(), "quick": quick,
                               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    samples: dict[str, Any] = {}
    try:
        for pinned in (True, False):
            name = "pinned" if pinned else "unpinned"
            results[f"latency_{name}"], samples[name] = latency_section(work, pinned=pinned, counts=counts)
        results["throughput"] = throughput_section(work, counts=counts)
        results["throughput_filestore"] = throughput_section(work, counts=counts, store="file")
        results["sustained"] = sustained_section(work, quick=quick)
        results["python"] = python_section(work, counts=counts)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (output / "results.json").write_text(json.dumps(results, indent=2))
    plot(results, samples, output)
    return results


def plot(results: dict[str, Any], samples: dict[str, Any], output: Path) -> None:
    """Write latency.png (percentile distributions, pinned and unpinned) and throughput.png."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        (output / "plots-missing.txt").write_text("install matplotlib (pip install -e '.[dev]') for the plots\n")
        return
    quantiles = np.array([50, 75, 90, 95, 99, 99.5, 99.9])
    figure, axis = plt.subplots(figsize=(9, 5))
    labels = {"c_tcp_c": "(c) raw TCP 200 B ping-pong (C)", "a_direct": "(a) client -> venue",
              "b_gateway": "(b) client -> gateway -> venue"}
    for pinning, series in samples.items():
        for key, values in series.items():
            values = np.asarray(values, dtype=np.float64)
            values = values[values >= 0]
            if values.size:
                axis.plot(range(len(quantiles)), np.percentile(values / 1e3, quantiles), marker="o",
                          linestyle="-" if pinning == "pinned" else "--", label=f"{labels[key]}, {pinning}")
    axis.set_xticks(range(len(quantiles)), [f"p{q:g}" for q in quantiles])
    axis.set_ylabel("round trip (µs)")
    _save(plt, figure, axis, "fixgate round trips on 127.0.0.1 (native peers)", output / "latency.png")
    steps = results.get("sustained", [])
    if steps:
        figure, axis = plt.subplots(figsize=(8, 5))
        rates = [step["achieved_per_second"] for step in steps]
        for key, label in (("p50_us", "p50"), ("p99_us", "p99")):
            axis.plot(rates, [step["latency"].get(key, 0) for step in steps], marker="o", label=label)
        axis.set_xlabel("orders per second through the gateway")
        axis.set_ylabel("order to its final report (µs)")
        _save(plt, figure, axis, "fixgate sustained rates against latency", output / "throughput.png")


def _save(plt, figure, axis, title: str, path: Path) -> None:
    """Finish a plot the same way for every figure (log scale, grid, legend) and write it."""
    axis.set_yscale("log")
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str]) -> int:
    """``tcp-echo PORT --c|--python READY_FILE`` and ``tcp-client PORT COUNT OUTPUT --c|--python``."""
    if len(argv) == 4 and argv[0] == "tcp-echo":
        port, native, ready = int(argv[1]), argv[2] == "--c", Path(argv[3])
        if native:
            from fixgate.bench._peers import tcp_echo

            tcp_echo(port, PAYLOAD_BYTES, 0.0, str(ready))
        else:
            threading.Timer(0.2, lambda: ready.write_text("{}")).start()
            echo_server(port)
        return 0
    if len(argv) == 5 and argv[0] == "tcp-client":
        port, count, output, native = int(argv[1]), int(argv[2]), Path(argv[3]), argv[4] == "--c"
        if native:
            from fixgate.bench._peers import tcp_pingpong

            samples = tcp_pingpong(port, PAYLOAD_BYTES, count)
        else:
            samples = tcp_round_trips(port, count)
        output.write_text(json.dumps(samples))
        return 0
    print("usage: python -m fixgate.bench.e2e tcp-echo PORT --c|--python READY_FILE\n"
          "       python -m fixgate.bench.e2e tcp-client PORT COUNT OUTPUT --c|--python", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
