"""Startup is recovery: the journal agent writes the state, `replay` reads it back.

The journal agent runs on the state thread after the OMS: each ring event becomes a journal entry
carrying what a restart needs (an accepted order's identity, a fill's venue ExecID, a replace's new
ids), and every `snapshot_every` entries the live state is written whole. `replay` loads the latest
snapshot, applies the entries after it through the same OMS state machine and position tracker,
and `Recovered.install` puts the result into the registry, the positions and the risk book.

Exactly-once fills: a fill's venue ExecID is journaled with it and restored into the set of seen
ExecIDs; a fill the venue resends after a restart is recognized and not booked twice.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable

import structlog

from fixgate._fast.codes import EventKind
from fixgate.core.journal import IntentLog, Journal, JournalEntry
from fixgate.core.messages import OrdStatus
from fixgate.core.orders import TERMINAL, OrderEvent, OrderManager, OrderRecord, OrderRegistry, VenueRequest
from fixgate.core.positions import Position, PositionTracker

log = structlog.get_logger("fixgate.recovery")

KIND_NAMES = {kind: kind.name.lower() for kind in EventKind}
KINDS_BY_NAME = {name: kind for kind, name in KIND_NAMES.items()}

IDENTITY = ("gateway_order_id", "session", "account", "cl_ord_id", "symbol", "instrument_id", "side", "ord_type",
            "time_in_force", "order_qty", "price", "session_index", "venue", "venue_cl_ord_id", "venue_order_id",
            "reject_text")


# -- ENCODING ---------------------------------------------------------------------------------------

def _requests(record: OrderRecord) -> list[dict[str, Any]]:
    return [{"kind": request.kind, "venue_cl_ord_id": request.venue_cl_ord_id,
             "client_cl_ord_id": request.client_cl_ord_id, "orig_client_cl_ord_id": request.orig_client_cl_ord_id,
             "order_qty": request.order_qty, "price": request.price} for request in list(record.requests.values())]


def record_state(record: OrderRecord) -> dict[str, Any]:
    """Return everything about `record` a restart needs, as JSON values."""
    return {
        **{name: getattr(record, name) for name in IDENTITY},
        "order_id": record.order_id,
        "lot_size": str(record.lot_size),
        "cl_ord_ids": list(record.cl_ord_ids),
        "requests": _requests(record),
        "status": record.status,
        "status_before_pending": record.status_before_pending,
        "cum_qty": str(record.cum_qty),
        "notional": f"{record.notional.numerator}/{record.notional.denominator}",
        "replaced_cl_ord_ids": sorted(record.replaced_cl_ord_ids),
    }


def accepted_state(record: OrderRecord, qty_lots: int, price: float) -> dict[str, Any]:
    """Return `record` as it was accepted: its first ClOrdID and venue id, the accepted quantity and
    price (from the event), nothing filled or pending (later events bring the rest)."""
    data = {name: getattr(record, name) for name in IDENTITY}
    first = record.cl_ord_ids[0] if record.cl_ord_ids else record.cl_ord_id
    data.update(order_id=record.order_id, lot_size=str(record.lot_size), cl_ord_id=first, cl_ord_ids=[first],
                venue_cl_ord_id=record.gateway_order_id, requests=[], replaced_cl_ord_ids=[],
                status=OrdStatus.PENDING_NEW, status_before_pending=OrdStatus.PENDING_NEW, cum_qty="0",
                notional="0/1")
    if qty_lots > 0:
        data["order_qty"] = format((record.lot_size * qty_lots).normalize(), "f")
    if record.ord_type == "2" and price > 0.0:
        data["price"] = repr(price)
    return data


def record_from_state(data: dict[str, Any]) -> OrderRecord:
    record = OrderRecord(order_id=data["order_id"], lot_size=Decimal(data["lot_size"]),
                         **{name: data[name] for name in IDENTITY})
    record.cl_ord_ids = list(data["cl_ord_ids"])
    record.requests = {request["venue_cl_ord_id"]: VenueRequest(**request) for request in data["requests"]}
    record.status = data["status"]
    record.status_before_pending = data["status_before_pending"]
    record.cum_qty = Decimal(data["cum_qty"])
    record.notional = Fraction(data["notional"])
    record.replaced_cl_ord_ids = set(data["replaced_cl_ord_ids"])
    return record


def _fraction(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def positions_state(positions: PositionTracker) -> dict[str, Any]:
    return {
        "peak_equity": _fraction(positions.peak_equity),
        "positions": [[account, symbol, _fraction(position.quantity), _fraction(position.cost),
                       _fraction(position.realized), _fraction(position.bought), _fraction(position.sold),
                       position.fills]
                      for (account, symbol), position in list(positions.positions.items())],
    }


def positions_from_state(positions: PositionTracker, data: dict[str, Any]) -> None:
    positions.peak_equity = Fraction(data["peak_equity"])
    for account, symbol, quantity, cost, realized, bought, sold, fills in data["positions"]:
        positions.positions[(account, symbol)] = Position(Fraction(quantity), Fraction(cost), Fraction(realized),
                                                          Fraction(bought), Fraction(sold), fills)


# -- THE JOURNAL AGENT (state thread) ---------------------------------------------------------------

class JournalAgent:
    """Write each applied ring event to the journal; write a snapshot every `snapshot_every` entries.

    Parameters
    ----------
    journal : Journal
        Where to write.
    registry : OrderRegistry
        Records by id, for the strings an entry needs.
    snapshot : callable
        Returns the live state to snapshot (called on the state thread, after the OMS).
    """

    name = "journal"

    def __init__(self, journal: Journal, registry: OrderRegistry, snapshot: Callable[[], dict[str, Any]], *,
                 intents: IntentLog | None = None, snapshot_every: int = 50_000) -> None:
        self.journal = journal
        self.intents = intents
        self.registry = registry
        self.snapshot = snapshot
        self.snapshot_every = snapshot_every
        self.pending: list[tuple[int, str, int, dict[str, Any]]] = []
        self._accepted: dict[int, tuple[int, float, dict[str, Any]]] = {}  # order id -> its written intent
        self._lock = threading.Lock()
        self.since_snapshot = 0
        self.written = 0

    def write_ahead(self, kind: int, record: OrderRecord, *, qty_lots: int, price: float) -> None:
        """Write an intent to the intent log, on the calling FIX thread, before it is sent.

        An accepted order's entry is kept until its ACCEPTED event reaches `on_event`, which journals
        the same data rather than build it a second time.
        """
        if self.intents is not None:
            data = self._data(kind, record, qty_lots, price)
            self.intents.append(time.time_ns(), KIND_NAMES[kind], record.order_id, data)
            if kind == EventKind.ACCEPTED:
                if len(self._accepted) >= 65_536:         # events lost to a full ring never come for theirs
                    self._accepted.clear()
                self._accepted[record.order_id] = (qty_lots, price, data)

    def _data(self, kind: int, record: OrderRecord | None, qty_lots: int, price: float) -> dict[str, Any]:
        data: dict[str, Any] = {"qty_lots": qty_lots, "price": price}
        if kind == EventKind.ACCEPTED:
            data["order"] = accepted_state(record, qty_lots, price) if record is not None else None
        elif kind == EventKind.REJECTED:
            data["order"] = record_state(record) if record is not None else None
        elif record is not None and kind in (EventKind.REPLACED, EventKind.REPLACE_ACCEPTED, EventKind.REPLACE_REJECTED,
                                             EventKind.CANCEL_REQUESTED, EventKind.CANCEL_REJECTED):
            data["cl_ord_id"] = record.cl_ord_id
            data["cl_ord_ids"] = list(record.cl_ord_ids)
            data["venue_cl_ord_id"] = record.venue_cl_ord_id
            data["replaced_cl_ord_ids"] = sorted(record.replaced_cl_ord_ids)
            data["requests"] = _requests(record)
        return data

    def on_event(self, row) -> None:
        """Turn one drained ring event (already applied by the OMS) into a journal entry."""
        kind = int(row["kind"])
        order_id = int(row["order_id"])
        record = self.registry.by_id.get(order_id)
        qty_lots, price = int(row["qty_lots"]), float(row["price"])
        written = self._accepted.pop(order_id, None) if kind == EventKind.ACCEPTED else None
        if written is not None and written[0] == qty_lots and written[1] == price:
            data = written[2]
        else:
            data = self._data(kind, record, qty_lots, price)
        if kind == EventKind.REJECTED:
            data["reject_code"] = int(row["reject_code"])
        elif kind == EventKind.FILLED:
            data["exec_id"] = record.fill_exec_ids.popleft() if record is not None and record.fill_exec_ids else None
        with self._lock:
            self.pending.append((time.time_ns(), KIND_NAMES.get(kind, str(kind)), order_id, data))

    def note(self, kind: str, data: dict[str, Any]) -> None:
        """Journal a risk-state change or an admin action (from any thread)."""
        with self._lock:
            self.pending.append((time.time_ns(), kind, 0, data))

    def do_work(self) -> int:
        if not self.pending:
            return 0
        with self._lock:
            entries, self.pending = self.pending, []
        seq = self.journal.append(entries)
        self.written += len(entries)
        self.since_snapshot += len(entries)
        if self.since_snapshot >= self.snapshot_every:
            self.journal.write_snapshot(seq, self.snapshot())
            if self.intents is not None:
                self.intents.rotate()
            self.since_snapshot = 0
        return len(entries)

    def flush(self) -> None:
        self.do_work()


# -- REPLAY -----------------------------------------------------------------------------------------

@dataclass
class Recovered:
    """What the journal says the gateway held when it stopped."""

    records: dict[int, OrderRecord] = field(default_factory=dict)
    client_ids: set[tuple[str, str]] = field(default_factory=set)
    seen_exec_ids: set[str] = field(default_factory=set)
    positions: PositionTracker | None = None
    next_order_id: int = 1
    daily_orders: int = 0
    daily_notional: float = 0.0
    entries: int = 0
    snapshot_seq: int = 0
    intents_applied: int = 0
    snapshot_next_order_id: int = 1
    illegal: int = 0
    illegal_reasons: dict[str, int] = field(default_factory=dict)
    early: dict[int, list[JournalEntry]] = field(default_factory=dict)
    from_intents: list[tuple[int, str, int, dict[str, Any]]] = field(default_factory=list)
    seconds: float = 0.0

    def live_records(self) -> list[OrderRecord]:
        return [record for record in self.records.values() if record.order_id > 0 and record.status not in TERMINAL]


def replay(journal: Journal, starting_equity: Decimal, *, day_start_ns: int = 0,
           intents: IntentLog | None = None) -> Recovered:
    """Rebuild the order records, positions and counters from the latest snapshot and the entries after it."""
    started = time.perf_counter()
    recovered = Recovered(positions=PositionTracker(starting_equity))
    registry = OrderRegistry()
    registry.by_id = recovered.records
    snapshot = journal.latest_snapshot()
    if snapshot is not None:
        recovered.snapshot_seq, state = snapshot
        for data in state["records"]:
            record = record_from_state(data)
            recovered.records[record.order_id] = record
        recovered.client_ids = {tuple(pair) for pair in state["client_ids"]}
        recovered.seen_exec_ids = set(state["seen_exec_ids"])
        positions_from_state(recovered.positions, state["positions"])
        recovered.next_order_id = state["next_order_id"]
        recovered.snapshot_next_order_id = state["next_order_id"]
        recovered.daily_orders = state["daily_orders"]
        recovered.daily_notional = state["daily_notional"]

    def on_fill(record: OrderRecord, quantity: Decimal, price: Fraction) -> None:
        recovered.positions.apply_fill(record.account, record.symbol, record.side == "1", quantity, price)

    def on_illegal(record, event, reason: str) -> None:
        recovered.illegal_reasons[reason] = recovered.illegal_reasons.get(reason, 0) + 1

    manager = OrderManager(registry, on_fill=on_fill, on_illegal=on_illegal)
    requests_seen: set[str] = set()
    for entry in journal.entries(recovered.snapshot_seq):
        recovered.entries += 1
        _apply(recovered, manager, entry, day_start_ns)
        requests_seen.update(request["venue_cl_ord_id"] for request in entry.data.get("requests", ()))
    for record in recovered.records.values():
        requests_seen.update(record.requests)
    # Intents written ahead but not journaled before a crash: the last thing known of those orders.
    for at_ns, kind, order_id, data in (intents.entries() if intents is not None else ()):
        if kind == KIND_NAMES[EventKind.ACCEPTED]:
            # Known, or older than the snapshot (then finished: the snapshot holds every live order).
            if order_id in recovered.records or order_id < recovered.snapshot_next_order_id:
                continue
        else:
            record = recovered.records.get(order_id)
            fresh = [request for request in data.get("requests", ()) if request["venue_cl_ord_id"] not in requests_seen]
            if record is None or record.status in TERMINAL or not fresh:
                continue
            requests_seen.update(request["venue_cl_ord_id"] for request in fresh)
        recovered.intents_applied += 1
        recovered.from_intents.append((at_ns, kind, order_id, data))
        _apply(recovered, manager, JournalEntry(0, at_ns, kind, order_id, data), day_start_ns)
    recovered.illegal = manager.illegal_transitions
    for record in recovered.records.values():
        recovered.client_ids.update((record.session, cl_ord_id) for cl_ord_id in record.cl_ord_ids)
    recovered.seconds = time.perf_counter() - started
    return recovered


def _apply(recovered: Recovered, manager: OrderManager, entry: JournalEntry, day_start_ns: int) -> None:
    kind = KINDS_BY_NAME.get(entry.kind)
    if kind is None:
        return                                   # risk-state changes and admin actions: history only
    if kind not in (EventKind.ACCEPTED, EventKind.REJECTED) and entry.order_id > 0 \
            and entry.order_id not in recovered.records:
        # The accepted event is pushed after the order is sent, so a venue's first report can be
        # journaled just before it: hold such events until their order is known.
        recovered.early.setdefault(entry.order_id, []).append(entry)
        return
    _apply_known(recovered, manager, entry, kind, day_start_ns)
    if kind == EventKind.ACCEPTED:
        for early in recovered.early.pop(entry.order_id, ()):
            _apply_known(recovered, manager, early, KINDS_BY_NAME[early.kind], day_start_ns)


def _apply_known(recovered: Recovered, manager: OrderManager, entry: JournalEntry, kind: int,
                 day_start_ns: int) -> None:
    data = entry.data
    if kind in (EventKind.ACCEPTED, EventKind.REJECTED):
        if data.get("order") is None:
            return
        record = record_from_state(data["order"])
        record.status = OrdStatus.PENDING_NEW
        record.status_before_pending = OrdStatus.PENDING_NEW
        recovered.records[record.order_id] = record
        if kind == EventKind.ACCEPTED:
            recovered.next_order_id = max(recovered.next_order_id, record.order_id + 1)
            if entry.at_ns >= day_start_ns:
                recovered.daily_orders += 1
                recovered.daily_notional += data.get("qty_lots", 0) * float(record.lot_size) * data.get("price", 0.0)
    record = recovered.records.get(entry.order_id)
    if kind == EventKind.FILLED and data.get("exec_id"):
        recovered.seen_exec_ids.add(data["exec_id"])
    if record is not None and "cl_ord_id" in data:
        record.cl_ord_id = data["cl_ord_id"]
        record.cl_ord_ids = data["cl_ord_ids"]
        record.venue_cl_ord_id = data["venue_cl_ord_id"]
        record.replaced_cl_ord_ids = set(data["replaced_cl_ord_ids"])
        record.requests = {request["venue_cl_ord_id"]: VenueRequest(**request) for request in data["requests"]}
    manager.apply(OrderEvent(kind, entry.order_id, data.get("qty_lots", 0), data.get("price", 0.0)))


def snapshot_state(registry: OrderRegistry, positions: PositionTracker, book, seen_exec_ids: set[str]) -> dict:
    """Return the live state as the journal snapshots it (call on the state thread)."""
    records = list(registry.by_id.values())
    return {
        "records": [record_state(record) for record in records
                    if record.order_id > 0 and record.status not in TERMINAL],
        "client_ids": sorted({(record.session, cl_ord_id) for record in records for cl_ord_id in record.cl_ord_ids}),
        "seen_exec_ids": sorted(seen_exec_ids),
        "positions": positions_state(positions),
        "next_order_id": book.next_order_id,
        "daily_orders": book.daily_orders,
        "daily_notional": book.daily_notional,
    }


def install(recovered: Recovered, registry: OrderRegistry, positions: PositionTracker, book, lot_sizes,
            tick_sizes) -> None:
    """Put the recovered state into the live registry, position tracker and risk book."""
    for record in recovered.records.values():
        registry.by_id[record.order_id] = record
        for cl_ord_id in record.cl_ord_ids:
            registry.by_client[(record.session, cl_ord_id)] = record
        if record.venue_cl_ord_id:
            registry.by_venue[record.venue_cl_ord_id] = (record, None)
        for request in record.requests.values():
            registry.by_venue[request.venue_cl_ord_id] = (record, request)
    registry.known_ids.update(recovered.client_ids)
    registry.continue_reject_ids(min(recovered.records, default=0))
    registry.seen_exec_ids.update(recovered.seen_exec_ids)
    positions.positions.update(recovered.positions.positions)
    positions.peak_equity = recovered.positions.peak_equity
    for instrument_id, symbol in enumerate(book.instruments.symbols):
        lots = recovered.positions.net_quantity(symbol) / Fraction(lot_sizes[instrument_id])
        book.restore_position(instrument_id, int(lots))
    for record in recovered.live_records():
        lot = record.lot_size
        tick = tick_sizes[record.instrument_id]
        qty_lots = int(Decimal(record.order_qty) / lot)
        cum_lots = int(record.cum_qty / lot)
        if record.price is not None:
            price_ticks = int((Decimal(record.price) / tick).to_integral_value())
        else:
            price_ticks = max(int(Decimal(repr(book.quotes.reference_price(record.instrument_id))) / tick), 1)
        pending = next((request for request in record.requests.values() if request.kind == "replace"), None)
        try:
            book.restore_order(
                record.order_id, record.instrument_id, record.session_index, 1 if record.side == "1" else 2,
                1 if record.ord_type == "1" else 2, qty_lots, cum_lots, price_ticks,
                acked=record.status != OrdStatus.PENDING_NEW, replace_pending=pending is not None,
                new_qty_lots=int(Decimal(pending.order_qty) / lot) if pending and pending.order_qty else 0,
                new_price_ticks=int((Decimal(pending.price) / tick).to_integral_value())
                if pending and pending.price else 0)
        except ValueError as error:
            log.error("order_not_restored", order_id=record.gateway_order_id, error=str(error))
    book.restore_next_order_id(recovered.next_order_id)
    book.restore_daily(recovered.daily_orders, recovered.daily_notional)

