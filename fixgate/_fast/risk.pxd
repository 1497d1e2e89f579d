from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

from fixgate._fast.enums cimport RejectCode
from fixgate._fast.instruments cimport InstrumentSpec, Instruments
from fixgate._fast.quotes cimport QuoteBook
from fixgate._fast.throttle cimport Throttle

# -- RECORDS ----------------------------------------------------------------------------------------

# One order of a batch: a row of the NumPy structured array ORDER_DTYPE (aligned, 32 bytes).
ctypedef struct OrderRequest:
    int32_t session_id
    int32_t instrument_id
    uint8_t side                    # FIX Side(54)
    uint8_t ord_type                # FIX OrdType(40)
    double qty
    double price

# A live order in the book. Its reservation (reserved_lots, reserved_tick_lots) is what it adds to
# the open quantity and open notional of its instrument; `_settle` is the one place that moves it.
ctypedef struct OrderSlot:
    int64_t order_id                # 0: the slot is free
    int32_t instrument_id
    int32_t session_id
    uint8_t side                    # BUY or SELL (sell short is booked as a sell)
    uint8_t ord_type
    bint acked
    bint replace_pending
    int64_t qty_lots
    int64_t cum_lots
    int64_t price_ticks             # limit price, or the reference price when a market order came in
    int64_t new_qty_lots            # while a replace is pending
    int64_t new_price_ticks
    int64_t reserved_lots
    int64_t reserved_tick_lots      # lots x ticks: notional / notional_unit
    int64_t prev_link               # the live orders of one instrument, doubly linked: slot + 1, 0 none
    int64_t next_link

# The live exposure of one instrument: everything a check needs, nothing else.
ctypedef struct Exposure:
    int64_t position_lots
    int64_t open_buy_lots
    int64_t open_sell_lots
    int64_t open_buy_tick_lots
    int64_t open_sell_tick_lots
    int64_t open_orders
    double last_fill_price          # values a position when the instrument has no reference price
    int64_t first_link              # the instrument's first live order: slot + 1, 0 none

# One client session's own controls and credit (ids as the throttle's sessions). Limits are INFINITY
# when unset; the window notional drains linearly over `window_ns` (a leaky bucket).
ctypedef struct ClientState:
    bint killed
    bint self_match_prevention      # refuse an order that would cross the client's own resting order
    int64_t duplicate_window_ns     # 0: duplicates not checked
    int64_t window_ns
    double max_daily_notional
    double max_open_notional
    double max_window_notional
    double daily_notional
    double window_level
    int64_t window_last_ns
    double firm_credit              # this gateway's budget of the client's firm-wide credit (INFINITY: none)

# A recently accepted order, remembered for the duplicate check by a 64-bit hash of its session,
# instrument, side, type, quantity and price (at_ns 0: the way is empty). Two different orders share
# a key with a chance of 2^-64.
ctypedef struct RecentOrder:
    uint64_t key
    int64_t at_ns

# The duplicate memory: RECENT_SETS sets of RECENT_WAYS ways (one 64-byte cache line per set),
# chosen by the key's low bits.
cdef enum:
    RECENT_SETS = 2048
    RECENT_WAYS = 4

# The firm-wide limits a gateway holds a budget of (an allocation, granted by the firm, off the
# order path), and what `firm_budget_c` does with one.
cdef enum FirmBudgetKind:
    BUDGET_GROSS_EXPOSURE = 0       # gross exposure, open orders counted as filled
    BUDGET_DAILY_NOTIONAL = 1       # notional accepted today
    BUDGET_DAILY_ORDERS = 2         # orders accepted today
    BUDGET_CLIENT_CREDIT = 3        # one client session's open notional
    BUDGET_KINDS = 4

cdef enum FirmBudgetOp:
    BUDGET_READ = 0
    BUDGET_SET = 1                  # the budget becomes `value` (INFINITY: none)
    BUDGET_TRIM = 2                 # the budget becomes min(budget, usage + `value`): what a release keeps


cdef class RiskBook:
    # -- WIRING -------------------------------------------------------------------------------------
    cdef readonly Instruments instruments
    cdef readonly QuoteBook quotes
    cdef readonly Throttle throttle

    # -- ACCOUNT LIMITS -----------------------------------------------------------------------------
    cdef readonly double max_order_notional
    cdef readonly double max_gross_exposure
    cdef readonly double max_leverage
    cdef readonly int64_t max_daily_orders
    cdef readonly double max_daily_notional
    cdef readonly double warning_order_qty_factor
    cdef readonly double warning_collar_factor
    cdef readonly double max_concentration          # worst-case position value / equity, per instrument
    cdef readonly double max_sector_concentration   # the same summed over a sector's instruments
    cdef readonly double warning_concentration_factor
    cdef readonly int64_t day_length_ns

    # -- STATE --------------------------------------------------------------------------------------
    cdef Exposure* exposures
    cdef OrderSlot* orders
    cdef readonly int64_t order_capacity
    cdef readonly int64_t order_mask
    cdef readonly int64_t next_order_id
    cdef readonly int64_t last_order_id     # for old callers only: ids come back from the check itself
    cdef readonly int64_t live_orders
    cdef readonly uint8_t risk_state
    cdef readonly uint8_t reduce_only       # 1: only position-reducing orders, whatever the risk state
    cdef readonly double equity
    cdef readonly int64_t daily_orders
    cdef readonly double daily_notional
    cdef readonly int64_t next_day_ns
    # This gateway's budgets of the firm-wide limits (by FirmBudgetKind below BUDGET_CLIENT_CREDIT;
    # a client's is in its ClientState): INFINITY when the firm sets none.
    cdef double[3] firm_budgets

    # -- PER CLIENT ---------------------------------------------------------------------------------
    cdef readonly int32_t client_capacity           # the throttle's sessions
    cdef ClientState* clients
    cdef int64_t* client_open_tick_lots             # [session x instrument capacity]
    cdef uint8_t* restricted                        # [(1 + session) x instrument capacity]; row 0: everyone
    cdef RecentOrder* recent                        # aligned to 64 bytes inside recent_memory
    cdef void* recent_memory
    # Each client's resting limit orders per instrument, for self-match prevention: how many on each
    # side, the best price on each side (buys: highest, sells: lowest, a pending replace's price
    # included), and whether a best left and must be found again ([session x instrument capacity]).
    cdef int64_t* own_counts                        # [.. x 2]: buys, sells
    cdef int64_t* own_best                          # [.. x 2]: 0 none
    cdef uint8_t* own_dirty                         # bit 0: buys, bit 1: sells

    # -- COUNTERS -----------------------------------------------------------------------------------
    cdef readonly int64_t checks
    cdef int64_t[64] decisions          # pre-trade decisions by RejectCode, OK included
    cdef int64_t[64] event_codes        # order events by RejectCode, OK included

    # -- PRE-TRADE CHECKS ---------------------------------------------------------------------------
    # The units entry points are the decision path: quantities and prices arrive as whole lots and
    # ticks (-1: not a positive number in range, 0: off the grid, > 0: on it; above MAX_UNITS counts
    # as -1). The double entry points convert with `units_of` and call them.
    cdef RejectCode check_new_order_units_c(self, int32_t session_id, int32_t instrument_id, int side,
                                            int ord_type, int64_t qty_lots, int64_t price_ticks,
                                            int64_t now_ns, int64_t* order_id) noexcept nogil
    cdef RejectCode check_replace_units_c(self, int64_t order_id, int64_t new_qty_lots,
                                          int64_t new_price_ticks, int64_t now_ns) noexcept nogil
    cdef RejectCode check_new_order_c(self, int32_t session_id, int32_t instrument_id, int side,
                                      int ord_type, double qty, double price,
                                      int64_t now_ns) noexcept nogil
    cdef RejectCode check_replace_c(self, int64_t order_id, double new_qty, double new_price,
                                    int64_t now_ns) noexcept nogil
    cdef void _new_order_units(self, int32_t instrument_id, int ord_type, double qty, double price,
                               int64_t* qty_lots, int64_t* price_ticks) noexcept nogil
    cdef RejectCode _decide_new(self, int32_t session_id, int32_t instrument_id, int side,
                                int ord_type, int64_t qty_lots, int64_t price_ticks, int64_t now_ns,
                                int64_t* order_id) noexcept nogil
    cdef RejectCode _decide_replace(self, int64_t order_id, int64_t new_qty_lots,
                                    int64_t new_price_ticks, int64_t now_ns) noexcept nogil
    cdef RejectCode _check_limits(self, int32_t instrument_id, InstrumentSpec* spec, Exposure* exposure,
                                  uint8_t side, int ord_type, int64_t lots, double price, double ref,
                                  double notional, int64_t delta_lots, int64_t delta_tick_lots,
                                  bint new_order, double daily_notional_add,
                                  int64_t now_ns) noexcept nogil
    cdef void _roll_day(self, int64_t now_ns) noexcept nogil
    cdef RejectCode _check_concentration(self, int32_t instrument_id, InstrumentSpec* spec, Exposure* exposure,
                                         uint8_t side, int64_t delta_lots, double price, bint warning) noexcept nogil
    cdef double _valuation_price(self, int32_t instrument_id) noexcept nogil
    cdef ClientState* _client(self, int32_t session_id) noexcept nogil
    cdef bint _restricted(self, int32_t session_id, int32_t instrument_id) noexcept nogil
    cdef RejectCode _check_client(self, ClientState* client, int32_t session_id, InstrumentSpec* spec,
                                  int64_t delta_tick_lots, double daily_notional_add,
                                  int64_t now_ns) noexcept nogil
    cdef double _window_level(self, ClientState* client, int64_t now_ns) noexcept nogil
    cdef void _commit_client(self, ClientState* client, double daily_notional_add, int64_t now_ns) noexcept nogil
    cdef bint _is_duplicate(self, ClientState* client, uint64_t key, int64_t now_ns) noexcept nogil
    cdef void _remember(self, uint64_t key, int64_t now_ns) noexcept nogil
    cdef double client_open_notional_c(self, int32_t session_id) noexcept nogil
    cdef bint _self_match(self, int32_t session_id, int32_t instrument_id, uint8_t side, int ord_type,
                          int64_t ticks, int64_t exclude_id) noexcept nogil
    cdef void _link(self, OrderSlot* order) noexcept nogil
    cdef void _own_add(self, OrderSlot* order, bint new_order) noexcept nogil
    cdef void _own_touch(self, OrderSlot* order) noexcept nogil
    cdef int64_t _own_best(self, int32_t session_id, int32_t instrument_id, int side_index) noexcept nogil
    cdef bint _restricted_exactly(self, int32_t session_id, int32_t instrument_id)

    # -- ORDER EVENTS -------------------------------------------------------------------------------
    cdef RejectCode on_acked_c(self, int64_t order_id) noexcept nogil
    cdef RejectCode on_filled_units_c(self, int64_t order_id, int64_t qty_lots,
                                      int64_t price_ticks) noexcept nogil
    cdef RejectCode on_filled_c(self, int64_t order_id, double qty, double price) noexcept nogil
    cdef RejectCode on_canceled_c(self, int64_t order_id) noexcept nogil
    cdef RejectCode on_replaced_c(self, int64_t order_id) noexcept nogil
    cdef RejectCode on_replace_rejected_c(self, int64_t order_id) noexcept nogil
    cdef RejectCode on_trade_corrected_units_c(self, int64_t order_id, int32_t instrument_id, int side,
                                               int64_t delta_lots, int64_t price_ticks) noexcept nogil
    cdef RejectCode on_restated_units_c(self, int64_t order_id, int64_t qty_lots) noexcept nogil
    cdef RejectCode _count_event(self, RejectCode code) noexcept nogil

    # -- ORDER TABLE --------------------------------------------------------------------------------
    cdef OrderSlot* _find(self, int64_t order_id) noexcept nogil
    cdef int64_t _allocate(self) noexcept nogil
    cdef void _settle(self, OrderSlot* order) noexcept nogil

    # -- FIRM BUDGETS -------------------------------------------------------------------------------
    # Read, set or trim one budget and read its usage in the same call (the engine makes it under its
    # lock, so a trim can never fall below an order accepted meanwhile). Returns 0, or -1 for an unknown
    # kind or session, or a value that is not a number >= 0.
    cdef int firm_budget_c(self, int kind, int32_t session_id, int op, double value, double* budget,
                           double* usage) noexcept nogil

    # -- EXPOSURE -----------------------------------------------------------------------------------
    cdef double gross_exposure_c(self) noexcept nogil
