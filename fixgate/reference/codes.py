"""Reference twin of ``fixgate._fast.codes``: the same numbers, names and texts (a unit test holds
the two tables equal)."""

from enum import IntEnum

# -- REJECT CODES -----------------------------------------------------------------------------------

# (code, stable name, readable text). The name is a metric label and a log field; the text is the
# start of the FIX Text(58) a client reads.
REJECT_TABLE = (
    (0, "OK", "accepted"),
    (1, "KILL_SWITCH", "kill switch active"),
    (2, "CIRCUIT_BREAKER", "circuit breaker active: only position-reducing orders"),
    (3, "UNKNOWN_INSTRUMENT", "unknown instrument"),
    (4, "INSTRUMENT_HALTED", "instrument halted"),
    (5, "THROTTLED", "order rate limit exceeded"),
    (6, "INVALID_SIDE", "side must be buy, sell or sell short"),
    (7, "INVALID_ORDER_TYPE", "order type must be market or limit"),
    (8, "INVALID_QUANTITY", "quantity must be a positive number"),
    (9, "QUANTITY_NOT_LOT_MULTIPLE", "quantity is not a multiple of the lot size"),
    (10, "INVALID_PRICE", "limit price must be a positive number"),
    (11, "PRICE_OFF_TICK", "price is not a multiple of the tick size"),
    (12, "NO_REFERENCE_PRICE", "market order without a valid reference price"),
    (13, "MAX_ORDER_QUANTITY", "quantity exceeds the max order quantity"),
    (14, "WARNING_MAX_ORDER_QUANTITY",
     "quantity exceeds the max order quantity in WARNING state"),
    (15, "MAX_ORDER_NOTIONAL", "notional exceeds the max order notional"),
    (16, "MAX_ACCOUNT_ORDER_NOTIONAL",
     "notional exceeds the account max order notional"),
    (17, "ADV_PARTICIPATION", "quantity exceeds the allowed share of average daily volume"),
    (18, "PRICE_COLLAR", "price outside the collar around the reference price"),
    (19, "WARNING_PRICE_COLLAR", "price outside the tighter WARNING-state collar"),
    (20, "POSITION_LIMIT", "worst-case position would exceed the position limit"),
    (21, "GROSS_EXPOSURE", "gross exposure would exceed the max gross exposure"),
    (22, "LEVERAGE", "leverage would exceed the max leverage"),
    (23, "DAILY_ORDER_COUNT", "daily order count cap reached"),
    (24, "DAILY_NOTIONAL", "daily notional cap would be exceeded"),
    (25, "MAX_OPEN_ORDERS", "too many open orders for the instrument"),
    (26, "STALE_MARKET_DATA", "market data is stale"),
    (27, "ORDER_TABLE_FULL", "the risk book has no free order slot"),
    (28, "REPLACE_BELOW_FILLED", "replace quantity is not above the filled quantity"),
    (29, "UNKNOWN_SESSION", "unknown session"),
    (30, "VENUE_UNAVAILABLE", "venue not logged on"),
    (31, "BUSY", "gateway busy: event queue full"),
    (32, "DUPLICATE_CL_ORD_ID", "duplicate ClOrdID"),
    (33, "INVALID_FIELD", "missing or invalid field"),
    (34, "INTERNAL_ERROR", "internal error"),
    (35, "INSTRUMENT_NOT_PERMITTED", "instrument not permitted for this client"),
    (36, "GATEWAY_CLOSED", "the gateway takes no new orders (draining or stopping)"),
    (37, "CLIENT_KILLED", "kill switch active for this client"),
    (38, "RESTRICTED_INSTRUMENT", "instrument on the restricted list"),
    (39, "DUPLICATE_ORDER", "same side, quantity and price as an order of this client within the duplicate window"),
    (40, "UNKNOWN_ORDER", "unknown order"),
    (41, "OVERFILL", "fill quantity exceeds the open quantity"),
    (42, "NO_PENDING_REPLACE", "no replace is pending for the order"),
    (43, "REPLACE_PENDING", "a replace is already pending for the order"),
    (44, "CLIENT_DAILY_NOTIONAL", "the client's daily notional cap would be exceeded"),
    (45, "CLIENT_OPEN_NOTIONAL", "the client's open notional would exceed its limit"),
    (46, "CLIENT_WINDOW_NOTIONAL", "the client's notional within its short window would exceed its limit"),
    (47, "CONCENTRATION", "worst-case position value would exceed the instrument's share of equity"),
    (48, "SECTOR_CONCENTRATION", "worst-case position value of the sector would exceed its share of equity"),
    (49, "VENUE_RATE_LIMIT", "the venue's message rate limit is reached: not sent"),
    (50, "QUOTE_NON_POSITIVE_BID", "bid is not positive"),
    (51, "QUOTE_NON_POSITIVE_ASK", "ask is not positive"),
    (52, "QUOTE_CROSSED", "bid is at or above the ask (crossed or locked)"),
    (53, "QUOTE_SPREAD_TOO_WIDE", "spread is wider than the max spread"),
    (54, "QUOTE_TOO_OLD", "quote is older than the max age"),
    (55, "QUOTE_FUTURE_DATED", "quote is dated in the future beyond the clock skew"),
    (56, "QUOTE_PRICE_JUMP", "mid jumped beyond the band from the previous valid mid"),
    (57, "TRADE_INVALID_PRICE", "trade price is not positive"),
    (58, "SELF_MATCH", "the order would trade against the client's own resting order"),
    (59, "REDUCE_ONLY", "the gateway is reduce-only: only position-reducing orders"),
    (60, "FIRM_GROSS_EXPOSURE",
     "gross exposure would exceed this gateway's budget of the firm's gross exposure limit"),
    (61, "FIRM_DAILY_NOTIONAL",
     "daily notional would exceed this gateway's budget of the firm's daily notional limit"),
    (62, "FIRM_DAILY_ORDERS",
     "this gateway's budget of the firm's daily order limit is used up"),
    (63, "FIRM_CLIENT_CREDIT",
     "the client's open notional would exceed this gateway's budget of its firm-wide credit"),
)

RejectCode = IntEnum("RejectCode", [(name, code) for code, name, _ in REJECT_TABLE], module=__name__)
RejectCode.__doc__ = "Why the hot path refused an order, an order event or a quote (OK = 0)."

CODE_LIMIT = 64

_TEXTS = {code: text for code, _, text in REJECT_TABLE}


def reject_name(code: int) -> str:
    """Return the stable name of `code`, or ``UNKNOWN_CODE_<n>`` for a number outside the table."""
    try:
        return RejectCode(code).name
    except ValueError:
        return f"UNKNOWN_CODE_{code}"


def reject_text(code: int) -> str:
    """Return the readable text of `code`."""
    return _TEXTS.get(code, f"unknown reject code {code}")


# -- ORDER FIELDS (FIX values) ----------------------------------------------------------------------

class Side(IntEnum):
    """FIX Side(54) values the gateway trades."""

    BUY = 1
    SELL = 2
    SELL_SHORT = 5


class OrdType(IntEnum):
    """FIX OrdType(40) values the gateway trades."""

    MARKET = 1
    LIMIT = 2


# -- RISK STATE -------------------------------------------------------------------------------------

class RiskState(IntEnum):
    """The graduated risk state: one byte written by the state thread, read by every check."""

    NORMAL = 0
    WARNING = 1
    CIRCUIT_BREAKER = 2
    KILL_SWITCH = 3


# -- RING EVENTS ------------------------------------------------------------------------------------

class EventKind(IntEnum):
    """What a ring slot reports."""

    ACCEPTED = 1
    REJECTED = 2
    ACKED = 3
    FILLED = 4
    CANCELED = 5
    REPLACE_ACCEPTED = 6
    REPLACED = 7
    REPLACE_REJECTED = 8
    VENUE_REJECTED = 9
    EXPIRED = 10
    CANCEL_REQUESTED = 11
    CANCEL_REJECTED = 12
    DONE_FOR_DAY = 13
    TRADE_CORRECTED = 14
    RESTATED = 15
