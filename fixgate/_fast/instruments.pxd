from libc.math cimport fabs, floor
from libc.stdint cimport int32_t, int64_t

# -- UNITS ------------------------------------------------------------------------------------------

# Quantities and prices inside the hot path are whole numbers of lots and ticks. MAX_UNITS bounds
# both, so that lots * ticks fits an int64 and converts to float64 exactly enough; UNIT_TOLERANCE is
# how far (in lots or ticks) a float may sit from a whole unit and still count as on the grid.
# Limits given as "none" in the configuration become NO_LOT_LIMIT / NO_COUNT_LIMIT: larger than the
# book can reach, and small enough that scaling them by a factor <= 1 stays inside an int64.
cdef extern from *:
    """
    #define FG_MAX_UNITS 1000000000.0
    #define FG_UNIT_TOLERANCE 1e-6
    #define FG_NO_LOT_LIMIT ((int64_t)1 << 62)
    #define FG_NO_COUNT_LIMIT ((int64_t)1 << 62)
    """
    const double MAX_UNITS "FG_MAX_UNITS"
    const double UNIT_TOLERANCE "FG_UNIT_TOLERANCE"
    const int64_t NO_LOT_LIMIT "FG_NO_LOT_LIMIT"
    const int64_t NO_COUNT_LIMIT "FG_NO_COUNT_LIMIT"


cdef inline int64_t units_of(double value, double step) noexcept nogil:
    """Return `value` in whole `step` units: -1 when it is not a positive number below MAX_UNITS
    steps, 0 when it is off the grid by more than UNIT_TOLERANCE, else the number of units."""
    cdef double units
    cdef double whole
    if not (value > 0.0):
        return -1
    units = value / step
    if not (units < MAX_UNITS):
        return -1
    whole = floor(units + 0.5)
    if fabs(units - whole) > UNIT_TOLERANCE:
        return 0
    return <int64_t>whole

# -- INSTRUMENT SPEC --------------------------------------------------------------------------------

ctypedef struct InstrumentSpec:
    double tick_size
    double lot_size
    double notional_unit            # lot_size * tick_size: the value of one lot at one tick
    double reference_price          # configured reference, 0.0 when none
    double adv                      # average daily volume in quantity units, 0.0 when unknown
    double adv_limit_qty            # adv * max_adv_fraction; +inf when unlimited
    int64_t max_order_lots
    double max_order_notional       # +inf when unlimited
    int64_t max_position_lots
    int64_t max_open_orders
    double price_collar             # max |price - reference| / reference; +inf when unlimited
    int64_t stale_after_ns
    bint requires_live_quote
    bint halted
    int32_t sector                  # the sector's number for the sector concentration limit; -1 none


cdef class Instruments:
    # -- STORAGE ------------------------------------------------------------------------------------
    cdef InstrumentSpec* specs
    cdef readonly int32_t capacity
    cdef readonly int32_t count
    cdef dict _ids
    cdef list _symbols

    # -- LOOKUP -------------------------------------------------------------------------------------
    cdef inline bint contains(self, int32_t instrument_id) noexcept nogil:
        return 0 <= instrument_id < self.count
    cdef int _require(self, int32_t instrument_id) except -1
