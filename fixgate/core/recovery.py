"""Startup is recovery: rebuild the order views, positions and counters from the journal and the intent
log, give the live state back to the engine and the risk book, and keep the journal written.

The journal holds the engine's events as they were applied (and a snapshot every 50,000 of them);
the intent log holds what the engine wrote ahead before it sent. Replay runs the same OMS and
position code the state thread runs, over the snapshot and the events after it, then over the
intents that never reached the journal (an order accepted, or a cancel sent, just before a crash).
What the venues did meanwhile is asked of them after logon: the engine reconciles.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Protocol

import numpy as np
import structlog

from fixgate.core import events as ev
from fixgate.core.clock import NANOSECONDS_PER_DAY, day_start_at
from fixgate.core.events import EVENT_DTYPE, Event
from fixgate.core.journal import IntentLog, Journal, JournalError
from fixgate.core.orders import Instrument, OrderManager, OrderView, Orders, engine_restore, view_from_state
from fixgate.core.positions import PositionTracker

log = structlog.get_logger("fixgate.recovery")

ID_KINDS = np.array([ev.ACCEPTED, ev.REJECTED, ev.CANCEL_REQUESTED, ev.REPLACE_ACCEPTED], dtype=np.uint8)


TALLIED = {ev.ACCEPTED: "accepted", ev.REJECTED: "rejected", ev.FILLED: "fills", ev.CANCELED: "canceled",
           ev.CANCEL_REQUESTED: "cancels", ev.REPLACE_ACCEPTED: "replaces", ev.VENUE_REJECTED: "venue_rejected"}


@dataclass
class DailyFigures:
    """Today's order count and notional, as the risk book's daily caps count them, and today's tally
    of order events (what the status page and metrics call "today": it survives a restart, the
    engine's own counters start from zero with the process)."""

    day_start_ns: int
    orders: int = 0
    notional: float = 0.0
    tally: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TALLIED.values(), 0))
    rejected_by_code: dict[int, int] = field(default_factory=dict)
    notional_by_session: dict[int, float] = field(default_factory=dict)     # each client's, for its own cap

    def count_event(self, event: Event) -> None:
        """Tally one order event of today."""
        name = TALLIED.get(event.kind)
        if name is None:
            return
        self.roll(event.recv_ns)
        if event.recv_ns < self.day_start_ns:
            return
        self.tally[name] += 1
        if event.kind == ev.REJECTED:
            self.rejected_by_code[event.code] = self.rejected_by_code.get(event.code, 0) + 1

    def state(self) -> dict[str, Any]:
        return {"day_start_ns": self.day_start_ns, "orders": self.orders, "notional": self.notional,
                "tally": dict(self.tally), "rejected_by_code": {str(code): count
                                                                for code, count in self.rejected_by_code.items()},
                "notional_by_session": {str(session): notional
                                        for session, notional in self.notional_by_session.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        """Take a snapshot's figures when they are of the same day."""
        if state["day_start_ns"] != self.day_start_ns:
            return
        self.orders = state["orders"]
        self.notional = state["notional"]
        self.tally.update(state.get("tally", {}))
        self.rejected_by_code = {int(code): count for code, count in state.get("rejected_by_code", {}).items()}
        self.notional_by_session = {int(session): notional
                                    for session, notional in state.get("notional_by_session", {}).items()}

    def roll(self, now_ns: int) -> bool:
        """Begin a new trading day when `now_ns` is past the current one (as the risk book does at
        its first check of the day): today's figures start again from zero. Return True when rolled."""
        if now_ns < self.day_start_ns + NANOSECONDS_PER_DAY:
            return False
        self.day_start_ns = day_start_at(now_ns, self.day_start_ns)
        self.orders = 0
        self.notional = 0.0
        self.tally = dict.fromkeys(TALLIED.values(), 0)
        self.rejected_by_code = {}
        self.notional_by_session = {}
        return True

    def count(self, event: Event, notional_units: list[float], view: OrderView | None = None) -> None:
        """Count an accepted order, or a replace that made an order larger (as the book counts it)."""
        self.roll(event.recv_ns)
        if event.recv_ns < self.day_start_ns:
            return
        if event.kind == ev.ACCEPTED:
            self.orders += 1
            added = event.qty_lots * event.price_ticks * notional_units[event.instrument_id]
        elif event.kind == ev.REPLACE_ACCEPTED and view is not None:
            added = (event.qty_lots * event.price_ticks - view.qty_lots * view.price_ticks) \
                * notional_units[event.instrument_id]
            if not added > 0:
                return
        else:
            return
        self.notional += added
        self.notional_by_session[event.session_id] = self.notional_by_session.get(event.session_id, 0.0) + added


@dataclass
class Recovered:
    """What the journal says the gateway held when it stopped."""

    orders: Orders
    positions: PositionTracker
    daily: DailyFigures
    next_order_id: int = 1
    last_event_seq: int = 0
    snapshot_seq: int = 0
    snapshot_day_start_ns: int = 0
    batches: int = 0
    entries: int = 0
    intents_applied: int = 0
    from_intents: list[Event] = field(default_factory=list)
    used_cl_ord_ids: list[tuple[int, str]] = field(default_factory=list)
    exec_ids: list[str] = field(default_factory=list)
    illegal: int = 0
    illegal_reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def live_views(self) -> list[OrderView]:
        return [view for view in self.orders.by_id.values() if view.live]


class Replayer:
    """Apply events to order views, positions and the day's figures: the state thread's logic, offline.

    Parameters
    ----------
    orders : Orders
        The views.
    positions : PositionTracker
        Receives every fill.
    daily : DailyFigures
        Counts today's accepted orders.
    """

    def __init__(self, orders: Orders, positions: PositionTracker, daily: DailyFigures, *,
                 on_illegal: Callable[[OrderView | None, Event, str], None] | None = None) -> None:
        self.orders = orders
        self.positions = positions
        self.daily = daily
        self.notional_units = [float(instrument.lot * instrument.tick) for instrument in orders.instruments]
        self.manager = OrderManager(orders, on_fill=self._on_fill, on_illegal=on_illegal)
        self.next_order_id = 1
        self.last_seq = 0

    def _on_fill(self, view: OrderView, lots: int, ticks: int) -> None:
        self.positions.apply_fill(view.account, view.instrument_id, view.side == "1", lots, ticks)

    def apply(self, event: Event) -> OrderView | None:
        if event.seq > self.last_seq:
            self.last_seq = event.seq
        if event.kind not in ev.ORDER_KINDS:
            return None
        self.daily.count_event(event)
        if event.kind == ev.ACCEPTED:
            self.daily.count(event, self.notional_units)
            self.next_order_id = max(self.next_order_id, event.order_id + 1)
        elif event.kind == ev.REPLACE_ACCEPTED:
            self.daily.count(event, self.notional_units, self.orders.by_id.get(event.order_id))
        if event.kind in (ev.FILLED, ev.TRADE_CORRECTED) and event.order_id not in self.orders.by_id:
            # A fill for an order already forgotten (a late overfill): the position moves all the same.
            account = ev.text(event.text_b) or self.orders.sessions[event.session_id]
            self.positions.apply_fill(account, event.instrument_id, event.side == 1, event.qty_lots,
                                      event.price_ticks)
            return None
        return self.manager.apply(event)


def snapshot_state(orders: Orders, positions: PositionTracker, daily: DailyFigures, next_order_id: int,
                   next_reject_id: int, last_event_seq: int) -> dict[str, Any]:
    """Return the live state as the journal snapshots it (call on the state thread)."""
    return {
        "orders": [view.state() for view in orders.by_id.values() if view.live],
        "positions": positions.state(),
        "daily": daily.state(),
        "next_order_id": next_order_id,
        "next_reject_id": next_reject_id,
        "last_event_seq": last_event_seq,
    }


def replay(journal: Journal, intents: IntentLog | None, instruments: list[Instrument], sessions: list[str],
           venues: list[str], starting_equity: Decimal, *, day_start_ns: int = 0,
           retention_orders: int = 100_000) -> Recovered:
    """Rebuild the order views, positions and today's figures from the snapshot, the events after it
    and the intents the journal never got."""
    started = time.perf_counter()
    orders = Orders(instruments, sessions, venues, retention_orders=retention_orders)
    positions = PositionTracker(starting_equity, instruments)
    daily = DailyFigures(day_start_ns)
    recovered = Recovered(orders=orders, positions=positions, daily=daily)

    def on_illegal(view, event, reason: str) -> None:
        recovered.illegal_reasons[reason] = recovered.illegal_reasons.get(reason, 0) + 1

    replayer = Replayer(orders, positions, daily, on_illegal=on_illegal)
    snapshot = journal.latest_snapshot()
    if snapshot is not None:
        recovered.snapshot_seq, state = snapshot
        by_symbol = {instrument.symbol: instrument for instrument in instruments}
        for data in state["orders"]:
            if data["symbol"] not in by_symbol:
                raise JournalError(f"the journal holds an order in {data['symbol']}, an instrument no longer "
                                   "configured; see `fixgate recover --help`")
            orders.add(view_from_state(data, by_symbol[data["symbol"]]))
        positions.restore(state["positions"])
        daily.restore(state["daily"])
        recovered.snapshot_day_start_ns = state["daily"]["day_start_ns"]
        replayer.next_order_id = state["next_order_id"]
        replayer.last_seq = state["last_event_seq"]
        orders.next_reject_id = state["next_reject_id"]
    for batch in journal.batches(recovered.snapshot_seq):
        recovered.batches += 1
        for event in batch.events():
            recovered.entries += 1
            replayer.apply(event)
    # Events written ahead but never journaled (the state thread had not got to them before a crash).
    written_ahead = sorted((event for event in (intents.events() if intents is not None else ())
                            if event.seq > replayer.last_seq), key=lambda event: event.seq)
    for event in written_ahead:
        if event.seq <= replayer.last_seq:
            continue                                   # the same event in both files
        recovered.intents_applied += 1
        recovered.from_intents.append(event)
        replayer.apply(event)
    # Today's ids: a ClOrdID is never accepted twice in a day, a venue fill is never booked twice.
    for batch in journal.batches(0, since_ns=day_start_ns):
        records = np.frombuffer(batch.data, dtype=EVENT_DTYPE)
        chosen = records[np.isin(records["kind"], ID_KINDS) & (records["text_a"] != b"")]
        recovered.used_cl_ord_ids.extend(zip(chosen["session_id"].tolist(),
                                             [ev.text(value) for value in chosen["text_a"].tolist()]))
        fills = records[np.isin(records["kind"], (ev.FILLED, ev.TRADE_CORRECTED))]
        recovered.exec_ids.extend(ev.text(value) for value in fills["text_a"].tolist() if value)
    for event in recovered.from_intents:
        if event.kind in (ev.ACCEPTED, ev.REJECTED, ev.CANCEL_REQUESTED, ev.REPLACE_ACCEPTED) and event.text_a:
            recovered.used_cl_ord_ids.append((event.session_id, ev.text(event.text_a)))
        elif event.kind in (ev.FILLED, ev.TRADE_CORRECTED) and event.text_a:
            recovered.exec_ids.append(ev.text(event.text_a))
    if recovered.snapshot_seq and recovered.snapshot_day_start_ns < day_start_ns:
        # The journal's positions are of an earlier trading day: today's drawdown counts from here.
        positions.start_day()
    recovered.next_order_id = replayer.next_order_id
    recovered.last_event_seq = replayer.last_seq
    recovered.illegal = replayer.manager.illegal_transitions
    recovered.seconds = time.perf_counter() - started
    return recovered


class RestoreTarget(Protocol):
    def restore_order(self, order: dict[str, Any]) -> None: ...
    def restore_next_event_seq(self, next_seq: int) -> None: ...
    def restore_used_cl_ord_id(self, session: int, cl_ord_id: str) -> None: ...
    def restore_exec_id(self, venue_exec_id: str) -> None: ...


def install(recovered: Recovered, engine: RestoreTarget, book) -> None:
    """Give the recovered live state to the engine and the risk book (before the engine starts).

    The engine also gets today's finished orders that the views retain, as it keeps them while it
    runs: a report the venue sends again after a crash (one the gateway wrote ahead before QuickFIX
    counted the venue's message) finds its order and reaches the client again."""
    for view in recovered.orders.by_id.values():
        if view.order_id > 0 and not view.live:
            engine.restore_order(engine_restore(view))
    for view in recovered.live_views():
        engine.restore_order(engine_restore(view))
        price_ticks = view.price_ticks
        if price_ticks <= 0:
            reference = book.quotes.reference_price(view.instrument_id)
            price_ticks = max(int(round(reference / float(view.tick))), 1)
        replace = view.replace
        try:
            book.restore_order(
                view.order_id, view.instrument_id, view.session_index, 1 if view.side == "1" else 2,
                1 if view.ord_type == "1" else 2, view.qty_lots, view.cum_lots, price_ticks, acked=view.acked,
                replace_pending=replace is not None, new_qty_lots=replace.qty_lots if replace else 0,
                new_price_ticks=(replace.price_ticks or price_ticks) if replace else 0)
        except ValueError as error:
            log.error("order_not_restored", order_id=view.gateway_order_id, error=str(error))
    for instrument_id in range(len(recovered.orders.instruments)):
        book.restore_position(instrument_id, recovered.positions.net_lots(instrument_id))
    book.restore_next_order_id(recovered.next_order_id)
    book.restore_daily(recovered.daily.orders, recovered.daily.notional)
    for session, notional in recovered.daily.notional_by_session.items():
        if 0 <= session < book.client_capacity:
            book.restore_client_daily(session, notional)
    for session, cl_ord_id in recovered.used_cl_ord_ids:
        if session >= 0:
            engine.restore_used_cl_ord_id(session, cl_ord_id)
    for exec_id in recovered.exec_ids:
        engine.restore_exec_id(exec_id)
    engine.restore_next_event_seq(recovered.last_event_seq + 1)


# -- THE JOURNAL AGENT (state thread) ---------------------------------------------------------------

class JournalAgent:
    """Write each drained batch of events and each note to the journal; a snapshot every
    `snapshot_every` events; rotate the intent log after each snapshot.

    A write that fails is kept and tried again on the next passes (nothing is dropped), and
    `on_failure` is told once per outage (the gateway trips its kill switch on it).

    Parameters
    ----------
    journal : Journal
        Where to write.
    snapshot : callable
        Returns the live state to snapshot (called on the state thread, after the OMS).
    rotate_intents : callable, optional
        Starts a new intent log (after a snapshot made the old one redundant).
    commit_interval_s : float
        The shortest time between two transactions.
    """

    name = "journal"

    def __init__(self, journal: Journal, snapshot: Callable[[], dict[str, Any]], *,
                 rotate_intents: Callable[[], None] | None = None, snapshot_every: int = 50_000,
                 on_failure: Callable[[str], None] | None = None, retry_interval_s: float = 0.1,
                 commit_interval_s: float = 0.02, max_pending_batches: int = 64,
                 on_written: Callable[[], None] | None = None) -> None:
        self.journal = journal
        self.on_written = on_written              # told after each transaction (the firm publisher)
        self.snapshot = snapshot
        self.rotate_intents = rotate_intents
        self.snapshot_every = snapshot_every
        self.on_failure = on_failure
        self.retry_interval_s = retry_interval_s
        self.batches: list[tuple[int, bytes]] = []
        self.notes: list[tuple[int, str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.since_snapshot = 0
        self.written = 0
        self.failures = 0
        self.failing = False
        self._retry_at = 0.0
        # A transaction at most every `commit_interval_s` (sooner when many batches wait, or a note):
        # what a crash can take from the journal in between, the engine wrote ahead to the intent log.
        self.commit_interval_s = commit_interval_s
        self.max_pending_batches = max_pending_batches
        self._last_write = 0.0

    def add_batch(self, at_ns: int, data: bytes) -> None:
        """Journal a batch of events the state thread applied (state thread)."""
        self.batches.append((at_ns, data))

    def note(self, kind: str, data: dict[str, Any]) -> None:
        """Journal a risk-state change or an admin action (any thread)."""
        with self._lock:
            self.notes.append((time.time_ns(), kind, data))

    @property
    def pending_events(self) -> int:
        return sum(len(data) for _, data in self.batches) // ev.EVENT_BYTES

    def do_work(self, *, now: bool = False) -> int:
        if not self.batches and not self.notes:
            return 0
        clock = time.monotonic()
        if self.failing and not now and clock < self._retry_at:
            return 0
        if not (now or self.notes or clock - self._last_write >= self.commit_interval_s
                or len(self.batches) >= self.max_pending_batches):
            return 0
        self._last_write = clock
        with self._lock:
            notes, self.notes = self.notes, []
        # One row for everything drained since the last transaction: the journal's cost is per
        # transaction, not per event.
        batches = self.batches if len(self.batches) <= 1 else [(self.batches[0][0],
                                                               b"".join(data for _, data in self.batches))]
        try:
            seq = self.journal.write(batches, notes)
        except JournalError as error:
            with self._lock:
                self.notes = notes + self.notes
            self.failures += 1
            self._retry_at = time.monotonic() + self.retry_interval_s
            if not self.failing:
                self.failing = True
                log.error("journal_write_failed", error=str(error), pending_events=self.pending_events)
                if self.on_failure is not None:
                    self.on_failure(str(error))
            return 0
        if self.failing:
            self.failing = False
            log.warning("journal_write_recovered", failures=self.failures)
        count = sum(len(data) for _, data in batches) // ev.EVENT_BYTES
        self.batches = []
        if self.on_written is not None:
            self.on_written()
        self.written += count
        self.since_snapshot += count
        if self.since_snapshot >= self.snapshot_every:
            self.write_snapshot(seq)
        return count + len(notes)

    def write_snapshot(self, seq: int | None = None) -> None:
        self.journal.write_snapshot(self.journal.last_seq() if seq is None else seq, self.snapshot())
        if self.rotate_intents is not None:
            self.rotate_intents()
        self.since_snapshot = 0

    def flush(self) -> None:
        """Write what is pending now (at a stop), without waiting out the retry interval."""
        self.do_work(now=True)
