"""The composition root: build every part of the gateway from a `Config`, start it, stop it.

The order path runs in the native engine (``fixgate._engine``): QuickFIX C++ sessions, the hot
path's checks, the id maps, write-ahead and the event ring, with no Python on it. Python builds it,
recovers its state from the journal before it starts, runs the state thread (OMS view, positions,
journal, marking, the risk-state machine) and the admin API, and stops it.
"""

from __future__ import annotations

import datetime as dt
import gc
import ipaddress
import os
import socket
import string
import subprocess
import threading
import time
from bisect import bisect_left
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from fixgate import __version__
from fixgate._engine.engine import NativeEngine, decimal_step, listening_address, stage_bucket_bounds
from fixgate._fast.codes import RejectCode, reject_name
from fixgate._fast.describe import RejectDescriber
from fixgate._fast.instruments import Instruments
from fixgate._fast.quotes import QuoteBook
from fixgate._fast.risk import RiskBook
from fixgate._fast.throttle import Throttle
from fixgate.config import Config, host_port, trading_day_offset_ns
from fixgate.core.quote_sources import QuoteSourceAgent
from fixgate.core.schedule import Schedule, ScheduleAgent
from fixgate.core import events as ev
from fixgate.core import recovery
from fixgate.core.agents import MarkingAgent, OrderStateAgent, RejectLog, StateThread, observers
from fixgate.core.events import Event
from fixgate.core.journal import IntentLog, SqliteJournal
from fixgate.core.orders import Instrument
from fixgate.core.risk_state import CommandRefused, RiskLimits, RiskStateMachine, Transition
from fixgate.core.clock import NANOSECONDS_PER_DAY, day_start_at, iso_time
from fixgate.core.controls import ClientControls
from fixgate.core.safety import AuditLog, Command, RiskAgent, RiskStateStore, restore
from fixgate.fix.engine import AcceptorSession, InitiatorSession, settings_text
from fixgate.ops import metrics
from fixgate.ops.net import listen_problem, port_free

log = structlog.get_logger("fixgate.gateway")

MILLISECOND = 1_000_000

CANCEL_REASONS = {"kill_switch": ev.CANCEL_KILL_SWITCH, "circuit_breaker": ev.CANCEL_CIRCUIT_BREAKER,
                  "shutdown": ev.CANCEL_SHUTDOWN, "drain": ev.CANCEL_SHUTDOWN}


def _optional_float(value) -> float | None:
    return None if value is None else float(value)


def run_token(now_ns: int | None = None) -> str:
    """Return a short token unique to this start (milliseconds since the epoch, base 36)."""
    milliseconds = (now_ns or time.time_ns()) // MILLISECOND
    digits = string.digits + string.ascii_uppercase
    token = ""
    while milliseconds:
        milliseconds, digit = divmod(milliseconds, 36)
        token = digits[digit] + token
    return token or "0"


def next_day_start_ns(config: Config, now_ns: int) -> int:
    """Return when the next trading day starts, after `now_ns`."""
    return day_start_at(now_ns, trading_day_offset_ns(config)) + NANOSECONDS_PER_DAY


def _memory() -> dict[str, int | None]:
    """Return this process's resident memory from /proc: in all, anonymous (the heaps) and file-backed
    (mapped files such as the message store, which the kernel can page out); None elsewhere."""
    found: dict[str, int | None] = {"rss": None, "anon": None, "file": None}
    keys = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                key = keys.get(line.split(maxsplit=1)[0] if line.strip() else "")
                if key:
                    found[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return found


def git_commit() -> str | None:
    """Return the commit of the code running, when it can be known."""
    commit = os.environ.get("FIXGATE_GIT_COMMIT")
    if commit:
        return commit
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                                text=True, timeout=2)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def risk_limits(config: Config) -> RiskLimits:
    """Return the risk-state machine's thresholds from the configuration."""
    risk = config.risk
    return RiskLimits(warning_drawdown=risk.warning_drawdown, breaker_drawdown=risk.breaker_drawdown,
                      recovery_hysteresis=risk.recovery_hysteresis,
                      breaker_cooldown_ns=risk.breaker_cooldown_seconds * 1_000_000_000,
                      kill_order_rate=risk.kill_order_rate, kill_after_breaker_trips=risk.kill_after_breaker_trips)


# The reject code of each book-wide firm limit, whose rejects carry the firm's figures.
FIRM_LIMIT_CODES = {"gross_exposure": RejectCode.FIRM_GROSS_EXPOSURE, "daily_notional": RejectCode.FIRM_DAILY_NOTIONAL,
                    "daily_orders": RejectCode.FIRM_DAILY_ORDERS}


def firm_meters(config: Config) -> list:
    """The firm-wide limits this gateway meters: those of [firm.limits] and each client's firm_credit."""
    from fixgate.firm.budget import Meter

    limits = config.firm.limits
    meters = [Meter(name, name, -1, int(value)) for name, value in (
        ("gross_exposure", limits.max_gross_exposure), ("daily_notional", limits.max_daily_notional),
        ("daily_orders", limits.max_daily_orders)) if value is not None]
    meters += [Meter(f"credit.{client.name}", "client_credit", index, int(client.firm_credit))
               for index, client in enumerate(config.clients) if client.firm_credit is not None]
    return meters


def build_book(config: Config, now_ns: int | None = None) -> RiskBook:
    """Build the hot path (instruments, quote book, throttle, risk book) from `config`."""
    instruments = Instruments(max(len(config.instruments), 1))
    sectors = {name: number for number, name in enumerate(sorted({i.sector for i in config.instruments if i.sector}))}
    for instrument in config.instruments:
        instruments.add(
            instrument.symbol,
            tick_size=float(instrument.tick_size),
            lot_size=float(instrument.lot_size),
            reference_price=float(instrument.reference_price),
            adv=float(instrument.adv),
            max_adv_fraction=instrument.max_adv_fraction,
            max_order_qty=_optional_float(instrument.max_order_qty),
            max_order_notional=_optional_float(instrument.max_order_notional),
            max_position=_optional_float(instrument.max_position),
            max_open_orders=instrument.max_open_orders,
            price_collar=instrument.price_collar,
            stale_after_ns=instrument.stale_after_ms * MILLISECOND,
            requires_live_quote=instrument.requires_live_quote,
            sector=sectors.get(instrument.sector, -1),
        )
    quotes = QuoteBook(
        instruments,
        max_spread_fraction=config.quotes.max_spread_fraction,
        max_age_ns=config.quotes.max_age_ms * MILLISECOND,
        max_future_skew_ns=config.quotes.max_future_skew_ms * MILLISECOND,
        max_jump_fraction=config.quotes.max_jump_fraction,
    )
    risk = config.risk
    throttle = Throttle(
        max(len(config.clients), 1), instruments.capacity,
        global_rate=risk.global_max_order_rate, global_burst=risk.global_burst,
        breach_limit=risk.throttle_breach_limit, breach_window_ns=risk.throttle_breach_window_ms * MILLISECOND,
    )
    for index, client in enumerate(config.clients):
        throttle.configure_session(index, client.max_order_rate, client.burst)
    for index, venue in enumerate(config.venues):
        if venue.max_message_rate is not None:
            throttle.configure_venue(index, venue.max_message_rate, venue.message_burst)
    for index, instrument in enumerate(config.instruments):
        if instrument.max_order_rate is not None:
            throttle.configure_instrument(index, instrument.max_order_rate, instrument.burst)
    book = RiskBook(
        instruments, quotes, throttle,
        max_order_notional=_optional_float(risk.max_order_notional),
        max_gross_exposure=_optional_float(risk.max_gross_exposure),
        max_leverage=risk.max_leverage,
        max_daily_orders=risk.max_daily_orders,
        max_daily_notional=_optional_float(risk.max_daily_notional),
        warning_order_qty_factor=risk.warning_order_qty_factor,
        warning_collar_factor=risk.warning_collar_factor,
        max_concentration=risk.max_concentration,
        max_sector_concentration=risk.max_sector_concentration,
        warning_concentration_factor=risk.warning_concentration_factor,
        order_capacity=config.gateway.order_capacity,
        equity=float(risk.starting_equity),
        day_start_ns=next_day_start_ns(config, now_ns or time.time_ns()),
    )
    symbols = {instrument.symbol: index for index, instrument in enumerate(config.instruments)}
    for symbol in config.risk.restricted:
        book.set_restricted(symbols[symbol], True)
    for index, client in enumerate(config.clients):
        book.configure_client(
            index,
            max_daily_notional=_optional_float(client.max_daily_notional),
            max_open_notional=_optional_float(client.max_open_notional),
            max_window_notional=_optional_float(client.max_window_notional),
            window_ns=client.window_ms * MILLISECOND,
            duplicate_window_ns=client.duplicate_window_ms * MILLISECOND,
            self_match_prevention=client.self_match_prevention,
        )
        for symbol in client.restricted:
            book.set_restricted(symbols[symbol], True, index)
    return book


def tune_collector() -> None:
    """Keep Python's cyclic garbage collector off the state thread's back.

    The state thread allocates an order view and a few small objects per order, nearly none of them
    in cycles; with the default thresholds the collector ran every few hundred orders and took about
    6% of the gateway's CPU under load. What exists at start (modules, configuration) is frozen out of
    the collector's sight; young objects are collected ten times less often. Idempotent.
    """
    gc.freeze()
    threshold, *older = gc.get_threshold()
    if threshold < 7000:
        gc.set_threshold(7000, *older)


class StartError(RuntimeError):
    """The gateway cannot start; the message says why and which setting to change."""


def refuse_moved_state(config: Config, state_dir: Path) -> None:
    """Refuse to start on an empty state directory when the journal is where a relative state_dir
    used to point (the current folder, before paths were relative to the configuration file)."""
    if not config.state_dir_written:
        return
    legacy = Path.cwd() / config.state_dir_written
    if legacy.resolve() == state_dir.resolve():
        return
    if (legacy / "journal.sqlite3").exists() and not (state_dir / "journal.sqlite3").exists():
        raise StartError(f"gateway.state_dir {config.state_dir_written!r} is relative to the configuration file's "
                         f"folder: {state_dir}, which has no journal, while {legacy} (relative to the current "
                         "folder) has one. Move that state directory there, or give gateway.state_dir as an "
                         "absolute path; the gateway does not start on an empty state beside a journal.")


def instruments_of(config: Config) -> list[Instrument]:
    return [Instrument(instrument.symbol, instrument.venue, Decimal(instrument.lot_size),
                       Decimal(instrument.tick_size)) for instrument in config.instruments]


def listen_address(host: str) -> str:
    """The IPv4 address the acceptor binds for `host` ("" for every interface).

    Raises
    ------
    ValueError
        When a host name does not resolve to an IPv4 address.
    """
    if host in ("", "*", "0.0.0.0"):
        return ""
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    try:
        return socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except OSError as error:
        raise ValueError(f"acceptor.host {host!r} does not resolve to an IPv4 address: {error}") from None


def engine_config(config: Config, state_dir: Path, token: str, *, message_log: bool) -> dict[str, Any]:
    """Return the native engine's configuration, writing QuickFIX's settings files under `state_dir`."""
    sessions_dir = state_dir / "sessions"
    for folder in (sessions_dir, state_dir / "store", state_dir / "fixlog"):
        folder.mkdir(parents=True, exist_ok=True)
    acceptor = [AcceptorSession(config.gateway.comp_id, client.comp_id, config.acceptor.port, client.session)
                for client in config.clients]
    initiator = [InitiatorSession(config.gateway.comp_id, venue.comp_id, venue.host, venue.port,
                                  venue.heartbeat_seconds, venue.reconnect_seconds, venue.session,
                                  tuple(host_port(backup) for backup in venue.backup_hosts))
                 for venue in config.venues]
    day_start = config.risk.trading_day_start_utc
    acceptor_path = sessions_dir / "gateway-acceptor.cfg"
    if acceptor:
        acceptor_path.write_text(settings_text(state_dir, acceptor, day_start_utc=day_start, tls=config.acceptor.tls))
    # One initiator per TLS configuration (QuickFIX keeps one TLS context per initiator).
    groups: dict[Any, list[InitiatorSession]] = {}
    for venue, session in zip(config.venues, initiator):
        groups.setdefault(venue.tls if venue.tls.enabled else None, []).append(session)
    initiators = []
    for number, (tls, sessions) in enumerate(groups.items()):
        path = sessions_dir / ("gateway-initiator.cfg" if number == 0 else f"gateway-initiator-{number}.cfg")
        path.write_text(settings_text(state_dir, sessions, day_start_utc=day_start, tls=tls))
        initiators.append((str(path), tls is not None))
    venue_index = {venue.name: index for index, venue in enumerate(config.venues)}
    symbols = {instrument.symbol: index for index, instrument in enumerate(config.instruments)}
    gateway = config.gateway
    return {
        "comp_id": gateway.comp_id,
        "token": token,
        "acceptor_settings": str(acceptor_path) if acceptor else "",
        "acceptor_tls": config.acceptor.tls.enabled,
        "acceptor_address": listen_address(config.acceptor.host),
        "acceptor_port": config.acceptor.port,
        "initiator_settings": initiators,
        "fixlog_dir": str(state_dir / "fixlog") if message_log else "",
        "fixlog_max_bytes": config.gateway.message_log_max_bytes,
        "store_dir": str(state_dir / "store"),
        "store": gateway.message_store,
        "intent_log": str(state_dir / "intents.log"),
        "instruments": [{"symbol": instrument.symbol, "venue": venue_index[instrument.venue],
                         "quote_backup": venue_index.get(instrument.backup_quote_venue, -1),
                         "stale_ns": instrument.stale_after_ms * 1_000_000,
                         "lot": decimal_step(Decimal(instrument.lot_size)),
                         "tick": decimal_step(Decimal(instrument.tick_size))} for instrument in config.instruments],
        "clients": [{"name": client.name, "comp_id": client.comp_id, "username": client.username,
                     "password": client.password,
                     "instruments": None if "*" in client.instruments
                     else [symbols[symbol] for symbol in client.instruments if symbol in symbols],
                     "cancel_on_disconnect": client.cancel_on_disconnect,
                     "certificate_name": client.certificate_name,
                     "source_addresses": [str(ipaddress.ip_address(address)) for address in client.source_addresses]}
                    for client in config.clients],
        "venues": [{"name": venue.name, "comp_id": venue.comp_id, "username": venue.username,
                    "password": venue.password, "market_data": venue.market_data} for venue in config.venues],
        "ring_capacity": gateway.ring_capacity,
        "max_queued_bytes": gateway.max_outbound_queue_bytes,
        "stall_limit_ms": gateway.slow_consumer_timeout_ms,
        "reconcile_timeout_ms": gateway.reconcile_timeout_ms,
        "retention_orders": gateway.retained_orders,
    }


def stage_summary(buckets: list[int]) -> dict[str, float]:
    """Return count and p50/p90/p99/p99.9 (ns, bucket midpoints) of an engine stage histogram."""
    total = sum(buckets)
    if not total:
        return {"count": 0}
    cumulative = []
    running = 0
    for count in buckets:
        running += count
        cumulative.append(running)
    result: dict[str, float] = {"count": total}
    for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)):
        index = min(bisect_left(cumulative, fraction * total), len(buckets) - 1)
        low, high = stage_bucket_bounds(index)
        result[name] = (low + high) / 2
    return result


class EngineOrders:
    """What the risk-state agent asks of the order path: cancel all, count the orders received."""

    def __init__(self, engine: NativeEngine, sessions: dict[str, int]) -> None:
        self.engine = engine
        self.sessions = sessions

    def cancel_all(self, session: str | None = None, reason: str = "cancel all", text: str | None = None) -> int:
        if session is not None and session not in self.sessions:
            raise CommandRefused(f"no client session named {session!r} (sessions: {', '.join(self.sessions)})")
        index = -1 if session is None else self.sessions[session]
        return self.engine.cancel_all(index, CANCEL_REASONS.get(reason, ev.CANCEL_BY_OPERATOR),
                                      reason if text is None else text)

    def orders_received(self) -> int:
        return self.engine.counters()["received"]

    def close(self, reason: str) -> None:
        self.engine.set_accepting(False, reason)


class EngineVenues:
    """Log every venue session out (kill switch) or back in (resume)."""

    def __init__(self, engine: NativeEngine) -> None:
        self.engine = engine

    def log_out(self, reason: str) -> None:
        self.engine.log_out_venues(reason)

    def log_on(self) -> None:
        self.engine.log_on_venues()


class Gateway:
    """The gateway process: the native engine, the state thread, the admin API.

    Parameters
    ----------
    config : Config
        The validated configuration.
    state_dir : Path, optional
        Overrides ``config.gateway.state_dir``.
    message_log : bool
        Keep FIX message logs in files.
    """

    def __init__(self, config: Config, *, state_dir: Path | None = None, message_log: bool = True,
                 admin: bool | None = None) -> None:
        self.config = config
        self.state_dir = Path(state_dir or config.gateway.state_dir)
        if state_dir is None:
            refuse_moved_state(config, self.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.clock = time.time_ns
        self.started_ns = time.time_ns()
        self.commit = git_commit()
        self.token = run_token(self.started_ns)
        self.book = build_book(config, self.started_ns)
        self.describer = RejectDescriber(self.book)
        self.instruments = instruments_of(config)
        self.session_names = [client.name for client in config.clients]
        self.session_index = {name: index for index, name in enumerate(self.session_names)}
        self.venue_names = [venue.name for venue in config.venues]
        self.day_start_ns = next_day_start_ns(config, self.started_ns) - NANOSECONDS_PER_DAY
        # Startup is recovery: the journal's snapshot and tail, then the intents it never got.
        self.journal = SqliteJournal(self.state_dir / "journal.sqlite3")
        self.intents = IntentLog(self.state_dir)
        self.recovered = recovery.replay(self.journal, self.intents, self.instruments, self.session_names,
                                         self.venue_names, config.risk.starting_equity,
                                         day_start_ns=self.day_start_ns,
                                         retention_orders=config.gateway.retained_orders)
        if self.recovered.from_intents:
            # What only the intent log knew becomes part of the journal, so that it reads whole.
            self.journal.write([(time.time_ns(), b"".join(ev.event_bytes(event)
                                                          for event in self.recovered.from_intents))], [])
        self.orders = self.recovered.orders
        self.positions = self.recovered.positions
        settings = engine_config(config, self.state_dir, self.token, message_log=message_log)
        self.acceptor_address = settings["acceptor_address"]        # acceptor.host resolved once
        self.engine = NativeEngine(settings, self.book, self.describer)
        recovery.install(self.recovered, self.engine, self.book)
        if self.recovered.entries or self.recovered.snapshot_seq:
            log.info("journal_replayed", entries=self.recovered.entries, snapshot_seq=self.recovered.snapshot_seq,
                     intents_applied=self.recovered.intents_applied, open_orders=len(self.recovered.live_views()),
                     seconds=round(self.recovered.seconds, 3), illegal_transitions=self.recovered.illegal,
                     illegal_reasons=self.recovered.illegal_reasons)
        self.replayer = recovery.Replayer(self.orders, self.positions, self.recovered.daily,
                                          on_illegal=self._on_illegal)
        self.replayer.next_order_id = self.recovered.next_order_id
        self.replayer.last_seq = self.recovered.last_event_seq
        self.journal_agent = recovery.JournalAgent(
            self.journal, self._snapshot_state, rotate_intents=self._rotate_intents,
            on_failure=lambda error: self._alarm(ev.ALARM_JOURNAL_WRITE_FAILED, f"the journal cannot be written: {error}"),
            on_written=self._journal_written)
        # Why the book takes only position-reducing orders (the firm link's lease, a build not
        # confirmed): written by the firm link's thread, under the lock.
        self.reduce_only_reasons: dict[str, str] = {}
        self._reduce_only_lock = threading.Lock()
        # What a reader of this gateway's records needs to read them (the firm's drop copy).
        self.catalogue = {"instruments": [{"symbol": instrument.symbol, "venue": instrument.venue,
                                           "lot_size": str(instrument.lot_size), "tick_size": str(instrument.tick_size)}
                                          for instrument in config.instruments],
                          "sessions": self.session_names, "venues": self.venue_names,
                          "comp_ids": {client.name: client.comp_id for client in config.clients}}
        self.firm = None
        self.budgets = None
        if config.firm.name:
            from fixgate.firm import budget
            from fixgate.firm.link import FirmLink

            meters = firm_meters(config)
            if meters:
                # Before any order: the book holds what this gateway held of each firm limit, else nothing.
                budget_file = budget.BudgetFile(self.state_dir / "firm-budgets.json")
                saved = budget_file.load(trust_seconds=config.firm.lease_seconds)
                budget.install(self.engine, meters, saved)
                self.budgets = budget.BudgetKeeper(config.gateway.name, meters, self.engine, budget_file,
                                                   config.firm.limits.chunk, saved=saved,
                                                   lease_seconds=config.firm.lease_seconds,
                                                   explain=self._explain_budget)
            self.firm = FirmLink(config.firm, config.gateway.name, self.state_dir / "journal.sqlite3", self,
                                 build={"version": __version__, "commit": self.commit or "unknown",
                                        "config_sha256": config.sha256}, budgets=self.budgets)
        self.tracer = None
        if config.tracing.endpoint:
            from fixgate.ops.tracing import OrderTracer

            self.tracer = OrderTracer(config.tracing.endpoint, config.tracing.sample_ratio,
                                      service_name=config.tracing.service_name, instance=config.gateway.name,
                                      sessions=self.session_names, venues=self.venue_names,
                                      symbols=[instrument.symbol for instrument in config.instruments],
                                      export_interval_ms=config.tracing.export_interval_ms,
                                      max_per_second=config.tracing.max_orders_per_second)
        self.order_state = OrderStateAgent(self.engine.drain, self.replayer, self.journal_agent,
                                           on_engine_event=self._on_engine_event,
                                           observe=observers(RejectLog(self.session_names, reject_name).observe,
                                                             self._observe_budgets if self.budgets is not None else None,
                                                             self.tracer.observe if self.tracer is not None else None))
        self.marking = MarkingAgent(self.book, self.positions)
        self.audit = AuditLog(self.state_dir / "audit.log",
                              forward=lambda record: self.journal_agent.note(record.get("event", "audit"), record))
        self.risk_store = RiskStateStore(self.state_dir / "risk_state.json")
        machine = RiskStateMachine(risk_limits(config))
        restore(machine, self.risk_store, self.started_ns, day_start_ns=self.day_start_ns)
        self.transition_counts: dict[str, int] = {}
        self.alarm_counts: dict[str, int] = {}
        self.alarms: list[dict[str, Any]] = []
        self.venue_states = {name: ev.VENUE_DOWN for name in self.venue_names}
        self.clients_logged_on = {name: False for name in self.session_names}
        engine_orders = EngineOrders(self.engine, self.session_index)
        self.controls = ClientControls(
            self.book, self.session_index, {instrument.symbol: index for index, instrument in enumerate(config.instruments)},
            self.state_dir / "controls.json", self.audit.write,
            cancel_all=lambda session, text: engine_orders.cancel_all(session, "cancel all", text),
            set_kill_reason=self.engine.set_client_kill_reason, set_account_killed=self.engine.set_account_killed)
        self.controls.load()
        self.risk_agent = RiskAgent(machine, self.book, self.positions, engine_orders,
                                    EngineVenues(self.engine), self.risk_store, self.audit,
                                    logout_timeout_ns=int(config.risk.kill_logout_timeout_seconds * 1e9),
                                    on_transition=self._count_transition, day_start_ns=self.day_start_ns,
                                    controls=self.controls, on_day_roll=self.engine.forget_day,
                                    wake=self.engine.wake_consumer)
        self.engine.set_risk_reason(machine.reason)
        self._failed_agents: set[str] = set()
        day_start = config.risk.trading_day_start_utc
        self.schedules = {
            "venues": {venue.name: Schedule.from_settings(venue.session, default_start=day_start)
                       for venue in config.venues},
            "clients": {client.name: Schedule.from_settings(client.session, default_start=day_start)
                        for client in config.clients}}
        self.schedule_agent = ScheduleAgent(
            [schedule if venue.session.start_time else None
             for venue, schedule in zip(config.venues, self.schedules["venues"].values())],
            self.engine.set_venue_closed_reason)
        self.quote_sources = QuoteSourceAgent(
            [instrument.symbol for instrument in config.instruments], [instrument.venue for instrument in config.instruments],
            [instrument.backup_quote_venue or None for instrument in config.instruments], self.venue_names,
            self.engine.quote_source)
        self.state_thread = StateThread([self.order_state, self.journal_agent, self.marking, self.risk_agent,
                                         self.schedule_agent, self.quote_sources],
                                        wait=self.engine.wait_events, wake=self.engine.wake_consumer,
                                        on_error=self._agent_failed, backlog=lambda: self.order_state.full,
                                        nice=config.gateway.state_thread_nice)
        self.registry = metrics.build_registry(self)
        self.admin = None
        if config.admin.enabled if admin is None else admin:
            from fixgate.ops.admin import AdminServer, Token

            tokens = [Token(config.admin.token_name, os.environ.get("FIXGATE_ADMIN_TOKEN") or config.admin.token,
                            "operator")]
            tokens += [Token(token.name, token.token, token.role) for token in config.admin.tokens]
            try:
                if len(tokens[0].secret) < 12 or any(token.secret == tokens[0].secret for token in tokens[1:]):
                    raise StartError("FIXGATE_ADMIN_TOKEN: a token needs at least 12 characters and must differ "
                                     "from every token in admin.tokens")
                try:
                    self.admin = AdminServer(self, config.admin.host, config.admin.port, tokens,
                                             read_requires_token=config.admin.read_requires_token)
                except OSError as error:
                    raise StartError(listen_problem("admin.port", config.admin.host, config.admin.port,
                                                    error)) from None
            except StartError:
                self.engine.stop(0)                 # nothing started: let the engine and the journal go
                self.journal.close()
                raise
        self._stopped = threading.Event()

    # -- LIFE CYCLE -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the state thread, then the engine (listen for clients, connect to venues)."""
        tune_collector()
        if not port_free(self.config.acceptor.port, self.acceptor_address):
            raise StartError(listen_problem("acceptor.port", self.acceptor_address, self.config.acceptor.port))
        self.state_thread.start()
        if self.firm is not None:
            self.firm.start()
        self.engine.start()
        if self.admin is not None:
            self.admin.start()
        if self.book.risk_state != 0:
            log.warning("gateway_started_restricted", risk_state=self.risk_agent.machine.state.name,
                        reason=self.risk_agent.machine.reason)
        log.info("gateway_started", name=self.config.gateway.name, version=__version__, token=self.token,
                 acceptor=f"{listening_address(self.config.acceptor.port)}:{self.config.acceptor.port}",
                 config_sha256=self.config.sha256,
                 state_dir=str(self.state_dir))

    def session_schedules(self) -> dict[str, dict[str, Any]]:
        """Each session's schedule: open now or not, the next open or close (UTC)."""
        now = dt.datetime.now(dt.timezone.utc)
        return {side: {name: schedule.describe(now) for name, schedule in schedules.items()}
                for side, schedules in self.schedules.items()}

    def venues_logged_on(self) -> bool:
        """Return True when every venue session is logged on."""
        return all(self.engine.venue_logged_on(index) for index in range(len(self.venue_names)))

    def wait_for_venues(self, timeout: float = 10.0, *, ready: bool = False) -> bool:
        """Wait until every venue is logged on (and reconciled, when `ready`); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.venues_logged_on() and (not ready or self.venues_ready()):
                return True
            time.sleep(0.02)
        return self.venues_logged_on() and (not ready or self.venues_ready())

    def venues_ready(self) -> bool:
        return all(self.engine.venue_state(index) == ev.VENUE_READY for index in range(len(self.venue_names)))

    def stop(self, *, cancel_open_orders: bool | None = None, timeout: float = 5.0,
             logout_timeout: float = 2.0) -> None:
        """Stop gracefully: refuse new orders, optionally cancel what is open and wait (up to
        `timeout`) for the venues to confirm, log out (waiting up to `logout_timeout`), drain the
        events, journal them, write a snapshot."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.engine.set_accepting(False, "gateway closed: the gateway is stopping")
        cancel = self.config.gateway.cancel_on_shutdown if cancel_open_orders is None else cancel_open_orders
        if cancel and self.engine.cancel_all(-1, ev.CANCEL_SHUTDOWN, "shutdown"):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.book.live_orders:
                time.sleep(0.02)
        self.engine.stop(int(logout_timeout * 1000))
        self.state_thread.stop()
        self.journal_agent.flush()
        try:
            self.journal_agent.write_snapshot()
        except Exception:
            log.exception("snapshot_failed")
        if self.firm is not None:
            self.firm.stop()
        self.journal.close()
        if self.admin is not None:
            self.admin.stop()
        if self.tracer is not None:
            self.tracer.close()
        log.info("gateway_stopped", name=self.config.gateway.name, open_orders=self.book.live_orders,
                 events=self.order_state.events)

    def settle(self, timeout: float = 3.0) -> bool:
        """Wait until the state thread has applied every event the engine pushed so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ring = self.engine.ring()
            if ring["occupancy"] == 0 and ring["overflow"] == 0:
                passes = self.state_thread.passes
                while self.state_thread.passes < passes + 2 and time.monotonic() < deadline:
                    time.sleep(0.002)
                if self.engine.ring()["occupancy"] == 0:
                    return True
            time.sleep(0.005)
        return False

    # -- ENGINE EVENTS (state thread) -------------------------------------------------------------

    def _journal_written(self) -> None:
        if self.firm is not None:
            self.firm.notify()
        if self.budgets is not None:
            self.budgets.notify()                   # usage moved: a budget may be running low

    def _explain_budget(self, meter, text: str) -> None:
        """The firm's figures, added to the Text(58) of this limit's rejects (a client's credit has none:
        one code serves every client)."""
        code = FIRM_LIMIT_CODES.get(meter.kind)
        if code is not None:
            self.engine.set_code_reason(int(code), text)

    def _observe_budgets(self, event: Event) -> None:
        if event.kind == ev.REJECTED and RejectCode.FIRM_GROSS_EXPOSURE <= event.code <= RejectCode.FIRM_CLIENT_CREDIT:
            self.budgets.notify()                   # an order found a budget used up: ask now

    # -- THE FIRM (the firm link's thread) --------------------------------------------------------

    def firm_kill(self, actor: str, reason: str) -> str:
        """Trip the kill switch for the firm; return the risk state after (a gateway killed
        already stays so, under its first reason)."""
        self.risk_agent.submit(Command("kill", actor, reason=reason))
        return self.risk_agent.machine.state.name

    def firm_resume(self, actor: str) -> str:
        """Release a kill switch that the firm tripped (never one tripped here); return the state after."""
        machine = self.risk_agent.machine
        if machine.state.name == "KILL_SWITCH" and machine.actor.startswith("firm:"):
            self.risk_agent.submit(Command("resume", actor))
        return machine.state.name

    def firm_kill_switch(self, on: bool, actor: str, reason: str) -> tuple[int, dict[str, Any]]:
        """Trip or release the firm-wide kill switch from this gateway (the admin API); return an
        HTTP status and the kill with every live gateway's confirmation."""
        if self.firm is None:
            return 409, {"ok": False, "error": "this gateway belongs to no firm (no [firm] section)"}
        from fixgate.firm import control

        try:
            result = control.run(control.set_kill(self.config.firm, on, actor, reason))
        except control.FirmUnreachable as error:
            return 503, {"ok": False, "error": str(error)}
        return 200, {"ok": True, **result}

    def set_reduce_only(self, key: str, reason: str | None) -> None:
        """Take only position-reducing orders while any reason holds (`reason` None: `key`'s is gone)."""
        with self._reduce_only_lock:
            if reason is None:
                self.reduce_only_reasons.pop(key, None)
            else:
                self.reduce_only_reasons[key] = reason
            text = "; ".join(self.reduce_only_reasons.values())
            self.engine.set_reduce_only_reason(text)
            self.book.set_reduce_only(bool(self.reduce_only_reasons))
        entry = {"event": "reduce_only_changed", "key": key, "on": reason is not None, "reason": reason or "",
                 "reduce_only": bool(self.reduce_only_reasons)}
        self.audit.write(entry)
        log.warning("reduce_only_changed", key=key, on=reason is not None, reason=reason,
                    reduce_only=bool(self.reduce_only_reasons))

    def firm_announcement(self) -> dict[str, Any]:
        """What this gateway tells the firm every quarter lease."""
        return {"risk_state": self.risk_agent.machine.state.name, "pid": os.getpid(),
                "started_ns": self.started_ns, "open_orders": self.book.live_orders,
                "orders_received": self.engine.counters()["received"],
                "gross_exposure": float(self.book.gross_exposure()),
                "positions": self.positions_snapshot(), "catalogue": self.catalogue}

    def _snapshot_state(self) -> dict[str, Any]:
        return recovery.snapshot_state(self.orders, self.positions, self.replayer.daily, self.replayer.next_order_id,
                                       self.orders.next_reject_id, self.replayer.last_seq)

    def _rotate_intents(self) -> None:
        if self.engine.rotate_intents(str(self.intents.previous)) != 0:
            log.error("intent_log_rotation_failed", path=str(self.intents.path))

    def _on_illegal(self, view, event: Event, reason: str) -> None:
        log.warning("illegal_transition", order_id=view.gateway_order_id if view else event.order_id,
                    cl_ord_id=view.cl_ord_id if view else None, event_kind=ev.KIND_NAMES.get(event.kind),
                    reason=reason)

    def _on_engine_event(self, event: Event) -> None:
        kind = event.kind
        if kind == ev.SESSION_LOGON or kind == ev.SESSION_LOGOUT:
            logged_on = kind == ev.SESSION_LOGON
            if event.flags & ev.FLAG_VENUE:
                name, side = self.venue_names[event.venue_id], "venue"
            else:
                name, side = self.session_names[event.session_id], "client"
                self.clients_logged_on[name] = logged_on
            (log.info if logged_on or side == "client" or self._stopped.is_set() else log.warning)(
                "session_logged_on" if logged_on else "session_logged_out", session=name, side=side)
        elif kind == ev.VENUE_STATE:
            name = self.venue_names[event.venue_id]
            self.venue_states[name] = event.status
            (log.warning if event.status == ev.VENUE_REFUSED else log.info)(
                "venue_state_changed", venue=name, state=ev.VENUE_STATE_NAMES.get(event.status),
                reason=ev.text(event.text_a))
        elif kind == ev.ALARM:
            self._alarm(event.code, ev.alarm_text(event), order_id=event.order_id)
        elif kind == ev.RECONCILED:
            log.warning("order_reconciled", order_id=event.order_id, difference=ev.text(event.text_a))
        elif kind == ev.LOGON_REFUSED:
            log.warning("logon_refused", comp_id=ev.text(event.text_a), reason=ev.text(event.text_b))

    def _alarm(self, code: int, text: str, *, order_id: int = 0) -> None:
        name = ev.ALARM_NAMES.get(code, f"alarm_{code}")
        self.alarm_counts[name] = self.alarm_counts.get(name, 0) + 1
        self.alarms.append({"alarm": name, "text": text, "order_id": order_id, "at_ns": time.time_ns()})
        del self.alarms[:-100]
        log.error("alarm_raised", alarm=name, text=text, order_id=order_id or None)
        if code in ev.FATAL_ALARMS:
            self.risk_agent.report_fatal(text)

    def _agent_failed(self, agent: str, error: Exception) -> None:
        """An agent of the state thread raised: the books may no longer be right, so stop trading
        (the alarm is raised once per agent; the thread keeps counting its errors)."""
        if agent in self._failed_agents:
            return
        self._failed_agents.add(agent)
        self._alarm(ev.ALARM_STATE_THREAD_FAILED, f"{agent} failed: {type(error).__name__}: {error}")

    def _count_transition(self, transition: Transition) -> None:
        name = transition.after.name
        self.transition_counts[name] = self.transition_counts.get(name, 0) + 1
        self.engine.set_risk_reason(transition.reason)

    # -- STATUS -----------------------------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        return self.engine.counters()

    def _client_controls(self, index: int) -> dict[str, Any]:
        """One client's kill switch, credit and duplicate window, as /status shows them."""
        client = self.book.client(index)
        name = self.session_names[index]
        return {"killed": client["killed"], "kill": self.controls.killed.get(name),
                "daily_notional": round(client["daily_notional"], 2),
                "max_daily_notional": client["max_daily_notional"],
                "open_notional": round(client["open_notional"], 2), "max_open_notional": client["max_open_notional"],
                "window_notional": round(max(client["window_level"] - (time.time_ns() - client["window_last_ns"])
                                             * (client["max_window_notional"] or 0.0) / client["window_ns"], 0.0), 2),
                "max_window_notional": client["max_window_notional"], "window_ms": client["window_ns"] // 1_000_000,
                "duplicate_window_ms": client["duplicate_window_ns"] // 1_000_000}

    def status(self) -> dict[str, Any]:
        """Return a snapshot for people: sessions, counters, latency, positions, open orders."""
        counters = self.engine.counters()
        latency = self.order_state.latency
        rejected = {reject_name(code): count for code, count in counters["rejected_by_code"].items()}
        open_views = self.orders.open_orders()
        return {
            "name": self.config.gateway.name,
            "version": __version__,
            "git_commit": self.commit,
            "config_sha256": self.config.sha256,
            "time": iso_time(time.time_ns()),
            "started": iso_time(self.started_ns),
            "uptime_s": round((time.time_ns() - self.started_ns) / 1e9, 3),
            "risk_state": int(self.book.risk_state),
            "clients": {name: self.engine.client_logged_on(index) for index, name in enumerate(self.session_names)},
            "client_controls": {name: self._client_controls(index) for index, name in enumerate(self.session_names)},
            "venues": {name: self.engine.venue_logged_on(index) for index, name in enumerate(self.venue_names)},
            "venue_states": {name: ev.VENUE_STATE_NAMES.get(self.engine.venue_state(index))
                             for index, name in enumerate(self.venue_names)},
            "venue_connections": {name: self.engine.venue_connection(index)
                                  for index, name in enumerate(self.venue_names)},
            "session_schedules": self.session_schedules(),
            "quote_sources": dict(self.quote_sources.sources),
            "orders": {
                "received": counters["received"],
                "accepted": counters["accepted"],
                "rejected": rejected,
                "fills": counters["fills"],
                "cancels": counters["cancels"],
                "replaces": counters["replaces"],
                "open": self.book.live_orders,
                "counted_since": iso_time(self.started_ns),          # the process's start: engine counters
                "today": self.today(),                                # from the journal: survives a restart
            },
            "latency_ns": {"p50": latency.percentile(0.5), "p99": latency.percentile(0.99)},
            "stages_ns": {name: stage_summary(buckets) for name, buckets in self.engine.stages().items()},
            **{f"memory_{kind}_bytes": value for kind, value in _memory().items()},
            "risk": self.risk_agent.describe(),
            "positions": self.positions_snapshot(),
            "open_orders": sorted(view.venue_cl_ord_id for view in open_views),
            "open_orders_detail": [view.summary() for view in open_views[:100]],
            "limits": self.limits(),
            "quotes": self.quotes(),
            "history": list(self.marking.history),
            "ring": self.engine.ring(),
            "illegal_transitions": self.order_state.illegal_transitions,
            "reconciliation": {"differences": counters["reconciled"],
                               "unknown_venue_orders": counters["unknown_venue_orders"],
                               "duplicate_fills": counters["duplicate_fills"],
                               "late_venue_reports": counters["late_venue_reports"]},
            "journal": {"events_written": self.journal_agent.written, "last_seq": self.journal.last_seq(),
                        "pending_events": self.journal_agent.pending_events, "failing": self.journal_agent.failing,
                        "replayed": self.recovered.entries, "replay_seconds": round(self.recovered.seconds, 3),
                        "replay_illegal_transitions": self.recovered.illegal},
            "alarms": dict(self.alarm_counts),
            "recent_alarms": list(self.alarms[-10:]),
            "callback_errors": counters["callback_errors"],
            "state_thread_alive": self.state_thread.alive,
            "tracing": self.tracer.counters() if self.tracer is not None else None,
            "reduce_only": dict(self.reduce_only_reasons),
            "firm": self.firm.describe() if self.firm is not None else None,
            "watchdog": self.watchdog(),
        }

    def limits(self) -> list[dict[str, Any]]:
        """Each configured limit with what uses it now: worst-case positions, gross exposure, today's
        orders and notional, the order rate against the kill ceiling."""
        risk, book = self.config.risk, self.book
        rows = []
        for instrument_id, instrument in enumerate(self.config.instruments):
            if instrument.max_position is None:
                continue
            exposure = book.exposure(instrument_id)
            position = exposure["position_lots"]
            worst = max(abs(position + exposure["open_buy_lots"]), abs(position - exposure["open_sell_lots"]))
            rows.append({"name": f"worst-case position {instrument.symbol}",
                         "used": float(worst * instrument.lot_size), "limit": float(instrument.max_position)})
        figures = self.positions_snapshot()
        gross_limits = [float(risk.max_gross_exposure)] if risk.max_gross_exposure is not None else []
        if risk.max_leverage is not None:
            gross_limits.append(risk.max_leverage * float(figures.get("equity", risk.starting_equity)))
        if gross_limits:
            rows.append({"name": "gross exposure", "used": float(figures.get("gross_exposure", 0)),
                         "limit": min(gross_limits)})
        if risk.max_daily_orders is not None:
            rows.append({"name": "orders today", "used": float(book.daily_orders), "limit": float(risk.max_daily_orders)})
        if risk.max_daily_notional is not None:
            rows.append({"name": "notional today", "used": float(book.daily_notional),
                         "limit": float(risk.max_daily_notional)})
        if risk.kill_order_rate is not None:
            rows.append({"name": "orders per second (kill ceiling)", "used": float(self.risk_agent.order_rate),
                         "limit": float(risk.kill_order_rate)})
        if risk.max_concentration is not None or risk.max_sector_concentration is not None:
            equity = float(book.equity)
            sectors: dict[str, float] = {}
            for instrument_id, instrument in enumerate(self.config.instruments):
                exposure = book.exposure(instrument_id)
                position = exposure["position_lots"]
                worst = max(abs(position + exposure["open_buy_lots"]), abs(position - exposure["open_sell_lots"]))
                price = book.quotes.reference_price(instrument_id) or exposure["last_fill_price"]
                value = worst * float(instrument.lot_size) * price
                if instrument.sector:
                    sectors[instrument.sector] = sectors.get(instrument.sector, 0.0) + value
                if risk.max_concentration is not None and worst:
                    rows.append({"name": f"concentration {instrument.symbol} (of equity)",
                                 "used": value / equity if equity > 0 else float("inf"),
                                 "limit": risk.max_concentration})
            if risk.max_sector_concentration is not None:
                for sector, value in sorted(sectors.items()):
                    rows.append({"name": f"concentration of sector {sector} (of equity)",
                                 "used": value / equity if equity > 0 else float("inf"),
                                 "limit": risk.max_sector_concentration})
        for index, name in enumerate(self.session_names):
            client = book.client(index)
            for key, label in (("max_daily_notional", "daily_notional"), ("max_open_notional", "open_notional")):
                if client[key] is not None:
                    rows.append({"name": f"{name} {label.replace('_', ' ')}", "used": client[label],
                                 "limit": client[key]})
        return rows

    def quotes(self) -> dict[str, dict[str, Any]]:
        """Each instrument's last valid quote and whether it is stale."""
        now_ns = self.clock()
        result = {}
        for instrument_id, symbol in enumerate(self.book.instruments.symbols):
            quote = self.book.quotes.quote(instrument_id)
            arrival = quote.get("arrival_ns")
            result[symbol] = {"bid": quote.get("bid"), "ask": quote.get("ask"),
                              "stale": bool(self.book.quotes.is_stale(instrument_id, now_ns)),
                              "age_ms": round((now_ns - arrival) / 1e6) if arrival else None}
        return result

    def today(self) -> dict[str, Any]:
        """Today's order events as the journal holds them (the state thread's tally, restored at start)."""
        daily = self.replayer.daily
        rejected = dict(daily.rejected_by_code)
        return {"since": iso_time(daily.day_start_ns), **dict(daily.tally), "orders": daily.orders,
                "notional": round(daily.notional, 2),
                "rejected_by_reason": {reject_name(code): count for code, count in sorted(rejected.items())}}

    def positions_snapshot(self) -> dict[str, Any]:
        """Return the positions and account figures as the state thread last published them."""
        return self.marking.snapshot

    def uptime_seconds(self) -> float:
        return (time.time_ns() - self.started_ns) / 1e9

    def build_info(self) -> dict[str, str]:
        return {"version": __version__, "commit": self.commit or "unknown", "config_sha256": self.config.sha256,
                "name": self.config.gateway.name}

    def watchdog(self) -> dict[str, Any]:
        """Whether every thread of the gateway is making progress."""
        limit_ns = self.config.gateway.watchdog_ms * MILLISECOND
        callback_ns = self.engine.longest_callback_ns()
        service_ns = self.engine.service_age_ns() if self.engine.started else 0
        state_age_s = self.state_thread.beat_age_s()
        problems = []
        if callback_ns > limit_ns:
            problems.append(f"an engine thread has been inside one callback for {callback_ns / 1e9:.1f} s")
        if service_ns > limit_ns:
            problems.append(f"the engine's service thread last went round {service_ns / 1e9:.1f} s ago")
        if not self.state_thread.alive and not self._stopped.is_set():
            problems.append("the state thread has stopped")
        elif state_age_s * 1e9 > limit_ns and not self._stopped.is_set():
            problems.append(f"the state thread last went round {state_age_s:.1f} s ago")
        return {"ok": not problems, "problems": problems, "longest_callback_ns": callback_ns,
                "service_age_ns": service_ns, "state_thread_age_s": round(state_age_s, 3)}

    def health(self) -> dict[str, Any]:
        """Liveness, and what runs: version, commit, configuration digest, uptime."""
        watchdog = self.watchdog()
        return {"status": "ok" if watchdog["ok"] else "stalled", "name": self.config.gateway.name,
                "version": __version__, "git_commit": self.commit, "config_sha256": self.config.sha256,
                "uptime_s": round(self.uptime_seconds(), 3), "pid": os.getpid(), "watchdog": watchdog}

    def readiness(self) -> dict[str, Any]:
        """Ready when every venue is logged on and reconciled, and every thread makes progress."""
        venues = {name: self.engine.venue_logged_on(index) for index, name in enumerate(self.venue_names)}
        states = {name: ev.VENUE_STATE_NAMES.get(self.engine.venue_state(index))
                  for index, name in enumerate(self.venue_names)}
        alive = self.state_thread.alive
        watchdog = self.watchdog()
        ready = all(venues.values()) and all(state == "ready" for state in states.values()) and alive and watchdog["ok"]
        return {"ready": ready, "venues": venues, "venue_states": states,
                "venue_reasons": {name: self.engine.venue_state_reason(index)
                                  for index, name in enumerate(self.venue_names)},
                "state_thread_alive": alive, "watchdog": watchdog}

    def metrics_text(self) -> bytes:
        return metrics.exposition(self.registry)[0]

    def metrics_exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The metrics in the format the scraper's Accept header asks for, and its content type."""
        return metrics.exposition(self.registry, accept)

    def open_orders(self) -> list[dict[str, Any]]:
        """Return every order not in a terminal state."""
        return [view.summary() for view in self.orders.open_orders()]
