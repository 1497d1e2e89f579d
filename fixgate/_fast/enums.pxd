# The C enums every hot-path module shares (declarations only; their Python twins are in codes.pyx). Numbers are stable: they are stored in ring slots,
# journals and metric labels, so a code is only ever added, never renumbered.

# -- REJECT CODES -----------------------------------------------------------------------------------

cdef enum RejectCode:
    OK = 0
    # risk state
    KILL_SWITCH = 1
    CIRCUIT_BREAKER = 2
    # instrument
    UNKNOWN_INSTRUMENT = 3
    INSTRUMENT_HALTED = 4
    # rate limits
    THROTTLED = 5
    # order fields
    INVALID_SIDE = 6
    INVALID_ORDER_TYPE = 7
    INVALID_QUANTITY = 8
    QUANTITY_NOT_LOT_MULTIPLE = 9
    INVALID_PRICE = 10
    PRICE_OFF_TICK = 11
    NO_REFERENCE_PRICE = 12
    # order size and price
    MAX_ORDER_QUANTITY = 13
    WARNING_MAX_ORDER_QUANTITY = 14
    MAX_ORDER_NOTIONAL = 15
    MAX_ACCOUNT_ORDER_NOTIONAL = 16
    ADV_PARTICIPATION = 17
    PRICE_COLLAR = 18
    WARNING_PRICE_COLLAR = 19
    # exposure
    POSITION_LIMIT = 20
    GROSS_EXPOSURE = 21
    LEVERAGE = 22
    DAILY_ORDER_COUNT = 23
    DAILY_NOTIONAL = 24
    MAX_OPEN_ORDERS = 25
    # market data
    STALE_MARKET_DATA = 26
    # book capacity and replace
    ORDER_TABLE_FULL = 27
    REPLACE_BELOW_FILLED = 28
    # gateway (decided outside _fast, listed here so that one table names every reason)
    UNKNOWN_SESSION = 29
    VENUE_UNAVAILABLE = 30
    BUSY = 31
    DUPLICATE_CL_ORD_ID = 32
    INVALID_FIELD = 33
    INTERNAL_ERROR = 34
    INSTRUMENT_NOT_PERMITTED = 35
    GATEWAY_CLOSED = 36
    # per-client controls
    CLIENT_KILLED = 37
    RESTRICTED_INSTRUMENT = 38
    DUPLICATE_ORDER = 39
    # order events from a venue
    UNKNOWN_ORDER = 40
    OVERFILL = 41
    NO_PENDING_REPLACE = 42
    REPLACE_PENDING = 43
    # per-client credit
    CLIENT_DAILY_NOTIONAL = 44
    CLIENT_OPEN_NOTIONAL = 45
    CLIENT_WINDOW_NOTIONAL = 46
    # concentration
    CONCENTRATION = 47
    SECTOR_CONCENTRATION = 48
    # what the gateway sends a venue
    VENUE_RATE_LIMIT = 49
    # the client's own orders
    SELF_MATCH = 58
    # the gateway's own standing (the firm link lost, a build not confirmed)
    REDUCE_ONLY = 59
    # the gateway's allocation of a firm-wide limit (its budget, held locally)
    FIRM_GROSS_EXPOSURE = 60
    FIRM_DAILY_NOTIONAL = 61
    FIRM_DAILY_ORDERS = 62
    FIRM_CLIENT_CREDIT = 63
    # quotes and trades
    QUOTE_NON_POSITIVE_BID = 50
    QUOTE_NON_POSITIVE_ASK = 51
    QUOTE_CROSSED = 52
    QUOTE_SPREAD_TOO_WIDE = 53
    QUOTE_TOO_OLD = 54
    QUOTE_FUTURE_DATED = 55
    QUOTE_PRICE_JUMP = 56
    TRADE_INVALID_PRICE = 57
    # one past the largest code: the size of every per-code counter array
    CODE_COUNT = 64

# -- ORDER FIELDS (FIX values) ----------------------------------------------------------------------

cdef enum Side:
    BUY = 1
    SELL = 2
    SELL_SHORT = 5

cdef enum OrdType:
    MARKET = 1
    LIMIT = 2

# -- RISK STATE -------------------------------------------------------------------------------------

cdef enum RiskState:
    NORMAL = 0
    WARNING = 1
    BREAKER = 2
    KILLED = 3

# -- RING EVENTS ------------------------------------------------------------------------------------

cdef enum EventKind:
    EVENT_ACCEPTED = 1
    EVENT_REJECTED = 2
    EVENT_ACKED = 3
    EVENT_FILLED = 4
    EVENT_CANCELED = 5
    EVENT_REPLACE_ACCEPTED = 6
    EVENT_REPLACED = 7
    EVENT_REPLACE_REJECTED = 8
    EVENT_VENUE_REJECTED = 9
    EVENT_EXPIRED = 10
    EVENT_CANCEL_REQUESTED = 11
    EVENT_CANCEL_REJECTED = 12
    EVENT_DONE_FOR_DAY = 13
    EVENT_TRADE_CORRECTED = 14
    EVENT_RESTATED = 15
