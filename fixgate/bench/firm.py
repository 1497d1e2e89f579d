"""The firm-wide kill switch measured: how long from the operator's write of the kill key to each
gateway's KILL_SWITCH, over real processes on 127.0.0.1.

A NATS JetStream server (Debian's ``nats-server -js``) and `gateways` gateways (``fixgate run``,
each its own process with the bundled defaults on free ports; no venue needed) start; then the
operator trips and releases the firm's kill `kills` times, waiting each time for every gateway's
confirmation. Per gateway and kill: *applied* (the gateway's clock when its risk-state machine was in
KILL_SWITCH, against the operator's clock when it wrote the key: one machine, one clock) and *seen*
(when the operator read the confirmation back); *delivered* is when the gateway's watch got the key. With ``--pinned`` every process runs on one core
(``taskset -c 1``), else where the scheduler puts it.

Run: ``python -m fixgate.bench.firm [--kills 100] [--gateways 3] [--pinned] [--json]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


def _summary(values: list[float]) -> dict[str, float]:
    return {"count": len(values), "p50_ms": round(statistics.median(values), 3),
            "p99_ms": round(_percentile(values, 0.99), 3), "max_ms": round(max(values), 3)}


def kill_propagation(*, gateways: int = 3, kills: int = 100, pinned: bool = False,
                     directory: Path | None = None) -> dict[str, Any]:
    """Start NATS and `gateways` gateways, trip and release the firm's kill `kills` times; return
    the delays (ms) per gateway and kill, and for the last of the gateways per kill."""
    from fixgate import config as configuration
    from fixgate.config import FirmSettings
    from fixgate.firm import control

    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(binary).exists():
        raise SystemExit("the firm benchmark needs nats-server (`apt-get install -y nats-server`)")
    folder = Path(directory or tempfile.mkdtemp(prefix="fixgate-firm-bench-"))
    prefix = ["taskset", "-c", "1"] if pinned else []
    if pinned:
        os.sched_setaffinity(0, {1})
    nats_port = _free_port()
    url = f"nats://127.0.0.1:{nats_port}"
    processes: list[subprocess.Popen] = []
    firm = FirmSettings(name="bench", servers=(url,), lease_seconds=5.0)
    try:
        processes.append(subprocess.Popen(
            prefix + [binary, "-js", "-a", "127.0.0.1", "-p", str(nats_port), "-sd", str(folder / "nats")],
            stdout=subprocess.DEVNULL, stderr=open(folder / "nats.log", "w")))
        base = configuration.load()
        for number in range(1, gateways + 1):
            name = f"gw{number}"
            gateway_config = dataclasses.replace(
                base, gateway=dataclasses.replace(base.gateway, name=name),
                acceptor=dataclasses.replace(base.acceptor, port=_free_port()),
                admin=dataclasses.replace(base.admin, port=_free_port()),
                venues=tuple(dataclasses.replace(venue, port=_free_port()) for venue in base.venues),
                logging=dataclasses.replace(base.logging, level="WARNING"), firm=firm)
            path = folder / f"{name}.toml"
            path.write_text(configuration.to_toml(gateway_config, mask_secrets=False))
            processes.append(subprocess.Popen(
                prefix + [sys.executable, "-m", "fixgate", "run", "-c", str(path), "--state-dir", str(folder / name)],
                stdout=subprocess.DEVNULL, stderr=open(folder / f"{name}.log", "w")))
        deadline = time.monotonic() + 60
        while True:
            try:
                status = control.run(control.firm_status(firm, from_stream=False))
                if status["totals"]["alive"] >= gateways:
                    break
            except control.FirmUnreachable:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the gateways did not announce themselves in time; logs in {folder}")
            time.sleep(0.2)
        delivered: list[float] = []
        applied: list[float] = []
        seen: list[float] = []
        last_applied: list[float] = []
        last_seen: list[float] = []
        missing = 0
        for _ in range(kills):
            for on in (True, False):
                result = control.run(control.set_kill(firm, on, "bench", "propagation", wait_s=5.0))
                confirms = [confirm for confirm in result["confirms"].values() if confirm is not None]
                missing += len(result["confirms"]) - len(confirms)
                if on and confirms:
                    delivered += [(confirm["received_ns"] - result["kill"]["at_ns"]) / 1e6 for confirm in confirms]
                    applied += [confirm["delay_ms"] for confirm in confirms]
                    seen += [confirm["seen_ms"] for confirm in confirms]
                    last_applied.append(max(confirm["delay_ms"] for confirm in confirms))
                    last_seen.append(max(confirm["seen_ms"] for confirm in confirms))
        return {"gateways": gateways, "kills": kills, "pinned": pinned, "unconfirmed": missing,
                "delivered": _summary(delivered), "applied": _summary(applied), "seen": _summary(seen),
                "all_applied": _summary(last_applied), "all_seen": _summary(last_seen)}
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        if directory is None:
            shutil.rmtree(folder, ignore_errors=True)


def _start_nats(folder: Path, prefix: list[str]) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(binary).exists():
        raise SystemExit("the firm benchmark needs nats-server (`apt-get install -y nats-server`)")
    port = _free_port()
    process = subprocess.Popen(prefix + [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(folder / "nats")],
                               stdout=subprocess.DEVNULL, stderr=open(folder / "nats.log", "w"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return process, f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nats-server did not listen in time")


def publish_under_load(*, rate: int = 25_000, seconds: float = 20.0, directory: Path | None = None,
                       firm: bool = True) -> dict[str, Any]:
    """Hold `rate` IOC orders a second through one gateway with a [firm] section (unpinned) and
    follow its link to the stream: events published a second, the backlog and its age, the
    catch-up once the load stops, and the events the stream lacks at the end (must be 0)."""
    import sqlite3
    import threading

    from fixgate.bench.e2e import NativeStack, bench_config
    from fixgate.config import FirmSettings
    from fixgate.firm import control

    folder = Path(directory or tempfile.mkdtemp(prefix="fixgate-firm-load-"))
    nats_process, url = _start_nats(folder, [])
    stack = None
    try:
        base = bench_config(message_log=False)
        config = dataclasses.replace(base, gateway=dataclasses.replace(base.gateway, name="gw1"),
                                     firm=FirmSettings(name="bench", servers=(url,), lease_seconds=30.0)
                                     if firm else FirmSettings())
        (folder / "stack").mkdir()
        stack = NativeStack(folder / "stack", config, pinned=False, venue_mode="ioc").start()
        samples: list[dict[str, Any]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.25):
                firm = (stack.admin("/status") or {}).get("firm") or {}
                if firm:
                    samples.append({"at": time.monotonic(), "events": firm["published"]["events"],
                                    "backlog": firm["backlog"]["events"], "age_s": firm["backlog"]["oldest_age_s"]})

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        result = stack.client("gateway", mode="rate", orders=None, warmup=100, rate=rate, duration=seconds, tif="3",
                              complete_on="final")
        load_ended = time.monotonic()
        caught_up = None
        while firm and time.monotonic() - load_ended < 60:
            firm = (stack.admin("/status") or {}).get("firm") or {}
            if firm and firm["backlog"]["events"] == 0 and firm["backlog"]["batches"] == 0:
                caught_up = time.monotonic() - load_ended
                break
            time.sleep(0.1)
        stop.set()
        sampler.join()
        during = [entry for entry in samples if started + 1.0 <= entry["at"] <= load_ended]
        rates = [(later["events"] - earlier["events"]) / (later["at"] - earlier["at"])
                 for earlier, later in zip(during, during[1:]) if later["at"] > earlier["at"]]
        stack.stop()
        journal = sqlite3.connect(folder / "stack" / "gateway" / "journal.sqlite3")
        journal_events = journal.execute("SELECT COALESCE(SUM(count), 0) FROM batches").fetchone()[0]
        journal.close()
        stream_events = control.run(control.stream_event_count(config.firm, "gw1")) if firm else 0
        return {
            "firm": firm, "target_per_second": rate, "seconds": seconds, "orders_sent": result["measured_orders_sent"],
            "orders_lost": result["orders_lost"], "achieved_per_second": round(result["orders_per_second"], 1),
            "published_events_per_second_p50": round(statistics.median(rates), 1) if rates else 0.0,
            "backlog_events_max": max((entry["backlog"] for entry in during), default=0),
            "lag_seconds_p50": round(statistics.median([entry["age_s"] for entry in during]), 3) if during else 0.0,
            "lag_seconds_max": round(max((entry["age_s"] for entry in during), default=0.0), 3),
            "catch_up_seconds": round(caught_up, 3) if caught_up is not None else None,
            "journal_events": journal_events, "stream_events": stream_events,
            "events_missing": journal_events - stream_events if firm else 0,
        }
    finally:
        if stack is not None:
            stack.stop()
        nats_process.terminate()
        nats_process.wait(10)
        if directory is None:
            shutil.rmtree(folder, ignore_errors=True)


def rebalance_latency(*, rounds: int = 100, pinned: bool = False, directory: Path | None = None) -> dict[str, Any]:
    """Two gateways' budget keepers and risk books (the keeper of a gateway, without its FIX
    sessions) on one NATS: `rounds` rebalances of a firm gross exposure limit; see
    `fixgate.firm.budget.measure_rebalances`. With `pinned`, NATS and this process run on core 1."""
    import asyncio

    from fixgate._fast.instruments import Instruments
    from fixgate._fast.quotes import QuoteBook
    from fixgate._fast.risk import RiskBook
    from fixgate._fast.throttle import Throttle
    from fixgate.config import FirmSettings
    from fixgate.firm import budget

    folder = Path(directory or tempfile.mkdtemp(prefix="fixgate-firm-bench-"))
    prefix = ["taskset", "-c", "1"] if pinned else []
    if pinned:
        os.sched_setaffinity(0, {1})
    nats, url = _start_nats(folder, prefix)
    try:
        books = []
        for _ in range(2):
            instruments = Instruments(4)
            instruments.add("XYZ", tick_size=0.01, lot_size=1.0, reference_price=100.0)
            books.append(RiskBook(instruments, QuoteBook(instruments), Throttle(4, 4)))

        def order(book, notional: float):
            assert book.check_new_order(0, 0, 1, 2, notional // 100, 100.0, time.time_ns()) == 0, \
                "the order was refused"
            order_id = book.last_order_id
            return lambda: book.on_canceled(order_id)

        settings = FirmSettings(name="bench", servers=(url,))
        result = asyncio.run(budget.measure_rebalances(settings, books, folder, rounds, order=order))
    finally:
        nats.terminate()
        nats.wait(10)
        if directory is None:
            shutil.rmtree(folder, ignore_errors=True)
    return {"rounds": rounds, "pinned": pinned, "rebalance": _summary(result["samples_ms"]),
            "conflicts": result["conflicts"]}


def table(result: dict[str, Any]) -> str:
    rows = [("the key's change reaching one gateway", result["delivered"]),
            ("one gateway in KILL_SWITCH (its clock)", result["applied"]),
            ("one gateway's confirmation read back", result["seen"]),
            (f"all {result['gateways']} in KILL_SWITCH", result["all_applied"]),
            (f"all {result['gateways']} confirmations read back", result["all_seen"])]
    lines = [f"firm-wide kill, {result['kills']} kills to {result['gateways']} gateways, "
             f"{'pinned to one core' if result['pinned'] else 'unpinned'}; unconfirmed: {result['unconfirmed']}",
             f"{'':<42} {'count':>6} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}"]
    for label, summary in rows:
        lines.append(f"{label:<42} {summary['count']:>6} {summary['p50_ms']:>9.2f} {summary['p99_ms']:>9.2f} "
                     f"{summary['max_ms']:>9.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fixgate.bench.firm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--gateways", type=int, default=3)
    parser.add_argument("--pinned", action="store_true", help="every process on one core (taskset -c 1)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--load", type=int, metavar="ORDERS_PER_SECOND",
                        help="instead: hold this rate through one gateway and follow its publishing")
    parser.add_argument("--seconds", type=float, default=20.0, help="with --load, for how long (default 20)")
    parser.add_argument("--no-firm", action="store_true", help="with --load, the same gateway without [firm]")
    parser.add_argument("--rebalances", type=int, metavar="ROUNDS",
                        help="instead: this many rebalances of a firm limit between two gateways' budgets")
    arguments = parser.parse_args(argv)
    if arguments.rebalances:
        result = rebalance_latency(rounds=arguments.rebalances, pinned=arguments.pinned)
        summary = result["rebalance"]
        print(json.dumps(result, indent=2) if arguments.json else
              f"firm budget rebalance, {result['rounds']} rounds between 2 gateways, "
              f"{'pinned to one core' if result['pinned'] else 'unpinned'}: p50 {summary['p50_ms']:.2f} ms, "
              f"p99 {summary['p99_ms']:.2f} ms, max {summary['max_ms']:.2f} ms; compare-and-set conflicts "
              f"{result['conflicts']}")
        return 0
    if arguments.load:
        result = publish_under_load(rate=arguments.load, seconds=arguments.seconds, firm=not arguments.no_firm)
        print(json.dumps(result, indent=2))
        return 0 if result["events_missing"] == 0 else 1
    result = kill_propagation(gateways=arguments.gateways, kills=arguments.kills, pinned=arguments.pinned)
    print(json.dumps(result, indent=2) if arguments.json else table(result))
    return 0 if result["unconfirmed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
