"""The risk book and the pre-trade check chain: throttle, then order fields, limits and quote freshness.

Every decision returns a `RejectCode` (OK = 0); the first failing check wins. The book moves in the
same call that decides, so a burst can never slip past a limit: an accepted order reserves its open
quantity and notional at once; acks, fills, cancels, rejects and replaces move the reservation.
The units entry points (`*_units_c`: whole lots and ticks, as the wire edge parses them) are the one
decision path; the double entry points convert with `units_of` and call them.
Calls made with the GIL held run to the end without releasing it, so each call is atomic with
respect to the other Python threads that share the book.
"""

import numpy as np

from libc.math cimport fabs, floor, INFINITY, isfinite
from libc.stdint cimport uint64_t
from libc.stdlib cimport free

from fixgate._fast cimport enums as e
from fixgate._fast.memory cimport alloc_prefaulted
from fixgate._fast.instruments cimport MAX_UNITS, NO_COUNT_LIMIT, units_of

# The NumPy layout of `OrderRequest`, for `check_batch`.
ORDER_DTYPE = np.dtype(
    [("session_id", np.int32), ("instrument_id", np.int32), ("side", np.uint8),
     ("ord_type", np.uint8), ("qty", np.float64), ("price", np.float64)],
    align=True,
)

DEFAULT_ORDER_CAPACITY = 65536
# The firm-wide limits a gateway can hold a budget of, in FirmBudgetKind order.
FIRM_BUDGETS = ("gross_exposure", "daily_notional", "daily_orders", "client_credit")
NANOSECONDS_PER_DAY = 86_400_000_000_000


cdef double _limit(str name, object value) except -1.0:
    cdef double number
    if value is None:
        return INFINITY
    number = value
    if not (isfinite(number) and number >= 0.0):
        raise ValueError(f"{name} must be zero or a positive number, got {value!r}")
    return number


cdef double _factor(str name, object value) except -1.0:
    cdef double number = value
    if not (isfinite(number) and 0.0 < number <= 1.0):
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return number


cdef inline uint64_t _mix(uint64_t x) noexcept nogil:
    # splitmix64's finaliser: every input bit moves every output bit.
    x ^= x >> 30
    x *= <uint64_t>0xbf58476d1ce4e5b9
    x ^= x >> 27
    x *= <uint64_t>0x94d049bb133111eb
    x ^= x >> 31
    return x


cdef inline uint64_t _order_key(int32_t session_id, int32_t instrument_id, int side, int ord_type, int64_t lots,
                                int64_t ticks) noexcept nogil:
    # The duplicate check's key of an order: its fields mixed into 64 bits, never 0.
    cdef uint64_t key = _mix(<uint64_t>lots * <uint64_t>0x9e3779b97f4a7c15 ^ <uint64_t>ticks)
    key = _mix(key ^ (<uint64_t>session_id << 40) ^ (<uint64_t>instrument_id << 16)
               ^ (<uint64_t>(side & 0xff) << 8) ^ <uint64_t>(ord_type & 0xff))
    return key if key != 0 else 1


cdef inline bint _reduces(const Exposure* exposure, uint8_t side, int64_t delta_lots) noexcept nogil:
    """Return True when adding `delta_lots` on `side` can only bring the position towards zero,
    counting every open order on that side as filled."""
    if side == e.BUY:
        return (exposure.position_lots < 0
                and exposure.position_lots + exposure.open_buy_lots + delta_lots <= 0)
    return (exposure.position_lots > 0
            and exposure.position_lots - exposure.open_sell_lots - delta_lots >= 0)


cdef inline int64_t _market_ticks(double ref, double tick_size) noexcept nogil:
    """Return the reference price in whole ticks (at least one) for a market order to reserve at,
    or 0 when it is not a positive number below MAX_UNITS ticks: no reference the book can use."""
    cdef double units = ref / tick_size
    cdef int64_t ticks
    if not (ref > 0.0 and units < MAX_UNITS):
        return 0
    ticks = <int64_t>floor(units + 0.5)
    return ticks if ticks > 0 else 1


cdef inline int64_t _in_range(int64_t units) noexcept nogil:
    """Return whole lots or ticks as the check chain reads them: -1 when negative or above
    MAX_UNITS (so that lots x ticks fits an int64), else `units` (0 still means off the grid)."""
    if units < 0 or units > <int64_t>MAX_UNITS:
        return -1
    return units


cdef inline int64_t _fill_ticks(double price, double tick_size) noexcept nogil:
    """Return a fill price in whole ticks: on the grid as `units_of` reads it, off the grid the
    nearest whole tick, -1 when it is not a positive number below MAX_UNITS ticks. 0 (a price below
    half a tick) and -1 leave `last_fill_price` as it is."""
    cdef int64_t ticks = units_of(price, tick_size)
    if ticks == 0:
        ticks = <int64_t>floor(price / tick_size + 0.5)
    return ticks


cdef tuple _firm_budget(RiskBook book, str name, int op, object value, int32_t session_id):
    cdef double budget = 0.0, usage = 0.0
    cdef int kind = FIRM_BUDGETS.index(name) if name in FIRM_BUDGETS else -1
    cdef double number = INFINITY if value is None else value
    if kind < 0:
        raise ValueError(f"unknown firm budget {name!r}: one of {', '.join(FIRM_BUDGETS)}")
    if kind == BUDGET_CLIENT_CREDIT and book._client(session_id) == NULL:
        raise KeyError(f"unknown session id {session_id}")
    if book.firm_budget_c(kind, session_id, op, number, &budget, &usage) != 0:
        raise ValueError(f"a firm budget must be zero or a positive number, got {value!r}")
    return (budget if isfinite(budget) else None), usage


cdef class RiskBook:
    """Live exposure per instrument, the open-order table and the pre-trade check chain.

    Parameters
    ----------
    instruments, quotes, throttle
        The instrument table, quote book and throttle the checks consult.
    max_order_notional, max_gross_exposure, max_leverage, max_daily_notional : float or None
        Account-wide limits; None means no limit.
    max_daily_orders : int or None
        The most orders accepted per trading day.
    warning_order_qty_factor, warning_collar_factor : float
        In WARNING state the max order quantity and the price collar shrink by these factors.
    order_capacity : int
        The most live orders (a power of two).
    equity : float
        Account equity for the leverage limit; the state thread keeps it current.
    day_start_ns : int or None
        When the next trading day starts; daily counters reset then and every `day_length_ns` after.
    """

    # -- CONFIGURATION ------------------------------------------------------------------------------

    def __cinit__(
        self,
        Instruments instruments not None,
        QuoteBook quotes not None,
        Throttle throttle not None,
        *,
        max_order_notional=None,
        max_gross_exposure=None,
        max_leverage=None,
        max_daily_orders=None,
        max_daily_notional=None,
        warning_order_qty_factor=0.5,
        warning_collar_factor=0.5,
        max_concentration=None,
        max_sector_concentration=None,
        warning_concentration_factor=0.5,
        int64_t order_capacity=DEFAULT_ORDER_CAPACITY,
        equity=0.0,
        day_start_ns=None,
        int64_t day_length_ns=NANOSECONDS_PER_DAY,
    ):
        if quotes.instruments is not instruments:
            raise ValueError("the quote book must be built on the same instrument table")
        if throttle.max_instruments < instruments.capacity:
            raise ValueError(
                f"the throttle covers {throttle.max_instruments} instruments, "
                f"the instrument table holds {instruments.capacity}")
        if order_capacity < 2 or order_capacity & (order_capacity - 1):
            raise ValueError(f"order_capacity must be a power of two >= 2, got {order_capacity}")
        if day_length_ns <= 0:
            raise ValueError(f"day_length_ns must be positive, got {day_length_ns}")
        if max_daily_orders is not None and max_daily_orders < 0:
            raise ValueError(f"max_daily_orders must be zero or more, got {max_daily_orders!r}")
        cdef int32_t index
        self.exposures = <Exposure*>alloc_prefaulted(instruments.capacity, sizeof(Exposure))
        self.orders = <OrderSlot*>alloc_prefaulted(order_capacity, sizeof(OrderSlot))
        self.client_capacity = throttle.max_sessions
        self.clients = <ClientState*>alloc_prefaulted(self.client_capacity, sizeof(ClientState))
        self.client_open_tick_lots = <int64_t*>alloc_prefaulted(
            <Py_ssize_t>self.client_capacity * instruments.capacity, sizeof(int64_t))
        self.restricted = <uint8_t*>alloc_prefaulted(
            (<Py_ssize_t>self.client_capacity + 1) * instruments.capacity, sizeof(uint8_t))
        self.recent_memory = alloc_prefaulted(RECENT_SETS * RECENT_WAYS + RECENT_WAYS, sizeof(RecentOrder))
        self.recent = <RecentOrder*>((<size_t>self.recent_memory + 63) & ~(<size_t>63))
        self.own_counts = <int64_t*>alloc_prefaulted(<Py_ssize_t>self.client_capacity * instruments.capacity * 2,
                                                     sizeof(int64_t))
        self.own_best = <int64_t*>alloc_prefaulted(<Py_ssize_t>self.client_capacity * instruments.capacity * 2,
                                                   sizeof(int64_t))
        self.own_dirty = <uint8_t*>alloc_prefaulted(<Py_ssize_t>self.client_capacity * instruments.capacity,
                                                    sizeof(uint8_t))
        if (self.exposures == NULL or self.orders == NULL or self.clients == NULL
                or self.client_open_tick_lots == NULL or self.restricted == NULL or self.recent_memory == NULL
                or self.own_counts == NULL or self.own_best == NULL or self.own_dirty == NULL):
            raise MemoryError()
        for index in range(self.client_capacity):
            self.clients[index].window_ns = 1_000_000_000
            self.clients[index].max_daily_notional = INFINITY
            self.clients[index].max_open_notional = INFINITY
            self.clients[index].max_window_notional = INFINITY
            self.clients[index].firm_credit = INFINITY
        for index in range(3):
            self.firm_budgets[index] = INFINITY
        self.instruments = instruments
        self.quotes = quotes
        self.throttle = throttle
        self.max_order_notional = _limit("max_order_notional", max_order_notional)
        self.max_gross_exposure = _limit("max_gross_exposure", max_gross_exposure)
        self.max_leverage = _limit("max_leverage", max_leverage)
        self.max_daily_orders = NO_COUNT_LIMIT if max_daily_orders is None else max_daily_orders
        self.max_daily_notional = _limit("max_daily_notional", max_daily_notional)
        self.warning_order_qty_factor = _factor("warning_order_qty_factor", warning_order_qty_factor)
        self.warning_collar_factor = _factor("warning_collar_factor", warning_collar_factor)
        self.max_concentration = _limit("max_concentration", max_concentration)
        self.max_sector_concentration = _limit("max_sector_concentration", max_sector_concentration)
        self.warning_concentration_factor = _factor("warning_concentration_factor", warning_concentration_factor)
        self.order_capacity = order_capacity
        self.order_mask = order_capacity - 1
        self.next_order_id = 1
        self.day_length_ns = day_length_ns
        self.next_day_ns = NO_COUNT_LIMIT if day_start_ns is None else day_start_ns
        self.set_equity(equity)

    def __dealloc__(self):
        free(self.exposures)
        free(self.orders)
        free(self.clients)
        free(self.client_open_tick_lots)
        free(self.restricted)
        free(self.recent_memory)
        free(self.own_counts)
        free(self.own_best)
        free(self.own_dirty)

    def set_risk_state(self, int state):
        """Set the risk state byte (0 NORMAL, 1 WARNING, 2 CIRCUIT_BREAKER, 3 KILL_SWITCH)."""
        if not (e.NORMAL <= state <= e.KILLED):
            raise ValueError(f"risk state must be 0 to 3, got {state}")
        self.risk_state = <uint8_t>state

    def set_reduce_only(self, bint on):
        """Accept only position-reducing orders (True), whatever the risk state, or every order again."""
        self.reduce_only = 1 if on else 0

    # -- FIRM BUDGETS -------------------------------------------------------------------------------

    cdef int firm_budget_c(self, int kind, int32_t session_id, int op, double value, double* budget,
                           double* usage) noexcept nogil:
        cdef double* slot
        cdef ClientState* client
        if kind == BUDGET_CLIENT_CREDIT:
            client = self._client(session_id)
            if client == NULL:
                return -1
            slot = &client.firm_credit
            usage[0] = self.client_open_notional_c(session_id)
        elif 0 <= kind < BUDGET_CLIENT_CREDIT:
            slot = &self.firm_budgets[kind]
            if kind == BUDGET_GROSS_EXPOSURE:
                usage[0] = self.gross_exposure_c()
            elif kind == BUDGET_DAILY_NOTIONAL:
                usage[0] = self.daily_notional
            else:
                usage[0] = <double>self.daily_orders
        else:
            return -1
        if op == BUDGET_SET or op == BUDGET_TRIM:
            if not value >= 0.0:
                return -1
            if op == BUDGET_SET:
                slot[0] = value
            elif usage[0] + value < slot[0]:
                slot[0] = usage[0] + value
        elif op != BUDGET_READ:
            return -1
        budget[0] = slot[0]
        return 0

    def firm_budget(self, str kind, *, int32_t session_id=-1):
        """Return (budget, usage) of one of FIRM_BUDGETS (budget None: none); client_credit is one session's."""
        return _firm_budget(self, kind, BUDGET_READ, 0.0, session_id)

    def set_firm_budget(self, str kind, budget, *, int32_t session_id=-1):
        """Set this gateway's budget of a firm-wide limit (None: none); return (budget, usage)."""
        return _firm_budget(self, kind, BUDGET_SET, budget, session_id)

    def trim_firm_budget(self, str kind, double keep, *, int32_t session_id=-1):
        """Lower a budget to its usage plus `keep` where that is less; return (budget, usage)."""
        return _firm_budget(self, kind, BUDGET_TRIM, keep, session_id)

    def set_equity(self, double equity):
        """Set the account equity that the leverage limit divides by."""
        if not isfinite(equity):
            raise ValueError(f"equity must be a finite number, got {equity!r}")
        self.equity = equity

    # -- PRE-TRADE CHECKS ---------------------------------------------------------------------------

    cdef RejectCode check_new_order_units_c(self, int32_t session_id, int32_t instrument_id, int side,
                                            int ord_type, int64_t qty_lots, int64_t price_ticks,
                                            int64_t now_ns, int64_t* order_id) noexcept nogil:
        # The one decision path for new orders; the id of an accepted order goes to `order_id`.
        cdef RejectCode code
        order_id[0] = 0
        self._roll_day(now_ns)
        code = self._decide_new(session_id, instrument_id, side, ord_type, qty_lots, price_ticks, now_ns,
                                order_id)
        self.checks += 1
        self.decisions[<int>code] += 1
        return code

    cdef RejectCode check_replace_units_c(self, int64_t order_id, int64_t new_qty_lots,
                                          int64_t new_price_ticks, int64_t now_ns) noexcept nogil:
        # The one decision path for replaces.
        cdef RejectCode code
        self._roll_day(now_ns)
        code = self._decide_replace(order_id, new_qty_lots, new_price_ticks, now_ns)
        self.checks += 1
        self.decisions[<int>code] += 1
        return code

    cdef RejectCode check_new_order_c(self, int32_t session_id, int32_t instrument_id, int side,
                                      int ord_type, double qty, double price,
                                      int64_t now_ns) noexcept nogil:
        cdef int64_t qty_lots, price_ticks, order_id
        self._new_order_units(instrument_id, ord_type, qty, price, &qty_lots, &price_ticks)
        return self.check_new_order_units_c(session_id, instrument_id, side, ord_type, qty_lots,
                                            price_ticks, now_ns, &order_id)

    cdef RejectCode check_replace_c(self, int64_t order_id, double new_qty, double new_price,
                                    int64_t now_ns) noexcept nogil:
        # An unknown order keeps -1 / 0: the chain answers UNKNOWN_ORDER before it reads them.
        cdef OrderSlot* order = self._find(order_id)
        cdef InstrumentSpec* spec
        cdef int64_t qty_lots = -1
        cdef int64_t price_ticks = 0
        if order != NULL:
            spec = &self.instruments.specs[order.instrument_id]
            qty_lots = units_of(new_qty, spec.lot_size)
            if order.ord_type == e.LIMIT:
                price_ticks = units_of(new_price, spec.tick_size)
        return self.check_replace_units_c(order_id, qty_lots, price_ticks, now_ns)

    cdef void _new_order_units(self, int32_t instrument_id, int ord_type, double qty, double price,
                               int64_t* qty_lots, int64_t* price_ticks) noexcept nogil:
        # Convert a new order's doubles on its instrument's grid; a market order's price is 0 (not
        # read). An unknown instrument gives -1 / 0: the chain answers UNKNOWN_INSTRUMENT first.
        cdef InstrumentSpec* spec
        qty_lots[0] = -1
        price_ticks[0] = 0
        if self.instruments.contains(instrument_id):
            spec = &self.instruments.specs[instrument_id]
            qty_lots[0] = units_of(qty, spec.lot_size)
            if ord_type == e.LIMIT:
                price_ticks[0] = units_of(price, spec.tick_size)

    cdef RejectCode _decide_new(self, int32_t session_id, int32_t instrument_id, int side,
                                int ord_type, int64_t qty_lots, int64_t price_ticks, int64_t now_ns,
                                int64_t* order_id) noexcept nogil:
        cdef InstrumentSpec* spec
        cdef Exposure* exposure
        cdef OrderSlot* order
        cdef RejectCode code
        cdef uint8_t book_side
        cdef int64_t lots, ticks, new_id
        cdef double ref, price, notional
        cdef uint64_t key = 0
        cdef ClientState* client = self._client(session_id)
        if self.risk_state == e.KILLED:
            return e.KILL_SWITCH
        if client != NULL and client.killed:
            return e.CLIENT_KILLED
        if not self.instruments.contains(instrument_id):
            return e.UNKNOWN_INSTRUMENT
        spec = &self.instruments.specs[instrument_id]
        if spec.halted:
            return e.INSTRUMENT_HALTED
        if self._restricted(session_id, instrument_id):
            return e.RESTRICTED_INSTRUMENT
        code = self.throttle.try_acquire_c(session_id, instrument_id, now_ns)
        if code != e.OK:
            return code
        if side == e.BUY:
            book_side = e.BUY
        elif side == e.SELL or side == e.SELL_SHORT:
            book_side = e.SELL
        else:
            return e.INVALID_SIDE
        if ord_type != e.MARKET and ord_type != e.LIMIT:
            return e.INVALID_ORDER_TYPE
        lots = _in_range(qty_lots)
        if lots < 0:
            return e.INVALID_QUANTITY
        if lots == 0:
            return e.QUANTITY_NOT_LOT_MULTIPLE
        exposure = &self.exposures[instrument_id]
        if (self.risk_state == e.BREAKER or self.reduce_only) and not _reduces(exposure, book_side, lots):
            return e.CIRCUIT_BREAKER if self.risk_state == e.BREAKER else e.REDUCE_ONLY
        ref = self.quotes.reference_price_c(instrument_id)
        if ord_type == e.LIMIT:
            ticks = _in_range(price_ticks)
            if ticks < 0:
                return e.INVALID_PRICE
            if ticks == 0:
                return e.PRICE_OFF_TICK
        else:
            ticks = _market_ticks(ref, spec.tick_size)
            if ticks == 0:
                return e.NO_REFERENCE_PRICE
        if client != NULL and client.duplicate_window_ns > 0:
            key = _order_key(session_id, instrument_id, side, ord_type, lots, ticks if ord_type == e.LIMIT else 0)
            if self._is_duplicate(client, key, now_ns):
                return e.DUPLICATE_ORDER
        if (client != NULL and client.self_match_prevention
                and self._self_match(session_id, instrument_id, book_side, ord_type, ticks, 0)):
            return e.SELF_MATCH
        price = <double>ticks * spec.tick_size
        notional = <double>(lots * ticks) * spec.notional_unit
        code = self._check_limits(instrument_id, spec, exposure, book_side, ord_type, lots, price, ref,
                                  notional, lots, lots * ticks, True, notional, now_ns)
        if code != e.OK:
            return code
        if client != NULL:
            code = self._check_client(client, session_id, spec, lots * ticks, notional, now_ns)
            if code != e.OK:
                return code
        if self.live_orders >= self.order_capacity:
            return e.ORDER_TABLE_FULL
        # Accepted: reserve at once.
        new_id = self._allocate()
        order = &self.orders[new_id & self.order_mask]
        order[0] = OrderSlot(new_id, instrument_id, session_id, book_side, <uint8_t>ord_type,
                             False, False, lots, 0, ticks, 0, 0, 0, 0, 0, 0)
        self._link(order)
        self._own_add(order, True)
        exposure.open_orders += 1
        self.live_orders += 1
        self.daily_orders += 1
        self.daily_notional += notional
        self._settle(order)
        if client != NULL:
            self._commit_client(client, notional, now_ns)
            if client.duplicate_window_ns > 0:
                self._remember(key, now_ns)
        self.last_order_id = new_id
        order_id[0] = new_id
        return e.OK

    cdef RejectCode _decide_replace(self, int64_t order_id, int64_t new_qty_lots,
                                    int64_t new_price_ticks, int64_t now_ns) noexcept nogil:
        cdef OrderSlot* order
        cdef InstrumentSpec* spec
        cdef Exposure* exposure
        cdef RejectCode code
        cdef int64_t lots, ticks, leaves, new_leaves, want_lots, want_tick_lots
        cdef double ref, price, notional, daily_add
        cdef ClientState* client
        if self.risk_state == e.KILLED:
            return e.KILL_SWITCH
        order = self._find(order_id)
        if order == NULL:
            return e.UNKNOWN_ORDER
        client = self._client(order.session_id)
        if client != NULL and client.killed:
            return e.CLIENT_KILLED
        if order.replace_pending:
            return e.REPLACE_PENDING
        spec = &self.instruments.specs[order.instrument_id]
        if spec.halted:
            return e.INSTRUMENT_HALTED
        if self._restricted(order.session_id, order.instrument_id):
            return e.RESTRICTED_INSTRUMENT
        code = self.throttle.try_acquire_c(order.session_id, order.instrument_id, now_ns)
        if code != e.OK:
            return code
        lots = _in_range(new_qty_lots)
        if lots < 0:
            return e.INVALID_QUANTITY
        if lots == 0:
            return e.QUANTITY_NOT_LOT_MULTIPLE
        if lots <= order.cum_lots:
            return e.REPLACE_BELOW_FILLED
        ref = self.quotes.reference_price_c(order.instrument_id)
        if order.ord_type == e.LIMIT:
            ticks = _in_range(new_price_ticks)
            if ticks < 0:
                return e.INVALID_PRICE
            if ticks == 0:
                return e.PRICE_OFF_TICK
            price = <double>ticks * spec.tick_size
        else:
            ticks = order.price_ticks
            price = ref
        if (client != NULL and client.self_match_prevention and order.ord_type == e.LIMIT
                and self._self_match(order.session_id, order.instrument_id, order.side, e.LIMIT, ticks, order_id)):
            return e.SELF_MATCH
        # While pending, the order reserves the larger of its old and new remainders.
        leaves = order.qty_lots - order.cum_lots
        new_leaves = lots - order.cum_lots
        want_lots = leaves if leaves > new_leaves else new_leaves
        want_tick_lots = leaves * order.price_ticks
        if new_leaves * ticks > want_tick_lots:
            want_tick_lots = new_leaves * ticks
        exposure = &self.exposures[order.instrument_id]
        if ((self.risk_state == e.BREAKER or self.reduce_only) and want_lots > order.reserved_lots
                and not _reduces(exposure, order.side, want_lots - order.reserved_lots)):
            return e.CIRCUIT_BREAKER if self.risk_state == e.BREAKER else e.REDUCE_ONLY
        notional = <double>(lots * ticks) * spec.notional_unit
        daily_add = notional - <double>(order.qty_lots * order.price_ticks) * spec.notional_unit
        code = self._check_limits(order.instrument_id, spec, exposure, order.side, order.ord_type, lots,
                                  price, ref, notional, want_lots - order.reserved_lots,
                                  want_tick_lots - order.reserved_tick_lots, False, daily_add, now_ns)
        if code != e.OK:
            return code
        if client != NULL:
            code = self._check_client(client, order.session_id, spec, want_tick_lots - order.reserved_tick_lots,
                                      daily_add, now_ns)
            if code != e.OK:
                return code
        order.replace_pending = True
        order.new_qty_lots = lots
        order.new_price_ticks = ticks
        self._own_add(order, False)
        if daily_add > 0.0:
            self.daily_notional += daily_add
        self._settle(order)
        if client != NULL:
            self._commit_client(client, daily_add, now_ns)
        return e.OK

    cdef RejectCode _check_limits(self, int32_t instrument_id, InstrumentSpec* spec, Exposure* exposure,
                                  uint8_t side, int ord_type, int64_t lots, double price, double ref,
                                  double notional, int64_t delta_lots, int64_t delta_tick_lots,
                                  bint new_order, double daily_notional_add,
                                  int64_t now_ns) noexcept nogil:
        # The size, price and exposure checks shared by new orders and replaces. `delta_lots` and
        # `delta_tick_lots` are what accepting would add to the open quantity and notional.
        cdef double deviation, gross
        cdef RejectCode code
        cdef bint warning = self.risk_state == e.WARNING
        if lots > spec.max_order_lots:
            return e.MAX_ORDER_QUANTITY
        if warning and lots > <int64_t>(spec.max_order_lots * self.warning_order_qty_factor):
            return e.WARNING_MAX_ORDER_QUANTITY
        if notional > spec.max_order_notional:
            return e.MAX_ORDER_NOTIONAL
        if notional > self.max_order_notional:
            return e.MAX_ACCOUNT_ORDER_NOTIONAL
        if <double>lots * spec.lot_size > spec.adv_limit_qty:
            return e.ADV_PARTICIPATION
        if ord_type == e.LIMIT and isfinite(spec.price_collar):
            if not (ref > 0.0):
                return e.NO_REFERENCE_PRICE
            deviation = fabs(price - ref) / ref
            if deviation > spec.price_collar:
                return e.PRICE_COLLAR
            if warning and deviation > spec.price_collar * self.warning_collar_factor:
                return e.WARNING_PRICE_COLLAR
        if delta_lots > 0:
            if side == e.BUY:
                if exposure.position_lots + exposure.open_buy_lots + delta_lots > spec.max_position_lots:
                    return e.POSITION_LIMIT
            elif exposure.position_lots - exposure.open_sell_lots - delta_lots < -spec.max_position_lots:
                return e.POSITION_LIMIT
        if delta_tick_lots > 0 and (isfinite(self.max_gross_exposure) or isfinite(self.max_leverage)
                                    or isfinite(self.firm_budgets[<int>BUDGET_GROSS_EXPOSURE])):
            gross = self.gross_exposure_c() + <double>delta_tick_lots * spec.notional_unit
            if gross > self.max_gross_exposure:
                return e.GROSS_EXPOSURE
            if isfinite(self.max_leverage) and (not (self.equity > 0.0)
                                                or gross / self.equity > self.max_leverage):
                return e.LEVERAGE
            if gross > self.firm_budgets[<int>BUDGET_GROSS_EXPOSURE]:
                return e.FIRM_GROSS_EXPOSURE
        if delta_lots > 0 and (isfinite(self.max_concentration) or isfinite(self.max_sector_concentration)):
            code = self._check_concentration(instrument_id, spec, exposure, side, delta_lots, price, warning)
            if code != e.OK:
                return code
        if new_order and self.daily_orders + 1 > self.max_daily_orders:
            return e.DAILY_ORDER_COUNT
        if new_order and <double>(self.daily_orders + 1) > self.firm_budgets[<int>BUDGET_DAILY_ORDERS]:
            return e.FIRM_DAILY_ORDERS
        if daily_notional_add > 0.0 and self.daily_notional + daily_notional_add > self.max_daily_notional:
            return e.DAILY_NOTIONAL
        if (daily_notional_add > 0.0
                and self.daily_notional + daily_notional_add > self.firm_budgets[<int>BUDGET_DAILY_NOTIONAL]):
            return e.FIRM_DAILY_NOTIONAL
        if new_order and exposure.open_orders + 1 > spec.max_open_orders:
            return e.MAX_OPEN_ORDERS
        if spec.requires_live_quote and self.quotes.is_stale_c(instrument_id, now_ns):
            return e.STALE_MARKET_DATA
        return e.OK

    cdef double _valuation_price(self, int32_t instrument_id) noexcept nogil:
        # The reference price, else the last fill's: what a position is worth now (0: unknown).
        cdef double ref = self.quotes.reference_price_c(instrument_id)
        if not (ref > 0.0):
            ref = self.exposures[instrument_id].last_fill_price
        return ref if ref > 0.0 else 0.0

    cdef RejectCode _check_concentration(self, int32_t instrument_id, InstrumentSpec* spec, Exposure* exposure,
                                         uint8_t side, int64_t delta_lots, double price, bint warning) noexcept nogil:
        # The worst-case position on the order's side, with every open order on it filled, valued at
        # the reference price (else the last fill's, else the order's own): as a share of equity, for
        # the instrument, and summed with the worst case of every other instrument of its sector.
        # An order that only brings the position towards zero always passes.
        cdef int64_t after, other_side, worst
        cdef double ref, value, total, factor
        cdef int32_t index
        cdef Exposure* other
        if side == e.BUY:
            after = exposure.position_lots + exposure.open_buy_lots + delta_lots
            if after <= 0:
                return e.OK
            other_side = exposure.position_lots - exposure.open_sell_lots
        else:
            after = exposure.position_lots - exposure.open_sell_lots - delta_lots
            if after >= 0:
                return e.OK
            other_side = exposure.position_lots + exposure.open_buy_lots
        ref = self._valuation_price(instrument_id)
        if ref == 0.0:
            ref = price
        factor = self.warning_concentration_factor if warning else 1.0
        value = <double>(after if after > 0 else -after) * spec.lot_size * ref
        if isfinite(self.max_concentration) and (not (self.equity > 0.0)
                                                 or value > self.max_concentration * factor * self.equity):
            return e.CONCENTRATION
        if not isfinite(self.max_sector_concentration) or spec.sector < 0:
            return e.OK
        if other_side < 0:
            other_side = -other_side
        if <double>other_side * spec.lot_size * ref > value:
            value = <double>other_side * spec.lot_size * ref
        total = value
        for index in range(self.instruments.count):
            if index == instrument_id or self.instruments.specs[index].sector != spec.sector:
                continue
            other = &self.exposures[index]
            worst = other.position_lots + other.open_buy_lots
            if worst < 0:
                worst = -worst
            if other.open_sell_lots - other.position_lots > worst:
                worst = other.open_sell_lots - other.position_lots
            if worst > 0:
                total += <double>worst * self.instruments.specs[index].lot_size * self._valuation_price(index)
        if not (self.equity > 0.0) or total > self.max_sector_concentration * factor * self.equity:
            return e.SECTOR_CONCENTRATION
        return e.OK

    cdef void _roll_day(self, int64_t now_ns) noexcept nogil:
        cdef int32_t index
        if now_ns >= self.next_day_ns:
            self.next_day_ns += ((now_ns - self.next_day_ns) // self.day_length_ns + 1) * self.day_length_ns
            self.daily_orders = 0
            self.daily_notional = 0.0
            for index in range(self.client_capacity):
                self.clients[index].daily_notional = 0.0

    # -- PER-CLIENT CONTROLS ------------------------------------------------------------------------

    cdef ClientState* _client(self, int32_t session_id) noexcept nogil:
        # NULL for an id outside the throttle's sessions (the throttle answers UNKNOWN_SESSION).
        if 0 <= session_id < self.client_capacity:
            return &self.clients[session_id]
        return NULL

    cdef bint _restricted(self, int32_t session_id, int32_t instrument_id) noexcept nogil:
        if self.restricted[instrument_id]:
            return True
        return (0 <= session_id < self.client_capacity
                and self.restricted[(<Py_ssize_t>session_id + 1) * self.instruments.capacity + instrument_id] != 0)

    cdef RejectCode _check_client(self, ClientState* client, int32_t session_id, InstrumentSpec* spec,
                                  int64_t delta_tick_lots, double daily_notional_add,
                                  int64_t now_ns) noexcept nogil:
        # The client's own credit: daily notional, open notional (its own limit, then its budget of
        # its firm-wide credit), notional within its short window.
        cdef double open_after
        if daily_notional_add > 0.0 and client.daily_notional + daily_notional_add > client.max_daily_notional:
            return e.CLIENT_DAILY_NOTIONAL
        if delta_tick_lots > 0 and (isfinite(client.max_open_notional) or isfinite(client.firm_credit)):
            open_after = self.client_open_notional_c(session_id) + <double>delta_tick_lots * spec.notional_unit
            if open_after > client.max_open_notional:
                return e.CLIENT_OPEN_NOTIONAL
            if open_after > client.firm_credit:
                return e.FIRM_CLIENT_CREDIT
        if (daily_notional_add > 0.0 and isfinite(client.max_window_notional)
                and self._window_level(client, now_ns) + daily_notional_add > client.max_window_notional):
            return e.CLIENT_WINDOW_NOTIONAL
        return e.OK

    cdef double _window_level(self, ClientState* client, int64_t now_ns) noexcept nogil:
        # What is left of the notional sent inside the window: it drains at max / window per ns.
        cdef double level = client.window_level
        if now_ns > client.window_last_ns and level > 0.0:
            level -= <double>(now_ns - client.window_last_ns) * (client.max_window_notional
                                                                 / <double>client.window_ns)
            if level < 0.0:
                level = 0.0
        return level

    cdef void _commit_client(self, ClientState* client, double daily_notional_add, int64_t now_ns) noexcept nogil:
        if not daily_notional_add > 0.0:
            return
        client.daily_notional += daily_notional_add
        if isfinite(client.max_window_notional):
            client.window_level = self._window_level(client, now_ns) + daily_notional_add
            if now_ns > client.window_last_ns:
                client.window_last_ns = now_ns

    cdef bint _is_duplicate(self, ClientState* client, uint64_t key, int64_t now_ns) noexcept nogil:
        cdef RecentOrder* ways = &self.recent[(key & (RECENT_SETS - 1)) * RECENT_WAYS]
        cdef int way
        for way in range(RECENT_WAYS):
            if ways[way].at_ns != 0 and ways[way].key == key:
                return now_ns - ways[way].at_ns < client.duplicate_window_ns
        return False

    cdef void _remember(self, uint64_t key, int64_t now_ns) noexcept nogil:
        # The same order again takes its own way; else an empty way, else the oldest.
        cdef RecentOrder* ways = &self.recent[(key & (RECENT_SETS - 1)) * RECENT_WAYS]
        cdef int way
        cdef int chosen = 0
        for way in range(RECENT_WAYS):
            if ways[way].at_ns != 0 and ways[way].key == key:
                chosen = way
                break
            if ways[way].at_ns == 0:
                if ways[chosen].at_ns != 0:
                    chosen = way
            elif ways[chosen].at_ns != 0 and ways[way].at_ns < ways[chosen].at_ns:
                chosen = way
        ways[chosen].key = key
        ways[chosen].at_ns = now_ns if now_ns != 0 else 1

    cdef void _link(self, OrderSlot* order) noexcept nogil:
        # Put a new live order at the head of its instrument's list.
        cdef Exposure* exposure = &self.exposures[order.instrument_id]
        cdef int64_t link = (order.order_id & self.order_mask) + 1
        order.prev_link = 0
        order.next_link = exposure.first_link
        if exposure.first_link:
            self.orders[exposure.first_link - 1].prev_link = link
        exposure.first_link = link

    cdef bint _self_match(self, int32_t session_id, int32_t instrument_id, uint8_t side, int ord_type,
                          int64_t ticks, int64_t exclude_id) noexcept nogil:
        # Whether an order of `session_id` on `side` at `ticks` (a market order at any price) would
        # meet one of the same client's resting limit orders on the other side of the instrument, at
        # its price or at the price a pending replace would give it. The best own price on the other
        # side answers it; a replace (`exclude_id`: the order itself, on its own side) never meets it.
        cdef int other_side = 1 if side == e.BUY else 0
        cdef int64_t best
        if self.own_counts[(<Py_ssize_t>session_id * self.instruments.capacity + instrument_id) * 2 + other_side] == 0:
            return False
        if ord_type == e.MARKET:
            return True
        best = self._own_best(session_id, instrument_id, other_side)
        return best <= ticks if side == e.BUY else best >= ticks

    cdef void _own_add(self, OrderSlot* order, bint new_order) noexcept nogil:
        # A resting limit order came in (`new_order`), or a replace gave one a pending price: the
        # best may move.
        cdef Py_ssize_t cell
        cdef int side_index
        cdef int64_t* best
        cdef int64_t price
        if order.ord_type != e.LIMIT or not (0 <= order.session_id < self.client_capacity):
            return
        cell = <Py_ssize_t>order.session_id * self.instruments.capacity + order.instrument_id
        side_index = 0 if order.side == e.BUY else 1
        if new_order:
            self.own_counts[cell * 2 + side_index] += 1
        if self.own_dirty[cell] & (1 << side_index):
            return                                  # found again at the next check
        best = &self.own_best[cell * 2 + side_index]
        price = order.price_ticks
        if order.replace_pending and ((side_index == 0 and order.new_price_ticks > price)
                                      or (side_index == 1 and order.new_price_ticks < price)):
            price = order.new_price_ticks
        if best[0] == 0 or (side_index == 0 and price > best[0]) or (side_index == 1 and price < best[0]):
            best[0] = price

    cdef void _own_touch(self, OrderSlot* order) noexcept nogil:
        # One of the order's prices is about to go: when it is the best, the best is found again.
        cdef Py_ssize_t cell
        cdef int side_index
        cdef int64_t best
        if order.ord_type != e.LIMIT or not (0 <= order.session_id < self.client_capacity):
            return
        cell = <Py_ssize_t>order.session_id * self.instruments.capacity + order.instrument_id
        side_index = 0 if order.side == e.BUY else 1
        best = self.own_best[cell * 2 + side_index]
        if order.price_ticks == best or (order.replace_pending and order.new_price_ticks == best):
            self.own_dirty[cell] |= <uint8_t>(1 << side_index)

    cdef int64_t _own_best(self, int32_t session_id, int32_t instrument_id, int side_index) noexcept nogil:
        # The best price of the client's resting limit orders on one side; walked again when dirty.
        cdef Py_ssize_t cell = <Py_ssize_t>session_id * self.instruments.capacity + instrument_id
        cdef int64_t link
        cdef int64_t best = 0
        cdef OrderSlot* other
        cdef uint8_t side = e.BUY if side_index == 0 else e.SELL
        if not (self.own_dirty[cell] & (1 << side_index)):
            return self.own_best[cell * 2 + side_index]
        link = self.exposures[instrument_id].first_link
        while link:
            other = &self.orders[link - 1]
            link = other.next_link
            if other.session_id != session_id or other.side != side or other.ord_type != e.LIMIT:
                continue
            if best == 0 or (side_index == 0 and other.price_ticks > best) or (side_index == 1
                                                                               and other.price_ticks < best):
                best = other.price_ticks
            if other.replace_pending and ((side_index == 0 and other.new_price_ticks > best)
                                          or (side_index == 1 and other.new_price_ticks < best)):
                best = other.new_price_ticks
        self.own_best[cell * 2 + side_index] = best
        self.own_dirty[cell] &= <uint8_t>~(1 << side_index)
        return best

    cdef double client_open_notional_c(self, int32_t session_id) noexcept nogil:
        cdef double total = 0.0
        cdef int32_t index
        cdef int64_t* row = &self.client_open_tick_lots[<Py_ssize_t>session_id * self.instruments.capacity]
        for index in range(self.instruments.count):
            if row[index] != 0:
                total += <double>row[index] * self.instruments.specs[index].notional_unit
        return total

    def configure_client(self, int32_t session_id, *, max_daily_notional=None, max_open_notional=None,
                         max_window_notional=None, int64_t window_ns=1_000_000_000,
                         int64_t duplicate_window_ns=0, bint self_match_prevention=False):
        """Give client session `session_id` its own credit limits and duplicate window.

        Parameters
        ----------
        max_daily_notional, max_open_notional : float or None
            The client's notional per trading day, and the notional of its open orders; None: no limit.
        max_window_notional : float or None
            The most notional within any `window_ns` (a leaky bucket that drains at max / window).
        duplicate_window_ns : int
            An order with the same instrument, side, type, quantity and price as one of the
            client's accepted within this long is refused DUPLICATE_ORDER; 0 turns the check off.
        self_match_prevention : bool
            An order that would meet one of the client's own resting limit orders on the other side
            of the instrument (and so of its venue) is refused SELF_MATCH.
        """
        cdef ClientState* client = self._client(session_id)
        if client == NULL:
            raise KeyError(f"unknown session id {session_id}")
        if window_ns <= 0:
            raise ValueError(f"window_ns must be positive, got {window_ns}")
        if duplicate_window_ns < 0:
            raise ValueError(f"duplicate_window_ns must be zero or more, got {duplicate_window_ns}")
        client.max_daily_notional = _limit("max_daily_notional", max_daily_notional)
        client.max_open_notional = _limit("max_open_notional", max_open_notional)
        client.max_window_notional = _limit("max_window_notional", max_window_notional)
        client.window_ns = window_ns
        client.duplicate_window_ns = duplicate_window_ns
        client.self_match_prevention = self_match_prevention

    def set_client_killed(self, int32_t session_id, bint killed):
        """Refuse (True) or take again (False) the new orders and replaces of one client session."""
        cdef ClientState* client = self._client(session_id)
        if client == NULL:
            raise KeyError(f"unknown session id {session_id}")
        client.killed = killed

    def set_restricted(self, int32_t instrument_id, bint restricted, int32_t session_id=-1):
        """Put an instrument on (or take it off) the restricted list of everyone (session -1) or of
        one client session."""
        self.instruments._require(instrument_id)
        if session_id == -1:
            self.restricted[instrument_id] = restricted
        elif self._client(session_id) != NULL:
            self.restricted[(<Py_ssize_t>session_id + 1) * self.instruments.capacity + instrument_id] = restricted
        else:
            raise KeyError(f"unknown session id {session_id}")

    def is_restricted(self, int32_t instrument_id, int32_t session_id=-1):
        """Return whether new orders of `session_id` (-1: the list for everyone) in the instrument are refused."""
        self.instruments._require(instrument_id)
        if session_id != -1 and self._client(session_id) == NULL:
            raise KeyError(f"unknown session id {session_id}")
        return bool(self._restricted(session_id, instrument_id))

    def client(self, int32_t session_id):
        """Return one client session's controls and credit as a dict (limits None when unset)."""
        cdef ClientState* client = self._client(session_id)
        if client == NULL:
            raise KeyError(f"unknown session id {session_id}")
        return {
            "killed": bool(client.killed),
            "duplicate_window_ns": client.duplicate_window_ns,
            "self_match_prevention": bool(client.self_match_prevention),
            "window_ns": client.window_ns,
            "max_daily_notional": client.max_daily_notional if isfinite(client.max_daily_notional) else None,
            "max_open_notional": client.max_open_notional if isfinite(client.max_open_notional) else None,
            "max_window_notional": client.max_window_notional if isfinite(client.max_window_notional) else None,
            "daily_notional": client.daily_notional,
            "open_notional": self.client_open_notional_c(session_id),
            "window_level": client.window_level,
            "window_last_ns": client.window_last_ns,
            "firm_credit": client.firm_credit if isfinite(client.firm_credit) else None,
        }

    def restore_client_daily(self, int32_t session_id, double daily_notional):
        """Set one client's notional so far today from the journal."""
        cdef ClientState* client = self._client(session_id)
        if client == NULL:
            raise KeyError(f"unknown session id {session_id}")
        client.daily_notional = daily_notional

    def check_new_order(self, int32_t session_id, int32_t instrument_id, int side, int ord_type,
                        double qty, double price, int64_t now_ns):
        """Run the check chain on a new order and reserve it when accepted; return the `RejectCode`.

        `qty` and `price` are converted to lots and ticks with `units_of` and decided by
        `check_new_order_units`; `price` is ignored for market orders. The id of an accepted order
        is only in `last_order_id`: new code calls `check_new_order_units`, which returns it.
        """
        return self.check_new_order_c(session_id, instrument_id, side, ord_type, qty, price, now_ns)

    def check_new_order_units(self, int32_t session_id, int32_t instrument_id, int side, int ord_type,
                              int64_t qty_lots, int64_t price_ticks, int64_t now_ns):
        """Run the check chain on a new order given in whole lots and ticks; return (code, order id).

        Parameters
        ----------
        qty_lots, price_ticks : int
            Whole lots and ticks: -1 (or any negative, or above MAX_UNITS) is not a valid number
            (INVALID_QUANTITY / INVALID_PRICE), 0 is off the grid (QUANTITY_NOT_LOT_MULTIPLE /
            PRICE_OFF_TICK). `price_ticks` is ignored for market orders.

        Returns
        -------
        tuple of int
            The `RejectCode` and the new order's id (0 unless the code is OK).
        """
        cdef int64_t order_id = 0
        cdef RejectCode code = self.check_new_order_units_c(session_id, instrument_id, side, ord_type, qty_lots,
                                                            price_ticks, now_ns, &order_id)
        return code, order_id

    def check_replace(self, int64_t order_id, double new_qty, double new_price, int64_t now_ns):
        """Check a cancel/replace of a live order; on OK the replace is pending until the venue answers.

        `new_qty` is the new total order quantity (filled part included), as in FIX OrderQty(38).
        Converted on the order's grid with `units_of` and decided by `check_replace_units`.
        """
        return self.check_replace_c(order_id, new_qty, new_price, now_ns)

    def check_replace_units(self, int64_t order_id, int64_t new_qty_lots, int64_t new_price_ticks,
                            int64_t now_ns):
        """Check a cancel/replace given in whole lots and ticks (as `check_new_order_units`); return
        the `RejectCode`. `new_price_ticks` is ignored for market orders."""
        return self.check_replace_units_c(order_id, new_qty_lots, new_price_ticks, now_ns)

    def check_batch(self, OrderRequest[::1] orders, uint8_t[::1] codes, int64_t[::1] order_ids,
                    int64_t now_ns):
        """Check `orders` (an ORDER_DTYPE array) in order, without the GIL; return how many passed.

        Each row's code goes to `codes` and its order id (0 when rejected) to `order_ids`.
        """
        cdef Py_ssize_t count = orders.shape[0]
        cdef Py_ssize_t index
        cdef Py_ssize_t accepted = 0
        cdef RejectCode code
        cdef OrderRequest* request
        cdef int64_t qty_lots, price_ticks
        if codes.shape[0] < count or order_ids.shape[0] < count:
            raise ValueError(f"codes and order_ids must hold at least {count} entries")
        with nogil:
            for index in range(count):
                request = &orders[index]
                self._new_order_units(request.instrument_id, request.ord_type, request.qty, request.price,
                                      &qty_lots, &price_ticks)
                code = self.check_new_order_units_c(request.session_id, request.instrument_id, request.side,
                                                    request.ord_type, qty_lots, price_ticks, now_ns,
                                                    &order_ids[index])
                codes[index] = <uint8_t>code
                if code == e.OK:
                    accepted += 1
        return accepted

    # -- ORDER EVENTS -------------------------------------------------------------------------------

    cdef RejectCode on_acked_c(self, int64_t order_id) noexcept nogil:
        cdef OrderSlot* order = self._find(order_id)
        if order == NULL:
            return self._count_event(e.UNKNOWN_ORDER)
        order.acked = True
        return self._count_event(e.OK)

    cdef RejectCode on_filled_units_c(self, int64_t order_id, int64_t qty_lots,
                                      int64_t price_ticks) noexcept nogil:
        # The one path that books fills. `price_ticks` > 0 (and within MAX_UNITS) becomes the
        # instrument's last fill price; anything else leaves it as it is: the quantity is booked
        # whatever the price, because the position is what the venue says it is.
        cdef OrderSlot* order = self._find(order_id)
        cdef Exposure* exposure
        cdef int64_t lots, leaves
        if order == NULL:
            return self._count_event(e.UNKNOWN_ORDER)
        lots = _in_range(qty_lots)
        if lots < 0:
            return self._count_event(e.INVALID_QUANTITY)
        if lots == 0:
            return self._count_event(e.QUANTITY_NOT_LOT_MULTIPLE)
        exposure = &self.exposures[order.instrument_id]
        leaves = order.qty_lots - order.cum_lots
        if order.side == e.BUY:
            exposure.position_lots += lots
        else:
            exposure.position_lots -= lots
        if _in_range(price_ticks) > 0:
            exposure.last_fill_price = <double>price_ticks * self.instruments.specs[order.instrument_id].tick_size
        order.cum_lots += lots
        self._settle(order)
        # An overfill is still booked: the position is what the venue says it is.
        return self._count_event(e.OVERFILL if lots > leaves else e.OK)

    cdef RejectCode on_filled_c(self, int64_t order_id, double qty, double price) noexcept nogil:
        # Converts on the order's grid; an off-tick price is booked at its nearest whole tick (see
        # `_fill_ticks`). An unknown order keeps -1 / 0: UNKNOWN_ORDER comes first.
        cdef OrderSlot* order = self._find(order_id)
        cdef InstrumentSpec* spec
        cdef int64_t qty_lots = -1
        cdef int64_t price_ticks = 0
        if order != NULL:
            spec = &self.instruments.specs[order.instrument_id]
            qty_lots = units_of(qty, spec.lot_size)
            price_ticks = _fill_ticks(price, spec.tick_size)
        return self.on_filled_units_c(order_id, qty_lots, price_ticks)

    cdef RejectCode on_canceled_c(self, int64_t order_id) noexcept nogil:
        cdef OrderSlot* order = self._find(order_id)
        if order == NULL:
            return self._count_event(e.UNKNOWN_ORDER)
        self._own_touch(order)
        order.qty_lots = order.cum_lots
        order.replace_pending = False
        self._settle(order)
        return self._count_event(e.OK)

    cdef RejectCode on_replaced_c(self, int64_t order_id) noexcept nogil:
        cdef OrderSlot* order = self._find(order_id)
        if order == NULL:
            return self._count_event(e.UNKNOWN_ORDER)
        if not order.replace_pending:
            return self._count_event(e.NO_PENDING_REPLACE)
        self._own_touch(order)
        order.qty_lots = order.new_qty_lots
        order.price_ticks = order.new_price_ticks
        order.replace_pending = False
        self._settle(order)
        return self._count_event(e.OK)

    cdef RejectCode on_replace_rejected_c(self, int64_t order_id) noexcept nogil:
        cdef OrderSlot* order = self._find(order_id)
        if order == NULL:
            return self._count_event(e.UNKNOWN_ORDER)
        if not order.replace_pending:
            return self._count_event(e.NO_PENDING_REPLACE)
        self._own_touch(order)
        order.replace_pending = False
        self._settle(order)
        return self._count_event(e.OK)

    cdef RejectCode on_trade_corrected_units_c(self, int64_t order_id, int32_t instrument_id, int side,
                                               int64_t delta_lots, int64_t price_ticks) noexcept nogil:
        # A venue busted (delta < 0) or corrected a fill: the position moves by `delta_lots` whatever
        # the order table holds; a live order's filled quantity moves with it (never below zero).
        cdef OrderSlot* order
        cdef Exposure* exposure
        cdef int64_t cum
        if not self.instruments.contains(instrument_id):
            return self._count_event(e.UNKNOWN_INSTRUMENT)
        if side != e.BUY and side != e.SELL:
            return self._count_event(e.INVALID_SIDE)
        if delta_lots == 0 or delta_lots > <int64_t>MAX_UNITS or delta_lots < -<int64_t>MAX_UNITS:
            return self._count_event(e.INVALID_QUANTITY)
        exposure = &self.exposures[instrument_id]
        exposure.position_lots += delta_lots if side == e.BUY else -delta_lots
        if delta_lots > 0 and _in_range(price_ticks) > 0:
            exposure.last_fill_price = <double>price_ticks * self.instruments.specs[instrument_id].tick_size
        order = self._find(order_id)
        if order == NULL or order.instrument_id != instrument_id:
            return self._count_event(e.UNKNOWN_ORDER)
        cum = order.cum_lots + delta_lots
        order.cum_lots = cum if cum > 0 else 0
        self._settle(order)
        return self._count_event(e.OK)

    cdef RejectCode on_restated_units_c(self, int64_t order_id, int64_t qty_lots) noexcept nogil:
        # The venue restated the order's quantity: it reserves what is open of the new quantity (an
        # order restated to its filled quantity or below is done).
        cdef OrderSlot* order = self._find(order_id)
        cdef int64_t lots
        if order == NULL:
            return self._count_event(e.UNKNOWN_ORDER)
        lots = _in_range(qty_lots)
        if lots <= 0:
            return self._count_event(e.INVALID_QUANTITY)
        order.qty_lots = lots if lots > order.cum_lots else order.cum_lots
        self._settle(order)
        return self._count_event(e.OK)

    cdef RejectCode _count_event(self, RejectCode code) noexcept nogil:
        self.event_codes[<int>code] += 1
        return code

    def on_trade_corrected_units(self, int64_t order_id, int32_t instrument_id, int side, int64_t delta_lots,
                                 int64_t price_ticks):
        """Follow a venue's trade bust (`delta_lots` < 0) or correction of a fill of `order_id`.

        The position of `instrument_id` moves by `delta_lots` on `side` (1 buy, 2 sell) whether or not
        the order is live; a live order's filled quantity moves too (never below zero), so its
        reservation grows back by what was busted. A positive change at `price_ticks` in
        1..MAX_UNITS becomes the last fill price.

        Returns
        -------
        int
            OK; UNKNOWN_ORDER when the order is not live (the position moved all the same);
            UNKNOWN_INSTRUMENT, INVALID_SIDE or INVALID_QUANTITY (0 or beyond MAX_UNITS) when nothing moved.
        """
        return self.on_trade_corrected_units_c(order_id, instrument_id, side, delta_lots, price_ticks)

    def on_restated_units(self, int64_t order_id, int64_t qty_lots):
        """Follow a venue's restatement of an order's quantity (OrderQty, whole lots); return OK,
        UNKNOWN_ORDER or INVALID_QUANTITY. Restated to its filled quantity or below, the order is done."""
        return self.on_restated_units_c(order_id, qty_lots)

    def on_acked(self, int64_t order_id):
        """Record the venue's ack of an order; return OK or UNKNOWN_ORDER."""
        return self.on_acked_c(order_id)

    def on_filled(self, int64_t order_id, double qty, double price):
        """Move a fill of `qty` from open to position; return OK, OVERFILL (booked all the same),
        UNKNOWN_ORDER, INVALID_QUANTITY or QUANTITY_NOT_LOT_MULTIPLE (not booked).

        `price` becomes the last fill price at its nearest whole tick; a price that is not a
        positive number below MAX_UNITS ticks, or below half a tick, leaves the last fill price as
        it is (the quantity is booked all the same).
        """
        return self.on_filled_c(order_id, qty, price)

    def on_filled_units(self, int64_t order_id, int64_t qty_lots, int64_t price_ticks):
        """Move a fill of `qty_lots` whole lots from open to position; return the code as `on_filled`.

        `qty_lots` < 0 (or above MAX_UNITS) is INVALID_QUANTITY, 0 is QUANTITY_NOT_LOT_MULTIPLE
        (neither is booked); `price_ticks` in 1..MAX_UNITS becomes the last fill price
        (`price_ticks * tick_size`), any other value leaves it as it is.
        """
        return self.on_filled_units_c(order_id, qty_lots, price_ticks)

    def on_canceled(self, int64_t order_id):
        """Release what an order still reserves: cancelled, expired or done for the day."""
        return self.on_canceled_c(order_id)

    def on_venue_rejected(self, int64_t order_id):
        """Release an order the venue rejected."""
        return self.on_canceled_c(order_id)

    def on_replaced(self, int64_t order_id):
        """Apply the pending replace the venue confirmed."""
        return self.on_replaced_c(order_id)

    def on_replace_rejected(self, int64_t order_id):
        """Drop the pending replace the venue refused; the order keeps its old quantity and price."""
        return self.on_replace_rejected_c(order_id)

    # -- ORDER TABLE --------------------------------------------------------------------------------

    cdef OrderSlot* _find(self, int64_t order_id) noexcept nogil:
        cdef OrderSlot* order
        if order_id <= 0:
            return NULL
        order = &self.orders[order_id & self.order_mask]
        return order if order.order_id == order_id else NULL

    cdef int64_t _allocate(self) noexcept nogil:
        # Ids grow by one; an id whose slot is still held by a long-lived order is skipped. The
        # caller has checked that a slot is free, so this ends within `order_capacity` steps.
        cdef int64_t order_id = self.next_order_id
        while self.orders[order_id & self.order_mask].order_id != 0:
            order_id += 1
        self.next_order_id = order_id + 1
        return order_id

    cdef void _settle(self, OrderSlot* order) noexcept nogil:
        # The one place that moves a reservation: compute what the order should reserve now, apply
        # the difference to its instrument, and free the slot once nothing is left open.
        cdef Exposure* exposure = &self.exposures[order.instrument_id]
        cdef int64_t leaves = order.qty_lots - order.cum_lots
        cdef int64_t new_leaves
        cdef int64_t want_lots = 0
        cdef int64_t want_tick_lots = 0
        if leaves > 0:
            want_lots = leaves
            want_tick_lots = leaves * order.price_ticks
            if order.replace_pending:
                new_leaves = order.new_qty_lots - order.cum_lots
                if new_leaves > want_lots:
                    want_lots = new_leaves
                if new_leaves * order.new_price_ticks > want_tick_lots:
                    want_tick_lots = new_leaves * order.new_price_ticks
        if order.side == e.BUY:
            exposure.open_buy_lots += want_lots - order.reserved_lots
            exposure.open_buy_tick_lots += want_tick_lots - order.reserved_tick_lots
        else:
            exposure.open_sell_lots += want_lots - order.reserved_lots
            exposure.open_sell_tick_lots += want_tick_lots - order.reserved_tick_lots
        if 0 <= order.session_id < self.client_capacity:
            self.client_open_tick_lots[<Py_ssize_t>order.session_id * self.instruments.capacity
                                       + order.instrument_id] += want_tick_lots - order.reserved_tick_lots
        order.reserved_lots = want_lots
        order.reserved_tick_lots = want_tick_lots
        if leaves <= 0:
            self._own_touch(order)
            if 0 <= order.session_id < self.client_capacity and order.ord_type == e.LIMIT:
                self.own_counts[(<Py_ssize_t>order.session_id * self.instruments.capacity
                                 + order.instrument_id) * 2 + (0 if order.side == e.BUY else 1)] -= 1
            if order.prev_link:
                self.orders[order.prev_link - 1].next_link = order.next_link
            else:
                exposure.first_link = order.next_link
            if order.next_link:
                self.orders[order.next_link - 1].prev_link = order.prev_link
            order.prev_link = 0
            order.next_link = 0
            order.order_id = 0
            exposure.open_orders -= 1
            self.live_orders -= 1

    def order(self, int64_t order_id):
        """Return a live order as a dict, or None when the id is not live."""
        cdef OrderSlot* order = self._find(order_id)
        if order == NULL:
            return None
        return {
            "order_id": order.order_id,
            "instrument_id": order.instrument_id,
            "session_id": order.session_id,
            "side": order.side,
            "ord_type": order.ord_type,
            "acked": bool(order.acked),
            "replace_pending": bool(order.replace_pending),
            "qty_lots": order.qty_lots,
            "cum_lots": order.cum_lots,
            "price_ticks": order.price_ticks,
            "new_qty_lots": order.new_qty_lots,
            "new_price_ticks": order.new_price_ticks,
            "reserved_lots": order.reserved_lots,
            "reserved_tick_lots": order.reserved_tick_lots,
        }

    # -- RECOVERY -----------------------------------------------------------------------------------

    def restore_order(self, int64_t order_id, int32_t instrument_id, int32_t session_id, int side, int ord_type,
                      int64_t qty_lots, int64_t cum_lots, int64_t price_ticks, *, bint acked=False,
                      bint replace_pending=False, int64_t new_qty_lots=0, int64_t new_price_ticks=0):
        """Put back a live order from the journal, with its reservation; later ids start after it.

        Raises
        ------
        ValueError
            When the order cannot be live (unknown instrument, side, or quantities) or its slot is taken.
        """
        cdef OrderSlot* order
        if order_id <= 0:
            raise ValueError(f"order id must be positive, got {order_id}")
        if not self.instruments.contains(instrument_id):
            raise ValueError(f"order {order_id}: unknown instrument id {instrument_id}")
        if side != e.BUY and side != e.SELL:
            raise ValueError(f"order {order_id}: side must be 1 (buy) or 2 (sell), got {side}")
        if ord_type != e.MARKET and ord_type != e.LIMIT:
            raise ValueError(f"order {order_id}: order type must be 1 or 2, got {ord_type}")
        if not (0 <= cum_lots < qty_lots) or price_ticks <= 0:
            raise ValueError(f"order {order_id}: not live (qty {qty_lots}, filled {cum_lots}, ticks {price_ticks})")
        order = &self.orders[order_id & self.order_mask]
        if order.order_id != 0:
            raise ValueError(f"order {order_id}: its slot holds order {order.order_id}")
        order[0] = OrderSlot(order_id, instrument_id, session_id, <uint8_t>side, <uint8_t>ord_type, acked,
                             replace_pending, qty_lots, cum_lots, price_ticks, new_qty_lots, new_price_ticks, 0, 0,
                             0, 0)
        self._link(order)
        self._own_add(order, True)
        self.exposures[instrument_id].open_orders += 1
        self.live_orders += 1
        self._settle(order)
        if order_id >= self.next_order_id:
            self.next_order_id = order_id + 1

    def restore_position(self, int32_t instrument_id, int64_t position_lots, double last_fill_price=0.0):
        """Set the position of `instrument_id` from the journal."""
        self.instruments._require(instrument_id)
        self.exposures[instrument_id].position_lots = position_lots
        self.exposures[instrument_id].last_fill_price = last_fill_price

    def restore_daily(self, int64_t daily_orders, double daily_notional):
        """Set today's order count and notional from the journal."""
        self.daily_orders = daily_orders
        self.daily_notional = daily_notional

    def restore_next_order_id(self, int64_t next_order_id):
        """Never hand out an id below `next_order_id` (ids are not reused across restarts)."""
        if next_order_id > self.next_order_id:
            self.next_order_id = next_order_id

    def live_order_ids(self):
        """Return the ids of every live order, ascending."""
        cdef int64_t index
        return sorted(self.orders[index].order_id for index in range(self.order_capacity)
                      if self.orders[index].order_id != 0)

    def order_ids_of_instrument(self, int32_t instrument_id):
        """Return the ids of the live orders of `instrument_id`, ascending (walking its order list)."""
        self.instruments._require(instrument_id)
        cdef int64_t link = self.exposures[instrument_id].first_link
        ids = []
        while link:
            ids.append(self.orders[link - 1].order_id)
            link = self.orders[link - 1].next_link
        return sorted(ids)

    def order_ids_of_session(self, int32_t session_id):
        """Return the ids of the live orders of `session_id`, ascending."""
        cdef int64_t index
        return sorted(self.orders[index].order_id for index in range(self.order_capacity)
                      if self.orders[index].order_id != 0 and self.orders[index].session_id == session_id)

    # -- EXPOSURE -----------------------------------------------------------------------------------

    cdef double gross_exposure_c(self) noexcept nogil:
        # Sum of |position| x reference price plus open notional, over every instrument, in id order.
        cdef double gross = 0.0
        cdef double ref
        cdef int32_t index
        cdef Exposure* exposure
        cdef InstrumentSpec* spec
        for index in range(self.instruments.count):
            exposure = &self.exposures[index]
            spec = &self.instruments.specs[index]
            if exposure.position_lots != 0:
                ref = self.quotes.reference_price_c(index)
                if not (ref > 0.0):
                    ref = exposure.last_fill_price
                gross += fabs(<double>exposure.position_lots * spec.lot_size * ref)
            if exposure.open_buy_tick_lots != 0 or exposure.open_sell_tick_lots != 0:
                gross += <double>(exposure.open_buy_tick_lots + exposure.open_sell_tick_lots) * spec.notional_unit
        return gross

    cdef bint _restricted_exactly(self, int32_t session_id, int32_t instrument_id):
        return self.restricted[(<Py_ssize_t>session_id + 1) * self.instruments.capacity + instrument_id] != 0

    def gross_exposure(self):
        """Return Σ |position × reference| + open order notional, in account currency."""
        return self.gross_exposure_c()

    def exposure(self, int32_t instrument_id):
        """Return the live exposure of `instrument_id` as a dict (quantities in lots)."""
        self.instruments._require(instrument_id)
        cdef Exposure* exposure = &self.exposures[instrument_id]
        return {
            "position_lots": exposure.position_lots,
            "open_buy_lots": exposure.open_buy_lots,
            "open_sell_lots": exposure.open_sell_lots,
            "open_buy_tick_lots": exposure.open_buy_tick_lots,
            "open_sell_tick_lots": exposure.open_sell_tick_lots,
            "open_orders": exposure.open_orders,
            "last_fill_price": exposure.last_fill_price,
        }

    def snapshot(self):
        """Return the whole book state as plain values (for tests, status pages and recovery checks)."""
        return {
            "risk_state": self.risk_state,
            "equity": self.equity,
            "daily_orders": self.daily_orders,
            "daily_notional": self.daily_notional,
            "next_day_ns": self.next_day_ns,
            "firm_budgets": {FIRM_BUDGETS[kind]: self.firm_budgets[kind] if isfinite(self.firm_budgets[kind])
                             else None for kind in range(3)},
            "live_orders": self.live_orders,
            "next_order_id": self.next_order_id,
            "exposures": [self.exposure(index) for index in range(self.instruments.count)],
            "clients": [self.client(index) for index in range(self.client_capacity)],
            "restricted": sorted((session, index) for session in range(-1, self.client_capacity)
                                 for index in range(self.instruments.count) if self._restricted_exactly(session, index)),
            "orders": [self.order(order_id) for order_id in self.live_order_ids()],
        }

    # -- COUNTERS -----------------------------------------------------------------------------------

    def counters(self):
        """Return the check count and the non-zero decision and order-event counts by code."""
        return {
            "checks": self.checks,
            "decisions": {code: self.decisions[code] for code in range(<int>e.CODE_COUNT)
                          if self.decisions[code]},
            "events": {code: self.event_codes[code] for code in range(<int>e.CODE_COUNT)
                       if self.event_codes[code]},
        }
