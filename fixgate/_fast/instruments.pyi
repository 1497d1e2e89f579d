from typing import Any

MAX_INSTRUMENTS: int

class Instruments:
    capacity: int
    count: int
    def __init__(self, capacity: int = 1024) -> None: ...
    def add(
        self,
        symbol: str,
        *,
        tick_size: float,
        lot_size: float,
        reference_price: float = 0.0,
        adv: float = 0.0,
        max_adv_fraction: float | None = None,
        max_order_qty: float | None = None,
        max_order_notional: float | None = None,
        max_position: float | None = None,
        max_open_orders: int | None = None,
        price_collar: float | None = None,
        stale_after_ns: int = 1_000_000_000,
        requires_live_quote: bool = False,
        halted: bool = False,
        sector: int = -1,
    ) -> int: ...
    def known(self, instrument_id: int) -> bool: ...
    def id_of(self, symbol: str) -> int: ...
    def symbol_of(self, instrument_id: int) -> str: ...
    @property
    def symbols(self) -> list[str]: ...
    def __len__(self) -> int: ...
    def __contains__(self, symbol: object) -> bool: ...
    def spec(self, instrument_id: int) -> dict[str, Any]: ...
    def set_halted(self, instrument_id: int, halted: bool) -> None: ...
