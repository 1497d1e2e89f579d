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
    print("\nbudget: check chain <= 1 µs per order, every control on; batch <= 100 ns per order with the account "
          "and instrument limits.\n")
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

    if arguments.file and arguments.config and arguments.file != arguments.config:
        print("fixgate check-config: give the file once (FILE or -c FILE)", file=sys.stderr)
        return 2
    loaded = load_config(arguments.config or arguments.file)
    warnings = config.warnings(loaded)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if arguments.json:
        document = {"source": loaded.source, "sha256": loaded.sha256, "warnings": warnings,
                    "config": loaded.as_dict()}
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        count = f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else ""
        print(f"# {loaded.source}: valid (sha256 {loaded.sha256}){count}")
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


def command_dropcopy(arguments: argparse.Namespace) -> int:
    """Run the drop copy until SIGINT or SIGTERM."""
    from fixgate.fix.dropcopy import DropCopy

    config = load_config(arguments.config)
    _configure_logging(config, arguments.log_level)
    if not config.firm.name or not config.dropcopy.clients:
        print(f"fixgate dropcopy: {config.source} needs a [firm] section and at least one [[dropcopy.clients]]",
              file=sys.stderr)
        return 2
    return _serve("dropcopy", lambda: DropCopy(config, state_dir=arguments.state_dir,
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
    if url is None or token is None:
        config = load_config(arguments.config)
        url = url or f"http://{config.admin.host}:{config.admin.port}"
        token = token or config.admin.token
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    if token:                       # reads too: a gateway may keep /status behind a token
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


def _quantity(text: str) -> str:
    from decimal import Decimal

    value = Decimal(text)
    return f"{value.normalize():+,f}" if value else "0"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def status_text(status: dict, health: dict | None = None) -> str:
    """The gateway's status for a person: a few labelled lines of at most 120 columns."""
    from decimal import Decimal

    from fixgate.core.positions import by_symbol

    risk = status["risk"]
    commit = (status.get("git_commit") or "unknown")[:12]
    lines = [f"fixgate {status['name']} {status['version']} (commit {commit}, config "
             f"{status.get('config_sha256', '')[:12]})  up {_duration(status['uptime_s'])}  at {status.get('time')}"]
    state = f"risk       {risk['risk_state']}"
    if risk["risk_state"] != "NORMAL" or risk.get("reason") not in (None, "start"):
        state += f" since {risk.get('since') or '-'} by {risk.get('actor', '-')}: {risk.get('reason')}"
    lines.append(state)
    if health is not None and health.get("status") != "ok":
        lines.append(f"HEALTH     {health.get('status')}: {'; '.join(health.get('watchdog', {}).get('problems', []))}")
    clients = ", ".join(f"{name} {'on' if on else 'off'}" for name, on in status["clients"].items()) or "none"
    venues = ", ".join(f"{name} {'on' if status['venues'][name] else 'off'} ({state})"
                       for name, state in status["venue_states"].items()) or "none"
    lines.append(f"sessions   clients: {clients}   venues: {venues}")
    for scope, killed in (("client", risk.get("killed_clients") or {}), ("account", risk.get("killed_accounts") or {})):
        for name, kill in killed.items():
            lines.append(f"KILLED     {scope} {name} since {kill.get('since', '-')} by {kill.get('actor', '-')}: "
                         f"{kill.get('reason', '')}"[:120])
    restricted = "; ".join(f"{'everyone' if scope == '*' else scope}: {', '.join(symbols)}"
                           for scope, symbols in (risk.get("restricted") or {}).items() if symbols)
    if restricted:
        lines.append(f"restricted {restricted}"[:120])
    drain = risk.get("drain")
    if drain:
        lines.append(f"DRAIN      {drain['state']} since {drain['since']} by {drain['actor']} ({drain['reason']}): "
                     f"{drain['open_orders']} open, {drain['cancels_sent']} cancels sent; no new orders taken")
    orders = status["orders"]
    today = orders.get("today") or {}
    lines.append(f"today      {today.get('accepted', 0):,} accepted, {today.get('rejected', 0):,} rejected, "
                 f"{today.get('fills', 0):,} fill reports, {today.get('cancels', 0):,} cancels (from the journal)")
    rejected = sum(orders["rejected"].values())
    lines.append(f"process    since start: {orders['received']:,} received, {orders['accepted']:,} accepted, "
                 f"{rejected:,} rejected, {orders['fills']:,} fill reports; {orders['open']:,} open now")
    reasons_today = today.get("rejected_by_reason") or {}
    if reasons_today:
        reasons = sorted(reasons_today.items(), key=lambda item: (-item[1], item[0]))
        text = ", ".join(f"{name} {count:,}" for name, count in reasons[:6])
        lines.append(f"rejects    {text}{', ...' if len(reasons) > 6 else ''}")
    latency = status["latency_ns"]
    lines.append(f"latency    client in -> venue out: p50 {_format_ns(latency['p50'])}, p99 {_format_ns(latency['p99'])}")
    positions = status["positions"]
    held = "  ".join(f"{symbol} {_quantity(str(quantity))}" for symbol, quantity, _ in by_symbol(positions)
                     if quantity) or "flat"
    lines.append(f"positions  {held}")
    if positions:
        pnl = Decimal(positions["realized_pnl"]) + Decimal(positions["unrealized_pnl"])
        lines.append(f"account    equity {Decimal(positions['equity']):,.2f}, P&L {pnl:+,.2f}, gross exposure "
                     f"{Decimal(positions['gross_exposure']):,.2f}, drawdown {float(positions['drawdown']):.2%}")
    alarms = ", ".join(f"{name} {count}" for name, count in status.get("alarms", {}).items()) or "none"
    lines.append(f"alarms     {alarms}")
    journal = status["journal"]
    lines.append(f"journal    {journal['events_written']:,} events written, {journal['pending_events']:,} pending"
                 f"{', FAILING' if journal['failing'] else ''}")
    return "\n".join(lines)


def command_status(arguments: argparse.Namespace) -> int:
    """Print the gateway's status from its admin API: a summary, or JSON with --json; --watch repeats it;
    --expect-version / --expect-config exit 4 when the gateway runs something else."""
    import json
    import time

    count = 0
    while True:
        status, document = _admin_request(arguments, "GET", "/status")
        if status >= 400:
            return _print_result(status, document)
        mismatches = []
        if arguments.expect_version and document.get("version") != arguments.expect_version:
            mismatches.append(f"version {document.get('version')} (expected {arguments.expect_version})")
        if arguments.expect_config and document.get("config_sha256") != arguments.expect_config:
            mismatches.append(f"configuration sha256 {document.get('config_sha256')} (expected {arguments.expect_config})")
        if arguments.json:
            print(json.dumps(document, indent=2, default=str))
        else:
            _, health = _admin_request(arguments, "GET", "/health")
            if arguments.watch and sys.stdout.isatty():
                print("\033[H\033[2J", end="")
            print(status_text(document, health), flush=True)
        if mismatches:
            print(f"fixgate status: {document.get('name')} runs {'; '.join(mismatches)}", file=sys.stderr)
            return 4
        count += 1
        if not arguments.watch or (arguments.count and count >= arguments.count):
            return 0
        if not arguments.json:
            print()
        try:
            time.sleep(arguments.watch)
        except KeyboardInterrupt:
            return 0


def _firm_settings(arguments: argparse.Namespace):
    """The [firm] section of the configuration, or exit 2 when there is none."""
    loaded = load_config(arguments.config)
    if not loaded.firm.name:
        print(f"fixgate: {loaded.source} has no [firm] section (firm.name): there is no firm to reach",
              file=sys.stderr)
        raise SystemExit(2)
    return loaded.firm


def _firm_call(coroutine_of) -> tuple[int, dict]:
    from fixgate.firm import control

    try:
        return 200, control.run(coroutine_of(control))
    except control.FirmUnreachable as error:
        return 503, {"ok": False, "error": str(error)}


def command_firm_kill(arguments: argparse.Namespace, on: bool) -> int:
    """Trip or release the firm-wide kill switch; print each live gateway's confirmation.
    Exit 3 when a gateway did not confirm within --wait."""
    settings = _firm_settings(arguments)
    status, document = _firm_call(lambda control: control.set_kill(settings, on, _actor(),
                                                                     getattr(arguments, "reason", "") or "",
                                                                     wait_s=arguments.firm_wait))
    code = _print_result(status, document)
    if code == 0:
        missing = sorted(name for name, confirm in document["confirms"].items() if confirm is None)
        if missing:
            print(f"fixgate: no confirmation within {arguments.firm_wait:g} s from {', '.join(missing)}",
                  file=sys.stderr)
            return 3
        if not document["confirms"]:
            print(f"fixgate: the firm-wide kill switch is {'on' if on else 'off'}; no live gateway announced "
                  f"itself to confirm it", file=sys.stderr)
    return code


def _whole_units(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def command_firm(arguments: argparse.Namespace) -> int:
    """The firm view and the fleet's build."""
    settings = _firm_settings(arguments)
    if arguments.firm_command == "expect-build":
        import fixgate.gateway as gateway_module

        commit = arguments.commit or gateway_module.git_commit() or "unknown"
        version = arguments.build_version or fixgate.__version__
        return _print_result(*_firm_call(lambda control: control.set_expected_build(settings, version, commit,
                                                                                      _actor())))
    if arguments.firm_command == "confirm-build":
        return _print_result(*_firm_call(lambda control: control.confirm_build(settings, arguments.gateway, _actor())))
    if arguments.firm_command == "release-budget":
        return _print_result(*_firm_call(lambda control: control.release_budget(settings, arguments.gateway,
                                                                                 _actor())))
    if arguments.firm_command == "set-limit":
        return _print_result(*_firm_call(lambda control: control.set_limit(settings, arguments.limit,
                                                                            arguments.value, _actor())))
    status, document = _firm_call(lambda control: control.firm_status(settings))
    if status >= 400 or arguments.json:
        return _print_result(status, document)
    print(firm_status_text(document))
    return 4 if any(row["build_differs"] and not row.get("build_confirmed") for row in document["gateways"].values()
                    if row["alive"]) else 0


def firm_status_text(document: dict) -> str:
    """The firm view for people: one line per gateway, the kill switch, the totals."""
    kill = document.get("kill") or {}
    lines = [f"firm {document['firm']}: kill switch {'ON' if kill.get('on') else 'off'}"
             + (f" (by {kill.get('actor')}: {kill.get('reason')})" if kill.get("on") else "")]
    expected = document.get("expected_build")
    lines.append(f"expected build: {expected['version']} {expected['commit']}" if expected
                 else "expected build: none named (every live gateway should run the same)")
    lines.append(f"{'GATEWAY':<14} {'ALIVE':<6} {'STATE':<16} {'BUILD':<22} {'OPEN':>6} {'GROSS':>14}  NOTES")
    for name, row in document["gateways"].items():
        notes = []
        if row["build_differs"]:
            notes.append("BUILD DIFFERS" + (" (confirmed)" if row.get("build_confirmed") else ""))
        if row.get("reduce_only"):
            notes.append("reduce-only: " + "; ".join(row["reduce_only"]))
        if row.get("backlog_events"):
            notes.append(f"{row['backlog_events']} events not yet on the stream")
        build = f"{row.get('version')} {str(row.get('commit'))[:12]}"
        lines.append(f"{name:<14} {('yes' if row['alive'] else 'NO'):<6} {row.get('risk_state', '-'):<16} "
                     f"{build:<22} {row.get('open_orders', 0):>6} {float(row.get('gross_exposure', 0)):>14,.2f}  "
                     f"{', '.join(notes)}")
    totals = document["totals"]
    lines.append(f"total: {totals['alive']} of {totals['gateways']} gateways alive, {totals['open_orders']} open "
                 f"orders, gross exposure {totals['gross_exposure']:,.2f}")
    stream = document.get("stream") or {}
    if stream:
        lines.append("from the stream (each gateway's records replayed):")
        lines.append(f"{'GATEWAY':<14} {'EVENTS':>8} {'OPEN':>6} {'GROSS':>14}  POSITIONS")
        for name, view in stream.items():
            positions = ", ".join(f"{row['symbol']} {row['quantity']}" + (f" ({row['account']})" if row['account'] else "")
                                  for row in view["positions"]) or "flat"
            lines.append(f"{name:<14} {view['events']:>8} {view['open_orders']:>6} "
                         f"{float(view['gross_exposure']):>14,.2f}  {positions}")
        net = ", ".join(f"{symbol} {quantity}" for symbol, quantity in totals["stream_positions"].items()) or "flat"
        lines.append(f"firm: {totals['stream_open_orders']} open orders, gross exposure "
                     f"{totals['stream_gross_exposure']:,.2f} (at last fills), net {net}")
    limits = document.get("limits") or {}
    if limits:
        lines.append(f"{'FIRM LIMIT':<22} {'LIMIT':>16} {'ALLOCATED':>16} {'USED':>16}  SPLIT (allocation/used)")
        for name, row in limits.items():
            split = ", ".join(f"{gateway} {amount:,}/{row['usage'].get(gateway, 0):,.0f}"
                              for gateway, amount in sorted(row["allocations"].items()))
            if row["wants"]:
                split += "; asking: " + ", ".join(f"{gateway} {amount:,}" for gateway, amount in row["wants"].items())
            lines.append(f"{name:<22} {row['limit']:>16,} {row['allocated']:>16,} {row['used']:>16,.2f}  {split}")
            if row.get("over_allocated"):
                lines.append(f"  {name}: ALLOCATED ABOVE THE LIMIT (it was lowered): no gateway takes more until the "
                             "gateways give back what they do not use; release a stopped one with "
                             "`fixgate firm release-budget GATEWAY`")
    return "\n".join(lines)


def command_kill(arguments: argparse.Namespace) -> int:
    """Trip the kill switch (of one client session with --client; of every gateway with --firm)."""
    if arguments.firm:
        return command_firm_kill(arguments, True)
    body = {"reason": arguments.reason, "actor": _actor()}
    if arguments.client:
        body["session"] = arguments.client
    if arguments.account:
        body["account"] = arguments.account
    return _print_result(*_admin_request(arguments, "POST", "/kill", body))


def command_resume(arguments: argparse.Namespace) -> int:
    """Release the kill switch, then wait for the venues to log back on and reconcile: until they
    have, orders are still refused VENUE_UNAVAILABLE (exit 3 when they have not within --wait)."""
    import time

    if arguments.firm:
        return command_firm_kill(arguments, False)
    if arguments.client and arguments.account:
        print("fixgate resume: give --client or --account, not both", file=sys.stderr)
        return 2
    if arguments.client or arguments.account:
        body = {"actor": _actor()}
        body.update({"session": arguments.client} if arguments.client else {"account": arguments.account})
        return _print_result(*_admin_request(arguments, "POST", "/resume", body))
    status, document = _admin_request(arguments, "POST", "/resume", {"actor": _actor()})
    if status >= 400 or not document.get("ok", True) or arguments.wait <= 0:
        return _print_result(status, document)
    if document.get("drain"):
        code = _print_result(status, document)
        print("fixgate resume: the kill switch is released, but the gateway is drained: it takes no orders and "
              "stays away from the venues until it restarts", file=sys.stderr)
        return code
    deadline = time.monotonic() + arguments.wait
    while True:
        _, ready = _admin_request(arguments, "GET", "/ready")
        if ready.get("ready") or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    document["ready"] = bool(ready.get("ready"))
    document["venue_states"] = ready.get("venue_states", {})
    code = _print_result(status, document)
    if not document["ready"]:
        states = ", ".join(f"{name}: {state}" for name, state in document["venue_states"].items())
        print(f"fixgate resume: the kill switch is released, but the venues are not ready after {arguments.wait:g} s "
              f"({states}); orders are refused VENUE_UNAVAILABLE until they are", file=sys.stderr)
        return 3
    return code


def command_restrict(arguments: argparse.Namespace) -> int:
    """Put a symbol on the restricted list (of everyone, or of one client), or take it off."""
    body = {"symbol": arguments.symbol, "restricted": not arguments.remove, "actor": _actor()}
    if arguments.client:
        body["session"] = arguments.client
    if arguments.reason:
        body["reason"] = arguments.reason
    return _print_result(*_admin_request(arguments, "POST", "/restrict", body))


def command_reset_breaker(arguments: argparse.Namespace) -> int:
    """Reset the circuit breaker (after its cooldown, when no trigger holds)."""
    return _print_result(*_admin_request(arguments, "POST", "/reset-breaker", {"actor": _actor()}))


def command_cancel_all(arguments: argparse.Namespace) -> int:
    """Cancel every open order (of one client session with --session)."""
    body = {"actor": _actor()}
    if arguments.session:
        body["session"] = arguments.session
    return _print_result(*_admin_request(arguments, "POST", "/cancel-all", body))


def command_drain(arguments: argparse.Namespace) -> int:
    """Close the gateway to new orders, cancel (or wait out) the working ones, log the venues out, and
    report when done: exit 0 once drained, 3 when not drained in time."""
    import time

    body = {"actor": _actor(), "mode": "wait" if arguments.wait_orders else "cancel", "timeout": arguments.timeout}
    if arguments.reason:
        body["reason"] = arguments.reason
    status, document = _admin_request(arguments, "POST", "/drain", body)
    if status >= 400 or not document.get("ok", True):
        return _print_result(status, document)
    drain = document["drain"]
    print(f"fixgate drain: closed to new orders ({drain['reason']}); {drain['open_orders']} orders working, "
          + (f"{drain['cancels_sent']} cancels sent" if body["mode"] == "cancel"
             else f"left to work for up to {arguments.timeout:g} s, then cancelled"), flush=True)
    deadline = time.monotonic() + arguments.timeout + 30
    last = None
    while time.monotonic() < deadline:
        code, status_document = _admin_request(arguments, "GET", "/status")
        current = status_document.get("risk", {}).get("drain") if code == 200 else None
        if current is None:
            print(f"fixgate drain: the gateway no longer reports the drain ({code}: "
                  f"{status_document.get('error', 'restarted?')})", file=sys.stderr)
            return 3
        drain = current
        if drain["state"] == "drained":
            venues = ", ".join(f"{name} {'on' if on else 'off'}" for name, on in status_document["venues"].items())
            if drain.get("left_open"):
                print(f"fixgate drain: the venues were logged out at {drain['drained_at']} with {drain['left_open']} "
                      f"orders still open (their cancels not answered in time): check them at the venue "
                      f"({venues})", file=sys.stderr)
                return 3
            print(f"fixgate drain: drained at {drain['drained_at']}: 0 orders open, "
                  f"{drain['cancels_sent']} cancels sent, venues logged out ({venues}); the gateway can be stopped")
            return 0
        if (drain["state"], drain["open_orders"]) != last:
            last = (drain["state"], drain["open_orders"])
            print(f"fixgate drain: {drain['state']}, {drain['open_orders']} orders open", flush=True)
        time.sleep(0.2)
    print(f"fixgate drain: not drained in time ({drain['state']}, {drain['open_orders']} orders open)", file=sys.stderr)
    return 3


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
                    "value, passwords and tokens masked. Every problem goes to stderr in one pass, exit status 2; "
                    "warnings (demo secrets, empty sections) go to stderr too, exit status 0.")
    check.add_argument("file", nargs="?", help="TOML configuration (default: the bundled defaults)")
    check.add_argument("-c", "--config", help="the same, as every other command takes it")
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

    dropcopy = commands.add_parser(
        "dropcopy", help="serve every gateway's execution reports to compliance over FIX",
        description="A FIX acceptor on dropcopy.port for the compliance clients of [[dropcopy.clients]]: each gets "
                    "an ExecutionReport for every order event of every gateway of the firm (read from its NATS "
                    "JetStream stream), tagged with the gateway and the client (Parties), and resumes where it "
                    "left off after it or the drop copy restarts.")
    dropcopy.add_argument("-c", "--config", help="TOML configuration with [firm] and [dropcopy]")
    dropcopy.add_argument("--state-dir", type=Path, help="override dropcopy.state_dir")
    dropcopy.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="override logging.level")
    dropcopy.set_defaults(handler=command_dropcopy)

    demo_parser = commands.add_parser(
        "demo", help="run the simulator, the gateway and a trading client, with a live summary",
        description="Start the venue simulator, the gateway and a client that trades a realistic flow "
                    "(including orders that must be rejected), and print a summary every second (orders, "
                    "totals, positions and P&L); at the end, stop in order and say what the venue still holds.")
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

    status = admin_command("status", command_status, "print the gateway's status",
                           "Print the risk state, sessions, orders, positions and latency from the admin API: "
                           "a summary, or the whole document with --json (times in ISO 8601, UTC).")
    status.add_argument("--json", action="store_true", help="print the status document as JSON")
    status.add_argument("--watch", type=float, nargs="?", const=2.0, default=None, metavar="SECONDS",
                        help="print it again every SECONDS (default 2) until Ctrl-C")
    status.add_argument("--count", type=int, default=0, help="with --watch, stop after this many prints")
    status.add_argument("--expect-version", metavar="VERSION",
                        help="exit 4 unless the gateway runs this version (for deployment checks)")
    status.add_argument("--expect-config", metavar="SHA256",
                        help="exit 4 unless the gateway runs the configuration with this sha256 "
                             "(`fixgate check-config FILE` prints it)")
    kill = admin_command("kill", command_kill, "trip the kill switch",
                         "Trip the kill switch: every new order is rejected, open orders are cancelled, the "
                         "venues are logged out; it survives a restart until `fixgate resume`.")
    kill.add_argument("--reason", required=True, help="why (kept in the audit trail and sent to clients)")
    kill.add_argument("--client", metavar="SESSION",
                      help="only this client session: its new orders are refused CLIENT_KILLED and its working "
                           "orders cancelled; every other client keeps trading")
    kill.add_argument("--account", help="only this account (the Account(1) of its orders, else its client's name), "
                                        "whichever client sends them")
    kill.add_argument("--firm", action="store_true",
                      help="every gateway of the firm ([firm] in the configuration), through NATS: each confirms "
                           "(exit 3 when one does not within --firm-wait)")
    kill.add_argument("--firm-wait", type=float, default=5.0, metavar="SECONDS",
                      help="with --firm, how long to wait for the gateways' confirmations (default 5)")
    resume = admin_command("resume", command_resume, "release the kill switch",
                           "Release the kill switch; the venues are logged on again and reconciled before "
                           "trading resumes. Waits for that (exit 3 when it takes longer than --wait).")
    resume.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                        help="how long to wait for every venue to be ready (0: do not wait; default 30)")
    resume.add_argument("--client", metavar="SESSION", help="release only this client session's kill switch")
    resume.add_argument("--account", help="release only this account's kill switch")
    resume.add_argument("--firm", action="store_true",
                        help="release the firm-wide kill switch: every gateway it killed resumes (a gateway killed "
                             "by its own operator stays killed)")
    resume.add_argument("--firm-wait", type=float, default=5.0, metavar="SECONDS",
                        help="with --firm, how long to wait for the gateways' confirmations (default 5)")
    restrict = admin_command("restrict", command_restrict, "put a symbol on the restricted list, or take it off",
                             "Refuse new orders and replaces in SYMBOL (RESTRICTED_INSTRUMENT) for every client, or "
                             "for one with --client; --remove takes it off. Audited, kept across restarts.")
    restrict.add_argument("symbol", help="the instrument's symbol")
    restrict.add_argument("--client", metavar="SESSION", help="only for this client session")
    restrict.add_argument("--remove", action="store_true", help="take the symbol off the list")
    restrict.add_argument("--reason", help="why (kept in the audit trail)")
    admin_command("reset-breaker", command_reset_breaker, "reset the circuit breaker",
                  "Reset the circuit breaker after its cooldown, unless its trigger still holds.")
    cancel_all = admin_command("cancel-all", command_cancel_all, "cancel every open order",
                               "Send a cancel for every open order at every venue.")
    cancel_all.add_argument("--session", help="only this client session's orders")
    drain = admin_command("drain", command_drain, "close to new orders, finish working orders, log out",
                          "Before a blue-green or canary switch: refuse every new order (clients read "
                          "GATEWAY_CLOSED and the reason), cancel the working orders (or with --wait-orders let "
                          "them work up to --timeout, then cancel them), log the venues out once none is open, and "
                          "say when done. The gateway stays closed until it restarts.")
    drain.add_argument("--wait-orders", action="store_true", help="let working orders fill or expire first")
    drain.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                       help="how long working orders may work with --wait-orders (default 60)")
    drain.add_argument("--reason", help="sent to clients with each refused order")

    firm = commands.add_parser(
        "firm", help="the firm view: every gateway, the firm-wide kill switch, the fleet's build",
        description="Over NATS ([firm] in the configuration): `status` prints every gateway's state, build, open "
                    "orders and exposure and the firm's totals, flagging a build that differs from the fleet's "
                    "(exit 4 while one is not confirmed); `expect-build` names the fleet's build (a gateway that "
                    "runs another is reduce-only until confirmed); `confirm-build GATEWAY` lets one run its own; "
                    "`release-budget GATEWAY` gives a stopped gateway's share of the firm-wide limits back; "
                    "`set-limit LIMIT VALUE` changes a firm-wide limit.")
    firm.add_argument("-c", "--config", help="TOML configuration with a [firm] section")
    firm_commands = firm.add_subparsers(dest="firm_command", metavar="FIRM_COMMAND")
    firm_status = firm_commands.add_parser("status", help="every gateway and the firm's totals")
    firm_status.add_argument("--json", action="store_true", help="print the document as JSON")
    expect = firm_commands.add_parser("expect-build", help="name the build every gateway should run")
    expect.add_argument("--commit", help="the git commit (default: this checkout's)")
    expect.add_argument("--version", dest="build_version", help=f"the version (default: {fixgate.__version__})")
    confirm = firm_commands.add_parser("confirm-build", help="let a gateway trade on the build it runs")
    confirm.add_argument("gateway", help="the gateway's name")
    release = firm_commands.add_parser("release-budget",
                                       help="give a stopped gateway's share of the firm-wide limits back to the firm")
    release.add_argument("gateway", help="the gateway's name")
    set_limit = firm_commands.add_parser("set-limit", help="change a firm-wide limit (the firm's ledger)")
    set_limit.add_argument("limit", help="gross_exposure, daily_notional, daily_orders or credit.<client>")
    set_limit.add_argument("value", type=_whole_units, help="the new limit, in whole units")
    firm.set_defaults(handler=command_firm, json=False, firm_command="status")

    recover = commands.add_parser(
        "recover", help="check the journal, or set an unreadable one aside",
        description="Replay the journal and print the open orders and positions it holds (exit 0), or say why "
                    "it cannot be read (exit 2). With --set-aside, move an unreadable journal aside so that the "
                    "gateway can start from an empty one, after the venues' records were checked by hand.")
    recover.add_argument("-c", "--config", help="TOML configuration (default: the bundled defaults)")
    recover.add_argument("--state-dir", type=Path, help="override gateway.state_dir")
    recover.add_argument("--set-aside", action="store_true", help="move an unreadable journal aside")
    recover.set_defaults(handler=command_recover)

    demo_client = commands.add_parser("demo-client")
    # The demo's own child process: kept out of `fixgate --help` (argparse would list it as ==SUPPRESS==).
    commands._choices_actions = [action for action in commands._choices_actions if action.dest != "demo-client"]
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
