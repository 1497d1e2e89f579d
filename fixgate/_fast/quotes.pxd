from libc.stdint cimport int32_t, int64_t

from fixgate._fast.enums cimport RejectCode
from fixgate._fast.instruments cimport Instruments

# -- QUOTE STATE ------------------------------------------------------------------------------------

ctypedef struct QuoteState:
    double bid                      # last valid quote
    double ask
    double mid
    int64_t venue_ns                # the venue's timestamp of the last valid quote
    int64_t arrival_ns              # when the last valid quote arrived
    double last_trade_price
    int64_t last_trade_ns
    bint has_quote
    bint has_trade


cdef class QuoteBook:
    # -- CONFIGURATION ------------------------------------------------------------------------------
    cdef readonly Instruments instruments
    cdef readonly double max_spread_fraction
    cdef readonly int64_t max_age_ns
    cdef readonly int64_t max_future_skew_ns
    cdef readonly double max_jump_fraction
    cdef QuoteState* states

    # -- COUNTERS -----------------------------------------------------------------------------------
    cdef int64_t[64] invalid_counts       # by RejectCode
    cdef readonly int64_t valid_count

    # -- UPDATES ------------------------------------------------------------------------------------
    cdef RejectCode on_quote_c(self, int32_t instrument_id, double bid, double ask, int64_t venue_ns,
                               int64_t now_ns) noexcept nogil
    cdef RejectCode on_trade_c(self, int32_t instrument_id, double price, int64_t venue_ns,
                        int64_t now_ns) noexcept nogil

    cdef RejectCode _validate(self, int32_t instrument_id, double bid, double ask, int64_t venue_ns,
                              int64_t now_ns) noexcept nogil

    # -- READS --------------------------------------------------------------------------------------
    cdef double reference_price_c(self, int32_t instrument_id) noexcept nogil
    cdef bint is_stale_c(self, int32_t instrument_id, int64_t now_ns) noexcept nogil
