"""Turn a reject code into the sentence a person reads in FIX Text(58) and in the logs.

This is the one place that formats reject reasons, off the hot path: the checks return a code, and
the caller asks for the words only when it sends the reject.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from fixgate._fast.codes import OrdType, RejectCode as R, RiskState, Side, reject_text


def _number(value: float) -> str:
    """Format a quantity or price without binary noise (0.30000000000000004 -> 0.3)."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _percent(fraction: float) -> str:
    return f"{_number(round(fraction * 100.0, 6))}%"


class _Order:
    """The order under discussion and the book that judged it."""

    def __init__(self, book: Any, instrument_id: int, side: int, ord_type: int, qty: float, price: float):
        self.book = book
        self.instrument_id = instrument_id
        self.side = side
        self.ord_type = ord_type
        self.qty = qty
        self.price = price
        self.spec = book.instruments.spec(instrument_id)
        self.symbol = self.spec["symbol"]
        self.lot = self.spec["lot_size"]
        self.tick = self.spec["tick_size"]

    def lots(self, lots: int) -> str:
        return _number(lots * self.lot)

    @property
    def notional(self) -> float:
        if self.ord_type == OrdType.MARKET:
            return self.qty * self.book.quotes.reference_price(self.instrument_id)
        return self.qty * self.price

    @property
    def side_word(self) -> str:
        return "buy" if self.side == Side.BUY else "sell"


def _max_order_quantity(order: _Order) -> str:
    return (f"quantity {_number(order.qty)} exceeds max order qty "
            f"{order.lots(order.spec['max_order_lots'])} for {order.symbol}")


def _warning_max_order_quantity(order: _Order) -> str:
    factor = order.book.warning_order_qty_factor
    limit = int(order.spec["max_order_lots"] * factor)
    return (f"quantity {_number(order.qty)} exceeds max order qty {order.lots(limit)} in WARNING state "
            f"({order.lots(order.spec['max_order_lots'])} x {_number(factor)}) for {order.symbol}")


def _max_order_notional(order: _Order) -> str:
    return (f"notional {_number(round(order.notional, 2))} exceeds max order notional "
            f"{_number(order.spec['max_order_notional'])} for {order.symbol}")


def _max_account_order_notional(order: _Order) -> str:
    return (f"notional {_number(round(order.notional, 2))} exceeds the account max order notional "
            f"{_number(order.book.max_order_notional)}")


def _adv(order: _Order) -> str:
    return (f"quantity {_number(order.qty)} exceeds {_number(order.spec['adv_limit_qty'])}, the allowed "
            f"share of average daily volume {_number(order.spec['adv'])} for {order.symbol}")


def _collar(order: _Order, warning: bool) -> str:
    ref = order.book.quotes.reference_price(order.instrument_id)
    collar = order.spec["price_collar"] * (order.book.warning_collar_factor if warning else 1.0)
    state = " in WARNING state" if warning else ""
    return (f"price {_number(order.price)} is {_percent(abs(order.price - ref) / ref)} from reference "
            f"{_number(ref)}, outside the {_percent(collar)} collar{state} for {order.symbol}")


def _position(order: _Order) -> str:
    exposure = order.book.exposure(order.instrument_id)
    limit = order.lots(order.spec["max_position_lots"])
    if order.side == Side.BUY:
        worst = exposure["position_lots"] + exposure["open_buy_lots"]
        return (f"buy {_number(order.qty)} would take the worst-case position to "
                f"{_number(worst * order.lot + order.qty)} (position {order.lots(exposure['position_lots'])}"
                f" + open buys {order.lots(exposure['open_buy_lots'])}), above the limit {limit} "
                f"for {order.symbol}")
    worst = exposure["position_lots"] - exposure["open_sell_lots"]
    return (f"sell {_number(order.qty)} would take the worst-case position to "
            f"{_number(worst * order.lot - order.qty)} (position {order.lots(exposure['position_lots'])}"
            f" - open sells {order.lots(exposure['open_sell_lots'])}), below the limit -{limit} "
            f"for {order.symbol}")


def _gross(order: _Order) -> str:
    gross = order.book.gross_exposure()
    return (f"gross exposure {_number(round(gross, 2))} + order {_number(round(order.notional, 2))} "
            f"exceeds max gross exposure {_number(order.book.max_gross_exposure)}")


def _leverage(order: _Order) -> str:
    equity = order.book.equity
    if not equity > 0.0:
        return f"equity is {_number(equity)}: no leverage allowed (max leverage {_number(order.book.max_leverage)})"
    gross = order.book.gross_exposure() + order.notional
    return (f"leverage {_number(round(gross / equity, 4))} (gross {_number(round(gross, 2))} / equity "
            f"{_number(equity)}) exceeds max leverage {_number(order.book.max_leverage)}")


def _daily_orders(order: _Order) -> str:
    return f"daily order count cap {order.book.max_daily_orders} reached"


def _daily_notional(order: _Order) -> str:
    return (f"daily notional {_number(round(order.book.daily_notional, 2))} + order "
            f"{_number(round(order.notional, 2))} exceeds the daily cap {_number(order.book.max_daily_notional)}")


def _open_orders(order: _Order) -> str:
    return f"{order.spec['max_open_orders']} open orders already for {order.symbol}, the maximum"


def _stale(order: _Order) -> str:
    return (f"no valid quote for {order.symbol} within "
            f"{_number(order.spec['stale_after_ns'] / 1e6)} ms")


def _off_tick(order: _Order) -> str:
    return f"price {_number(order.price)} is not a multiple of the tick {_number(order.tick)} for {order.symbol}"


def _off_lot(order: _Order) -> str:
    return f"quantity {_number(order.qty)} is not a multiple of the lot {_number(order.lot)} for {order.symbol}"


def _breaker(order: _Order) -> str:
    return f"circuit breaker active: only orders that reduce the position in {order.symbol} are accepted"


def _reduce_only(order: _Order) -> str:
    return f"the gateway is reduce-only: only orders that reduce the position in {order.symbol} are accepted"


_DETAIL: dict[int, Callable[[_Order], str]] = {
    R.MAX_ORDER_QUANTITY: _max_order_quantity,
    R.WARNING_MAX_ORDER_QUANTITY: _warning_max_order_quantity,
    R.MAX_ORDER_NOTIONAL: _max_order_notional,
    R.MAX_ACCOUNT_ORDER_NOTIONAL: _max_account_order_notional,
    R.ADV_PARTICIPATION: _adv,
    R.PRICE_COLLAR: lambda order: _collar(order, warning=False),
    R.WARNING_PRICE_COLLAR: lambda order: _collar(order, warning=True),
    R.POSITION_LIMIT: _position,
    R.GROSS_EXPOSURE: _gross,
    R.LEVERAGE: _leverage,
    R.DAILY_ORDER_COUNT: _daily_orders,
    R.DAILY_NOTIONAL: _daily_notional,
    R.MAX_OPEN_ORDERS: _open_orders,
    R.STALE_MARKET_DATA: _stale,
    R.PRICE_OFF_TICK: _off_tick,
    R.QUANTITY_NOT_LOT_MULTIPLE: _off_lot,
    R.CIRCUIT_BREAKER: _breaker,
    R.REDUCE_ONLY: _reduce_only,
}


def describe_reject(code: int, book: Any, *, instrument_id: int, side: int, ord_type: int, qty: float,
                    price: float) -> str:
    """Return the readable reason for `code` about the order described, judged by `book`.

    Call it right after the check, before the book moves, so that the figures are the ones the
    check saw. It never raises: when the details cannot be worked out, the code's plain text stands.
    """
    detail = _DETAIL.get(code)
    if detail is not None and book.instruments.known(instrument_id):
        try:
            return detail(_Order(book, instrument_id, side, ord_type, qty, price))
        except (ArithmeticError, KeyError, TypeError, ValueError):
            pass
    text = reject_text(code)
    if code == R.KILL_SWITCH and book.risk_state == RiskState.KILL_SWITCH:
        return text
    if code in (R.UNKNOWN_INSTRUMENT, R.INSTRUMENT_HALTED) and book.instruments.known(instrument_id):
        return f"{text}: {book.instruments.symbol_of(instrument_id)}"
    return text
