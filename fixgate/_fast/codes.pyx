"""Reject codes, order-field enums and risk states, with the one table that names and explains codes.

The C enums in ``codes.pxd`` are what the hot path returns; the ``IntEnum`` classes here carry the
same numbers for Python callers, metric labels and logs.
"""

from enum import IntEnum

from fixgate._fast cimport enums as e

# -- REJECT CODES -----------------------------------------------------------------------------------

# (code, stable name, readable text). The name is a metric label and a log field; the text is the
# start of the FIX Text(58) a client reads.
REJECT_TABLE = (
    (e.OK, "OK", "accepted"),
    (e.KILL_SWITCH, "KILL_SWITCH", "kill switch active"),
    (e.CIRCUIT_BREAKER, "CIRCUIT_BREAKER", "circuit breaker active: only position-reducing orders"),
    (e.UNKNOWN_INSTRUMENT, "UNKNOWN_INSTRUMENT", "unknown instrument"),
    (e.INSTRUMENT_HALTED, "INSTRUMENT_HALTED", "instrument halted"),
    (e.THROTTLED, "THROTTLED", "order rate limit exceeded"),
    (e.INVALID_SIDE, "INVALID_SIDE", "side must be buy, sell or sell short"),
    (e.INVALID_ORDER_TYPE, "INVALID_ORDER_TYPE", "order type must be market or limit"),
    (e.INVALID_QUANTITY, "INVALID_QUANTITY", "quantity must be a positive number"),
    (e.QUANTITY_NOT_LOT_MULTIPLE, "QUANTITY_NOT_LOT_MULTIPLE", "quantity is not a multiple of the lot size"),
    (e.INVALID_PRICE, "INVALID_PRICE", "limit price must be a positive number"),
    (e.PRICE_OFF_TICK, "PRICE_OFF_TICK", "price is not a multiple of the tick size"),
    (e.NO_REFERENCE_PRICE, "NO_REFERENCE_PRICE", "market order without a valid reference price"),
    (e.MAX_ORDER_QUANTITY, "MAX_ORDER_QUANTITY", "quantity exceeds the max order quantity"),
    (e.WARNING_MAX_ORDER_QUANTITY, "WARNING_MAX_ORDER_QUANTITY",
     "quantity exceeds the max order quantity in WARNING state"),
    (e.MAX_ORDER_NOTIONAL, "MAX_ORDER_NOTIONAL", "notional exceeds the max order notional"),
    (e.MAX_ACCOUNT_ORDER_NOTIONAL, "MAX_ACCOUNT_ORDER_NOTIONAL",
     "notional exceeds the account max order notional"),
    (e.ADV_PARTICIPATION, "ADV_PARTICIPATION", "quantity exceeds the allowed share of average daily volume"),
    (e.PRICE_COLLAR, "PRICE_COLLAR", "price outside the collar around the reference price"),
    (e.WARNING_PRICE_COLLAR, "WARNING_PRICE_COLLAR", "price outside the tighter WARNING-state collar"),
    (e.POSITION_LIMIT, "POSITION_LIMIT", "worst-case position would exceed the position limit"),
    (e.GROSS_EXPOSURE, "GROSS_EXPOSURE", "gross exposure would exceed the max gross exposure"),
    (e.LEVERAGE, "LEVERAGE", "leverage would exceed the max leverage"),
    (e.DAILY_ORDER_COUNT, "DAILY_ORDER_COUNT", "daily order count cap reached"),
    (e.DAILY_NOTIONAL, "DAILY_NOTIONAL", "daily notional cap would be exceeded"),
    (e.MAX_OPEN_ORDERS, "MAX_OPEN_ORDERS", "too many open orders for the instrument"),
    (e.STALE_MARKET_DATA, "STALE_MARKET_DATA", "market data is stale"),
    (e.ORDER_TABLE_FULL, "ORDER_TABLE_FULL", "the risk book has no free order slot"),
    (e.REPLACE_BELOW_FILLED, "REPLACE_BELOW_FILLED", "replace quantity is not above the filled quantity"),
    (e.UNKNOWN_SESSION, "UNKNOWN_SESSION", "unknown session"),
    (e.VENUE_UNAVAILABLE, "VENUE_UNAVAILABLE", "venue not logged on"),
    (e.BUSY, "BUSY", "gateway busy: event queue full"),
    (e.DUPLICATE_CL_ORD_ID, "DUPLICATE_CL_ORD_ID", "duplicate ClOrdID"),
    (e.INVALID_FIELD, "INVALID_FIELD", "missing or invalid field"),
    (e.INTERNAL_ERROR, "INTERNAL_ERROR", "internal error"),
    (e.INSTRUMENT_NOT_PERMITTED, "INSTRUMENT_NOT_PERMITTED", "instrument not permitted for this client"),
    (e.GATEWAY_CLOSED, "GATEWAY_CLOSED", "the gateway takes no new orders (draining or stopping)"),
    (e.CLIENT_KILLED, "CLIENT_KILLED", "kill switch active for this client"),
    (e.RESTRICTED_INSTRUMENT, "RESTRICTED_INSTRUMENT", "instrument on the restricted list"),
    (e.DUPLICATE_ORDER, "DUPLICATE_ORDER",
     "same side, quantity and price as an order of this client within the duplicate window"),
    (e.UNKNOWN_ORDER, "UNKNOWN_ORDER", "unknown order"),
    (e.OVERFILL, "OVERFILL", "fill quantity exceeds the open quantity"),
    (e.NO_PENDING_REPLACE, "NO_PENDING_REPLACE", "no replace is pending for the order"),
    (e.REPLACE_PENDING, "REPLACE_PENDING", "a replace is already pending for the order"),
    (e.CLIENT_DAILY_NOTIONAL, "CLIENT_DAILY_NOTIONAL", "the client's daily notional cap would be exceeded"),
    (e.CLIENT_OPEN_NOTIONAL, "CLIENT_OPEN_NOTIONAL", "the client's open notional would exceed its limit"),
    (e.CLIENT_WINDOW_NOTIONAL, "CLIENT_WINDOW_NOTIONAL",
     "the client's notional within its short window would exceed its limit"),
    (e.CONCENTRATION, "CONCENTRATION", "worst-case position value would exceed the instrument's share of equity"),
    (e.SECTOR_CONCENTRATION, "SECTOR_CONCENTRATION",
     "worst-case position value of the sector would exceed its share of equity"),
    (e.VENUE_RATE_LIMIT, "VENUE_RATE_LIMIT", "the venue's message rate limit is reached: not sent"),
    (e.QUOTE_NON_POSITIVE_BID, "QUOTE_NON_POSITIVE_BID", "bid is not positive"),
    (e.QUOTE_NON_POSITIVE_ASK, "QUOTE_NON_POSITIVE_ASK", "ask is not positive"),
    (e.QUOTE_CROSSED, "QUOTE_CROSSED", "bid is at or above the ask (crossed or locked)"),
    (e.QUOTE_SPREAD_TOO_WIDE, "QUOTE_SPREAD_TOO_WIDE", "spread is wider than the max spread"),
    (e.QUOTE_TOO_OLD, "QUOTE_TOO_OLD", "quote is older than the max age"),
    (e.QUOTE_FUTURE_DATED, "QUOTE_FUTURE_DATED", "quote is dated in the future beyond the clock skew"),
    (e.QUOTE_PRICE_JUMP, "QUOTE_PRICE_JUMP", "mid jumped beyond the band from the previous valid mid"),
    (e.TRADE_INVALID_PRICE, "TRADE_INVALID_PRICE", "trade price is not positive"),
    (e.SELF_MATCH, "SELF_MATCH", "the order would trade against the client's own resting order"),
    (e.REDUCE_ONLY, "REDUCE_ONLY", "the gateway is reduce-only: only position-reducing orders"),
    (e.FIRM_GROSS_EXPOSURE, "FIRM_GROSS_EXPOSURE",
     "gross exposure would exceed this gateway's budget of the firm's gross exposure limit"),
    (e.FIRM_DAILY_NOTIONAL, "FIRM_DAILY_NOTIONAL",
     "daily notional would exceed this gateway's budget of the firm's daily notional limit"),
    (e.FIRM_DAILY_ORDERS, "FIRM_DAILY_ORDERS",
     "this gateway's budget of the firm's daily order limit is used up"),
    (e.FIRM_CLIENT_CREDIT, "FIRM_CLIENT_CREDIT",
     "the client's open notional would exceed this gateway's budget of its firm-wide credit"),
)

RejectCode = IntEnum("RejectCode", [(name, code) for code, name, _ in REJECT_TABLE], module=__name__)
RejectCode.__doc__ = "Why the hot path refused an order, an order event or a quote (OK = 0)."

CODE_LIMIT = e.CODE_COUNT

_TEXTS = {code: text for code, _, text in REJECT_TABLE}


def reject_name(int code):
    """Return the stable name of `code`, or ``UNKNOWN_CODE_<n>`` for a number outside the table."""
    try:
        return RejectCode(code).name
    except ValueError:
        return f"UNKNOWN_CODE_{code}"


def reject_text(int code):
    """Return the readable text of `code`."""
    return _TEXTS.get(code, f"unknown reject code {code}")


# -- ORDER FIELDS (FIX values) ----------------------------------------------------------------------

class Side(IntEnum):
    """FIX Side(54) values the gateway trades."""

    BUY = e.BUY
    SELL = e.SELL
    SELL_SHORT = e.SELL_SHORT


class OrdType(IntEnum):
    """FIX OrdType(40) values the gateway trades."""

    MARKET = e.MARKET
    LIMIT = e.LIMIT


# -- RISK STATE -------------------------------------------------------------------------------------

class RiskState(IntEnum):
    """The graduated risk state: one byte written by the state thread, read by every check."""

    NORMAL = e.NORMAL
    WARNING = e.WARNING
    CIRCUIT_BREAKER = e.BREAKER
    KILL_SWITCH = e.KILLED


# -- RING EVENTS ------------------------------------------------------------------------------------

class EventKind(IntEnum):
    """What a ring slot reports."""

    ACCEPTED = e.EVENT_ACCEPTED
    REJECTED = e.EVENT_REJECTED
    ACKED = e.EVENT_ACKED
    FILLED = e.EVENT_FILLED
    CANCELED = e.EVENT_CANCELED
    REPLACE_ACCEPTED = e.EVENT_REPLACE_ACCEPTED
    REPLACED = e.EVENT_REPLACED
    REPLACE_REJECTED = e.EVENT_REPLACE_REJECTED
    VENUE_REJECTED = e.EVENT_VENUE_REJECTED
    EXPIRED = e.EVENT_EXPIRED
    CANCEL_REQUESTED = e.EVENT_CANCEL_REQUESTED
    CANCEL_REJECTED = e.EVENT_CANCEL_REJECTED
    DONE_FOR_DAY = e.EVENT_DONE_FOR_DAY
    TRADE_CORRECTED = e.EVENT_TRADE_CORRECTED
    RESTATED = e.EVENT_RESTATED
