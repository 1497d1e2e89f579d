"""Reference twin of ``fixgate._fast.instruments``."""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_UNITS = 1_000_000_000.0
UNIT_TOLERANCE = 1e-6
NO_LOT_LIMIT = 1 << 62
NO_COUNT_LIMIT = 1 << 62
MAX_INSTRUMENTS = 65536


def units_of(value: float, step: float) -> int:
    """Return `value` in whole `step` units: -1 when it is not a positive number below MAX_UNITS
    steps, 0 when it is off the grid by more than UNIT_TOLERANCE, else the number of units."""
    if not (value > 0.0):
        return -1
    units = value / step
    if not (units < MAX_UNITS):
        return -1
    whole = math.floor(units + 0.5)
    if abs(units - whole) > UNIT_TOLERANCE:
        return 0
    return whole


@dataclass
class InstrumentSpec:
    tick_size: float
    lot_size: float
    notional_unit: float
    reference_price: float
    adv: float
    adv_limit_qty: float
    max_order_lots: int
    max_order_notional: float
    max_position_lots: int
    max_open_orders: int
    price_collar: float
    stale_after_ns: int
    requires_live_quote: bool
    halted: bool
    sector: int = -1


def _positive(symbol: str, name: str, value) -> float:
    number = float(value)
    if not (math.isfinite(number) and number > 0.0):
        raise ValueError(f"instrument {symbol}: {name} must be a positive number, got {value!r}")
    return number


def _non_negative(symbol: str, name: str, value) -> float:
    number = float(value)
    if not (math.isfinite(number) and number >= 0.0):
        raise ValueError(f"instrument {symbol}: {name} must be zero or a positive number, got {value!r}")
    return number


def _limit(symbol: str, name: str, value) -> float:
    return math.inf if value is None else _non_negative(symbol, name, value)


def _lot_limit(symbol: str, name: str, value, lot_size: float) -> int:
    if value is None:
        return NO_LOT_LIMIT
    return min(math.floor(_non_negative(symbol, name, value) / lot_size + UNIT_TOLERANCE), NO_LOT_LIMIT)


class Instruments:
    """The instrument table: symbol <-> dense id, and one `InstrumentSpec` per id."""

    def __init__(self, capacity: int = 1024) -> None:
        if not (0 < capacity <= MAX_INSTRUMENTS):
            raise ValueError(f"capacity must be between 1 and {MAX_INSTRUMENTS}, got {capacity}")
        self.capacity = capacity
        self.count = 0
        self.specs: list[InstrumentSpec] = []
        self._ids: dict[str, int] = {}
        self._symbols: list[str] = []

    def add(
        self,
        symbol: str,
        *,
        tick_size,
        lot_size,
        reference_price=0.0,
        adv=0.0,
        max_adv_fraction=None,
        max_order_qty=None,
        max_order_notional=None,
        max_position=None,
        max_open_orders=None,
        price_collar=None,
        stale_after_ns=1_000_000_000,
        requires_live_quote=False,
        halted=False,
        sector=-1,
    ) -> int:
        """Add an instrument and return its id; a limit of ``None`` means no limit."""
        if not symbol:
            raise ValueError("instrument symbol must not be empty")
        if symbol in self._ids:
            raise ValueError(f"instrument {symbol}: symbol added twice")
        if self.count >= self.capacity:
            raise ValueError(f"instrument {symbol}: the table is full ({self.capacity} instruments)")
        tick = _positive(symbol, "tick_size", tick_size)
        lot = _positive(symbol, "lot_size", lot_size)
        adv_value = _non_negative(symbol, "adv", adv)
        if max_adv_fraction is None or adv_value == 0.0:
            adv_limit_qty = math.inf
        else:
            adv_limit_qty = adv_value * _non_negative(symbol, "max_adv_fraction", max_adv_fraction)
        if max_open_orders is None:
            open_orders_limit = NO_COUNT_LIMIT
        elif max_open_orders < 0:
            raise ValueError(
                f"instrument {symbol}: max_open_orders must be zero or more, got {max_open_orders!r}")
        else:
            open_orders_limit = int(max_open_orders)
        if stale_after_ns <= 0:
            raise ValueError(
                f"instrument {symbol}: stale_after_ns must be a positive number, got {stale_after_ns!r}")
        if sector < -1:
            raise ValueError(f"instrument {symbol}: sector must be -1 (none) or a sector number, got {sector}")
        spec = InstrumentSpec(
            tick_size=tick,
            lot_size=lot,
            notional_unit=lot * tick,
            reference_price=_non_negative(symbol, "reference_price", reference_price),
            adv=adv_value,
            adv_limit_qty=adv_limit_qty,
            max_order_lots=_lot_limit(symbol, "max_order_qty", max_order_qty, lot),
            max_order_notional=_limit(symbol, "max_order_notional", max_order_notional),
            max_position_lots=_lot_limit(symbol, "max_position", max_position, lot),
            max_open_orders=open_orders_limit,
            price_collar=_limit(symbol, "price_collar", price_collar),
            stale_after_ns=int(stale_after_ns),
            requires_live_quote=bool(requires_live_quote),
            halted=bool(halted),
            sector=int(sector),
        )
        self.specs.append(spec)
        self._ids[symbol] = self.count
        self._symbols.append(symbol)
        self.count += 1
        return self.count - 1

    def known(self, instrument_id: int) -> bool:
        """Return True when `instrument_id` names an instrument of the table."""
        return 0 <= instrument_id < self.count

    def id_of(self, symbol: str) -> int:
        """Return the id of `symbol`, or -1 when it is not known."""
        return self._ids.get(symbol, -1)

    def symbol_of(self, instrument_id: int) -> str:
        """Return the symbol of `instrument_id`."""
        self._require(instrument_id)
        return self._symbols[instrument_id]

    @property
    def symbols(self) -> list[str]:
        """The symbols in id order."""
        return list(self._symbols)

    def __len__(self) -> int:
        return self.count

    def __contains__(self, symbol) -> bool:
        return symbol in self._ids

    def spec(self, instrument_id: int) -> dict:
        """Return the spec of `instrument_id` as a dict (limits that are off read as inf or None)."""
        self._require(instrument_id)
        spec = self.specs[instrument_id]
        return {
            "symbol": self._symbols[instrument_id],
            "tick_size": spec.tick_size,
            "lot_size": spec.lot_size,
            "notional_unit": spec.notional_unit,
            "reference_price": spec.reference_price,
            "adv": spec.adv,
            "adv_limit_qty": spec.adv_limit_qty,
            "max_order_lots": None if spec.max_order_lots == NO_LOT_LIMIT else spec.max_order_lots,
            "max_order_notional": spec.max_order_notional,
            "max_position_lots": None if spec.max_position_lots == NO_LOT_LIMIT else spec.max_position_lots,
            "max_open_orders": None if spec.max_open_orders == NO_COUNT_LIMIT else spec.max_open_orders,
            "price_collar": spec.price_collar,
            "stale_after_ns": spec.stale_after_ns,
            "requires_live_quote": spec.requires_live_quote,
            "halted": spec.halted,
            "sector": spec.sector,
        }

    def set_halted(self, instrument_id: int, halted: bool) -> None:
        """Halt or resume trading in `instrument_id`."""
        self._require(instrument_id)
        self.specs[instrument_id].halted = bool(halted)

    def _require(self, instrument_id: int) -> None:
        if not self.known(instrument_id):
            raise KeyError(f"unknown instrument id {instrument_id}")
