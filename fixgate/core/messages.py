"""The FIX application messages the gateway handles, as plain values.

The codec (``fixgate.fix.codec``) turns QuickFIX messages into these and back; everything above it
speaks in these names, never in tag numbers. Values keep the wire's text (quantities and prices as
the decimal strings the peer sent), so nothing is rounded on the way through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# -- FIX VALUES -------------------------------------------------------------------------------------

SIDE_BUY, SIDE_SELL, SIDE_SELL_SHORT = "1", "2", "5"
ORD_TYPE_MARKET, ORD_TYPE_LIMIT = "1", "2"
TIF_DAY, TIF_GTC, TIF_IOC, TIF_FOK = "0", "1", "3", "4"

SIDE_NAMES = {SIDE_BUY: "buy", SIDE_SELL: "sell", SIDE_SELL_SHORT: "sell short"}
TIME_IN_FORCE_NAMES = {TIF_DAY: "DAY", TIF_GTC: "GTC", TIF_IOC: "IOC", TIF_FOK: "FOK"}


class ExecType:
    """ExecType(150) values."""

    NEW = "0"
    DONE_FOR_DAY = "3"
    CANCELED = "4"
    REPLACED = "5"
    PENDING_CANCEL = "6"
    REJECTED = "8"
    PENDING_NEW = "A"
    EXPIRED = "C"
    RESTATED = "D"
    PENDING_REPLACE = "E"
    TRADE = "F"
    TRADE_CORRECT = "G"
    TRADE_CANCEL = "H"
    ORDER_STATUS = "I"


class OrdStatus:
    """OrdStatus(39) values."""

    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    DONE_FOR_DAY = "3"
    CANCELED = "4"
    REPLACED = "5"
    PENDING_CANCEL = "6"
    REJECTED = "8"
    PENDING_NEW = "A"
    EXPIRED = "C"
    PENDING_REPLACE = "E"


class OrdRejReason:
    """OrdRejReason(103) values the gateway uses."""

    BROKER_OPTION = "0"
    UNKNOWN_SYMBOL = "1"
    EXCHANGE_CLOSED = "2"
    ORDER_EXCEEDS_LIMIT = "3"
    DUPLICATE_ORDER = "6"
    UNSUPPORTED_ORDER_CHARACTERISTIC = "11"
    INCORRECT_QUANTITY = "13"
    OTHER = "99"


class CxlRejReason:
    """CxlRejReason(102) values."""

    TOO_LATE = "0"
    UNKNOWN_ORDER = "1"
    BROKER_OPTION = "2"
    ALREADY_PENDING = "3"
    DUPLICATE_CL_ORD_ID = "6"
    OTHER = "99"


class CxlRejResponseTo:
    """CxlRejResponseTo(434) values."""

    CANCEL = "1"
    REPLACE = "2"


# -- REQUESTS (client -> gateway, gateway -> venue) ---------------------------------------------------

@dataclass(slots=True)
class NewOrder:
    """NewOrderSingle (D)."""

    cl_ord_id: str
    symbol: str
    side: str
    ord_type: str
    order_qty: str | None
    price: str | None = None
    time_in_force: str = TIF_DAY
    account: str | None = None


@dataclass(slots=True)
class CancelRequest:
    """OrderCancelRequest (F)."""

    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: str
    order_qty: str | None = None
    order_id: str | None = None


@dataclass(slots=True)
class ReplaceRequest:
    """OrderCancelReplaceRequest (G): `order_qty` is the new total quantity."""

    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: str
    ord_type: str
    order_qty: str | None
    price: str | None = None
    time_in_force: str = TIF_DAY
    order_id: str | None = None


@dataclass(slots=True)
class StatusRequest:
    """OrderStatusRequest (H)."""

    cl_ord_id: str
    symbol: str
    side: str
    order_id: str | None = None


@dataclass(slots=True)
class MassStatusRequest:
    """OrderMassStatusRequest (AF) for every order of the requester."""

    mass_status_req_id: str


@dataclass(slots=True)
class MarketDataRequest:
    """MarketDataRequest (V): snapshot plus updates, top of book, for `symbols`."""

    md_req_id: str
    symbols: list[str]
    subscribe: bool = True


# -- REPORTS (venue -> gateway, gateway -> client) ----------------------------------------------------

@dataclass(slots=True)
class Execution:
    """ExecutionReport (8)."""

    order_id: str
    cl_ord_id: str
    exec_id: str
    exec_type: str
    ord_status: str
    symbol: str
    side: str
    leaves_qty: str
    cum_qty: str
    avg_px: str
    orig_cl_ord_id: str | None = None
    order_qty: str | None = None
    price: str | None = None
    ord_type: str | None = None
    time_in_force: str | None = None
    last_qty: str | None = None
    last_px: str | None = None
    text: str | None = None
    ord_rej_reason: str | None = None
    mass_status_req_id: str | None = None
    transact_time_ns: int | None = None


@dataclass(slots=True)
class CancelReject:
    """OrderCancelReject (9)."""

    order_id: str
    cl_ord_id: str
    orig_cl_ord_id: str
    ord_status: str
    response_to: str
    reason: str = CxlRejReason.OTHER
    text: str | None = None


@dataclass(slots=True)
class MarketDataEntry:
    """One MDEntry: type '0' bid, '1' offer, '2' trade; `action` only in incremental refreshes."""

    entry_type: str
    price: str | None
    size: str | None = None
    action: str | None = None
    position: int = 1


@dataclass(slots=True)
class MarketData:
    """A MarketDataSnapshotFullRefresh (W) or MarketDataIncrementalRefresh (X) for one symbol."""

    symbol: str
    entries: list[MarketDataEntry] = field(default_factory=list)
    incremental: bool = False
    md_req_id: str | None = None
    sending_time_ns: int | None = None
