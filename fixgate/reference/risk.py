"""Reference twin of ``fixgate._fast.risk``: the same decisions, in the same order, in plain Python."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fixgate.reference.codes import OrdType, RejectCode as R, RiskState, Side
from fixgate.reference.instruments import MAX_UNITS, NO_COUNT_LIMIT, InstrumentSpec, Instruments, units_of
from fixgate.reference.quotes import QuoteBook
from fixgate.reference.throttle import Throttle

DEFAULT_ORDER_CAPACITY = 65536
FIRM_BUDGETS = ("gross_exposure", "daily_notional", "daily_orders", "client_credit")
NANOSECONDS_PER_DAY = 86_400_000_000_000
RECENT_SETS = 2048
RECENT_WAYS = 4
MASK_64 = (1 << 64) - 1

BUY = Side.BUY
SELL = Side.SELL
LIMIT = OrdType.LIMIT
MARKET = OrdType.MARKET


@dataclass
class OrderSlot:
    order_id: int
    instrument_id: int
    session_id: int
    side: int
    ord_type: int
    acked: bool
    replace_pending: bool
    qty_lots: int
    cum_lots: int
    price_ticks: int
    new_qty_lots: int
    new_price_ticks: int
    reserved_lots: int
    reserved_tick_lots: int


@dataclass
class Exposure:
    position_lots: int = 0
    open_buy_lots: int = 0
    open_sell_lots: int = 0
    open_buy_tick_lots: int = 0
    open_sell_tick_lots: int = 0
    open_orders: int = 0
    last_fill_price: float = 0.0


@dataclass
class ClientState:
    killed: bool = False
    self_match_prevention: bool = False
    duplicate_window_ns: int = 0
    window_ns: int = 1_000_000_000
    max_daily_notional: float = math.inf
    max_open_notional: float = math.inf
    max_window_notional: float = math.inf
    daily_notional: float = 0.0
    window_level: float = 0.0
    window_last_ns: int = 0
    firm_credit: float = math.inf



@dataclass
class RecentOrder:
    key: int = 0
    at_ns: int = 0


def _mix(x: int) -> int:
    """splitmix64's finaliser on 64-bit unsigned integers."""
    x ^= x >> 30
    x = (x * 0xbf58476d1ce4e5b9) & MASK_64
    x ^= x >> 27
    x = (x * 0x94d049bb133111eb) & MASK_64
    x ^= x >> 31
    return x


def _limit(name: str, value) -> float:
    if value is None:
        return math.inf
    number = float(value)
    if not (math.isfinite(number) and number >= 0.0):
        raise ValueError(f"{name} must be zero or a positive number, got {value!r}")
    return number


def _factor(name: str, value) -> float:
    number = float(value)
    if not (math.isfinite(number) and 0.0 < number <= 1.0):
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return number


def _reduces(exposure: Exposure, side: int, delta_lots: int) -> bool:
    if side == BUY:
        return (exposure.position_lots < 0
                and exposure.position_lots + exposure.open_buy_lots + delta_lots <= 0)
    return (exposure.position_lots > 0
            and exposure.position_lots - exposure.open_sell_lots - delta_lots >= 0)


def _market_ticks(ref: float, tick_size: float) -> int:
    """Return the reference price in whole ticks (at least one), or 0 when it is not a positive
    number below MAX_UNITS ticks."""
    units = ref / tick_size
    if not (ref > 0.0 and units < MAX_UNITS):
        return 0
    return max(math.floor(units + 0.5), 1)


def _in_range(units: int) -> int:
    """Return whole lots or ticks as the check chain reads them: -1 when negative or above
    MAX_UNITS, else `units` (0 still means off the grid)."""
    return -1 if units < 0 or units > MAX_UNITS else units


def _fill_ticks(price: float, tick_size: float) -> int:
    """Return a fill price in whole ticks: on the grid as `units_of` reads it, off the grid the
    nearest whole tick, -1 when it is not a positive number below MAX_UNITS ticks."""
    ticks = units_of(price, tick_size)
    if ticks == 0:
        ticks = math.floor(price / tick_size + 0.5)
    return ticks


class RiskBook:
    """Live exposure per instrument, the open-order table and the pre-trade check chain."""

    def __init__(
        self,
        instruments: Instruments,
        quotes: QuoteBook,
        throttle: Throttle,
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
        order_capacity: int = DEFAULT_ORDER_CAPACITY,
        equity=0.0,
        day_start_ns=None,
        day_length_ns: int = NANOSECONDS_PER_DAY,
    ) -> None:
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
        self.instruments = instruments
        self.quotes = quotes
        self.throttle = throttle
        self.max_order_notional = _limit("max_order_notional", max_order_notional)
        self.max_gross_exposure = _limit("max_gross_exposure", max_gross_exposure)
        self.max_leverage = _limit("max_leverage", max_leverage)
        self.max_daily_orders = NO_COUNT_LIMIT if max_daily_orders is None else int(max_daily_orders)
        self.max_daily_notional = _limit("max_daily_notional", max_daily_notional)
        self.warning_order_qty_factor = _factor("warning_order_qty_factor", warning_order_qty_factor)
        self.warning_collar_factor = _factor("warning_collar_factor", warning_collar_factor)
        self.max_concentration = _limit("max_concentration", max_concentration)
        self.max_sector_concentration = _limit("max_sector_concentration", max_sector_concentration)
        self.warning_concentration_factor = _factor("warning_concentration_factor", warning_concentration_factor)
        self.order_capacity = order_capacity
        self.order_mask = order_capacity - 1
        self.exposures = [Exposure() for _ in range(instruments.capacity)]
        self.live_by_instrument: list[dict[int, OrderSlot]] = [{} for _ in range(instruments.capacity)]
        self.client_capacity = throttle.max_sessions
        self.clients = [ClientState() for _ in range(self.client_capacity)]
        self.client_open_tick_lots = [[0] * instruments.capacity for _ in range(self.client_capacity)]
        self.restricted = [[False] * instruments.capacity for _ in range(self.client_capacity + 1)]
        self.recent = [RecentOrder() for _ in range(RECENT_SETS * RECENT_WAYS)]
        self.orders: list[OrderSlot | None] = [None] * order_capacity
        self.next_order_id = 1
        self.last_order_id = 0
        self.live_orders = 0
        self.risk_state = RiskState.NORMAL
        self.reduce_only = 0
        self.firm_budgets = [math.inf, math.inf, math.inf]
        self.daily_orders = 0
        self.daily_notional = 0.0
        self.day_length_ns = day_length_ns
        self.next_day_ns = NO_COUNT_LIMIT if day_start_ns is None else int(day_start_ns)
        self.checks = 0
        self.decisions = [0] * 64
        self.event_codes = [0] * 64
        self.set_equity(equity)

    def set_risk_state(self, state: int) -> None:
        """Set the risk state byte (0 NORMAL, 1 WARNING, 2 CIRCUIT_BREAKER, 3 KILL_SWITCH)."""
        if not (RiskState.NORMAL <= state <= RiskState.KILL_SWITCH):
            raise ValueError(f"risk state must be 0 to 3, got {state}")
        self.risk_state = int(state)

    def set_reduce_only(self, on: bool) -> None:
        """Accept only position-reducing orders (True), whatever the risk state, or every order again."""
        self.reduce_only = 1 if on else 0

    def _firm_budget(self, kind: str, op: str, value, session_id: int) -> tuple[float | None, float]:
        if kind not in FIRM_BUDGETS:
            raise ValueError(f"unknown firm budget {kind!r}: one of {', '.join(FIRM_BUDGETS)}")
        index = FIRM_BUDGETS.index(kind)
        number = math.inf if value is None else float(value)
        if kind == "client_credit":
            client = self._client(session_id)
            if client is None:
                raise KeyError(f"unknown session id {session_id}")
            usage = self.client_open_notional(session_id)
            budget = client.firm_credit
        else:
            usage = (self.gross_exposure() if index == 0 else self.daily_notional if index == 1
                     else float(self.daily_orders))
            budget = self.firm_budgets[index]
        if op != "read":
            if not number >= 0.0:
                raise ValueError(f"a firm budget must be zero or a positive number, got {value!r}")
            if op == "set":
                budget = number
            elif usage + number < budget:
                budget = usage + number
            if kind == "client_credit":
                self.clients[session_id].firm_credit = budget
            else:
                self.firm_budgets[index] = budget
        return (budget if math.isfinite(budget) else None), usage

    def firm_budget(self, kind: str, *, session_id: int = -1) -> tuple[float | None, float]:
        """Return (budget, usage) of one of FIRM_BUDGETS (budget None: none); client_credit is one session's."""
        return self._firm_budget(kind, "read", 0.0, session_id)

    def set_firm_budget(self, kind: str, budget, *, session_id: int = -1) -> tuple[float | None, float]:
        """Set this gateway's budget of a firm-wide limit (None: none); return (budget, usage)."""
        return self._firm_budget(kind, "set", budget, session_id)

    def trim_firm_budget(self, kind: str, keep: float, *, session_id: int = -1) -> tuple[float | None, float]:
        """Lower a budget to its usage plus `keep` where that is less; return (budget, usage)."""
        return self._firm_budget(kind, "trim", keep, session_id)

    def set_equity(self, equity: float) -> None:
        """Set the account equity that the leverage limit divides by."""
        equity = float(equity)
        if not math.isfinite(equity):
            raise ValueError(f"equity must be a finite number, got {equity!r}")
        self.equity = equity

    # -- PRE-TRADE CHECKS ---------------------------------------------------------------------------

    def check_new_order_units(self, session_id: int, instrument_id: int, side: int, ord_type: int,
                              qty_lots: int, price_ticks: int, now_ns: int) -> tuple[int, int]:
        """Run the check chain on a new order given in whole lots and ticks; return (code, order id).

        -1 (any negative, or above MAX_UNITS) is not a valid number, 0 is off the grid; the id is 0
        unless the code is OK. `price_ticks` is ignored for market orders.
        """
        self._roll_day(now_ns)
        code, order_id = self._decide_new(session_id, instrument_id, side, ord_type, qty_lots, price_ticks,
                                          now_ns)
        self.checks += 1
        self.decisions[code] += 1
        return code, order_id

    def check_replace_units(self, order_id: int, new_qty_lots: int, new_price_ticks: int, now_ns: int) -> int:
        """Check a cancel/replace given in whole lots and ticks; return the `RejectCode`."""
        self._roll_day(now_ns)
        code = self._decide_replace(order_id, new_qty_lots, new_price_ticks, now_ns)
        self.checks += 1
        self.decisions[code] += 1
        return code

    def check_new_order(self, session_id: int, instrument_id: int, side: int, ord_type: int,
                        qty: float, price: float, now_ns: int) -> int:
        """Run the check chain on a new order and reserve it when accepted; return the `RejectCode`."""
        qty_lots, price_ticks = self._new_order_units(instrument_id, ord_type, qty, price)
        code, _ = self.check_new_order_units(session_id, instrument_id, side, ord_type, qty_lots, price_ticks,
                                             now_ns)
        return code

    def check_replace(self, order_id: int, new_qty: float, new_price: float, now_ns: int) -> int:
        """Check a cancel/replace of a live order; on OK the replace is pending until the venue answers."""
        order = self._find(order_id)
        qty_lots, price_ticks = -1, 0
        if order is not None:
            spec = self.instruments.specs[order.instrument_id]
            qty_lots = units_of(new_qty, spec.lot_size)
            if order.ord_type == LIMIT:
                price_ticks = units_of(new_price, spec.tick_size)
        return self.check_replace_units(order_id, qty_lots, price_ticks, now_ns)

    def check_batch(self, orders, codes, order_ids, now_ns: int) -> int:
        """Check `orders` (rows with ORDER_DTYPE fields) in order; return how many passed."""
        count = len(orders)
        if len(codes) < count or len(order_ids) < count:
            raise ValueError(f"codes and order_ids must hold at least {count} entries")
        accepted = 0
        for index in range(count):
            request = orders[index]
            instrument_id, ord_type = int(request["instrument_id"]), int(request["ord_type"])
            qty_lots, price_ticks = self._new_order_units(instrument_id, ord_type, float(request["qty"]),
                                                          float(request["price"]))
            code, order_id = self.check_new_order_units(int(request["session_id"]), instrument_id,
                                                        int(request["side"]), ord_type, qty_lots, price_ticks,
                                                        now_ns)
            codes[index] = code
            order_ids[index] = order_id
            if code == R.OK:
                accepted += 1
        return accepted

    def _new_order_units(self, instrument_id: int, ord_type: int, qty: float, price: float) -> tuple[int, int]:
        if not self.instruments.known(instrument_id):
            return -1, 0
        spec = self.instruments.specs[instrument_id]
        price_ticks = units_of(price, spec.tick_size) if ord_type == LIMIT else 0
        return units_of(qty, spec.lot_size), price_ticks

    def _decide_new(self, session_id, instrument_id, side, ord_type, qty_lots, price_ticks,
                    now_ns) -> tuple[int, int]:
        client = self._client(session_id)
        if self.risk_state == RiskState.KILL_SWITCH:
            return R.KILL_SWITCH, 0
        if client is not None and client.killed:
            return R.CLIENT_KILLED, 0
        if not self.instruments.known(instrument_id):
            return R.UNKNOWN_INSTRUMENT, 0
        spec = self.instruments.specs[instrument_id]
        if spec.halted:
            return R.INSTRUMENT_HALTED, 0
        if self._restricted(session_id, instrument_id):
            return R.RESTRICTED_INSTRUMENT, 0
        code = self.throttle.try_acquire(session_id, instrument_id, now_ns)
        if code != R.OK:
            return code, 0
        if side == BUY:
            book_side = BUY
        elif side == SELL or side == Side.SELL_SHORT:
            book_side = SELL
        else:
            return R.INVALID_SIDE, 0
        if ord_type != MARKET and ord_type != LIMIT:
            return R.INVALID_ORDER_TYPE, 0
        lots = _in_range(qty_lots)
        if lots < 0:
            return R.INVALID_QUANTITY, 0
        if lots == 0:
            return R.QUANTITY_NOT_LOT_MULTIPLE, 0
        exposure = self.exposures[instrument_id]
        if (self.risk_state == RiskState.CIRCUIT_BREAKER or self.reduce_only) and not _reduces(exposure, book_side, lots):
            return (R.CIRCUIT_BREAKER if self.risk_state == RiskState.CIRCUIT_BREAKER else R.REDUCE_ONLY), 0
        ref = self.quotes.reference_price(instrument_id)
        if ord_type == LIMIT:
            ticks = _in_range(price_ticks)
            if ticks < 0:
                return R.INVALID_PRICE, 0
            if ticks == 0:
                return R.PRICE_OFF_TICK, 0
        else:
            ticks = _market_ticks(ref, spec.tick_size)
            if ticks == 0:
                return R.NO_REFERENCE_PRICE, 0
        key = 0
        if client is not None and client.duplicate_window_ns > 0:
            key = self._order_key(session_id, instrument_id, side, ord_type, lots, ticks if ord_type == LIMIT else 0)
            if self._is_duplicate(client, key, now_ns):
                return R.DUPLICATE_ORDER, 0
        if (client is not None and client.self_match_prevention
                and self._self_match(session_id, instrument_id, book_side, ord_type, ticks, 0)):
            return R.SELF_MATCH, 0
        price = float(ticks) * spec.tick_size
        notional = float(lots * ticks) * spec.notional_unit
        code = self._check_limits(instrument_id, spec, exposure, book_side, ord_type, lots, price, ref,
                                  notional, lots, lots * ticks, True, notional, now_ns)
        if code != R.OK:
            return code, 0
        if client is not None:
            code = self._check_client(client, session_id, spec, lots * ticks, notional, now_ns)
            if code != R.OK:
                return code, 0
        if self.live_orders >= self.order_capacity:
            return R.ORDER_TABLE_FULL, 0
        order_id = self._allocate()
        order = OrderSlot(order_id, instrument_id, session_id, book_side, ord_type,
                          False, False, lots, 0, ticks, 0, 0, 0, 0)
        self.orders[order_id & self.order_mask] = order
        self.live_by_instrument[instrument_id][order_id] = order
        exposure.open_orders += 1
        self.live_orders += 1
        self.daily_orders += 1
        self.daily_notional += notional
        self._settle(order)
        if client is not None:
            self._commit_client(client, notional, now_ns)
            if client.duplicate_window_ns > 0:
                self._remember(key, now_ns)
        self.last_order_id = order_id
        return R.OK, order_id

    def _decide_replace(self, order_id, new_qty_lots, new_price_ticks, now_ns) -> int:
        if self.risk_state == RiskState.KILL_SWITCH:
            return R.KILL_SWITCH
        order = self._find(order_id)
        if order is None:
            return R.UNKNOWN_ORDER
        client = self._client(order.session_id)
        if client is not None and client.killed:
            return R.CLIENT_KILLED
        if order.replace_pending:
            return R.REPLACE_PENDING
        spec = self.instruments.specs[order.instrument_id]
        if spec.halted:
            return R.INSTRUMENT_HALTED
        if self._restricted(order.session_id, order.instrument_id):
            return R.RESTRICTED_INSTRUMENT
        code = self.throttle.try_acquire(order.session_id, order.instrument_id, now_ns)
        if code != R.OK:
            return code
        lots = _in_range(new_qty_lots)
        if lots < 0:
            return R.INVALID_QUANTITY
        if lots == 0:
            return R.QUANTITY_NOT_LOT_MULTIPLE
        if lots <= order.cum_lots:
            return R.REPLACE_BELOW_FILLED
        ref = self.quotes.reference_price(order.instrument_id)
        if order.ord_type == LIMIT:
            ticks = _in_range(new_price_ticks)
            if ticks < 0:
                return R.INVALID_PRICE
            if ticks == 0:
                return R.PRICE_OFF_TICK
            price = float(ticks) * spec.tick_size
        else:
            ticks = order.price_ticks
            price = ref
        if (client is not None and client.self_match_prevention and order.ord_type == LIMIT
                and self._self_match(order.session_id, order.instrument_id, order.side, LIMIT, ticks, order_id)):
            return R.SELF_MATCH
        leaves = order.qty_lots - order.cum_lots
        new_leaves = lots - order.cum_lots
        want_lots = max(leaves, new_leaves)
        want_tick_lots = max(leaves * order.price_ticks, new_leaves * ticks)
        exposure = self.exposures[order.instrument_id]
        if ((self.risk_state == RiskState.CIRCUIT_BREAKER or self.reduce_only) and want_lots > order.reserved_lots
                and not _reduces(exposure, order.side, want_lots - order.reserved_lots)):
            return R.CIRCUIT_BREAKER if self.risk_state == RiskState.CIRCUIT_BREAKER else R.REDUCE_ONLY
        notional = float(lots * ticks) * spec.notional_unit
        daily_add = notional - float(order.qty_lots * order.price_ticks) * spec.notional_unit
        code = self._check_limits(order.instrument_id, spec, exposure, order.side, order.ord_type, lots,
                                  price, ref, notional, want_lots - order.reserved_lots,
                                  want_tick_lots - order.reserved_tick_lots, False, daily_add, now_ns)
        if code != R.OK:
            return code
        if client is not None:
            code = self._check_client(client, order.session_id, spec, want_tick_lots - order.reserved_tick_lots,
                                      daily_add, now_ns)
            if code != R.OK:
                return code
        order.replace_pending = True
        order.new_qty_lots = lots
        order.new_price_ticks = ticks
        if daily_add > 0.0:
            self.daily_notional += daily_add
        self._settle(order)
        if client is not None:
            self._commit_client(client, daily_add, now_ns)
        return R.OK

    def _check_limits(self, instrument_id: int, spec: InstrumentSpec, exposure: Exposure, side: int,
                      ord_type: int, lots: int, price: float, ref: float, notional: float,
                      delta_lots: int, delta_tick_lots: int, new_order: bool,
                      daily_notional_add: float, now_ns: int) -> int:
        warning = self.risk_state == RiskState.WARNING
        if lots > spec.max_order_lots:
            return R.MAX_ORDER_QUANTITY
        if warning and lots > int(spec.max_order_lots * self.warning_order_qty_factor):
            return R.WARNING_MAX_ORDER_QUANTITY
        if notional > spec.max_order_notional:
            return R.MAX_ORDER_NOTIONAL
        if notional > self.max_order_notional:
            return R.MAX_ACCOUNT_ORDER_NOTIONAL
        if float(lots) * spec.lot_size > spec.adv_limit_qty:
            return R.ADV_PARTICIPATION
        if ord_type == LIMIT and math.isfinite(spec.price_collar):
            if not (ref > 0.0):
                return R.NO_REFERENCE_PRICE
            deviation = abs(price - ref) / ref
            if deviation > spec.price_collar:
                return R.PRICE_COLLAR
            if warning and deviation > spec.price_collar * self.warning_collar_factor:
                return R.WARNING_PRICE_COLLAR
        if delta_lots > 0:
            if side == BUY:
                if exposure.position_lots + exposure.open_buy_lots + delta_lots > spec.max_position_lots:
                    return R.POSITION_LIMIT
            elif exposure.position_lots - exposure.open_sell_lots - delta_lots < -spec.max_position_lots:
                return R.POSITION_LIMIT
        if delta_tick_lots > 0 and (math.isfinite(self.max_gross_exposure) or math.isfinite(self.max_leverage)
                                    or math.isfinite(self.firm_budgets[0])):
            gross = self.gross_exposure() + float(delta_tick_lots) * spec.notional_unit
            if gross > self.max_gross_exposure:
                return R.GROSS_EXPOSURE
            if math.isfinite(self.max_leverage) and (not (self.equity > 0.0)
                                                     or gross / self.equity > self.max_leverage):
                return R.LEVERAGE
            if gross > self.firm_budgets[0]:
                return R.FIRM_GROSS_EXPOSURE
        if delta_lots > 0 and (math.isfinite(self.max_concentration) or math.isfinite(self.max_sector_concentration)):
            code = self._check_concentration(instrument_id, spec, exposure, side, delta_lots, price, warning)
            if code != R.OK:
                return code
        if new_order and self.daily_orders + 1 > self.max_daily_orders:
            return R.DAILY_ORDER_COUNT
        if new_order and float(self.daily_orders + 1) > self.firm_budgets[2]:
            return R.FIRM_DAILY_ORDERS
        if daily_notional_add > 0.0 and self.daily_notional + daily_notional_add > self.max_daily_notional:
            return R.DAILY_NOTIONAL
        if daily_notional_add > 0.0 and self.daily_notional + daily_notional_add > self.firm_budgets[1]:
            return R.FIRM_DAILY_NOTIONAL
        if new_order and exposure.open_orders + 1 > spec.max_open_orders:
            return R.MAX_OPEN_ORDERS
        if spec.requires_live_quote and self.quotes.is_stale(instrument_id, now_ns):
            return R.STALE_MARKET_DATA
        return R.OK

    def _valuation_price(self, instrument_id: int) -> float:
        ref = self.quotes.reference_price(instrument_id)
        if not (ref > 0.0):
            ref = self.exposures[instrument_id].last_fill_price
        return ref if ref > 0.0 else 0.0

    def _check_concentration(self, instrument_id: int, spec: InstrumentSpec, exposure: Exposure, side: int,
                             delta_lots: int, price: float, warning: bool) -> int:
        if side == BUY:
            after = exposure.position_lots + exposure.open_buy_lots + delta_lots
            if after <= 0:
                return R.OK
            other_side = exposure.position_lots - exposure.open_sell_lots
        else:
            after = exposure.position_lots - exposure.open_sell_lots - delta_lots
            if after >= 0:
                return R.OK
            other_side = exposure.position_lots + exposure.open_buy_lots
        ref = self._valuation_price(instrument_id)
        if ref == 0.0:
            ref = price
        factor = self.warning_concentration_factor if warning else 1.0
        value = float(abs(after)) * spec.lot_size * ref
        if math.isfinite(self.max_concentration) and (not (self.equity > 0.0)
                                                      or value > self.max_concentration * factor * self.equity):
            return R.CONCENTRATION
        if not math.isfinite(self.max_sector_concentration) or spec.sector < 0:
            return R.OK
        if float(abs(other_side)) * spec.lot_size * ref > value:
            value = float(abs(other_side)) * spec.lot_size * ref
        total = value
        for index in range(self.instruments.count):
            if index == instrument_id or self.instruments.specs[index].sector != spec.sector:
                continue
            other = self.exposures[index]
            worst = max(abs(other.position_lots + other.open_buy_lots), other.open_sell_lots - other.position_lots)
            if worst > 0:
                total += float(worst) * self.instruments.specs[index].lot_size * self._valuation_price(index)
        if not (self.equity > 0.0) or total > self.max_sector_concentration * factor * self.equity:
            return R.SECTOR_CONCENTRATION
        return R.OK

    def _roll_day(self, now_ns: int) -> None:
        if now_ns >= self.next_day_ns:
            self.next_day_ns += ((now_ns - self.next_day_ns) // self.day_length_ns + 1) * self.day_length_ns
            self.daily_orders = 0
            self.daily_notional = 0.0
            for client in self.clients:
                client.daily_notional = 0.0

    # -- PER-CLIENT CONTROLS ------------------------------------------------------------------------

    def _client(self, session_id: int) -> ClientState | None:
        return self.clients[session_id] if 0 <= session_id < self.client_capacity else None

    def _restricted(self, session_id: int, instrument_id: int) -> bool:
        if self.restricted[0][instrument_id]:
            return True
        return 0 <= session_id < self.client_capacity and self.restricted[session_id + 1][instrument_id]

    def _check_client(self, client: ClientState, session_id: int, spec: InstrumentSpec, delta_tick_lots: int,
                      daily_notional_add: float, now_ns: int) -> int:
        if daily_notional_add > 0.0 and client.daily_notional + daily_notional_add > client.max_daily_notional:
            return R.CLIENT_DAILY_NOTIONAL
        if (delta_tick_lots > 0 and math.isfinite(client.max_open_notional)
                and self.client_open_notional(session_id) + float(delta_tick_lots) * spec.notional_unit
                > client.max_open_notional):
            return R.CLIENT_OPEN_NOTIONAL
        if (delta_tick_lots > 0 and math.isfinite(client.firm_credit)
                and self.client_open_notional(session_id) + float(delta_tick_lots) * spec.notional_unit
                > client.firm_credit):
            return R.FIRM_CLIENT_CREDIT
        if (daily_notional_add > 0.0 and math.isfinite(client.max_window_notional)
                and self._window_level(client, now_ns) + daily_notional_add > client.max_window_notional):
            return R.CLIENT_WINDOW_NOTIONAL
        return R.OK

    def _window_level(self, client: ClientState, now_ns: int) -> float:
        level = client.window_level
        if now_ns > client.window_last_ns and level > 0.0:
            level -= float(now_ns - client.window_last_ns) * (client.max_window_notional / float(client.window_ns))
            if level < 0.0:
                level = 0.0
        return level

    def _commit_client(self, client: ClientState, daily_notional_add: float, now_ns: int) -> None:
        if not daily_notional_add > 0.0:
            return
        client.daily_notional += daily_notional_add
        if math.isfinite(client.max_window_notional):
            client.window_level = self._window_level(client, now_ns) + daily_notional_add
            if now_ns > client.window_last_ns:
                client.window_last_ns = now_ns

    @staticmethod
    def _order_key(session_id, instrument_id, side, ord_type, lots, ticks) -> int:
        key = _mix(((lots * 0x9e3779b97f4a7c15) & MASK_64) ^ (ticks & MASK_64))
        key = _mix(key ^ ((session_id << 40) & MASK_64) ^ ((instrument_id << 16) & MASK_64)
                   ^ ((side & 0xff) << 8) ^ (ord_type & 0xff))
        return key or 1

    def _is_duplicate(self, client, key: int, now_ns: int) -> bool:
        first = (key & (RECENT_SETS - 1)) * RECENT_WAYS
        for way in self.recent[first:first + RECENT_WAYS]:
            if way.at_ns != 0 and way.key == key:
                return now_ns - way.at_ns < client.duplicate_window_ns
        return False

    def _remember(self, key: int, now_ns: int) -> None:
        first = (key & (RECENT_SETS - 1)) * RECENT_WAYS
        ways = self.recent[first:first + RECENT_WAYS]
        chosen = 0
        for index, way in enumerate(ways):
            if way.at_ns != 0 and way.key == key:
                chosen = index
                break
            if way.at_ns == 0:
                if ways[chosen].at_ns != 0:
                    chosen = index
            elif ways[chosen].at_ns != 0 and way.at_ns < ways[chosen].at_ns:
                chosen = index
        self.recent[first + chosen] = RecentOrder(key, now_ns if now_ns != 0 else 1)

    def _self_match(self, session_id: int, instrument_id: int, side: int, ord_type: int, ticks: int,
                    exclude_id: int) -> bool:
        """Whether the order would meet one of the same client's resting limit orders on the other side."""
        for other in self.live_by_instrument[instrument_id].values():
            if (other.session_id != session_id
                    or other.side == side or other.ord_type != LIMIT or other.order_id == exclude_id):
                continue
            if ord_type == MARKET:
                return True
            prices = [other.price_ticks] + ([other.new_price_ticks] if other.replace_pending else [])
            if side == BUY and min(prices) <= ticks:
                return True
            if side == SELL and max(prices) >= ticks:
                return True
        return False

    def client_open_notional(self, session_id: int) -> float:
        total = 0.0
        row = self.client_open_tick_lots[session_id]
        for index in range(self.instruments.count):
            if row[index] != 0:
                total += float(row[index]) * self.instruments.specs[index].notional_unit
        return total

    def configure_client(self, session_id: int, *, max_daily_notional=None, max_open_notional=None,
                         max_window_notional=None, window_ns: int = 1_000_000_000,
                         duplicate_window_ns: int = 0, self_match_prevention: bool = False) -> None:
        """Give client session `session_id` its own credit limits and duplicate window."""
        client = self._client(session_id)
        if client is None:
            raise KeyError(f"unknown session id {session_id}")
        if window_ns <= 0:
            raise ValueError(f"window_ns must be positive, got {window_ns}")
        if duplicate_window_ns < 0:
            raise ValueError(f"duplicate_window_ns must be zero or more, got {duplicate_window_ns}")
        client.max_daily_notional = _limit("max_daily_notional", max_daily_notional)
        client.max_open_notional = _limit("max_open_notional", max_open_notional)
        client.max_window_notional = _limit("max_window_notional", max_window_notional)
        client.window_ns = int(window_ns)
        client.duplicate_window_ns = int(duplicate_window_ns)
        client.self_match_prevention = bool(self_match_prevention)

    def set_client_killed(self, session_id: int, killed: bool) -> None:
        """Refuse (True) or take again (False) the new orders and replaces of one client session."""
        client = self._client(session_id)
        if client is None:
            raise KeyError(f"unknown session id {session_id}")
        client.killed = bool(killed)

    def set_restricted(self, instrument_id: int, restricted: bool, session_id: int = -1) -> None:
        """Put an instrument on (or take it off) the restricted list of everyone (-1) or of one client."""
        self.instruments._require(instrument_id)
        if session_id != -1 and self._client(session_id) is None:
            raise KeyError(f"unknown session id {session_id}")
        self.restricted[session_id + 1][instrument_id] = bool(restricted)

    def is_restricted(self, instrument_id: int, session_id: int = -1) -> bool:
        """Return whether new orders of `session_id` (-1: the list for everyone) in the instrument are refused."""
        self.instruments._require(instrument_id)
        if session_id != -1 and self._client(session_id) is None:
            raise KeyError(f"unknown session id {session_id}")
        return bool(self._restricted(session_id, instrument_id))

    def client(self, session_id: int) -> dict:
        """Return one client session's controls and credit as a dict (limits None when unset)."""
        client = self._client(session_id)
        if client is None:
            raise KeyError(f"unknown session id {session_id}")
        finite = lambda value: value if math.isfinite(value) else None      # noqa: E731
        return {
            "killed": client.killed,
            "duplicate_window_ns": client.duplicate_window_ns,
            "self_match_prevention": client.self_match_prevention,
            "window_ns": client.window_ns,
            "max_daily_notional": finite(client.max_daily_notional),
            "max_open_notional": finite(client.max_open_notional),
            "max_window_notional": finite(client.max_window_notional),
            "daily_notional": client.daily_notional,
            "open_notional": self.client_open_notional(session_id),
            "window_level": client.window_level,
            "window_last_ns": client.window_last_ns,
            "firm_credit": client.firm_credit if math.isfinite(client.firm_credit) else None,
        }

    def restore_client_daily(self, session_id: int, daily_notional: float) -> None:
        """Set one client's notional so far today from the journal."""
        client = self._client(session_id)
        if client is None:
            raise KeyError(f"unknown session id {session_id}")
        client.daily_notional = float(daily_notional)

    # -- ORDER EVENTS -------------------------------------------------------------------------------

    def on_acked(self, order_id: int) -> int:
        """Record the venue's ack of an order; return OK or UNKNOWN_ORDER."""
        order = self._find(order_id)
        if order is None:
            return self._count_event(R.UNKNOWN_ORDER)
        order.acked = True
        return self._count_event(R.OK)

    def on_filled_units(self, order_id: int, qty_lots: int, price_ticks: int) -> int:
        """Move a fill of `qty_lots` whole lots from open to position; `price_ticks` in 1..MAX_UNITS
        becomes the last fill price, any other value leaves it as it is."""
        order = self._find(order_id)
        if order is None:
            return self._count_event(R.UNKNOWN_ORDER)
        lots = _in_range(qty_lots)
        if lots < 0:
            return self._count_event(R.INVALID_QUANTITY)
        if lots == 0:
            return self._count_event(R.QUANTITY_NOT_LOT_MULTIPLE)
        exposure = self.exposures[order.instrument_id]
        leaves = order.qty_lots - order.cum_lots
        if order.side == BUY:
            exposure.position_lots += lots
        else:
            exposure.position_lots -= lots
        if _in_range(price_ticks) > 0:
            exposure.last_fill_price = float(price_ticks) * self.instruments.specs[order.instrument_id].tick_size
        order.cum_lots += lots
        self._settle(order)
        return self._count_event(R.OVERFILL if lots > leaves else R.OK)

    def on_filled(self, order_id: int, qty: float, price: float) -> int:
        """Move a fill of `qty` from open to position; an off-tick price counts at its nearest tick."""
        order = self._find(order_id)
        qty_lots, price_ticks = -1, 0
        if order is not None:
            spec = self.instruments.specs[order.instrument_id]
            qty_lots = units_of(qty, spec.lot_size)
            price_ticks = _fill_ticks(price, spec.tick_size)
        return self.on_filled_units(order_id, qty_lots, price_ticks)

    def on_canceled(self, order_id: int) -> int:
        """Release what an order still reserves: cancelled, expired or done for the day."""
        order = self._find(order_id)
        if order is None:
            return self._count_event(R.UNKNOWN_ORDER)
        order.qty_lots = order.cum_lots
        order.replace_pending = False
        self._settle(order)
        return self._count_event(R.OK)

    def on_venue_rejected(self, order_id: int) -> int:
        """Release an order the venue rejected."""
        return self.on_canceled(order_id)

    def on_replaced(self, order_id: int) -> int:
        """Apply the pending replace the venue confirmed."""
        order = self._find(order_id)
        if order is None:
            return self._count_event(R.UNKNOWN_ORDER)
        if not order.replace_pending:
            return self._count_event(R.NO_PENDING_REPLACE)
        order.qty_lots = order.new_qty_lots
        order.price_ticks = order.new_price_ticks
        order.replace_pending = False
        self._settle(order)
        return self._count_event(R.OK)

    def on_replace_rejected(self, order_id: int) -> int:
        """Drop the pending replace the venue refused."""
        order = self._find(order_id)
        if order is None:
            return self._count_event(R.UNKNOWN_ORDER)
        if not order.replace_pending:
            return self._count_event(R.NO_PENDING_REPLACE)
        order.replace_pending = False
        self._settle(order)
        return self._count_event(R.OK)

    def on_trade_corrected_units(self, order_id: int, instrument_id: int, side: int, delta_lots: int,
                                 price_ticks: int) -> int:
        """Follow a venue's trade bust (`delta_lots` < 0) or correction of a fill of `order_id`."""
        if not self.instruments.known(instrument_id):
            return self._count_event(R.UNKNOWN_INSTRUMENT)
        if side not in (BUY, SELL):
            return self._count_event(R.INVALID_SIDE)
        if delta_lots == 0 or not -MAX_UNITS <= delta_lots <= MAX_UNITS:
            return self._count_event(R.INVALID_QUANTITY)
        exposure = self.exposures[instrument_id]
        exposure.position_lots += delta_lots if side == BUY else -delta_lots
        if delta_lots > 0 and _in_range(price_ticks) > 0:
            exposure.last_fill_price = float(price_ticks) * self.instruments.specs[instrument_id].tick_size
        order = self._find(order_id)
        if order is None or order.instrument_id != instrument_id:
            return self._count_event(R.UNKNOWN_ORDER)
        order.cum_lots = max(order.cum_lots + delta_lots, 0)
        self._settle(order)
        return self._count_event(R.OK)

    def on_restated_units(self, order_id: int, qty_lots: int) -> int:
        """Follow a venue's restatement of an order's quantity (whole lots)."""
        order = self._find(order_id)
        if order is None:
            return self._count_event(R.UNKNOWN_ORDER)
        lots = _in_range(qty_lots)
        if lots <= 0:
            return self._count_event(R.INVALID_QUANTITY)
        order.qty_lots = max(lots, order.cum_lots)
        self._settle(order)
        return self._count_event(R.OK)

    def _count_event(self, code: int) -> int:
        self.event_codes[code] += 1
        return code

    # -- ORDER TABLE --------------------------------------------------------------------------------

    def _find(self, order_id: int) -> OrderSlot | None:
        if order_id <= 0:
            return None
        order = self.orders[order_id & self.order_mask]
        return order if order is not None and order.order_id == order_id else None

    def _allocate(self) -> int:
        order_id = self.next_order_id
        while self.orders[order_id & self.order_mask] is not None:
            order_id += 1
        self.next_order_id = order_id + 1
        return order_id

    def _settle(self, order: OrderSlot) -> None:
        exposure = self.exposures[order.instrument_id]
        leaves = order.qty_lots - order.cum_lots
        want_lots = 0
        want_tick_lots = 0
        if leaves > 0:
            want_lots = leaves
            want_tick_lots = leaves * order.price_ticks
            if order.replace_pending:
                new_leaves = order.new_qty_lots - order.cum_lots
                want_lots = max(want_lots, new_leaves)
                want_tick_lots = max(want_tick_lots, new_leaves * order.new_price_ticks)
        if order.side == BUY:
            exposure.open_buy_lots += want_lots - order.reserved_lots
            exposure.open_buy_tick_lots += want_tick_lots - order.reserved_tick_lots
        else:
            exposure.open_sell_lots += want_lots - order.reserved_lots
            exposure.open_sell_tick_lots += want_tick_lots - order.reserved_tick_lots
        if 0 <= order.session_id < self.client_capacity:
            self.client_open_tick_lots[order.session_id][order.instrument_id] += (want_tick_lots
                                                                                  - order.reserved_tick_lots)
        order.reserved_lots = want_lots
        order.reserved_tick_lots = want_tick_lots
        if leaves <= 0:
            self.orders[order.order_id & self.order_mask] = None
            del self.live_by_instrument[order.instrument_id][order.order_id]
            exposure.open_orders -= 1
            self.live_orders -= 1

    def order(self, order_id: int) -> dict | None:
        """Return a live order as a dict, or None when the id is not live."""
        order = self._find(order_id)
        if order is None:
            return None
        return {
            "order_id": order.order_id,
            "instrument_id": order.instrument_id,
            "session_id": order.session_id,
            "side": int(order.side),
            "ord_type": int(order.ord_type),
            "acked": order.acked,
            "replace_pending": order.replace_pending,
            "qty_lots": order.qty_lots,
            "cum_lots": order.cum_lots,
            "price_ticks": order.price_ticks,
            "new_qty_lots": order.new_qty_lots,
            "new_price_ticks": order.new_price_ticks,
            "reserved_lots": order.reserved_lots,
            "reserved_tick_lots": order.reserved_tick_lots,
        }

    # -- RECOVERY -----------------------------------------------------------------------------------

    def restore_order(self, order_id: int, instrument_id: int, session_id: int, side: int, ord_type: int,
                      qty_lots: int, cum_lots: int, price_ticks: int, *, acked: bool = False,
                      replace_pending: bool = False, new_qty_lots: int = 0, new_price_ticks: int = 0) -> None:
        """Put back a live order from the journal, with its reservation; later ids start after it."""
        if order_id <= 0:
            raise ValueError(f"order id must be positive, got {order_id}")
        if not self.instruments.known(instrument_id):
            raise ValueError(f"order {order_id}: unknown instrument id {instrument_id}")
        if side not in (BUY, SELL):
            raise ValueError(f"order {order_id}: side must be 1 (buy) or 2 (sell), got {side}")
        if ord_type not in (MARKET, LIMIT):
            raise ValueError(f"order {order_id}: order type must be 1 or 2, got {ord_type}")
        if not (0 <= cum_lots < qty_lots) or price_ticks <= 0:
            raise ValueError(f"order {order_id}: not live (qty {qty_lots}, filled {cum_lots}, ticks {price_ticks})")
        slot = self.orders[order_id & self.order_mask]
        if slot is not None:
            raise ValueError(f"order {order_id}: its slot holds order {slot.order_id}")
        order = OrderSlot(order_id, instrument_id, session_id, side, ord_type, acked, replace_pending, qty_lots,
                          cum_lots, price_ticks, new_qty_lots, new_price_ticks, 0, 0)
        self.orders[order_id & self.order_mask] = order
        self.live_by_instrument[instrument_id][order_id] = order
        self.exposures[instrument_id].open_orders += 1
        self.live_orders += 1
        self._settle(order)
        if order_id >= self.next_order_id:
            self.next_order_id = order_id + 1

    def restore_position(self, instrument_id: int, position_lots: int, last_fill_price: float = 0.0) -> None:
        """Set the position of `instrument_id` from the journal."""
        self.instruments._require(instrument_id)
        self.exposures[instrument_id].position_lots = position_lots
        self.exposures[instrument_id].last_fill_price = float(last_fill_price)

    def restore_daily(self, daily_orders: int, daily_notional: float) -> None:
        """Set today's order count and notional from the journal."""
        self.daily_orders = daily_orders
        self.daily_notional = float(daily_notional)

    def restore_next_order_id(self, next_order_id: int) -> None:
        """Never hand out an id below `next_order_id` (ids are not reused across restarts)."""
        self.next_order_id = max(self.next_order_id, next_order_id)

    def live_order_ids(self) -> list[int]:
        """Return the ids of every live order, ascending."""
        return sorted(order.order_id for order in self.orders if order is not None)

    def order_ids_of_instrument(self, instrument_id: int) -> list[int]:
        """Return the ids of the live orders of `instrument_id`, ascending."""
        self.instruments._require(instrument_id)
        return sorted(self.live_by_instrument[instrument_id])

    def order_ids_of_session(self, session_id: int) -> list[int]:
        """Return the ids of the live orders of `session_id`, ascending."""
        return sorted(order.order_id for order in self.orders
                      if order is not None and order.session_id == session_id)

    # -- EXPOSURE -----------------------------------------------------------------------------------

    def gross_exposure(self) -> float:
        """Return Σ |position × reference| + open order notional, in account currency."""
        gross = 0.0
        for index in range(self.instruments.count):
            exposure = self.exposures[index]
            spec = self.instruments.specs[index]
            if exposure.position_lots != 0:
                ref = self.quotes.reference_price(index)
                if not (ref > 0.0):
                    ref = exposure.last_fill_price
                gross += abs(float(exposure.position_lots) * spec.lot_size * ref)
            if exposure.open_buy_tick_lots != 0 or exposure.open_sell_tick_lots != 0:
                gross += float(exposure.open_buy_tick_lots + exposure.open_sell_tick_lots) * spec.notional_unit
        return gross

    def exposure(self, instrument_id: int) -> dict:
        """Return the live exposure of `instrument_id` as a dict (quantities in lots)."""
        self.instruments._require(instrument_id)
        exposure = self.exposures[instrument_id]
        return {
            "position_lots": exposure.position_lots,
            "open_buy_lots": exposure.open_buy_lots,
            "open_sell_lots": exposure.open_sell_lots,
            "open_buy_tick_lots": exposure.open_buy_tick_lots,
            "open_sell_tick_lots": exposure.open_sell_tick_lots,
            "open_orders": exposure.open_orders,
            "last_fill_price": exposure.last_fill_price,
        }

    def snapshot(self) -> dict:
        """Return the whole book state as plain values."""
        return {
            "risk_state": int(self.risk_state),
            "equity": self.equity,
            "daily_orders": self.daily_orders,
            "daily_notional": self.daily_notional,
            "next_day_ns": self.next_day_ns,
            "firm_budgets": {FIRM_BUDGETS[kind]: self.firm_budgets[kind] if math.isfinite(self.firm_budgets[kind])
                             else None for kind in range(3)},
            "live_orders": self.live_orders,
            "next_order_id": self.next_order_id,
            "exposures": [self.exposure(index) for index in range(self.instruments.count)],
            "clients": [self.client(index) for index in range(self.client_capacity)],
            "restricted": sorted((session, index) for session in range(-1, self.client_capacity)
                                 for index in range(self.instruments.count) if self.restricted[session + 1][index]),
            "orders": [self.order(order_id) for order_id in self.live_order_ids()],
        }

    # -- COUNTERS -----------------------------------------------------------------------------------

    def counters(self) -> dict:
        """Return the check count and the non-zero decision and order-event counts by code."""
        return {
            "checks": self.checks,
            "decisions": {code: count for code, count in enumerate(self.decisions) if count},
            "events": {code: count for code, count in enumerate(self.event_codes) if count},
        }
