"""The composition root: build every part of the gateway from a `Config`, start it, stop it."""

from __future__ import annotations

import os
import string
import sys
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import structlog

from fixgate import __version__
from fixgate._fast.instruments import Instruments
from fixgate._fast.quotes import QuoteBook
from fixgate._fast.risk import RiskBook
from fixgate._fast.throttle import Throttle
from fixgate.config import Config, trading_day_offset_ns
from fixgate.core.agents import MarkingAgent, OrderStateAgent, StateThread
from fixgate.core.events import EventSink
from fixgate.core.journal import IntentLog, SqliteJournal
from fixgate.core import recovery
from fixgate.core.orders import TERMINAL
from fixgate.core.positions import PositionTracker
from fixgate.core.risk_state import RiskLimits, RiskStateMachine, Transition
from fixgate.core.router import Router
from fixgate.core.safety import AuditLog, RiskAgent, RiskStateStore, restore
from fixgate.fix.engine import AcceptorSession, Engine, InitiatorSession
from fixgate.fix.gateway_app import (
    GatewayApplication,
    QuickFixClientLink,
    QuickFixVenueControl,
    QuickFixVenueLink,
)
from fixgate.ops import metrics

log = structlog.get_logger("fixgate.gateway")

NANOSECONDS_PER_DAY = 86_400_000_000_000
MILLISECOND = 1_000_000


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
    offset = trading_day_offset_ns(config)
    start = now_ns - (now_ns - offset) % NANOSECONDS_PER_DAY
    return start + NANOSECONDS_PER_DAY


def _rss_bytes() -> int | None:
    """Return this process's resident memory, from /proc (None elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


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


def build_book(config: Config, now_ns: int | None = None) -> RiskBook:
    """Build the hot path (instruments, quote book, throttle, risk book) from `config`."""
    instruments = Instruments(max(len(config.instruments), 1))
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
    for index, instrument in enumerate(config.instruments):
        if instrument.max_order_rate is not None:
            throttle.configure_instrument(index, instrument.max_order_rate, instrument.burst)
    return RiskBook(
        instruments, quotes, throttle,
        max_order_notional=_optional_float(risk.max_order_notional),
        max_gross_exposure=_optional_float(risk.max_gross_exposure),
        max_leverage=risk.max_leverage,
        max_daily_orders=risk.max_daily_orders,
        max_daily_notional=_optional_float(risk.max_daily_notional),
        warning_order_qty_factor=risk.warning_order_qty_factor,
        warning_collar_factor=risk.warning_collar_factor,
        order_capacity=config.gateway.order_capacity,
        equity=float(risk.starting_equity),
        day_start_ns=next_day_start_ns(config, now_ns or time.time_ns()),
    )


class Gateway:
    """The gateway process: FIX sessions, hot path, router and state thread.

    Parameters
    ----------
    config : Config
        The validated configuration.
    state_dir : Path, optional
        Overrides ``config.gateway.state_dir``.
    message_log : bool
        Keep QuickFIX's message logs in files.
    """

    def __init__(self, config: Config, *, state_dir: Path | None = None, message_log: bool = True,
                 admin: bool | None = None) -> None:
        self.config = config
        self.state_dir = Path(state_dir or config.gateway.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.clock = time.time_ns
        self.started_ns = time.time_ns()
        self.commit = git_commit()
        self.book = build_book(config, self.started_ns)
        self.sink = EventSink(config.gateway.ring_capacity)
        self.token = run_token(self.started_ns)
        venue_links = {venue.name: QuickFixVenueLink(config.gateway.comp_id, venue.comp_id)
                       for venue in config.venues}
        self.router = Router(config, self.book, self.sink, QuickFixClientLink(config.gateway.comp_id),
                             venue_links, run_token=self.token)
        self.positions = PositionTracker(config.risk.starting_equity)
        # Startup is recovery: the journal's snapshot and tail become the registry, positions and book.
        self.journal = SqliteJournal(self.state_dir / "journal.sqlite3")
        self.intents = IntentLog(self.state_dir)
        self.recovered = recovery.replay(self.journal, config.risk.starting_equity,
                                         day_start_ns=next_day_start_ns(config, self.started_ns) - NANOSECONDS_PER_DAY,
                                         intents=self.intents)
        if self.recovered.from_intents:
            # What only the intent log knew becomes part of the journal, so that it reads whole.
            self.journal.append(self.recovered.from_intents)
        recovery.install(self.recovered, self.router.registry, self.positions, self.book,
                         {index: instrument.lot_size for index, instrument in enumerate(config.instruments)},
                         {index: instrument.tick_size for index, instrument in enumerate(config.instruments)})
        if self.recovered.entries or self.recovered.snapshot_seq:
            log.info("journal_replayed", entries=self.recovered.entries, snapshot_seq=self.recovered.snapshot_seq,
                     intents_applied=self.recovered.intents_applied,
                     open_orders=len(self.recovered.live_records()), seconds=round(self.recovered.seconds, 3),
                     illegal_transitions=self.recovered.illegal, illegal_reasons=self.recovered.illegal_reasons)
        self.journal_agent = recovery.JournalAgent(
            self.journal, self.router.registry,
            lambda: recovery.snapshot_state(self.router.registry, self.positions, self.book,
                                            self.router.registry.seen_exec_ids),
            intents=self.intents)
        self.router.journal = self.journal_agent
        self.order_state = OrderStateAgent(self.sink, self.router.registry, self.positions,
                                           on_event=self.journal_agent.on_event)
        self.marking = MarkingAgent(self.book, self.positions)
        self.audit = AuditLog(self.state_dir / "audit.log",
                              forward=lambda record: self.journal_agent.note(record.get("event", "audit"), record))
        self.risk_store = RiskStateStore(self.state_dir / "risk_state.json")
        machine = RiskStateMachine(risk_limits(config))
        restore(machine, self.risk_store, self.started_ns)
        self.transition_counts: dict[str, int] = {}
        self.risk_agent = RiskAgent(machine, self.book, self.positions, self.router, QuickFixVenueControl(venue_links),
                                    self.risk_store, self.audit,
                                    logout_timeout_ns=int(config.risk.kill_logout_timeout_seconds * 1e9),
                                    on_transition=self._count_transition)
        self.router.risk_reason = machine.reason
        self.application = GatewayApplication(self.router, {venue.comp_id: venue.name for venue in config.venues})
        self.state_thread = StateThread([self.order_state, self.journal_agent, self.marking, self.risk_agent],
                                        on_error=self._agent_failed, busy=self.application.busy)
        sessions: list[AcceptorSession | InitiatorSession] = [
            AcceptorSession(config.gateway.comp_id, client.comp_id, config.acceptor.port)
            for client in config.clients
        ] + [
            InitiatorSession(config.gateway.comp_id, venue.comp_id, venue.host, venue.port,
                             venue.heartbeat_seconds, venue.reconnect_seconds)
            for venue in config.venues
        ]
        self.engine = Engine(self.application, self.state_dir, "gateway", sessions, message_log=message_log)
        self.registry = metrics.build_registry(self)
        self.admin = None
        if config.admin.enabled if admin is None else admin:
            from fixgate.ops.admin import AdminServer

            token = os.environ.get("FIXGATE_ADMIN_TOKEN") or config.admin.token
            self.admin = AdminServer(self, config.admin.host, config.admin.port, token, config.admin.token_name)
        self._stopped = threading.Event()

    # -- LIFE CYCLE -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the state thread, then QuickFIX (listen for clients, connect to venues)."""
        # Every call into the quickfix binding releases the GIL and takes it back; a thread that
        # wants it back waits until the holder gives it up, at the latest after the switch interval
        # (5 ms by default). A short interval bounds what a QuickFIX thread waits behind the state
        # thread or another session's callback.
        sys.setswitchinterval(self.config.gateway.gil_switch_interval_us / 1e6)
        self.state_thread.start()
        self.engine.start()
        if self.admin is not None:
            self.admin.start()
        if self.book.risk_state != 0:
            log.warning("gateway_started_restricted", risk_state=self.risk_agent.machine.state.name,
                        reason=self.risk_agent.machine.reason)
        log.info("gateway_started", name=self.config.gateway.name, version=__version__, token=self.token,
                 acceptor_port=self.config.acceptor.port, config_sha256=self.config.sha256,
                 state_dir=str(self.state_dir))

    def venues_logged_on(self) -> bool:
        """Return True when every venue session is logged on."""
        return all(link.is_logged_on() for link in self.router.venue_links.values())

    def wait_for_venues(self, timeout: float = 10.0) -> bool:
        """Wait until every venue is logged on; return False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.venues_logged_on():
                return True
            time.sleep(0.02)
        return self.venues_logged_on()

    def stop(self, *, cancel_open_orders: bool | None = None, timeout: float = 5.0,
             logout_timeout: float = 2.0) -> None:
        """Stop gracefully: refuse new orders, optionally cancel what is open and wait (up to
        `timeout`) for the venues to confirm, log out (waiting up to `logout_timeout`), drain the
        rings."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.router.accepting = False
        cancel = self.config.gateway.cancel_on_shutdown if cancel_open_orders is None else cancel_open_orders
        if cancel and self.router.cancel_all(reason="shutdown"):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.book.live_orders:
                time.sleep(0.02)
        for link in self.router.venue_links.values():
            link.release()
        self.engine.stop(logout_timeout)
        self.state_thread.stop()
        self.journal_agent.flush()
        self.journal.write_snapshot(self.journal.last_seq(), recovery.snapshot_state(
            self.router.registry, self.positions, self.book, self.router.registry.seen_exec_ids))
        self.intents.rotate()
        self.journal.close()
        self.intents.close()
        if self.admin is not None:
            self.admin.stop()
        log.info("gateway_stopped", name=self.config.gateway.name, open_orders=self.book.live_orders,
                 events=self.order_state.events)

    # -- STATUS -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Return a snapshot for people: sessions, counters, latency, positions, open orders."""
        counters = self.router.counters
        latency = self.order_state.latency
        return {
            "name": self.config.gateway.name,
            "version": __version__,
            "uptime_s": round((time.time_ns() - self.started_ns) / 1e9, 3),
            "risk_state": int(self.book.risk_state),
            "clients": {client.name: client.logged_on for client in self.router.clients.values()},
            "venues": {name: link.is_logged_on() for name, link in self.router.venue_links.items()},
            "orders": {
                "received": counters.received,
                "accepted": counters.accepted,
                "rejected": dict(counters.rejected),
                "fills": counters.fills,
                "cancels": counters.cancels,
                "replaces": counters.replaces,
                "open": self.book.live_orders,
            },
            "latency_ns": {"p50": latency.percentile(0.5), "p99": latency.percentile(0.99)},
            "stages_ns": self.router.stages.summary(),
            "memory_rss_bytes": _rss_bytes(),
            "risk": self.risk_agent.describe(),
            "positions": self.positions_snapshot(),
            "open_orders": sorted(record.venue_cl_ord_id for record in self.router.registry.open_orders()
                                  if record.order_id > 0),
            "ring": {"occupancy": self.sink.occupancy(), "full": self.sink.full_count()},
            "illegal_transitions": self.order_state.oms.illegal_transitions,
            "reconciliation": {"differences": counters.reconciled, "unknown_venue_orders": counters.unknown_venue_orders,
                               "duplicate_fills": counters.duplicate_fills},
            "journal": {"entries_written": self.journal_agent.written, "last_seq": self.journal.last_seq(),
                        "replayed": self.recovered.entries, "replay_seconds": round(self.recovered.seconds, 3),
                        "replay_illegal_transitions": self.recovered.illegal},
            "callback_errors": self.application.callback_errors,
            "state_thread_alive": self.state_thread.alive,
        }

    def positions_snapshot(self) -> dict[str, Any]:
        """Return the positions and account figures as the state thread last published them."""
        return self.marking.snapshot

    def uptime_seconds(self) -> float:
        return (time.time_ns() - self.started_ns) / 1e9

    def build_info(self) -> dict[str, str]:
        return {"version": __version__, "commit": self.commit or "unknown", "config_sha256": self.config.sha256,
                "name": self.config.gateway.name}

    def health(self) -> dict[str, Any]:
        """Liveness, and what runs: version, commit, configuration digest, uptime."""
        return {"status": "ok", "name": self.config.gateway.name, "version": __version__,
                "git_commit": self.commit, "config_sha256": self.config.sha256,
                "uptime_s": round(self.uptime_seconds(), 3), "pid": os.getpid()}

    def readiness(self) -> dict[str, Any]:
        """Ready when every venue is logged on and the state thread is alive."""
        venues = {name: link.is_logged_on() for name, link in self.router.venue_links.items()}
        alive = self.state_thread.alive
        return {"ready": all(venues.values()) and alive, "venues": venues, "state_thread_alive": alive}

    def metrics_text(self) -> bytes:
        return metrics.exposition(self.registry)

    def _agent_failed(self, agent: str, error: Exception) -> None:
        """An agent of the state thread raised: the books may no longer be right, so stop trading."""
        self.risk_agent.report_fatal(f"{agent} failed: {type(error).__name__}: {error}")

    def _count_transition(self, transition: Transition) -> None:
        name = transition.after.name
        self.transition_counts[name] = self.transition_counts.get(name, 0) + 1
        self.router.risk_reason = transition.reason

    def open_orders(self) -> list[dict[str, Any]]:
        """Return every order not in a terminal state."""
        return [record.summary() for record in self.router.registry.by_id.values()
                if record.status not in TERMINAL and record.order_id > 0]
