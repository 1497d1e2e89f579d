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
                status = control.run(control.firm_status(firm))
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
    arguments = parser.parse_args(argv)
    result = kill_propagation(gateways=arguments.gateways, kills=arguments.kills, pinned=arguments.pinned)
    print(json.dumps(result, indent=2) if arguments.json else table(result))
    return 0 if result["unconfirmed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
