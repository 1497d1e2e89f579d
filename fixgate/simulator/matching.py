"""Price-time priority matching engine of the venue simulator.

Plain Python values in, plain events out: no FIX, no I/O, no clock. Every call that changes state
takes the time as `now_ns`, and the engine holds no randomness, so the same calls give the same
events.

Policies
--------
Priority
    Bids best-first (highest price, then earliest), asks best-first (lowest price, then earliest).
    An order takes a fresh priority sequence whenever it enters the book: on arrival, and on a
    replace that changes the price or raises the quantity. A replace that only lowers the quantity
    keeps the order's place.
Self-trades
    Allowed. An order trades against resting orders of its own owner like any other; the engine
    applies no self-trade prevention.
Fill-or-kill
    Checked before any trade. When the full quantity is not available at acceptable prices the
    order is acknowledged (NEW) and then cancelled (CANCELED, with a text giving what was
    available); nothing trades.
Immediate-or-cancel and market orders
    Trade what they can at once; the rest is cancelled (CANCELED). A market order never rests,
    whatever its time in force, and carries no price; its cancel text says "no liquidity".
Cancel rejects
    An unknown order, or a request whose symbol or side differs from the order's, is answered with
    reason UNKNOWN_ORDER; an order already filled, cancelled or expired with TOO_LATE; a request
    whose new `cl_ord_id` belongs to another live order of the owner with DUPLICATE_CL_ORD_ID; an
    invalid replace (bad price or quantity, quantity not above the filled quantity) with OTHER.
Identifiers
    The engine numbers accepted orders "O1", "O2", ... and every execution report "E1", "E2", ...,
    order-status reports included. A rejected new order carries order id "NONE". After a replace
    the order answers to the new `cl_ord_id` only; after a cancel it is remembered under both the
    cancel's `cl_ord_id` and the one it replaced, so a second cancel is TOO_LATE, not unknown.
Numbers
    Prices and quantities cross the API as `Decimal` (an `int` or a numeric `str` is accepted too;
    a `float` is a programming error and raises `ValueError`). Inside they are integer ticks and
    lots. Output prices carry the tick's exponent and quantities the lot's (`Decimal("100.25")`);
    an average price that is not a whole number of ticks is rounded half-even to 10 places.
Errors
    No method raises for business input: it answers with a reject event. `ValueError` is raised
    only for programming errors (an unknown side, order type or time in force string, a float
    price, an unknown symbol asked of a book view).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import OrderedDict, deque
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from enum import Enum
from itertools import count
from typing import Iterable, Union

__all__ = [
    "BookChanged",
    "CancelReject",
    "CancelRejectReason",
    "CancelRejectResponseTo",
    "Event",
    "ExecType",
    "ExecutionReport",
    "MatchingEngine",
    "OrdStatus",
    "OrdType",
    "Side",
    "SimInstrument",
    "TimeInForce",
    "Trade",
]


# -- VOCABULARY --------------------------------------------------------------------------------------


class _Name(str, Enum):
    """Base of the engine's string enums: a member compares and formats as its name."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(self.value, format_spec)


class Side(_Name):
    """Order side (FIX 54). SELL_SHORT is echoed back in reports and matches as SELL."""

    BUY = "BUY"                    # 1
    SELL = "SELL"                  # 2
    SELL_SHORT = "SELL_SHORT"      # 5

    @property
    def is_buy(self) -> bool:
        """Return whether the side buys."""
        return self is Side.BUY

    @property
    def matching_side(self) -> Side:
        """Return the side the order matches as: BUY or SELL."""
        return Side.BUY if self is Side.BUY else Side.SELL


class OrdType(_Name):
    """Order type (FIX 40)."""

    MARKET = "MARKET"              # 1
    LIMIT = "LIMIT"                # 2


class TimeInForce(_Name):
    """Time in force (FIX 59). DAY and GTC rest; IOC and FOK never do."""

    DAY = "DAY"                    # 0
    GTC = "GTC"                    # 1
    IOC = "IOC"                    # 3
    FOK = "FOK"                    # 4


class ExecType(_Name):
    """Execution type (FIX 150), FIX 4.4 names."""

    NEW = "NEW"                    # 0
    CANCELED = "CANCELED"          # 4
    REPLACED = "REPLACED"          # 5
    REJECTED = "REJECTED"          # 8
    EXPIRED = "EXPIRED"            # C
    TRADE = "TRADE"                # F
    ORDER_STATUS = "ORDER_STATUS"  # I


class OrdStatus(_Name):
    """Order status (FIX 39), FIX 4.4 names."""

    NEW = "NEW"                              # 0
    PARTIALLY_FILLED = "PARTIALLY_FILLED"    # 1
    FILLED = "FILLED"                        # 2
    CANCELED = "CANCELED"                    # 4
    REJECTED = "REJECTED"                    # 8
    EXPIRED = "EXPIRED"                      # C


class CancelRejectReason(_Name):
    """Why a cancel or replace was refused (FIX 102)."""

    TOO_LATE = "TOO_LATE"                          # 0
    UNKNOWN_ORDER = "UNKNOWN_ORDER"                # 1
    DUPLICATE_CL_ORD_ID = "DUPLICATE_CL_ORD_ID"    # 6
    OTHER = "OTHER"                                # 99


class CancelRejectResponseTo(_Name):
    """Which request a cancel reject answers (FIX 434)."""

    CANCEL = "CANCEL"              # 1
    REPLACE = "REPLACE"            # 2


_FINISHED = frozenset({OrdStatus.FILLED, OrdStatus.CANCELED, OrdStatus.EXPIRED, OrdStatus.REJECTED})
_FINISHED_WORDS = {
    OrdStatus.FILLED: "filled",
    OrdStatus.CANCELED: "cancelled",
    OrdStatus.EXPIRED: "expired",
    OrdStatus.REJECTED: "rejected",
}


# -- INSTRUMENTS AND EVENTS --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimInstrument:
    """A tradable symbol of the simulated venue.

    Parameters
    ----------
    symbol : str
        The symbol as it appears on the wire.
    tick_size : Decimal
        Price increment; every limit price is a whole number of ticks.
    lot_size : Decimal
        Quantity increment; every quantity is a whole number of lots.
    initial_mid : Decimal
        Where the market maker starts its mid price.
    """

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    initial_mid: Decimal

    def __post_init__(self) -> None:
        for name in ("tick_size", "lot_size", "initial_mid"):
            value = _as_decimal(getattr(self, name), name)
            if value is None or not value.is_finite() or value <= 0:
                raise ValueError(f"instrument {self.symbol}: {name} must be a positive number, "
                                 f"got {getattr(self, name)!r}")
            object.__setattr__(self, name, value)


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """One execution report for one order of one owner (FIX 35=8).

    `price` is None for market orders; `last_px` is None unless the report is a TRADE. A
    rejected new order carries order id "NONE" and echoes the quantity and price it was given.
    """

    owner: str
    order_id: str
    cl_ord_id: str
    orig_cl_ord_id: str | None
    exec_id: str
    exec_type: ExecType
    ord_status: OrdStatus
    symbol: str
    side: Side
    ord_type: OrdType
    time_in_force: TimeInForce
    order_qty: Decimal
    price: Decimal | None
    last_qty: Decimal
    last_px: Decimal | None
    cum_qty: Decimal
    leaves_qty: Decimal
    avg_px: Decimal
    text: str
    transact_ns: int


@dataclass(frozen=True, slots=True)
class CancelReject:
    """A refused cancel or replace request (FIX 35=9).

    `order_id` is "NONE" and `ord_status` REJECTED when no order was found.
    """

    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: str
    ord_status: OrdStatus
    reason: CancelRejectReason
    response_to: CancelRejectResponseTo
    text: str
    transact_ns: int


@dataclass(frozen=True, slots=True)
class Trade:
    """A print on the tape: one match between an incoming order and a resting one.

    `price` is the resting order's price; `aggressor_side` is BUY or SELL.
    """

    symbol: str
    price: Decimal
    qty: Decimal
    aggressor_side: Side
    now_ns: int


@dataclass(frozen=True, slots=True)
class BookChanged:
    """The book of `symbol` changed during the call: time to publish market data."""

    symbol: str
    now_ns: int


Event = Union[ExecutionReport, CancelReject, Trade, BookChanged]


# -- NUMBERS -----------------------------------------------------------------------------------------

_CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN)
_AVERAGE_PRICE_QUANTUM = Decimal("1E-10")


def _as_decimal(value: object, name: str) -> Decimal | None:
    """Return `value` as a Decimal, or None when it is a string that is not a number.

    Raises
    ------
    ValueError
        When `value` is a float, a bool or no number type at all.
    """
    if isinstance(value, Decimal):
        return value
    if isinstance(value, (bool, float)):
        raise ValueError(f"{name} must be a Decimal, an int or a str, got {type(value).__name__} {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    raise ValueError(f"{name} must be a Decimal, an int or a str, got {type(value).__name__} {value!r}")


def _quantum(step: Decimal) -> Decimal:
    """Return the quantum that gives a multiple of `step` the step's exponent (never above units)."""
    return Decimal(1).scaleb(min(int(step.as_tuple().exponent), 0))


def _units(value: object, step: Decimal, noun: str, step_noun: str) -> tuple[int, str]:
    """Return `value` in whole `step` units and "", or 0 and the reason it is not acceptable."""
    number = _as_decimal(value, noun)
    if number is None or not number.is_finite():
        return 0, f"{noun} {value!r} is not a number"
    if number <= 0:
        return 0, f"{noun} {number} must be positive"
    try:
        if _CONTEXT.remainder(number, step) != 0:
            return 0, f"{noun} {number} is not a multiple of the {step_noun} {step}"
        return int(_CONTEXT.divide_int(number, step)), ""
    except InvalidOperation:
        return 0, f"{noun} {number} is too large"


# -- BOOK --------------------------------------------------------------------------------------------


class _Order:
    """The engine's mutable record of one accepted order."""

    __slots__ = ("order_id", "number", "owner", "cl_ord_id", "orig_cl_ord_id", "symbol", "side", "ord_type",
                 "time_in_force", "order_lots", "price_ticks", "cum_lots", "notional", "status", "sequence",
                 "resting", "updated_ns")

    def __init__(self, number: int, owner: str, cl_ord_id: str, symbol: str, side: Side, ord_type: OrdType,
                 time_in_force: TimeInForce, order_lots: int, price_ticks: int | None, now_ns: int) -> None:
        self.order_id = f"O{number}"
        self.number = number
        self.owner = owner
        self.cl_ord_id = cl_ord_id
        self.orig_cl_ord_id: str | None = None
        self.symbol = symbol
        self.side = side
        self.ord_type = ord_type
        self.time_in_force = time_in_force
        self.order_lots = order_lots
        self.price_ticks = price_ticks
        self.cum_lots = 0
        self.notional = 0          # sum of lots * price ticks over the fills
        self.status = OrdStatus.NEW
        self.sequence = 0          # priority sequence of the order's current book entry
        self.resting = False
        self.updated_ns = now_ns

    @property
    def leaves_lots(self) -> int:
        return self.order_lots - self.cum_lots

    @property
    def limit_ticks(self) -> int:
        """Return the limit price in ticks; only limit orders rest, so only they have a book price."""
        if self.price_ticks is None:
            raise RuntimeError(f"market order {self.order_id} has no book price")
        return self.price_ticks

    def crosses(self, price_ticks: int) -> bool:
        """Return whether the order may trade at `price_ticks` (a market order trades at any price)."""
        if self.price_ticks is None:
            return True
        return price_ticks <= self.price_ticks if self.side.is_buy else price_ticks >= self.price_ticks


class _Level:
    """One price level: a queue of (sequence, order) entries in arrival order, stale entries included.

    An entry is live while its order rests with that same sequence; others are skipped and dropped
    when they reach the front, or all at once when they outnumber the live ones.
    """

    __slots__ = ("price_ticks", "queue", "lots", "orders")

    def __init__(self, price_ticks: int) -> None:
        self.price_ticks = price_ticks
        self.queue: deque[tuple[int, _Order]] = deque()
        self.lots = 0
        self.orders = 0

    def compact(self) -> None:
        self.queue = deque(entry for entry in self.queue if entry[1].resting and entry[1].sequence == entry[0])


class _BookSide:
    """One side of a book: levels keyed so that the sorted key list ends with the best level."""

    __slots__ = ("is_bid", "keys", "levels")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.keys: list[int] = []               # ascending; bids keyed by price, asks by -price
        self.levels: dict[int, _Level] = {}

    def key_of(self, price_ticks: int) -> int:
        return price_ticks if self.is_bid else -price_ticks

    def best(self) -> _Level | None:
        return self.levels[self.keys[-1]] if self.keys else None

    def add(self, order: _Order) -> None:
        key = self.key_of(order.limit_ticks)
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = _Level(order.limit_ticks)
            insort(self.keys, key)
        level.queue.append((order.sequence, order))
        level.lots += order.leaves_lots
        level.orders += 1
        order.resting = True

    def remove(self, order: _Order) -> None:
        key = self.key_of(order.limit_ticks)
        level = self.levels[key]
        level.lots -= order.leaves_lots
        level.orders -= 1
        order.resting = False
        if level.orders == 0:
            self.drop(key)
        elif len(level.queue) > 2 * level.orders + 16:
            level.compact()

    def reduce(self, order: _Order, lots: int) -> None:
        self.levels[self.key_of(order.limit_ticks)].lots -= lots

    def drop(self, key: int) -> None:
        del self.levels[key]
        del self.keys[bisect_left(self.keys, key)]

    def depth(self, count_of_levels: int) -> list[tuple[int, int]]:
        return [(self.levels[key].price_ticks, self.levels[key].lots)
                for key in reversed(self.keys[-count_of_levels:] if count_of_levels > 0 else [])]


class _Book:
    """The limit order book of one instrument, with its number conversions."""

    __slots__ = ("instrument", "symbol", "tick_size", "lot_size", "price_quantum", "quantity_quantum", "bids",
                 "asks", "last_trade")

    def __init__(self, instrument: SimInstrument) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.tick_size = instrument.tick_size
        self.lot_size = instrument.lot_size
        self.price_quantum = _quantum(instrument.tick_size)
        self.quantity_quantum = _quantum(instrument.lot_size)
        self.bids = _BookSide(is_bid=True)
        self.asks = _BookSide(is_bid=False)
        self.last_trade: Trade | None = None

    def side_of(self, order: _Order) -> _BookSide:
        return self.bids if order.side.is_buy else self.asks

    def opposite_of(self, order: _Order) -> _BookSide:
        return self.asks if order.side.is_buy else self.bids

    def price(self, ticks: int) -> Decimal:
        return _CONTEXT.multiply(Decimal(ticks), self.tick_size).quantize(self.price_quantum, context=_CONTEXT)

    def quantity(self, lots: int) -> Decimal:
        return _CONTEXT.multiply(Decimal(lots), self.lot_size).quantize(self.quantity_quantum, context=_CONTEXT)

    def average_price(self, order: _Order) -> Decimal:
        if order.cum_lots == 0:
            return self.price(0)
        ticks, remainder = divmod(order.notional, order.cum_lots)
        if remainder == 0:
            return self.price(ticks)
        exact = _CONTEXT.divide(_CONTEXT.multiply(Decimal(order.notional), self.tick_size), Decimal(order.cum_lots))
        return exact.quantize(min(_AVERAGE_PRICE_QUANTUM, self.price_quantum), context=_CONTEXT)

    def price_ticks(self, price: object) -> tuple[int, str]:
        return _units(price, self.tick_size, "price", "tick")

    def quantity_lots(self, qty: object) -> tuple[int, str]:
        return _units(qty, self.lot_size, "quantity", "lot")


# -- ENGINE ------------------------------------------------------------------------------------------


class MatchingEngine:
    """Limit order books with price-time priority, one per instrument.

    Parameters
    ----------
    instruments : Iterable[SimInstrument]
        The tradable instruments; symbols must be unique.
    remembered_orders : int, default 100_000
        How many finished orders (filled, cancelled, expired) stay known to `status` and to late
        cancels; the oldest are forgotten first.
    """

    def __init__(self, instruments: Iterable[SimInstrument], *, remembered_orders: int = 100_000) -> None:
        if remembered_orders < 1:
            raise ValueError(f"remembered_orders must be at least 1, got {remembered_orders!r}")
        self._books: dict[str, _Book] = {}
        for instrument in instruments:
            if instrument.symbol in self._books:
                raise ValueError(f"instrument {instrument.symbol} is listed twice")
            self._books[instrument.symbol] = _Book(instrument)
        self._remembered_orders = remembered_orders
        self._live: dict[str, dict[str, _Order]] = {}            # owner -> cl_ord_id -> order
        self._finished: OrderedDict[tuple[str, str], _Order] = OrderedDict()   # (owner, cl_ord_id), oldest first
        self._order_numbers = count(1)
        self._exec_numbers = count(1)
        self._sequences = count(1)

    # -- INSTRUMENTS ---------------------------------------------------------------------------------

    @property
    def symbols(self) -> tuple[str, ...]:
        """Return the symbols the engine trades, in the order given."""
        return tuple(self._books)

    def instrument(self, symbol: str) -> SimInstrument:
        """Return the instrument of `symbol`.

        Raises
        ------
        ValueError
            When the engine does not trade `symbol`.
        """
        return self._book(symbol).instrument

    # -- ORDER ENTRY ---------------------------------------------------------------------------------

    def new_order(self, owner: str, cl_ord_id: str, symbol: str, side: Side | str, ord_type: OrdType | str,
                  qty: Decimal, price: Decimal | None, time_in_force: TimeInForce | str,
                  now_ns: int) -> list[Event]:
        """Accept or reject a new order, match it, and rest what is left when its type allows.

        Parameters
        ----------
        owner : str
            The session the order belongs to.
        cl_ord_id : str
            The owner's identifier; must not belong to a live order of the same owner.
        symbol : str
            The instrument.
        side : Side or str
            "BUY", "SELL" or "SELL_SHORT" (matches as SELL).
        ord_type : OrdType or str
            "LIMIT" or "MARKET"; a market order ignores `price`.
        qty : Decimal
            Order quantity, a positive multiple of the lot.
        price : Decimal or None
            Limit price, a positive multiple of the tick; required for a limit order.
        time_in_force : TimeInForce or str
            "DAY", "GTC", "IOC" or "FOK".
        now_ns : int
            The time of the request.

        Returns
        -------
        list[Event]
            A REJECTED report alone; or NEW, then per fill a TRADE report for the incoming order, a
            TRADE report for the resting order and a `Trade`, then CANCELED when an unfilled
            remainder may not rest, then `BookChanged` when the book changed.

        Raises
        ------
        ValueError
            When `side`, `ord_type` or `time_in_force` is no known name, or a number is a float.
        """
        side, ord_type, time_in_force = Side(side), OrdType(ord_type), TimeInForce(time_in_force)
        book = self._books.get(symbol)
        if book is None:
            return [self._rejected(owner, cl_ord_id, symbol, side, ord_type, time_in_force, qty, price,
                                   f"unknown symbol {symbol}", now_ns)]
        text = ""
        lots, price_ticks = 0, None
        if not cl_ord_id:
            text = "cl_ord_id must not be empty"
        elif cl_ord_id in self._live.get(owner, ()):
            text = f"cl_ord_id {cl_ord_id} is already used by a live order of {owner}"
        if not text:
            lots, text = book.quantity_lots(qty)
        if not text and ord_type is OrdType.LIMIT:
            if price is None:
                text = "a limit order needs a price"
            else:
                price_ticks, text = book.price_ticks(price)
        if text:
            return [self._rejected(owner, cl_ord_id, symbol, side, ord_type, time_in_force, qty, price, text,
                                   now_ns)]

        order = _Order(next(self._order_numbers), owner, cl_ord_id, symbol, side, ord_type, time_in_force, lots,
                       price_ticks, now_ns)
        events: list[Event] = [self._report(order, book, ExecType.NEW, now_ns)]
        if time_in_force is TimeInForce.FOK:
            available = self._available_lots(book, order)
            if available < lots:
                order.status = OrdStatus.CANCELED
                events.append(self._report(
                    order, book, ExecType.CANCELED, now_ns,
                    text=f"fill-or-kill quantity {book.quantity(lots)} is not available at once "
                         f"(available {book.quantity(available)})"))
                self._remember(order)
                return events
        changed = self._match(book, order, events, now_ns)
        if order.leaves_lots == 0:
            self._remember(order)
        elif ord_type is OrdType.MARKET or time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            remainder = book.quantity(order.leaves_lots)
            order.status = OrdStatus.CANCELED
            if ord_type is OrdType.MARKET:
                text = "no liquidity" if order.cum_lots == 0 else f"no liquidity for the remaining {remainder}"
            else:
                text = (f"immediate-or-cancel remainder {remainder} not executable at "
                        f"{book.price(order.limit_ticks)}")
            events.append(self._report(order, book, ExecType.CANCELED, now_ns, text=text))
            self._remember(order)
        else:
            self._rest(book, order)
            self._live.setdefault(owner, {})[cl_ord_id] = order
            changed = True
        if changed:
            events.append(BookChanged(symbol, now_ns))
        return events

    def cancel(self, owner: str, cl_ord_id: str, orig_cl_ord_id: str, symbol: str, side: Side | str,
               now_ns: int) -> list[Event]:
        """Cancel the live order `orig_cl_ord_id` of `owner`.

        Returns
        -------
        list[Event]
            A CANCELED report carrying `cl_ord_id` and `orig_cl_ord_id`, then `BookChanged`; or a
            single `CancelReject` (UNKNOWN_ORDER, TOO_LATE or DUPLICATE_CL_ORD_ID).
        """
        side = Side(side)
        order = self._find_for_change(owner, cl_ord_id, orig_cl_ord_id, symbol, side,
                                      CancelRejectResponseTo.CANCEL, now_ns)
        if isinstance(order, CancelReject):
            return [order]
        book = self._books[order.symbol]
        book.side_of(order).remove(order)
        order.status = OrdStatus.CANCELED
        del self._live[owner][orig_cl_ord_id]
        self._rename(order, cl_ord_id, orig_cl_ord_id, now_ns)
        self._remember(order, orig_cl_ord_id)
        self._remember(order)
        return [self._report(order, book, ExecType.CANCELED, now_ns, orig_cl_ord_id=orig_cl_ord_id),
                BookChanged(order.symbol, now_ns)]

    def replace(self, owner: str, cl_ord_id: str, orig_cl_ord_id: str, symbol: str, side: Side | str,
                qty: Decimal, price: Decimal | None, now_ns: int) -> list[Event]:
        """Change the quantity and price of the live order `orig_cl_ord_id` of `owner`.

        Parameters
        ----------
        qty : Decimal
            The new total order quantity, filled part included; must exceed the filled quantity.
        price : Decimal or None
            The new limit price; None keeps the current one.

        Returns
        -------
        list[Event]
            A REPLACED report (new `cl_ord_id`, old one as `orig_cl_ord_id`, leaves = qty - cum),
            then the TRADE reports and `Trade` events when the new price crosses the book, then
            `BookChanged` when the book changed; or a single `CancelReject`.

        Notes
        -----
        The order keeps its priority when the price is unchanged and the quantity does not rise;
        otherwise it re-enters the book behind the orders already at its price.
        """
        side = Side(side)
        respond = CancelRejectResponseTo.REPLACE
        order = self._find_for_change(owner, cl_ord_id, orig_cl_ord_id, symbol, side, respond, now_ns)
        if isinstance(order, CancelReject):
            return [order]
        book = self._books[order.symbol]
        lots, text = book.quantity_lots(qty)
        price_ticks = order.price_ticks
        if not text and price is not None:
            price_ticks, text = book.price_ticks(price)
        if not text and lots <= order.cum_lots:
            text = (f"new quantity {book.quantity(lots)} is not above the filled quantity "
                    f"{book.quantity(order.cum_lots)}")
        if text:
            return [self._cancel_reject(owner, cl_ord_id, orig_cl_ord_id, order.order_id, order.status,
                                        CancelRejectReason.OTHER, respond, text, now_ns)]

        book_side = book.side_of(order)
        keeps_priority = price_ticks == order.price_ticks and lots <= order.order_lots
        changed = lots != order.order_lots or price_ticks != order.price_ticks
        if keeps_priority:
            book_side.reduce(order, order.order_lots - lots)
            order.order_lots = lots
        else:
            book_side.remove(order)
            order.order_lots = lots
            order.price_ticks = price_ticks
        self._live[owner].pop(orig_cl_ord_id)
        self._rename(order, cl_ord_id, orig_cl_ord_id, now_ns)
        self._live[owner][cl_ord_id] = order
        events: list[Event] = [self._report(order, book, ExecType.REPLACED, now_ns, orig_cl_ord_id=orig_cl_ord_id)]
        if not keeps_priority:
            self._match(book, order, events, now_ns)
            if order.leaves_lots == 0:
                self._finish(order)
            else:
                self._rest(book, order)
        if changed:
            events.append(BookChanged(order.symbol, now_ns))
        return events

    def cancel_all(self, owner: str, now_ns: int) -> list[Event]:
        """Cancel every live order of `owner`, oldest first.

        Returns
        -------
        list[Event]
            One CANCELED report per order, then one `BookChanged` per book that changed.
        """
        orders = sorted(self._live.get(owner, {}).values(), key=lambda order: order.number)
        return self._close(orders, OrdStatus.CANCELED, ExecType.CANCELED, "mass cancel", now_ns)

    def expire_day_orders(self, now_ns: int) -> list[Event]:
        """End the trading day: expire every live DAY order of every owner, oldest first.

        Returns
        -------
        list[Event]
            One EXPIRED report per order, then one `BookChanged` per book that changed.
        """
        orders = sorted((order for orders in self._live.values() for order in orders.values()
                         if order.time_in_force is TimeInForce.DAY), key=lambda order: order.number)
        return self._close(orders, OrdStatus.EXPIRED, ExecType.EXPIRED, "day order expired", now_ns)

    # -- ORDER QUERIES -------------------------------------------------------------------------------

    def status(self, owner: str, cl_ord_id: str) -> ExecutionReport | None:
        """Return an ORDER_STATUS report for the live or remembered order `cl_ord_id`, or None."""
        order = self._live.get(owner, {}).get(cl_ord_id) or self._finished.get((owner, cl_ord_id))
        if order is None:
            return None
        return self._report(order, self._books[order.symbol], ExecType.ORDER_STATUS, order.updated_ns,
                            orig_cl_ord_id=order.orig_cl_ord_id)

    def open_orders(self, owner: str) -> list[ExecutionReport]:
        """Return ORDER_STATUS reports for every live order of `owner`, oldest first."""
        orders = sorted(self._live.get(owner, {}).values(), key=lambda order: order.number)
        return [self._report(order, self._books[order.symbol], ExecType.ORDER_STATUS, order.updated_ns,
                             orig_cl_ord_id=order.orig_cl_ord_id) for order in orders]

    # -- BOOK VIEWS ----------------------------------------------------------------------------------

    def top_of_book(self, symbol: str) -> tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]:
        """Return (best bid, bid quantity, best ask, ask quantity), None where a side is empty.

        Raises
        ------
        ValueError
            When the engine does not trade `symbol`.
        """
        book = self._book(symbol)
        bid, ask = book.bids.best(), book.asks.best()
        return (None if bid is None else book.price(bid.price_ticks), None if bid is None else book.quantity(bid.lots),
                None if ask is None else book.price(ask.price_ticks), None if ask is None else book.quantity(ask.lots))

    def depth(self, symbol: str, levels: int = 5) -> tuple[list[tuple[Decimal, Decimal]],
                                                           list[tuple[Decimal, Decimal]]]:
        """Return the best `levels` price levels of each side as (price, total quantity), best first.

        Raises
        ------
        ValueError
            When the engine does not trade `symbol`.
        """
        book = self._book(symbol)
        return ([(book.price(ticks), book.quantity(lots)) for ticks, lots in book.bids.depth(levels)],
                [(book.price(ticks), book.quantity(lots)) for ticks, lots in book.asks.depth(levels)])

    def last_trade(self, symbol: str) -> Trade | None:
        """Return the latest trade of `symbol`, or None before the first.

        Raises
        ------
        ValueError
            When the engine does not trade `symbol`.
        """
        return self._book(symbol).last_trade

    # -- MATCHING ------------------------------------------------------------------------------------

    def _available_lots(self, book: _Book, order: _Order) -> int:
        """Return the opposite quantity the order could take now, counting no further than it needs."""
        opposite = book.opposite_of(order)
        total = 0
        for key in reversed(opposite.keys):
            level = opposite.levels[key]
            if not order.crosses(level.price_ticks) or total >= order.leaves_lots:
                break
            total += level.lots
        return total

    def _match(self, book: _Book, aggressor: _Order, events: list[Event], now_ns: int) -> bool:
        """Trade `aggressor` against the opposite side while the price crosses; return whether it traded."""
        opposite = book.opposite_of(aggressor)
        aggressor_side = aggressor.side.matching_side
        traded = False
        while aggressor.leaves_lots > 0 and opposite.keys:
            key = opposite.keys[-1]
            level = opposite.levels[key]
            if not aggressor.crosses(level.price_ticks):
                break
            queue = level.queue
            while queue and aggressor.leaves_lots > 0:
                sequence, resting = queue[0]
                if not resting.resting or resting.sequence != sequence:
                    queue.popleft()
                    continue
                lots = min(aggressor.leaves_lots, resting.leaves_lots)
                self._fill(aggressor, lots, level.price_ticks, now_ns)
                self._fill(resting, lots, level.price_ticks, now_ns)
                level.lots -= lots
                if resting.leaves_lots == 0:
                    queue.popleft()
                    level.orders -= 1
                    resting.resting = False
                    self._finish(resting)
                trade = Trade(book.symbol, book.price(level.price_ticks), book.quantity(lots), aggressor_side, now_ns)
                events.append(self._report(aggressor, book, ExecType.TRADE, now_ns, last_lots=lots,
                                           last_price_ticks=level.price_ticks))
                events.append(self._report(resting, book, ExecType.TRADE, now_ns, last_lots=lots,
                                           last_price_ticks=level.price_ticks))
                events.append(trade)
                book.last_trade = trade
                traded = True
            if level.orders == 0:
                opposite.drop(key)
            elif not queue:
                raise RuntimeError(f"book {book.symbol} level {level.price_ticks} lists {level.orders} orders "
                                   "but holds none")
        return traded

    @staticmethod
    def _fill(order: _Order, lots: int, price_ticks: int, now_ns: int) -> None:
        order.cum_lots += lots
        order.notional += lots * price_ticks
        order.status = OrdStatus.FILLED if order.cum_lots == order.order_lots else OrdStatus.PARTIALLY_FILLED
        order.updated_ns = now_ns

    def _rest(self, book: _Book, order: _Order) -> None:
        order.sequence = next(self._sequences)
        book.side_of(order).add(order)

    def _close(self, orders: list[_Order], status: OrdStatus, exec_type: ExecType, text: str,
               now_ns: int) -> list[Event]:
        """Take `orders` off their books with `status` and report each; then one BookChanged per book."""
        events: list[Event] = []
        symbols: dict[str, None] = {}
        for order in orders:
            book = self._books[order.symbol]
            book.side_of(order).remove(order)
            order.status = status
            order.updated_ns = now_ns
            self._finish(order)
            events.append(self._report(order, book, exec_type, now_ns, text=text))
            symbols[order.symbol] = None
        events.extend(BookChanged(symbol, now_ns) for symbol in symbols)
        return events

    # -- ORDER REGISTRY ------------------------------------------------------------------------------

    def _book(self, symbol: str) -> _Book:
        book = self._books.get(symbol)
        if book is None:
            raise ValueError(f"unknown symbol {symbol!r}; the engine trades {', '.join(self._books) or 'nothing'}")
        return book

    def _find_for_change(self, owner: str, cl_ord_id: str, orig_cl_ord_id: str, symbol: str, side: Side,
                         respond: CancelRejectResponseTo, now_ns: int) -> _Order | CancelReject:
        """Return the live order a cancel or replace refers to, or the reject that answers it."""
        live = self._live.get(owner, {})
        order = live.get(orig_cl_ord_id)
        if order is None:
            finished = self._finished.get((owner, orig_cl_ord_id))
            if finished is not None:
                return self._cancel_reject(
                    owner, cl_ord_id, orig_cl_ord_id, finished.order_id, finished.status,
                    CancelRejectReason.TOO_LATE, respond,
                    f"too late to {respond.value.lower()}: order {orig_cl_ord_id} is already "
                    f"{_FINISHED_WORDS[finished.status]}", now_ns)
            return self._cancel_reject(
                owner, cl_ord_id, orig_cl_ord_id, "NONE", OrdStatus.REJECTED, CancelRejectReason.UNKNOWN_ORDER,
                respond, f"no live order {orig_cl_ord_id} of {owner}", now_ns)
        if order.symbol != symbol or order.side.matching_side is not side.matching_side:
            return self._cancel_reject(
                owner, cl_ord_id, orig_cl_ord_id, order.order_id, order.status, CancelRejectReason.UNKNOWN_ORDER,
                respond, f"order {orig_cl_ord_id} is a {order.side} order on {order.symbol}, "
                         f"not a {side} order on {symbol}", now_ns)
        if cl_ord_id != orig_cl_ord_id and cl_ord_id in live:
            return self._cancel_reject(
                owner, cl_ord_id, orig_cl_ord_id, order.order_id, order.status,
                CancelRejectReason.DUPLICATE_CL_ORD_ID, respond,
                f"cl_ord_id {cl_ord_id} is already used by a live order of {owner}", now_ns)
        return order

    @staticmethod
    def _rename(order: _Order, cl_ord_id: str, orig_cl_ord_id: str, now_ns: int) -> None:
        order.cl_ord_id = cl_ord_id
        order.orig_cl_ord_id = orig_cl_ord_id
        order.updated_ns = now_ns

    def _finish(self, order: _Order) -> None:
        """Forget `order` as live and remember it as finished under its current cl_ord_id."""
        live = self._live.get(order.owner)
        if live is not None and live.get(order.cl_ord_id) is order:
            del live[order.cl_ord_id]
        self._remember(order)

    def _remember(self, order: _Order, cl_ord_id: str | None = None) -> None:
        key = (order.owner, order.cl_ord_id if cl_ord_id is None else cl_ord_id)
        self._finished[key] = order
        self._finished.move_to_end(key)
        while len(self._finished) > self._remembered_orders:
            self._finished.popitem(last=False)

    # -- REPORTS -------------------------------------------------------------------------------------

    def _next_exec_id(self) -> str:
        return f"E{next(self._exec_numbers)}"

    def _report(self, order: _Order, book: _Book, exec_type: ExecType, now_ns: int, *, last_lots: int = 0,
                last_price_ticks: int | None = None, text: str = "",
                orig_cl_ord_id: str | None = None) -> ExecutionReport:
        leaves = 0 if order.status in _FINISHED else order.leaves_lots
        return ExecutionReport(
            owner=order.owner,
            order_id=order.order_id,
            cl_ord_id=order.cl_ord_id,
            orig_cl_ord_id=orig_cl_ord_id,
            exec_id=self._next_exec_id(),
            exec_type=exec_type,
            ord_status=order.status,
            symbol=order.symbol,
            side=order.side,
            ord_type=order.ord_type,
            time_in_force=order.time_in_force,
            order_qty=book.quantity(order.order_lots),
            price=None if order.price_ticks is None else book.price(order.price_ticks),
            last_qty=book.quantity(last_lots),
            last_px=None if last_price_ticks is None else book.price(last_price_ticks),
            cum_qty=book.quantity(order.cum_lots),
            leaves_qty=book.quantity(leaves),
            avg_px=book.average_price(order),
            text=text,
            transact_ns=now_ns,
        )

    def _rejected(self, owner: str, cl_ord_id: str, symbol: str, side: Side, ord_type: OrdType,
                  time_in_force: TimeInForce, qty: object, price: object, text: str,
                  now_ns: int) -> ExecutionReport:
        """Return the REJECTED report of a new order, echoing the quantity and price it was given."""
        quantity = _as_decimal(qty, "qty")
        limit = None if price is None or ord_type is OrdType.MARKET else _as_decimal(price, "price")
        zero = Decimal(0)
        return ExecutionReport(
            owner=owner, order_id="NONE", cl_ord_id=cl_ord_id, orig_cl_ord_id=None, exec_id=self._next_exec_id(),
            exec_type=ExecType.REJECTED, ord_status=OrdStatus.REJECTED, symbol=symbol, side=side,
            ord_type=ord_type, time_in_force=time_in_force, order_qty=zero if quantity is None else quantity,
            price=limit, last_qty=zero, last_px=None, cum_qty=zero, leaves_qty=zero, avg_px=zero, text=text,
            transact_ns=now_ns)

    @staticmethod
    def _cancel_reject(owner: str, cl_ord_id: str, orig_cl_ord_id: str, order_id: str, ord_status: OrdStatus,
                       reason: CancelRejectReason, respond: CancelRejectResponseTo, text: str,
                       now_ns: int) -> CancelReject:
        return CancelReject(owner=owner, cl_ord_id=cl_ord_id, orig_cl_ord_id=orig_cl_ord_id, order_id=order_id,
                            ord_status=ord_status, reason=reason, response_to=respond, text=text,
                            transact_ns=now_ns)
