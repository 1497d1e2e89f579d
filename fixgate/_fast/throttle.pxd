from libc.stdint cimport int32_t, int64_t

from fixgate._fast.enums cimport RejectCode

# The most breaches the breach window can hold: N in "N breaches inside a window".
cdef enum:
    MAX_BREACH_LIMIT = 64
    MAX_VENUES = 64                 # venue ids the outgoing message limits cover: 0 <= id < MAX_VENUES

# -- TOKEN BUCKET -----------------------------------------------------------------------------------

# A token bucket kept as a generic cell rate algorithm (GCRA): one integer of state, the theoretical
# arrival time. A request at `now` conforms when tat - now <= tolerance; it then moves tat to
# max(tat, now) + emission. `burst` requests fit at once, then one every `emission_ns`.
ctypedef struct Gcra:
    int64_t emission_ns             # 1e9 / rate; 0 means unlimited
    int64_t tolerance_ns            # (burst - 1) * emission_ns
    int64_t tat_ns                  # theoretical arrival time


cdef class Throttle:
    # -- CONFIGURATION ------------------------------------------------------------------------------
    cdef readonly int32_t max_sessions
    cdef readonly int32_t max_instruments
    cdef Gcra global_bucket
    cdef Gcra* session_buckets
    cdef Gcra* instrument_buckets
    cdef Gcra[64] venue_buckets             # what the gateway sends each venue (messages per second)
    cdef readonly int32_t breach_limit
    cdef readonly int64_t breach_window_ns

    # -- BREACH WINDOW ------------------------------------------------------------------------------
    cdef int64_t[64] breach_times           # ring of the last `breach_limit` breach times
    cdef readonly int64_t breach_count      # breaches since the window was last emptied
    cdef readonly bint breach_flag

    # -- COUNTERS -----------------------------------------------------------------------------------
    cdef readonly int64_t acquired_count
    cdef readonly int64_t global_breaches
    cdef readonly int64_t session_breaches
    cdef readonly int64_t instrument_breaches
    cdef readonly int64_t venue_sent
    cdef readonly int64_t venue_breaches

    # -- ACQUIRE ------------------------------------------------------------------------------------
    cdef RejectCode try_acquire_c(self, int32_t session_id, int32_t instrument_id,
                                  int64_t now_ns) noexcept nogil
    cdef void _record_breach(self, int64_t now_ns) noexcept nogil
    cdef bint venue_conforms_c(self, int32_t venue_id, int64_t now_ns) noexcept nogil
    cdef void venue_take_c(self, int32_t venue_id, int64_t now_ns) noexcept nogil
