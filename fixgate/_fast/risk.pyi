from typing import Any

import numpy as np
import numpy.typing as npt

from fixgate._fast.instruments import Instruments
from fixgate._fast.quotes import QuoteBook
from fixgate._fast.throttle import Throttle

ORDER_DTYPE: np.dtype[Any]
DEFAULT_ORDER_CAPACITY: int
NANOSECONDS_PER_DAY: int

class RiskBook:
    instruments: Instruments
    quotes: QuoteBook
    throttle: Throttle
    max_order_notional: float
    max_gross_exposure: float
    max_leverage: float
    max_daily_orders: int
    max_daily_notional: float
    warning_order_qty_factor: float
    warning_collar_factor: float
    day_length_ns: int
    order_capacity: int
    order_mask: int
    next_order_id: int
    last_order_id: int
    live_orders: int
    risk_state: int
    equity: float
    daily_orders: int
    daily_notional: float
    next_day_ns: int
    checks: int
    def __init__(
        self,
        instruments: Instruments,
        quotes: QuoteBook,
        throttle: Throttle,
        *,
        max_order_notional: float | None = None,
        max_gross_exposure: float | None = None,
        max_leverage: float | None = None,
        max_daily_orders: int | None = None,
        max_daily_notional: float | None = None,
        warning_order_qty_factor: float = 0.5,
        warning_collar_factor: float = 0.5,
        order_capacity: int = 65536,
        equity: float = 0.0,
        day_start_ns: int | None = None,
        day_length_ns: int = 86_400_000_000_000,
    ) -> None: ...
    def set_risk_state(self, state: int) -> None: ...
    def set_equity(self, equity: float) -> None: ...
    def check_new_order(self, session_id: int, instrument_id: int, side: int, ord_type: int,
                        qty: float, price: float, now_ns: int) -> int: ...
    def check_replace(self, order_id: int, new_qty: float, new_price: float, now_ns: int) -> int: ...
    def check_batch(self, orders: npt.NDArray[Any], codes: npt.NDArray[np.uint8],
                    order_ids: npt.NDArray[np.int64], now_ns: int) -> int: ...
    def on_acked(self, order_id: int) -> int: ...
    def on_filled(self, order_id: int, qty: float, price: float) -> int: ...
    def on_canceled(self, order_id: int) -> int: ...
    def on_venue_rejected(self, order_id: int) -> int: ...
    def on_replaced(self, order_id: int) -> int: ...
    def on_replace_rejected(self, order_id: int) -> int: ...
    def order(self, order_id: int) -> dict[str, Any] | None: ...
    def restore_order(self, order_id: int, instrument_id: int, session_id: int, side: int, ord_type: int,
                      qty_lots: int, cum_lots: int, price_ticks: int, *, acked: bool = False,
                      replace_pending: bool = False, new_qty_lots: int = 0, new_price_ticks: int = 0) -> None: ...
    def restore_position(self, instrument_id: int, position_lots: int, last_fill_price: float = 0.0) -> None: ...
    def restore_daily(self, daily_orders: int, daily_notional: float) -> None: ...
    def restore_next_order_id(self, next_order_id: int) -> None: ...
    def live_order_ids(self) -> list[int]: ...
    def gross_exposure(self) -> float: ...
    def exposure(self, instrument_id: int) -> dict[str, Any]: ...
    def snapshot(self) -> dict[str, Any]: ...
    def counters(self) -> dict[str, Any]: ...
