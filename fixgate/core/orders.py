"""The OMS view: every order's state as the engine's events tell it, on the state thread.

The native engine owns order state and decides; it pushes one complete event per change. The OMS
view applies those events, in order, to plain records with the FIX 4.4 order state machine, for the
status page, the positions, the journal's snapshots and recovery. It is written only by the state
thread (and by recovery before the engine starts), read by the admin thread for display. Numbers
are the engine's: whole lots and ticks. An event the state machine does not allow is counted and
logged as an illegal transition, never raised.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from fixgate.core import events as ev
from fixgate.core.events import Event
from fixgate.core.messages import OrdStatus
from fixgate.core.numbers import average_text, units_text

TERMINAL = frozenset({OrdStatus.FILLED, OrdStatus.CANCELED, OrdStatus.REJECTED, OrdStatus.EXPIRED,
                      OrdStatus.DONE_FOR_DAY})

STATUS_NAMES = {
    OrdStatus.PENDING_NEW: "PendingNew", OrdStatus.NEW: "New", OrdStatus.PARTIALLY_FILLED: "PartiallyFilled",
    OrdStatus.FILLED: "Filled", OrdStatus.PENDING_CANCEL: "PendingCancel", OrdStatus.CANCELED: "Canceled",
    OrdStatus.PENDING_REPLACE: "PendingReplace", OrdStatus.REPLACED: "Replaced",
    OrdStatus.REJECTED: "Rejected", OrdStatus.EXPIRED: "Expired", OrdStatus.DONE_FOR_DAY: "DoneForDay",
}

SIDE_CHARS = {1: "1", 2: "2", 5: "5"}
ORD_TYPE_CHARS = {1: "1", 2: "2"}


@dataclass(frozen=True)
class Instrument:
    """What the OMS view needs of an instrument: its symbol, venue and steps."""

    symbol: str
    venue: str
    lot: Decimal
    tick: Decimal


@dataclass(slots=True)
class Request:
    """A cancel or replace the engine sent to the venue; `number` names it ("<order>.<number>")."""

    kind: str                        # "cancel" or "replace"
    number: int
    client_cl_ord_id: str            # empty when the gateway cancels on its own
    orig_client_cl_ord_id: str
    qty_lots: int = 0
    price_ticks: int = 0
    reason: int = 0
    text: str = ""

    def state(self) -> dict[str, Any]:
        return {"number": self.number, "client_cl_ord_id": self.client_cl_ord_id,
                "orig_client_cl_ord_id": self.orig_client_cl_ord_id, "qty_lots": self.qty_lots,
                "price_ticks": self.price_ticks, "reason": self.reason, "text": self.text}


@dataclass(slots=True, eq=False)
class OrderView:
    """One client order, from its NewOrderSingle to its last report."""

    order_id: int                    # the engine's id; negative for orders refused before the book
    session: str
    session_index: int
    account: str
    cl_ord_id: str                   # the client's current ClOrdID
    symbol: str
    instrument_id: int
    venue: str
    venue_index: int
    side: str                        # FIX Side(54)
    ord_type: str
    time_in_force: str
    qty_lots: int
    price_ticks: int                 # 0 for a market order
    gateway_order_id: str
    venue_cl_ord_id: str
    lot: Decimal
    tick: Decimal
    venue_order_id: str = ""
    cum_lots: int = 0
    cost: int = 0                    # sum of lots x ticks over the fills
    status: str = OrdStatus.PENDING_NEW
    status_before_pending: str = OrdStatus.PENDING_NEW
    acked: bool = False
    cancel: Request | None = None
    replace: Request | None = None
    next_request: int = 0
    cl_ord_ids: list[str] = field(default_factory=list)
    replaced_cl_ord_ids: list[str] = field(default_factory=list)
    reject_code: int = 0
    reject_text: str = ""

    @property
    def leaves_lots(self) -> int:
        return 0 if self.status in TERMINAL else max(self.qty_lots - self.cum_lots, 0)

    @property
    def live(self) -> bool:
        return self.order_id > 0 and self.status not in TERMINAL

    def status_of(self, cl_ord_id: str) -> str:
        """Return OrdStatus as seen through `cl_ord_id` (REPLACED for an id that was replaced)."""
        return OrdStatus.REPLACED if cl_ord_id in self.replaced_cl_ord_ids else self.status

    # display values (exact decimals from the integers)
    @property
    def order_qty(self) -> str:
        return units_text(self.qty_lots, self.lot)

    @property
    def price(self) -> str | None:
        return units_text(self.price_ticks, self.tick) if self.price_ticks else None

    @property
    def cum_qty(self) -> Decimal:
        return self.lot * self.cum_lots

    @property
    def avg_px(self) -> str:
        return average_text(self.cost, self.cum_lots, self.tick)

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
            "cum_qty": units_text(self.cum_lots, self.lot),
            "leaves_qty": units_text(self.leaves_lots, self.lot),
            "avg_px": self.avg_px,
            "venue": self.venue,
            "venue_cl_ord_id": self.venue_cl_ord_id,
        }

    def state(self) -> dict[str, Any]:
        """Return the order as the journal's snapshots keep it (and the engine's restore takes it)."""
        return {
            "order_id": self.order_id, "session": self.session, "session_index": self.session_index,
            "account": self.account, "cl_ord_id": self.cl_ord_id, "symbol": self.symbol,
            "instrument_id": self.instrument_id, "venue": self.venue, "venue_index": self.venue_index,
            "side": self.side, "ord_type": self.ord_type, "time_in_force": self.time_in_force,
            "qty_lots": self.qty_lots, "price_ticks": self.price_ticks, "gateway_order_id": self.gateway_order_id,
            "venue_cl_ord_id": self.venue_cl_ord_id, "venue_order_id": self.venue_order_id,
            "cum_lots": self.cum_lots, "cost": self.cost, "status": self.status,
            "status_before_pending": self.status_before_pending, "acked": self.acked,
            "cancel": self.cancel.state() if self.cancel else None,
            "replace": self.replace.state() if self.replace else None,
            "next_request": self.next_request, "cl_ord_ids": list(self.cl_ord_ids),
            "replaced_cl_ord_ids": list(self.replaced_cl_ord_ids),
        }


def _request(kind: str, data: dict[str, Any] | None) -> Request | None:
    return None if not data else Request(kind=kind, **data)


def view_from_state(data: dict[str, Any], instrument: Instrument) -> OrderView:
    """Rebuild an order from its `OrderView.state()`."""
    values = dict(data)
    values["cancel"] = _request("cancel", values.get("cancel"))
    values["replace"] = _request("replace", values.get("replace"))
    return OrderView(lot=instrument.lot, tick=instrument.tick, **values)


def _status_without_requests(view: OrderView) -> str:
    """OrdStatus as the engine keeps it: the pending states come from its requests, not its status."""
    if view.status not in (OrdStatus.PENDING_CANCEL, OrdStatus.PENDING_REPLACE):
        return view.status
    if view.cum_lots >= view.qty_lots:
        return OrdStatus.FILLED
    if view.cum_lots:
        return OrdStatus.PARTIALLY_FILLED
    return OrdStatus.NEW if view.acked else OrdStatus.PENDING_NEW


def engine_restore(view: OrderView) -> dict[str, Any]:
    """Return an order as the engine's `restore_order` takes it (a finished one reserves nothing)."""
    return {
        "in_book": view.live,
        "order_id": view.order_id, "session": view.session_index, "instrument": view.instrument_id,
        "venue": view.venue_index, "side": view.side, "ord_type": view.ord_type, "tif": view.time_in_force,
        "qty_lots": view.qty_lots, "price_ticks": view.price_ticks, "cum_lots": view.cum_lots, "cost": view.cost,
        "status": _status_without_requests(view),
        "acked": view.acked, "cl_ord_id": view.cl_ord_id, "account": view.account,
        "venue_cl_ord_id": view.venue_cl_ord_id, "venue_order_id": view.venue_order_id,
        "next_request": view.next_request, "client_ids": list(view.cl_ord_ids),
        "replaced_ids": list(view.replaced_cl_ord_ids),
        "cancel": view.cancel.state() if view.cancel else None,
        "replace": view.replace.state() if view.replace else None,
    }


# -- THE STATE MACHINE ------------------------------------------------------------------------------

# For each status, the events it accepts and the status they lead to. FILLED leads to
# PARTIALLY_FILLED or FILLED by quantity; CANCEL_REJECTED and REPLACE_REJECTED return to the status
# before the request. An event missing here is an illegal transition.
_PARTIAL = "partial-or-filled"
_REPLACED = "new-partial-or-filled"
_BACK = "back"
_SAME = "same"
_LIVE = {
    ev.FILLED: _PARTIAL,
    ev.CANCEL_REQUESTED: OrdStatus.PENDING_CANCEL,
    ev.REPLACE_ACCEPTED: OrdStatus.PENDING_REPLACE,
    ev.CANCELED: OrdStatus.CANCELED,
    ev.EXPIRED: OrdStatus.EXPIRED,
    ev.DONE_FOR_DAY: OrdStatus.DONE_FOR_DAY,
    ev.ACKED: _SAME,
    ev.VENUE_REJECTED: OrdStatus.REJECTED,
    ev.CANCEL_REJECTED: _SAME,
    ev.REPLACE_REJECTED: _SAME,
}
_PENDING = {
    ev.FILLED: _PARTIAL, ev.CANCELED: OrdStatus.CANCELED, ev.EXPIRED: OrdStatus.EXPIRED, ev.ACKED: _SAME,
    ev.DONE_FOR_DAY: OrdStatus.DONE_FOR_DAY, ev.VENUE_REJECTED: OrdStatus.REJECTED,
}
TRANSITIONS: dict[str, dict[int, str]] = {
    OrdStatus.PENDING_NEW: {**_LIVE, ev.ACKED: OrdStatus.NEW},
    OrdStatus.NEW: _LIVE,
    OrdStatus.PARTIALLY_FILLED: _LIVE,
    OrdStatus.PENDING_CANCEL: {**_PENDING, ev.CANCEL_REJECTED: _BACK, ev.REPLACE_ACCEPTED: _SAME,
                               ev.REPLACE_REJECTED: _SAME, ev.REPLACED: _SAME},
    OrdStatus.PENDING_REPLACE: {**_PENDING, ev.REPLACED: _REPLACED, ev.REPLACE_REJECTED: _BACK,
                                ev.CANCEL_REQUESTED: _SAME, ev.CANCEL_REJECTED: _SAME},
    OrdStatus.FILLED: {},
    OrdStatus.CANCELED: {},
    OrdStatus.REJECTED: {},
    OrdStatus.EXPIRED: {},
    OrdStatus.DONE_FOR_DAY: {},
}
# Events that may arrive after an order finished without anything being wrong: the venue's answer
# to a cancel that crossed a fill, a replace refused because the order had just filled.
_LATE = frozenset({ev.CANCEL_REJECTED, ev.REPLACE_REJECTED, ev.CANCEL_REQUESTED})


class Orders:
    """Every order view by id and by (session, ClOrdID); finished ones are forgotten after a while.

    Parameters
    ----------
    instruments : list[Instrument]
        By instrument id.
    sessions : list[str]
        Client names by session index.
    venues : list[str]
        Venue names by venue index.
    """

    def __init__(self, instruments: list[Instrument], sessions: list[str], venues: list[str], *,
                 retention_orders: int = 100_000) -> None:
        self.instruments = instruments
        self.sessions = sessions
        self.venues = venues
        self.by_id: dict[int, OrderView] = {}
        self.by_client: dict[tuple[str, str], OrderView] = {}
        self.finished: deque[int] = deque()
        self.refused: deque[int] = deque()
        self.retention_orders = retention_orders
        self.next_reject_id = -1
        self.forgotten = 0

    def add(self, view: OrderView) -> None:
        self.by_id[view.order_id] = view
        for cl_ord_id in view.cl_ord_ids or [view.cl_ord_id]:
            known = self.by_client.get((view.session, cl_ord_id))
            if known is None or not known.live:         # a refused duplicate never hides the live order
                self.by_client[(view.session, cl_ord_id)] = view
        if not view.cl_ord_ids:
            view.cl_ord_ids.append(view.cl_ord_id)

    def index_client_id(self, view: OrderView, cl_ord_id: str) -> None:
        if cl_ord_id and cl_ord_id not in view.cl_ord_ids:
            view.cl_ord_ids.append(cl_ord_id)
            self.by_client[(view.session, cl_ord_id)] = view

    def find_client(self, session: str, cl_ord_id: str) -> OrderView | None:
        return self.by_client.get((session, cl_ord_id))

    def open_orders(self, session: str | None = None) -> list[OrderView]:
        return [view for view in list(self.by_id.values())
                if view.live and (session is None or view.session == session)]

    def finish(self, view: OrderView) -> None:
        # Orders refused before the book have a queue of their own, so that a burst of rejects never
        # forgets accepted orders the engine still holds.
        queue = self.refused if view.order_id < 0 else self.finished
        queue.append(view.order_id)
        while len(queue) > self.retention_orders:
            order_id = queue.popleft()
            old = self.by_id.get(order_id)
            if old is None or old.live:
                continue
            del self.by_id[order_id]
            for cl_ord_id in old.cl_ord_ids:
                if self.by_client.get((old.session, cl_ord_id)) is old:
                    del self.by_client[(old.session, cl_ord_id)]
            self.forgotten += 1


class OrderManager:
    """The OMS: applies the engine's events to the order views; counts illegal transitions.

    Parameters
    ----------
    orders : Orders
        Where views live.
    on_fill : callable, optional
        ``on_fill(view, lots, ticks)`` for every booked fill.
    on_illegal : callable, optional
        ``on_illegal(view_or_None, event, reason)`` for every refused event.
    """

    def __init__(self, orders: Orders, *, on_fill: Callable[[OrderView, int, int], None] | None = None,
                 on_illegal: Callable[[OrderView | None, Event, str], None] | None = None) -> None:
        self.orders = orders
        self.on_fill = on_fill
        self.on_illegal = on_illegal
        self.illegal_transitions = 0
        self.applied = 0

    def _trade_corrected(self, view: OrderView, event: Event) -> OrderView:
        # A venue's bust (negative) or correction of a fill, in any status: the filled quantity, the
        # cost and the position follow; a working order stays working, a finished one finished.
        view.cum_lots = max(view.cum_lots + event.qty_lots, 0)
        view.cost = max(view.cost + event.aux, 0)
        if self.on_fill is not None:
            self.on_fill(view, event.qty_lots, event.price_ticks)
        if view.status not in TERMINAL:
            if view.cum_lots >= view.qty_lots:            # as the engine does: the order is done
                self._finish(view, OrdStatus.FILLED)
            elif view.status in (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED):
                view.status = OrdStatus.PARTIALLY_FILLED if view.cum_lots else OrdStatus.NEW
        self.applied += 1
        return view

    def _finish(self, view: OrderView, status: str) -> None:
        view.status = status
        view.cancel = None
        view.replace = None
        self.orders.finish(view)

    def _restated(self, view: OrderView, event: Event) -> OrderView | None:
        # The venue restated the quantity of a working order; restated to what is filled, it is done.
        if view.status in TERMINAL:
            self._illegal(view, event, f"restated in {STATUS_NAMES.get(view.status)}")
            return None
        view.qty_lots = max(event.qty_lots, view.cum_lots)
        if view.cum_lots >= view.qty_lots:
            self._finish(view, OrdStatus.FILLED if view.cum_lots else OrdStatus.CANCELED)
        self.applied += 1
        return view

    def apply(self, event: Event) -> OrderView | None:
        """Apply one order event; return the view it changed (None when refused)."""
        kind = event.kind
        if kind == ev.ACCEPTED:
            return self._accepted(event)
        if kind == ev.REJECTED:
            return self._rejected(event)
        view = self.orders.by_id.get(event.order_id)
        if view is None:
            self._illegal(None, event, "unknown order")
            return None
        if kind == ev.TRADE_CORRECTED:
            return self._trade_corrected(view, event)
        if kind == ev.RESTATED:
            return self._restated(view, event)
        target = TRANSITIONS.get(view.status, {}).get(kind)
        if target is None and kind == ev.FILLED and view.status in TERMINAL:
            # A fill after the order finished (the venue filled more than it had open): the engine
            # booked it and raised the alarm; the position is what the venue says it is.
            view.cum_lots += event.qty_lots
            view.cost += event.qty_lots * event.price_ticks
            if self.on_fill is not None:
                self.on_fill(view, event.qty_lots, event.price_ticks)
            self.applied += 1
            return view
        if target is None:
            if kind in _LATE and view.status in TERMINAL:
                self._clear_request(view, kind, event)
                self.applied += 1
                return view
            self._illegal(view, event, f"{ev.KIND_NAMES.get(kind, kind)} in {STATUS_NAMES.get(view.status)}")
            return None
        if kind == ev.FILLED:
            view.cum_lots += event.qty_lots
            view.cost += event.qty_lots * event.price_ticks
            if event.text_c:
                view.venue_order_id = ev.text(event.text_c)
            if self.on_fill is not None:
                self.on_fill(view, event.qty_lots, event.price_ticks)
        elif kind == ev.ACKED:
            view.acked = True
            if event.text_c:
                view.venue_order_id = ev.text(event.text_c)
        elif kind == ev.CANCEL_REQUESTED:
            view.cancel = Request("cancel", event.aux, ev.text(event.text_a), ev.text(event.text_b),
                                  reason=event.code, text=ev.text(event.text_c))
            view.next_request = max(view.next_request, event.aux)
            self.orders.index_client_id(view, view.cancel.client_cl_ord_id)
        elif kind == ev.REPLACE_ACCEPTED:
            view.replace = Request("replace", event.aux, ev.text(event.text_a), ev.text(event.text_b),
                                   qty_lots=event.qty_lots, price_ticks=event.price_ticks)
            view.next_request = max(view.next_request, event.aux)
            self.orders.index_client_id(view, view.replace.client_cl_ord_id)
        elif kind == ev.REPLACED:
            replace = view.replace
            if replace is not None:
                view.replaced_cl_ord_ids.append(view.cl_ord_id)
                view.cl_ord_id = replace.client_cl_ord_id
                root = view.venue_cl_ord_id.split(".")[0]
                view.venue_cl_ord_id = f"{root}.{replace.number}"
            view.qty_lots = event.qty_lots
            view.price_ticks = event.price_ticks if view.ord_type == "2" else 0
            view.replace = None
        elif kind == ev.VENUE_REJECTED:
            view.reject_code = event.code
            view.reject_text = ev.text(event.text_a)
        self._clear_request(view, kind, event)
        if kind in (ev.CANCEL_REQUESTED, ev.REPLACE_ACCEPTED) and view.status not in (
                OrdStatus.PENDING_CANCEL, OrdStatus.PENDING_REPLACE):
            view.status_before_pending = view.status
        if target == _BACK:
            view.status = self._settled_status(view)
        elif target == _PARTIAL:
            view.status = self._fill_status(view, keep_pending=True)
        elif target == _REPLACED:
            view.status = self._settled_status(view)
        elif target == _SAME:
            if kind == ev.ACKED and view.status == OrdStatus.PENDING_NEW:
                view.status = OrdStatus.NEW
        else:
            view.status = target
        if view.status in TERMINAL:
            view.cancel = None
            view.replace = None
            self.orders.finish(view)
        self.applied += 1
        return view

    def _accepted(self, event: Event) -> OrderView:
        instrument = self.orders.instruments[event.instrument_id]
        session = self.orders.sessions[event.session_id]
        view = OrderView(
            order_id=event.order_id, session=session, session_index=event.session_id,
            account=ev.text(event.text_b) or session, cl_ord_id=ev.text(event.text_a), symbol=instrument.symbol,
            instrument_id=event.instrument_id, venue=instrument.venue, venue_index=event.venue_id,
            side=SIDE_CHARS.get(event.side, "1"), ord_type=ORD_TYPE_CHARS.get(event.ord_type, "2"),
            time_in_force=str(event.tif), qty_lots=event.qty_lots, price_ticks=event.price_ticks,
            gateway_order_id=ev.text(event.text_c), venue_cl_ord_id=ev.text(event.text_c),
            lot=instrument.lot, tick=instrument.tick)
        self.orders.add(view)
        self.applied += 1
        return view

    def _rejected(self, event: Event) -> OrderView:
        known = event.instrument_id >= 0
        instrument = self.orders.instruments[event.instrument_id] if known else None
        session = self.orders.sessions[event.session_id]
        order_id = self.orders.next_reject_id
        self.orders.next_reject_id -= 1
        view = OrderView(
            order_id=order_id, session=session, session_index=event.session_id,
            account=ev.text(event.text_b) or session, cl_ord_id=ev.text(event.text_a),
            symbol=instrument.symbol if instrument else ev.text(event.text_c), instrument_id=event.instrument_id,
            venue=instrument.venue if instrument else "", venue_index=event.venue_id,
            side=SIDE_CHARS.get(event.side, "1"), ord_type=ORD_TYPE_CHARS.get(event.ord_type, "2"),
            time_in_force=str(event.tif), qty_lots=max(event.qty_lots, 0), price_ticks=max(event.price_ticks, 0),
            gateway_order_id="NONE", venue_cl_ord_id="", lot=instrument.lot if instrument else Decimal(1),
            tick=instrument.tick if instrument else Decimal(1), status=OrdStatus.REJECTED, reject_code=event.code)
        self.orders.add(view)
        self.orders.finish(view)
        self.applied += 1
        return view

    @staticmethod
    def _clear_request(view: OrderView, kind: int, event: Event) -> None:
        if kind == ev.CANCEL_REJECTED and view.cancel is not None and view.cancel.number == event.aux:
            view.cancel = None
        elif kind == ev.REPLACE_REJECTED and view.replace is not None and view.replace.number == event.aux:
            view.replace = None

    @staticmethod
    def _settled_status(view: OrderView) -> str:
        """The status without pending requests (or the one still pending)."""
        if view.cancel is not None:
            return OrdStatus.PENDING_CANCEL
        if view.replace is not None:
            return OrdStatus.PENDING_REPLACE
        if view.cum_lots >= view.qty_lots:
            return OrdStatus.FILLED
        if view.cum_lots:
            return OrdStatus.PARTIALLY_FILLED
        return OrdStatus.NEW if view.acked else OrdStatus.PENDING_NEW

    def _fill_status(self, view: OrderView, keep_pending: bool) -> str:
        if view.cum_lots >= view.qty_lots:
            return OrdStatus.FILLED
        if keep_pending and view.status in (OrdStatus.PENDING_CANCEL, OrdStatus.PENDING_REPLACE):
            return view.status
        return OrdStatus.PARTIALLY_FILLED if view.cum_lots else OrdStatus.NEW

    def _illegal(self, view: OrderView | None, event: Event, reason: str) -> None:
        self.illegal_transitions += 1
        if self.on_illegal is not None:
            self.on_illegal(view, event, reason)
