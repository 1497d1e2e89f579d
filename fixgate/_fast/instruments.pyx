"""Instruments: symbols interned to dense integer ids, with the per-instrument grid and limits."""

from libc.math cimport INFINITY, floor, isfinite
from libc.stdlib cimport free

from fixgate._fast.memory cimport alloc_prefaulted

# Largest instrument id a ring slot can carry (uint16).
MAX_INSTRUMENTS = 65536


cdef double _positive(str symbol, str name, object value) except -1.0:
    cdef double number = value
    if not (isfinite(number) and number > 0.0):
        raise ValueError(f"instrument {symbol}: {name} must be a positive number, got {value!r}")
    return number


cdef double _non_negative(str symbol, str name, object value) except -1.0:
    cdef double number = value
    if not (isfinite(number) and number >= 0.0):
        raise ValueError(f"instrument {symbol}: {name} must be zero or a positive number, got {value!r}")
    return number


cdef double _limit(str symbol, str name, object value) except -1.0:
    return INFINITY if value is None else _non_negative(symbol, name, value)


cdef int64_t _lot_limit(str symbol, str name, object value, double lot_size) except -1:
    cdef double lots
    if value is None:
        return NO_LOT_LIMIT
    lots = floor(_non_negative(symbol, name, value) / lot_size + UNIT_TOLERANCE)
    return NO_LOT_LIMIT if lots >= <double>NO_LOT_LIMIT else <int64_t>lots


cdef class Instruments:
    """The instrument table: symbol <-> dense id, and one `InstrumentSpec` per id.

    Parameters
    ----------
    capacity : int
        The most instruments the table holds (at most 65536, the ids a ring slot carries).
    """

    # -- STORAGE ------------------------------------------------------------------------------------

    def __cinit__(self, int32_t capacity=1024):
        if not (0 < capacity <= MAX_INSTRUMENTS):
            raise ValueError(f"capacity must be between 1 and {MAX_INSTRUMENTS}, got {capacity}")
        self.specs = <InstrumentSpec*>alloc_prefaulted(capacity, sizeof(InstrumentSpec))
        if self.specs == NULL:
            raise MemoryError()
        self.capacity = capacity
        self.count = 0
        self._ids = {}
        self._symbols = []

    def __dealloc__(self):
        free(self.specs)

    def add(
        self,
        str symbol,
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
        bint requires_live_quote=False,
        bint halted=False,
        int32_t sector=-1,
    ):
        """Add an instrument and return its id; a limit of ``None`` means no limit.

        Raises
        ------
        ValueError
            When the symbol is empty or known, the table is full, or a value is out of range.
        """
        cdef InstrumentSpec spec
        if not symbol:
            raise ValueError("instrument symbol must not be empty")
        if symbol in self._ids:
            raise ValueError(f"instrument {symbol}: symbol added twice")
        if self.count >= self.capacity:
            raise ValueError(f"instrument {symbol}: the table is full ({self.capacity} instruments)")
        spec.tick_size = _positive(symbol, "tick_size", tick_size)
        spec.lot_size = _positive(symbol, "lot_size", lot_size)
        spec.notional_unit = spec.lot_size * spec.tick_size
        spec.reference_price = _non_negative(symbol, "reference_price", reference_price)
        spec.adv = _non_negative(symbol, "adv", adv)
        if max_adv_fraction is None or spec.adv == 0.0:
            spec.adv_limit_qty = INFINITY
        else:
            spec.adv_limit_qty = spec.adv * _non_negative(symbol, "max_adv_fraction", max_adv_fraction)
        spec.max_order_lots = _lot_limit(symbol, "max_order_qty", max_order_qty, spec.lot_size)
        spec.max_order_notional = _limit(symbol, "max_order_notional", max_order_notional)
        spec.max_position_lots = _lot_limit(symbol, "max_position", max_position, spec.lot_size)
        if max_open_orders is None:
            spec.max_open_orders = NO_COUNT_LIMIT
        elif max_open_orders < 0:
            raise ValueError(
                f"instrument {symbol}: max_open_orders must be zero or more, got {max_open_orders!r}")
        else:
            spec.max_open_orders = max_open_orders
        spec.price_collar = _limit(symbol, "price_collar", price_collar)
        if stale_after_ns <= 0:
            raise ValueError(
                f"instrument {symbol}: stale_after_ns must be a positive number, got {stale_after_ns!r}")
        spec.stale_after_ns = stale_after_ns
        spec.requires_live_quote = requires_live_quote
        spec.halted = halted
        if sector < -1:
            raise ValueError(f"instrument {symbol}: sector must be -1 (none) or a sector number, got {sector}")
        spec.sector = sector
        self.specs[self.count] = spec
        self._ids[symbol] = self.count
        self._symbols.append(symbol)
        self.count += 1
        return self.count - 1

    # -- LOOKUP -------------------------------------------------------------------------------------

    def id_of(self, str symbol):
        """Return the id of `symbol`, or -1 when it is not known."""
        return self._ids.get(symbol, -1)

    def known(self, int32_t instrument_id):
        """Return True when `instrument_id` names an instrument of the table."""
        return self.contains(instrument_id)

    def symbol_of(self, int32_t instrument_id):
        """Return the symbol of `instrument_id`."""
        self._require(instrument_id)
        return self._symbols[instrument_id]

    @property
    def symbols(self):
        """The symbols in id order."""
        return list(self._symbols)

    def __len__(self):
        return self.count

    def __contains__(self, symbol):
        return symbol in self._ids

    def spec(self, int32_t instrument_id):
        """Return the spec of `instrument_id` as a dict (limits that are off read as inf or None)."""
        self._require(instrument_id)
        cdef InstrumentSpec* spec = &self.specs[instrument_id]
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
            "requires_live_quote": bool(spec.requires_live_quote),
            "halted": bool(spec.halted),
            "sector": spec.sector,
        }

    # -- TRADING STATUS -----------------------------------------------------------------------------

    def set_halted(self, int32_t instrument_id, bint halted):
        """Halt or resume trading in `instrument_id`."""
        self._require(instrument_id)
        self.specs[instrument_id].halted = halted

    cdef int _require(self, int32_t instrument_id) except -1:
        if not self.contains(instrument_id):
            raise KeyError(f"unknown instrument id {instrument_id}")
        return 0
