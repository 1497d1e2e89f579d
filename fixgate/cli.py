"""The ``fixgate`` command."""

from __future__ import annotations

import argparse
import os
import platform
import sys

import fixgate


def machine_description() -> str:
    """Return 'CPU model, N cores, Python x.y.z' for benchmark reports."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _format_ns(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1_000_000:
        return f"{value / 1e6:.2f} ms"
    if value >= 1_000:
        return f"{value / 1e3:.2f} µs"
    return f"{value:.0f} ns"


def command_bench(arguments: argparse.Namespace) -> int:
    """Run the hot-path benchmarks, then (unless --hotpath-only) the end-to-end ones; print and save."""
    import json
    import time
    from pathlib import Path

    from fixgate.bench import hotpath

    print(f"fixgate {fixgate.__version__} benchmarks on {machine_description()}")
    print("medians per operation over rounds; p99 per call includes one perf_counter_ns pair "
          f"(~{hotpath.timer_overhead_ns():.0f} ns here)\n")
    header = f"{'group':<38} {'fast median':>12} {'fast p99':>10} {'reference':>12} {'ratio':>8}"
    print(header)
    print("-" * len(header))
    rows = []
    for fast, reference in hotpath.summary(quick=arguments.quick):
        ratio = reference.median_ns / fast.median_ns
        rows.append({"group": fast.group, "fast_median_ns": fast.median_ns, "fast_call_p50_ns": fast.p50_call_ns,
                     "fast_p99_ns": fast.p99_ns, "reference_median_ns": reference.median_ns, "ratio": ratio})
        print(f"{fast.group:<38} {_format_ns(fast.median_ns):>12} {_format_ns(fast.p99_ns):>10} "
              f"{_format_ns(reference.median_ns):>12} {ratio:>7.0f}x")
    print("\nbudget: check chain <= 1 µs per order; batch <= 100 ns per order.\n")
    for row in hotpath.engine_summary(quick=arguments.quick):
        p99 = _format_ns(row["fast_p99_ns"]) if row.get("fast_p99_ns") else "-"
        print(f"{row['group']:<76} {_format_ns(row['fast_median_ns']):>12} {p99:>10}")
        rows.append(row)
    if arguments.hotpath_only:
        return 0
    from fixgate.bench import e2e, report

    output = Path(arguments.output or f"bench-results/{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    print(f"\nend to end on 127.0.0.1 (native peers, the gateway, the simulator: each in its own process, pinned "
          f"to one core and not); results in {output}/ ...", flush=True)
    results = e2e.run(output, quick=arguments.quick)
    results["hotpath"] = rows
    (output / "results.json").write_text(json.dumps(results, indent=2))
    print()
    print(report.table(results))
    if arguments.update_readme:
        readme = Path(arguments.update_readme)
        report.update_readme(readme, results)
        print(f"updated {readme}")
    return 0


def load_config(path: str | None):
    """Load the configuration or print its problems to stderr and exit with status 2."""
    from fixgate import config

    try:
        return config.load(path)
    except config.ConfigError as error:
        print(error.report(), file=sys.stderr)
        raise SystemExit(2) from None


def command_check_config(arguments: argparse.Namespace) -> int:
    """Validate a configuration and print it resolved, secrets masked."""
    import orjson

    from fixgate import config

    loaded = load_config(arguments.file)
    if arguments.json:
        document = {"source": loaded.source, "sha256": loaded.sha256, "config": loaded.as_dict()}
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(f"# {loaded.source}: valid (sha256 {loaded.sha256})")
        sys.stdout.write(config.to_toml(loaded))
    return 0


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    import signal
    import threading

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


def _configure_logging(config, level: str | None = None) -> None:
    from fixgate.ops import logging as logs

    logs.configure(level or config.logging.level, config.logging.format, file=config.logging.file)


def _serve(name: str, build) -> int:
    """Build and start a service, run it until SIGINT or SIGTERM, stop it; exit 1 if it cannot start."""
    try:
        service = build()
        service.start()
    except Exception as error:  # QuickFIX reports a busy port or bad settings as an exception
        print(f"fixgate {name}: cannot start: {error}", file=sys.stderr)
        return 1
    _wait_for_signal()
    service.stop()
    return 0


def command_run(arguments: argparse.Namespace) -> int:
    """Run the gateway until SIGINT or SIGTERM, then stop gracefully."""
    from fixgate.gateway import Gateway

    config = load_config(arguments.config)
    _configure_logging(config, arguments.log_level)
    return _serve("run", lambda: Gateway(config, state_dir=arguments.state_dir,
                                         message_log=config.gateway.message_log))


def command_venue(arguments: argparse.Namespace) -> int:
    """Run the venue simulator until SIGINT or SIGTERM."""
    from pathlib import Path

    from fixgate.simulator.venue import VenueSimulator

    config = load_config(arguments.config)
    _configure_logging(config, arguments.log_level)
    state_dir = arguments.state_dir or Path(config.gateway.state_dir) / "simulator"
    return _serve("venue", lambda: VenueSimulator(config, state_dir, control_port=arguments.control_port,
                                                  counterparties=arguments.counterparty or None,
                                                  message_log=config.gateway.message_log))


def command_demo(arguments: argparse.Namespace) -> int:
    """Run the demo: simulator, gateway and a client, with a summary every second."""
    from fixgate import demo

    config = load_config(arguments.config)
    return demo.run_demo(config, duration=arguments.duration, external_client=arguments.external_client,
                         rate=arguments.rate, seed=arguments.seed, state_dir=arguments.state_dir)


def command_demo_client(arguments: argparse.Namespace) -> int:
    """Run the demo's client flow (started by `fixgate demo`)."""
    import signal

    from fixgate import demo

    config = load_config(arguments.config)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return demo.run_client_flow(config, arguments.state_dir, arguments.duration, arguments.rate, arguments.seed)


def command_recover(arguments: argparse.Namespace) -> int:
    """Check the journal (replay it and print what it holds), or set an unreadable one aside."""
    import json
    import time
    from pathlib import Path

    from fixgate.core import recovery
    from fixgate.core.journal import IntentLog, JournalError, SqliteJournal
    from fixgate.gateway import NANOSECONDS_PER_DAY, instruments_of, next_day_start_ns

    config = load_config(arguments.config)
    state_dir = Path(arguments.state_dir or config.gateway.state_dir)
    path = state_dir / "journal.sqlite3"
    if not path.exists():
        print(f"fixgate recover: there is no journal in {state_dir} (nothing to check or set aside)", file=sys.stderr)
        return 1
    try:
        journal = SqliteJournal(path, create=False)
        recovered = recovery.replay(journal, IntentLog(state_dir), instruments_of(config),
                                    [client.name for client in config.clients], [venue.name for venue in config.venues],
                                    config.risk.starting_equity,
                                    day_start_ns=next_day_start_ns(config, time.time_ns()) - NANOSECONDS_PER_DAY)
        journal.close()
    except JournalError as error:
        if not arguments.set_aside:
            print(f"fixgate recover: {error}", file=sys.stderr)
            print("The gateway will not trade on it. Check the open orders and positions at every venue by hand "
                  "(their own records are the truth now), then run `fixgate recover --set-aside` to move the "
                  "journal aside and start from an empty one.", file=sys.stderr)
            return 2
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        moved = []
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(path) + suffix)
            if source.exists():
                target = Path(f"{path}{suffix}.unreadable-{stamp}")
                source.rename(target)
                moved.append(str(target))
        print(f"fixgate recover: moved the unreadable journal aside: {', '.join(moved)}")
        print("The next start begins with no orders and flat positions: enter what the venues hold before "
              "trading, or cancel it there.")
        return 0
    if arguments.set_aside:
        print(f"fixgate recover: {path} is readable; nothing set aside", file=sys.stderr)
        return 1
    live = recovered.live_views()
    print(json.dumps({
        "journal": str(path),
        "entries_after_snapshot": recovered.entries,
        "snapshot_seq": recovered.snapshot_seq,
        "written_ahead_applied": recovered.intents_applied,
        "replay_seconds": round(recovered.seconds, 3),
        "illegal_transitions": recovered.illegal,
        "open_orders": [view.summary() for view in live],
        "positions": recovered.positions.snapshot()["positions"],
    }, indent=2))
    return 0


def _admin_request(arguments: argparse.Namespace, method: str, path: str, body: dict | None = None):
    """Call the admin API; return (status, document). Exit 1 with a message when it cannot be reached."""
    import json
    import os
    import urllib.error
    import urllib.request

    url = arguments.url
    token = arguments.token or os.environ.get("FIXGATE_ADMIN_TOKEN")
    if url is None or (token is None and method == "POST"):
        config = load_config(arguments.config)
        url = url or f"http://{config.admin.host}:{config.admin.port}"
        token = token or config.admin.token
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    if token and method == "POST":
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"{}")
        except ValueError:
            return error.code, {"error": error.reason}
    except (urllib.error.URLError, OSError) as error:
        print(f"fixgate: cannot reach the admin API at {url}: {getattr(error, 'reason', error)}", file=sys.stderr)
        raise SystemExit(1) from None


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def _print_result(status: int, document: dict) -> int:
    import json

    print(json.dumps(document, indent=2, default=str))
    if status >= 400 or not document.get("ok", True):
        print(f"fixgate: refused ({status}): {document.get('error', 'see above')}", file=sys.stderr)
        return 1
    return 0


def command_status(arguments: argparse.Namespace) -> int:
    """Print the gateway's status from its admin API."""
    return _print_result(*_admin_request(arguments, "GET", "/status"))


def command_kill(arguments: argparse.Namespace) -> int:
    """Trip the kill switch."""
    return _print_result(*_admin_request(arguments, "POST", "/kill", {"reason": arguments.reason, "actor": _actor()}))


def command_resume(arguments: argparse.Namespace) -> int:
    """Release the kill switch."""
    return _print_result(*_admin_request(arguments, "POST", "/resume", {"actor": _actor()}))


def command_reset_breaker(arguments: argparse.Namespace) -> int:
    """Reset the circuit breaker (after its cooldown, when no trigger holds)."""
    return _print_result(*_admin_request(arguments, "POST", "/reset-breaker", {"actor": _actor()}))


def command_cancel_all(arguments: argparse.Namespace) -> int:
    """Cancel every open order (of one client session with --session)."""
    body = {"actor": _actor()}
    if arguments.session:
        body["session"] = arguments.session
    return _print_result(*_admin_request(arguments, "POST", "/cancel-all", body))


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``fixgate`` command."""
    parser = argparse.ArgumentParser(
        prog="fixgate",
        description="fixgate: a FIX order gateway with a Cython pre-trade risk hot path.",
    )
    parser.add_argument("--version", action="version", version=f"fixgate {fixgate.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench = commands.add_parser(
        "bench", help="measure the hot path and the gateway end to end",
        description="Measure the pre-trade check chain, the batch checker, quote validation and the ring, "
                    "Cython against the plain-Python reference on identical inputs; then, end to end on "
                    "127.0.0.1 with each side in its own process: (a) client -> simulator, (b) client -> gateway "
                    "-> simulator, (c) a raw TCP ping-pong, the gateway's stage breakdown, throughput and "
                    "sustained rates. Writes results.json and PNG plots.")
    bench.add_argument("--quick", action="store_true", help="small inputs and short runs (under 30 s)")
    bench.add_argument("--hotpath-only", action="store_true", help="only the hot-path micro-benchmarks")
    bench.add_argument("--output", help="folder for results.json and the plots (default: bench-results/<time>)")
    bench.add_argument("--update-readme", metavar="README", help="rewrite the performance table in this README")
    bench.set_defaults(handler=command_bench)

    check = commands.add_parser(
        "check-config", help="validate a configuration file and print it resolved",
        description="Validate FILE (or the bundled defaults) and print every setting with its resolved "
                    "value, passwords and tokens masked. Problems go to stderr, exit status 2.")
    check.add_argument("file", nargs="?", help="TOML configuration (default: the bundled defaults)")
    check.add_argument("--json", action="store_true", help="print JSON instead of TOML")
    check.set_defaults(handler=command_check_config)

    from pathlib import Path

    from fixgate import demo

    run = commands.add_parser(
        "run", help="run the gateway",
        description="Run the gateway: accept clients, connect to venues, check and route orders. SIGINT or "
                    "SIGTERM stops it gracefully (no new orders, cancel what is open when so configured, "
                    "log out, flush).")
    run.add_argument("-c", "--config", help="TOML configuration (default: the bundled defaults)")
    run.add_argument("--state-dir", type=Path, help="override gateway.state_dir")
    run.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="override logging.level")
    run.set_defaults(handler=command_run)

    venue = commands.add_parser(
        "venue", help="run the venue simulator alone",
        description="Run the venue simulator: a FIX 4.4 acceptor with a price-time matching engine, a seeded "
                    "market maker and market data, on simulator.port.")
    venue.add_argument("-c", "--config", help="TOML configuration (default: the bundled defaults)")
    venue.add_argument("--state-dir", type=Path, help="FIX stores and logs (default: <gateway.state_dir>/simulator)")
    venue.add_argument("--control-port", type=int, default=0,
                       help="serve fault injection (POST /faults, JSON) on 127.0.0.1 at this port")
    venue.add_argument("--counterparty", action="append", metavar="COMP_ID",
                       help="a CompID allowed to connect (repeatable; default: gateway.comp_id)")
    venue.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="override logging.level")
    venue.set_defaults(handler=command_venue)

    demo_parser = commands.add_parser(
        "demo", help="run the simulator, the gateway and a trading client, with a live summary",
        description="Start the venue simulator, the gateway and a client that trades a realistic flow "
                    "(including orders that must be rejected), and print a one-line summary every second.")
    demo_parser.add_argument("-c", "--config", help="TOML configuration (default: the bundled defaults)")
    demo.add_arguments(demo_parser)
    demo_parser.set_defaults(handler=command_demo)

    def admin_command(name: str, handler, help_text: str, description: str):
        command = commands.add_parser(name, help=help_text, description=description)
        command.add_argument("-c", "--config", help="configuration naming the admin address and token "
                                                    "(default: the bundled defaults)")
        command.add_argument("--url", help="admin API address, e.g. http://127.0.0.1:9822")
        command.add_argument("--token", help="bearer token (default: FIXGATE_ADMIN_TOKEN, then the configuration)")
        command.set_defaults(handler=handler)
        return command

    admin_command("status", command_status, "print the gateway's status",
                  "Print the risk state, sessions, orders, positions and latency from the admin API.")
    kill = admin_command("kill", command_kill, "trip the kill switch",
                         "Trip the kill switch: every new order is rejected, open orders are cancelled, the "
                         "venues are logged out; it survives a restart until `fixgate resume`.")
    kill.add_argument("--reason", required=True, help="why (kept in the audit trail and sent to clients)")
    admin_command("resume", command_resume, "release the kill switch", "Release the kill switch; trading resumes.")
    admin_command("reset-breaker", command_reset_breaker, "reset the circuit breaker",
                  "Reset the circuit breaker after its cooldown, unless its trigger still holds.")
    cancel_all = admin_command("cancel-all", command_cancel_all, "cancel every open order",
                               "Send a cancel for every open order at every venue.")
    cancel_all.add_argument("--session", help="only this client session's orders")

    recover = commands.add_parser(
        "recover", help="check the journal, or set an unreadable one aside",
        description="Replay the journal and print the open orders and positions it holds (exit 0), or say why "
                    "it cannot be read (exit 2). With --set-aside, move an unreadable journal aside so that the "
                    "gateway can start from an empty one, after the venues' records were checked by hand.")
    recover.add_argument("-c", "--config", help="TOML configuration (default: the bundled defaults)")
    recover.add_argument("--state-dir", type=Path, help="override gateway.state_dir")
    recover.add_argument("--set-aside", action="store_true", help="move an unreadable journal aside")
    recover.set_defaults(handler=command_recover)

    demo_client = commands.add_parser("demo-client", help=argparse.SUPPRESS)
    demo_client.add_argument("-c", "--config")
    demo_client.add_argument("--state-dir", type=Path, required=True)
    demo_client.add_argument("--duration", type=float, required=True)
    demo_client.add_argument("--rate", type=float, default=40.0)
    demo_client.add_argument("--seed", type=int, default=7)
    demo_client.set_defaults(handler=command_demo_client)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``fixgate`` command; return its exit code."""
    # NumPy's OpenBLAS starts a thread per core at import; nothing here does linear algebra, and on a
    # small machine those threads only take turns from the engine's.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.command is None:
        parser.print_help(sys.stderr)
        return 2
    return arguments.handler(arguments)


if __name__ == "__main__":
    sys.exit(main())
