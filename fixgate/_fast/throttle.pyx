"""Order-rate limits: token buckets in integer nanoseconds, global, per session and per instrument."""

from libc.math cimport floor, isfinite
from libc.stdlib cimport free

from fixgate._fast cimport enums as e
from fixgate._fast.memory cimport alloc_prefaulted


cdef Gcra _bucket(str name, object rate, object burst) except *:
    """Return a bucket for `rate` requests per second and `burst` at once; None means unlimited."""
    cdef Gcra bucket = Gcra(0, 0, 0)
    cdef double per_second
    if rate is None:
        return bucket
    per_second = rate
    if not (isfinite(per_second) and per_second > 0.0):
        raise ValueError(f"{name} rate must be a positive number of orders per second, got {rate!r}")
    if burst is None or burst < 1:
        raise ValueError(f"{name} burst must be a whole number of at least 1, got {burst!r}")
    bucket.emission_ns = max(<int64_t>floor(1e9 / per_second + 0.5), 1)
    bucket.tolerance_ns = (<int64_t>burst - 1) * bucket.emission_ns
    return bucket


cdef inline bint _conforms(const Gcra* bucket, int64_t now_ns) noexcept nogil:
    cdef int64_t tat
    if bucket.emission_ns == 0:
        return True
    tat = bucket.tat_ns if bucket.tat_ns > now_ns else now_ns
    return tat - now_ns <= bucket.tolerance_ns


cdef inline void _take(Gcra* bucket, int64_t now_ns) noexcept nogil:
    if bucket.emission_ns != 0:
        bucket.tat_ns = (bucket.tat_ns if bucket.tat_ns > now_ns else now_ns) + bucket.emission_ns


cdef class Throttle:
    """Token buckets per session, per instrument and global; a breach refuses the order.

    An order takes one token from each of the three buckets, or none when any bucket is empty. When
    `breach_limit` breaches fall inside `breach_window_ns`, `breach_flag` is raised and stays up
    until `clear_breach_flag` (the Knight Capital rule: a runaway sender trips the kill switch).

    Parameters
    ----------
    max_sessions, max_instruments : int
        The session and instrument ids the throttle accepts: 0 <= id < max.
    global_rate, session_rate, instrument_rate : float or None
        Orders per second; None means unlimited.
    global_burst, session_burst, instrument_burst : int
        Orders allowed at once.
    breach_limit : int
        Breaches (1 to 64) inside the window that raise the flag.
    breach_window_ns : int
        The window, in nanoseconds.
    """

    # -- CONFIGURATION ------------------------------------------------------------------------------

    def __cinit__(
        self,
        int32_t max_sessions,
        int32_t max_instruments,
        *,
        global_rate=None,
        global_burst=1,
        session_rate=None,
        session_burst=1,
        instrument_rate=None,
        instrument_burst=1,
        int32_t breach_limit=10,
        int64_t breach_window_ns=1_000_000_000,
    ):
        cdef Gcra session_bucket
        cdef Gcra instrument_bucket
        cdef int32_t index
        if max_sessions < 1 or max_instruments < 1:
            raise ValueError(
                f"max_sessions and max_instruments must be at least 1, got {max_sessions} and {max_instruments}")
        if not (1 <= breach_limit <= MAX_BREACH_LIMIT):
            raise ValueError(f"breach_limit must be between 1 and {MAX_BREACH_LIMIT}, got {breach_limit}")
        if breach_window_ns <= 0:
            raise ValueError(f"breach_window_ns must be positive, got {breach_window_ns}")
        self.global_bucket = _bucket("global", global_rate, global_burst)
        session_bucket = _bucket("session", session_rate, session_burst)
        instrument_bucket = _bucket("instrument", instrument_rate, instrument_burst)
        self.session_buckets = <Gcra*>alloc_prefaulted(max_sessions, sizeof(Gcra))
        self.instrument_buckets = <Gcra*>alloc_prefaulted(max_instruments, sizeof(Gcra))
        if self.session_buckets == NULL or self.instrument_buckets == NULL:
            raise MemoryError()
        for index in range(max_sessions):
            self.session_buckets[index] = session_bucket
        for index in range(max_instruments):
            self.instrument_buckets[index] = instrument_bucket
        self.max_sessions = max_sessions
        self.max_instruments = max_instruments
        self.breach_limit = breach_limit
        self.breach_window_ns = breach_window_ns

    def __dealloc__(self):
        free(self.session_buckets)
        free(self.instrument_buckets)

    def configure_session(self, int32_t session_id, rate, burst=1):
        """Give `session_id` its own rate and burst (None rate: unlimited); its bucket starts full."""
        if not (0 <= session_id < self.max_sessions):
            raise KeyError(f"unknown session id {session_id}")
        self.session_buckets[session_id] = _bucket(f"session {session_id}", rate, burst)

    def configure_venue(self, int32_t venue_id, rate, burst=1):
        """Limit what the gateway sends venue `venue_id` to `rate` messages per second and `burst` at
        once (None rate: unlimited); its bucket starts full."""
        if not (0 <= venue_id < MAX_VENUES):
            raise KeyError(f"venue id {venue_id} outside 0..{MAX_VENUES - 1}")
        self.venue_buckets[venue_id] = _bucket(f"venue {venue_id}", rate, burst)

    def configure_instrument(self, int32_t instrument_id, rate, burst=1):
        """Give `instrument_id` its own rate and burst (None rate: unlimited); its bucket starts full."""
        if not (0 <= instrument_id < self.max_instruments):
            raise KeyError(f"unknown instrument id {instrument_id}")
        self.instrument_buckets[instrument_id] = _bucket(f"instrument {instrument_id}", rate, burst)

    # -- ACQUIRE ------------------------------------------------------------------------------------

    cdef RejectCode try_acquire_c(self, int32_t session_id, int32_t instrument_id,
                                  int64_t now_ns) noexcept nogil:
        cdef Gcra* session_bucket
        cdef Gcra* instrument_bucket
        if not (0 <= session_id < self.max_sessions):
            return e.UNKNOWN_SESSION
        if not (0 <= instrument_id < self.max_instruments):
            return e.UNKNOWN_INSTRUMENT
        session_bucket = &self.session_buckets[session_id]
        instrument_bucket = &self.instrument_buckets[instrument_id]
        if not _conforms(&self.global_bucket, now_ns):
            self.global_breaches += 1
        elif not _conforms(session_bucket, now_ns):
            self.session_breaches += 1
        elif not _conforms(instrument_bucket, now_ns):
            self.instrument_breaches += 1
        else:
            _take(&self.global_bucket, now_ns)
            _take(session_bucket, now_ns)
            _take(instrument_bucket, now_ns)
            self.acquired_count += 1
            return e.OK
        self._record_breach(now_ns)
        return e.THROTTLED

    cdef void _record_breach(self, int64_t now_ns) noexcept nogil:
        # The breach before this one by `breach_limit - 1` sits where this one is about to be written
        # plus one; when the window holds all of them, the flag goes up.
        cdef int64_t slot = self.breach_count % self.breach_limit
        self.breach_times[slot] = now_ns
        self.breach_count += 1
        if (self.breach_count >= self.breach_limit
                and now_ns - self.breach_times[self.breach_count % self.breach_limit] <= self.breach_window_ns):
            self.breach_flag = True

    cdef bint venue_conforms_c(self, int32_t venue_id, int64_t now_ns) noexcept nogil:
        # Whether one more message may go to the venue now; a refusal counts as a venue breach.
        if not (0 <= venue_id < MAX_VENUES) or _conforms(&self.venue_buckets[venue_id], now_ns):
            return True
        self.venue_breaches += 1
        return False

    cdef void venue_take_c(self, int32_t venue_id, int64_t now_ns) noexcept nogil:
        # A message went to the venue: it counts whether or not it conformed (cancels always go).
        if 0 <= venue_id < MAX_VENUES:
            _take(&self.venue_buckets[venue_id], now_ns)
        self.venue_sent += 1

    def venue_conforms(self, int32_t venue_id, int64_t now_ns):
        """Return whether one more message to the venue keeps inside its limit (False counts a breach)."""
        return self.venue_conforms_c(venue_id, now_ns)

    def venue_take(self, int32_t venue_id, int64_t now_ns):
        """Count one message sent to the venue against its limit."""
        self.venue_take_c(venue_id, now_ns)

    def try_acquire(self, int32_t session_id, int32_t instrument_id, int64_t now_ns):
        """Take one token from the global, session and instrument buckets; return the `RejectCode`.

        Returns OK, THROTTLED (no token taken anywhere), UNKNOWN_SESSION or UNKNOWN_INSTRUMENT.
        """
        return self.try_acquire_c(session_id, instrument_id, now_ns)

    def clear_breach_flag(self):
        """Lower the breach flag and empty the breach window (after the risk-state machine acted)."""
        self.breach_flag = False
        self.breach_count = 0

    # -- COUNTERS -----------------------------------------------------------------------------------

    def counters(self):
        """Return the acquire and breach counts by scope."""
        return {
            "acquired": self.acquired_count,
            "global_breaches": self.global_breaches,
            "session_breaches": self.session_breaches,
            "instrument_breaches": self.instrument_breaches,
            "venue_sent": self.venue_sent,
            "venue_breaches": self.venue_breaches,
        }
