"""Client orders: the record each order keeps, and the FIX 4.4 order state machine (the OMS).

A record is created by the thread that accepts (or rejects) the order and is found by id through
the `OrderRegistry`. Its identity and routing fields are written by the FIX threads; its state
fields (status, filled quantity, average price) only by the OMS on the state thread, from ring
events. An illegal transition is counted and logged, never raised.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable

from fixgate._fast.codes import EventKind
from fixgate.core.messages import OrdStatus
from fixgate.core.positions import exact_price, to_decimal

TERMINAL = frozenset({OrdStatus.FILLED, OrdStatus.CANCELED, OrdStatus.REJECTED, OrdStatus.EXPIRED,
                      OrdStatus.DONE_FOR_DAY})

STATUS_NAMES = {
    OrdStatus.PENDING_NEW: "PendingNew", OrdStatus.NEW: "New", OrdStatus.PARTIALLY_FILLED: "PartiallyFilled",
    OrdStatus.FILLED: "Filled", OrdStatus.PENDING_CANCEL: "PendingCancel", OrdStatus.CANCELED: "Canceled",
    OrdStatus.PENDING_REPLACE: "PendingReplace", OrdStatus.REPLACED: "Replaced",
    OrdStatus.REJECTED: "Rejected", OrdStatus.EXPIRED: "Expired", OrdStatus.DONE_FOR_DAY: "DoneForDay",
}


@dataclass(slots=True)
class VenueRequest:
    """A cancel or replace the gateway sent to the venue for a client request."""

    kind: str                       # "cancel" or "replace"
    venue_cl_ord_id: str
    client_cl_ord_id: str
    orig_client_cl_ord_id: str
    order_qty: str | None = None
    price: str | None = None


@dataclass(slots=True, eq=False)
class OrderRecord:
    """One client order, from NewOrderSingle to its last report."""

    # identity and routing (FIX threads)
    order_id: int
    gateway_order_id: str
    session: str
    account: str
    cl_ord_id: str
    symbol: str
    instrument_id: int
    side: str
    ord_type: str
    time_in_force: str
    order_qty: str
    price: str | None
    lot_size: Decimal
    session_index: int = 0
    venue: str = ""
    venue_cl_ord_id: str = ""
    venue_order_id: str = ""
    cl_ord_ids: list[str] = field(default_factory=list)
    requests: dict[str, VenueRequest] = field(default_factory=dict)
    reject_text: str | None = None
    fill_exec_ids: deque = field(default_factory=deque)      # venue ExecIDs of fills not yet journaled
    # state (state thread)
    status: str = OrdStatus.PENDING_NEW
    status_before_pending: str = OrdStatus.PENDING_NEW
    cum_qty: Decimal = Decimal(0)
    notional: Fraction = Fraction(0)
    replaced_cl_ord_ids: set[str] = field(default_factory=set)

    @property
    def leaves_qty(self) -> Decimal:
        if self.status in TERMINAL:
            return Decimal(0)
        return max(Decimal(self.order_qty) - self.cum_qty, Decimal(0))

    @property
    def avg_px(self) -> Decimal:
        if not self.cum_qty:
            return Decimal(0)
        return to_decimal(self.notional / Fraction(self.cum_qty))

    def status_of(self, cl_ord_id: str) -> str:
        """Return OrdStatus as seen through `cl_ord_id` (REPLACED for an id that was replaced)."""
        return OrdStatus.REPLACED if cl_ord_id in self.replaced_cl_ord_ids else self.status

    def summary(self) -> dict[str, Any]:
        """Return the order as plain values for status pages."""
        return {
            "order_id": self.gateway_order_id,
            "session": self.session,
            "cl_ord_id": self.cl_ord_id,
            "symbol": self.symbol,
            "side": self.side,
            "ord_type": self.ord_type,
            "order_qty": self.order_qty,
            "price": self.price,
            "status": STATUS_NAMES.get(self.status, self.status),
            "cum_qty": str(self.cum_qty),
            "leaves_qty": str(self.leaves_qty),
            "avg_px": str(self.avg_px),
            "venue": self.venue,
            "venue_cl_ord_id": self.venue_cl_ord_id,
        }


class OrderRegistry:
    """Every order record by id, by (session, ClOrdID) and by venue ClOrdID.

    Written by the FIX threads, read by every thread; each operation is one dict operation, atomic
    under the GIL. Rejected orders get negative ids, accepted ones the risk book's id.
    """

    def __init__(self) -> None:
        self.by_id: dict[int, OrderRecord] = {}
        self.by_client: dict[tuple[str, str], OrderRecord] = {}
        self.by_venue: dict[str, tuple[OrderRecord, VenueRequest | None]] = {}
        self.known_ids: set[tuple[str, str]] = set()            # ClOrdIDs of orders no longer held in memory
        self.seen_exec_ids: set[str] = set()                    # venue ExecIDs of fills already booked
        self._reject_ids = itertools.count(-1, -1)
        self._lock = threading.Lock()

    def continue_reject_ids(self, lowest: int) -> None:
        """Hand out reject ids below `lowest` (ids from the journal are never reused)."""
        with self._lock:
            self._reject_ids = itertools.count(min(lowest, 0) - 1, -1)

    def next_reject_id(self) -> int:
        """Return a fresh negative id for an order rejected before it reached the risk book."""
        with self._lock:
            return next(self._reject_ids)

    def add(self, record: OrderRecord, *, index_client: bool = True) -> None:
        """Register `record` by id and, unless told otherwise, by its ClOrdID."""
        self.by_id[record.order_id] = record
        if index_client:
            self.by_client[(record.session, record.cl_ord_id)] = record
        record.cl_ord_ids.append(record.cl_ord_id)
        if record.venue_cl_ord_id:
            self.by_venue[record.venue_cl_ord_id] = (record, None)

    def add_request(self, record: OrderRecord, request: VenueRequest) -> None:
        """Register a cancel or replace sent to the venue, and the client's new ClOrdID."""
        record.requests[request.venue_cl_ord_id] = request
        self.by_venue[request.venue_cl_ord_id] = (record, request)
        self.by_client.setdefault((record.session, request.client_cl_ord_id), record)

    def known_cl_ord_id(self, session: str, cl_ord_id: str) -> bool:
        return (session, cl_ord_id) in self.by_client or (session, cl_ord_id) in self.known_ids

    def find_client(self, session: str, cl_ord_id: str) -> OrderRecord | None:
        return self.by_client.get((session, cl_ord_id))

    def find_venue(self, venue_cl_ord_id: str) -> tuple[OrderRecord, VenueRequest | None] | None:
        return self.by_venue.get(venue_cl_ord_id)

    def forget(self, record: OrderRecord) -> None:
        """Drop a finished order from memory; its ClOrdIDs stay known (duplicates are still refused)."""
        self.by_id.pop(record.order_id, None)
        for cl_ord_id in record.cl_ord_ids:
            key = (record.session, cl_ord_id)
            if self.by_client.get(key) is record:
                del self.by_client[key]
            self.known_ids.add(key)
        for venue_cl_ord_id in [record.venue_cl_ord_id, *record.requests]:
            found = self.by_venue.get(venue_cl_ord_id)
            if found is not None and found[0] is record:
                del self.by_venue[venue_cl_ord_id]

    def open_orders(self, session: str | None = None) -> list[OrderRecord]:
        """Return every order not in a terminal state (of `session` when given)."""
        return [record for record in list(self.by_id.values())
                if record.status not in TERMINAL and (session is None or record.session == session)]


# -- THE STATE MACHINE --------------------------------------------------------------------------------

# For each status, the events it accepts and the status they lead to. FILLED leads to
# PARTIALLY_FILLED or FILLED by quantity; CANCEL_REJECTED and REPLACE_REJECTED return to the status
# before the request. An event missing here is an illegal transition.
_PARTIAL = "partial-or-filled"
_REPLACED = "new-partial-or-filled"
_BACK = "back"
_SAME = "same"
_LIVE = {
    EventKind.FILLED: _PARTIAL,
    EventKind.CANCEL_REQUESTED: OrdStatus.PENDING_CANCEL,
    EventKind.REPLACE_ACCEPTED: OrdStatus.PENDING_REPLACE,
    EventKind.CANCELED: OrdStatus.CANCELED,
    EventKind.EXPIRED: OrdStatus.EXPIRED,
    EventKind.DONE_FOR_DAY: OrdStatus.DONE_FOR_DAY,
    EventKind.ACKED: _SAME,
}
TRANSITIONS: dict[str, dict[int, str]] = {
    OrdStatus.PENDING_NEW: {**_LIVE, EventKind.ACKED: OrdStatus.NEW, EventKind.VENUE_REJECTED: OrdStatus.REJECTED},
    OrdStatus.NEW: _LIVE,
    OrdStatus.PARTIALLY_FILLED: _LIVE,
    OrdStatus.PENDING_CANCEL: {
        EventKind.FILLED: _PARTIAL, EventKind.CANCELED: OrdStatus.CANCELED,
        EventKind.CANCEL_REJECTED: _BACK, EventKind.EXPIRED: OrdStatus.EXPIRED, EventKind.ACKED: _SAME,
        EventKind.DONE_FOR_DAY: OrdStatus.DONE_FOR_DAY, EventKind.VENUE_REJECTED: OrdStatus.REJECTED,
    },
    OrdStatus.PENDING_REPLACE: {
        EventKind.FILLED: _PARTIAL, EventKind.REPLACED: _REPLACED, EventKind.REPLACE_REJECTED: _BACK,
        EventKind.CANCELED: OrdStatus.CANCELED, EventKind.EXPIRED: OrdStatus.EXPIRED, EventKind.ACKED: _SAME,
        EventKind.DONE_FOR_DAY: OrdStatus.DONE_FOR_DAY, EventKind.VENUE_REJECTED: OrdStatus.REJECTED,
    },
    OrdStatus.FILLED: {},
    OrdStatus.CANCELED: {},
    OrdStatus.REJECTED: {},
    OrdStatus.EXPIRED: {},
    OrdStatus.DONE_FOR_DAY: {},
}


@dataclass(slots=True)
class OrderEvent:
    """One ring event, as the OMS reads it: `qty_lots` is the fill quantity for FILLED and the new
    total quantity for REPLACED; `price` the fill price or the new limit price."""

    kind: int
    order_id: int
    qty_lots: int = 0
    price: float = 0.0


class OrderManager:
    """The OMS: applies order events to the records' state; counts illegal transitions.

    Parameters
    ----------
    registry : OrderRegistry
        Where records are found by id.
    on_fill : callable, optional
        Called as ``on_fill(record, quantity: Decimal, price: Fraction)`` for every booked fill.
    on_illegal : callable, optional
        Called as ``on_illegal(record_or_None, event, reason)`` for every refused event.
    """

    def __init__(self, registry: OrderRegistry, *, on_fill: Callable | None = None,
                 on_illegal: Callable | None = None) -> None:
        self.registry = registry
        self.on_fill = on_fill
        self.on_illegal = on_illegal
        self.illegal_transitions = 0
        self.applied = 0

    def apply(self, event: OrderEvent) -> bool:
        """Apply `event`; return False (and count it) when it is not a legal transition."""
        record = self.registry.by_id.get(event.order_id)
        if record is None:
            return self._illegal(None, event, "unknown order")
        if event.kind == EventKind.ACCEPTED:
            # The record was created PendingNew when the order was accepted; the event only says when
            # it went out (and may arrive after the venue's first reports: it is pushed after sending).
            self.applied += 1
            return True
        if event.kind == EventKind.REJECTED:
            if record.status != OrdStatus.PENDING_NEW:
                return self._illegal(record, event, "rejected after acceptance")
            record.status = OrdStatus.REJECTED
            self.applied += 1
            return True
        target = TRANSITIONS.get(record.status, {}).get(event.kind)
        if target is None:
            return self._illegal(record, event, f"{EventKind(event.kind).name} in {STATUS_NAMES[record.status]}")
        if event.kind == EventKind.FILLED:
            self._book_fill(record, event)
        elif event.kind == EventKind.REPLACED:
            self._apply_replace(record, event)
        if event.kind in (EventKind.CANCEL_REQUESTED, EventKind.REPLACE_ACCEPTED):
            record.status_before_pending = record.status
        if target == _BACK:
            record.status = record.status_before_pending
        elif target == _PARTIAL:
            record.status = self._fill_status(record, keep_pending=True)
        elif target == _REPLACED:
            record.status = self._fill_status(record, keep_pending=False)
        elif target == _SAME:
            pass
        else:
            record.status = target
        self.applied += 1
        return True

    def _book_fill(self, record: OrderRecord, event: OrderEvent) -> None:
        quantity = record.lot_size * event.qty_lots
        price = exact_price(event.price)
        record.cum_qty += quantity
        record.notional += Fraction(quantity) * price
        if self.on_fill is not None:
            self.on_fill(record, quantity, price)

    def _apply_replace(self, record: OrderRecord, event: OrderEvent) -> None:
        if event.qty_lots > 0:
            record.order_qty = str((record.lot_size * event.qty_lots).normalize())
        if record.price is not None and event.price > 0.0:
            record.price = repr(event.price)

    def _fill_status(self, record: OrderRecord, keep_pending: bool) -> str:
        if record.cum_qty >= Decimal(record.order_qty):
            return OrdStatus.FILLED
        if keep_pending and record.status in (OrdStatus.PENDING_CANCEL, OrdStatus.PENDING_REPLACE):
            return record.status
        return OrdStatus.PARTIALLY_FILLED if record.cum_qty else OrdStatus.NEW

    def _illegal(self, record: OrderRecord | None, event: OrderEvent, reason: str) -> bool:
        self.illegal_transitions += 1
        if self.on_illegal is not None:
            self.on_illegal(record, event, reason)
        return False
