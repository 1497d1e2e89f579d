"""Reference twin of ``fixgate._fast.throttle``."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fixgate.reference.codes import RejectCode as R

MAX_BREACH_LIMIT = 64
MAX_VENUES = 64


@dataclass
class Gcra:
    emission_ns: int = 0
    tolerance_ns: int = 0
    tat_ns: int = 0

    def conforms(self, now_ns: int) -> bool:
        if self.emission_ns == 0:
            return True
        return max(self.tat_ns, now_ns) - now_ns <= self.tolerance_ns

    def take(self, now_ns: int) -> None:
        if self.emission_ns != 0:
            self.tat_ns = max(self.tat_ns, now_ns) + self.emission_ns


def _bucket(name: str, rate, burst) -> Gcra:
    if rate is None:
        return Gcra()
    per_second = float(rate)
    if not (math.isfinite(per_second) and per_second > 0.0):
        raise ValueError(f"{name} rate must be a positive number of orders per second, got {rate!r}")
    if burst is None or burst < 1:
        raise ValueError(f"{name} burst must be a whole number of at least 1, got {burst!r}")
    emission = max(math.floor(1e9 / per_second + 0.5), 1)
    return Gcra(emission, (int(burst) - 1) * emission, 0)


class Throttle:
    """Token buckets per session, per instrument and global; a breach refuses the order."""

    def __init__(
        self,
        max_sessions: int,
        max_instruments: int,
        *,
        global_rate=None,
        global_burst=1,
        session_rate=None,
        session_burst=1,
        instrument_rate=None,
        instrument_burst=1,
        breach_limit: int = 10,
        breach_window_ns: int = 1_000_000_000,
    ) -> None:
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
        self.session_buckets = [Gcra(**vars(session_bucket)) for _ in range(max_sessions)]
        self.instrument_buckets = [Gcra(**vars(instrument_bucket)) for _ in range(max_instruments)]
        self.max_sessions = max_sessions
        self.max_instruments = max_instruments
        self.breach_limit = breach_limit
        self.breach_window_ns = breach_window_ns
        self.breach_times = [0] * MAX_BREACH_LIMIT
        self.breach_count = 0
        self.breach_flag = False
        self.acquired_count = 0
        self.global_breaches = 0
        self.session_breaches = 0
        self.instrument_breaches = 0
        self.venue_buckets = [Gcra() for _ in range(MAX_VENUES)]
        self.venue_sent = 0
        self.venue_breaches = 0

    def configure_session(self, session_id: int, rate, burst=1) -> None:
        """Give `session_id` its own rate and burst (None rate: unlimited); its bucket starts full."""
        if not (0 <= session_id < self.max_sessions):
            raise KeyError(f"unknown session id {session_id}")
        self.session_buckets[session_id] = _bucket(f"session {session_id}", rate, burst)

    def configure_venue(self, venue_id: int, rate, burst=1) -> None:
        """Limit what the gateway sends venue `venue_id` (messages per second, at once)."""
        if not (0 <= venue_id < MAX_VENUES):
            raise KeyError(f"venue id {venue_id} outside 0..{MAX_VENUES - 1}")
        self.venue_buckets[venue_id] = _bucket(f"venue {venue_id}", rate, burst)

    def venue_conforms(self, venue_id: int, now_ns: int) -> bool:
        """Return whether one more message to the venue keeps inside its limit (False counts a breach)."""
        if not (0 <= venue_id < MAX_VENUES) or self.venue_buckets[venue_id].conforms(now_ns):
            return True
        self.venue_breaches += 1
        return False

    def venue_take(self, venue_id: int, now_ns: int) -> None:
        """Count one message sent to the venue against its limit."""
        if 0 <= venue_id < MAX_VENUES:
            self.venue_buckets[venue_id].take(now_ns)
        self.venue_sent += 1

    def configure_instrument(self, instrument_id: int, rate, burst=1) -> None:
        """Give `instrument_id` its own rate and burst (None rate: unlimited); its bucket starts full."""
        if not (0 <= instrument_id < self.max_instruments):
            raise KeyError(f"unknown instrument id {instrument_id}")
        self.instrument_buckets[instrument_id] = _bucket(f"instrument {instrument_id}", rate, burst)

    def try_acquire(self, session_id: int, instrument_id: int, now_ns: int) -> int:
        """Take one token from the global, session and instrument buckets; return the `RejectCode`."""
        if not (0 <= session_id < self.max_sessions):
            return R.UNKNOWN_SESSION
        if not (0 <= instrument_id < self.max_instruments):
            return R.UNKNOWN_INSTRUMENT
        session_bucket = self.session_buckets[session_id]
        instrument_bucket = self.instrument_buckets[instrument_id]
        if not self.global_bucket.conforms(now_ns):
            self.global_breaches += 1
        elif not session_bucket.conforms(now_ns):
            self.session_breaches += 1
        elif not instrument_bucket.conforms(now_ns):
            self.instrument_breaches += 1
        else:
            self.global_bucket.take(now_ns)
            session_bucket.take(now_ns)
            instrument_bucket.take(now_ns)
            self.acquired_count += 1
            return R.OK
        self._record_breach(now_ns)
        return R.THROTTLED

    def _record_breach(self, now_ns: int) -> None:
        self.breach_times[self.breach_count % self.breach_limit] = now_ns
        self.breach_count += 1
        if (self.breach_count >= self.breach_limit
                and now_ns - self.breach_times[self.breach_count % self.breach_limit] <= self.breach_window_ns):
            self.breach_flag = True

    def clear_breach_flag(self) -> None:
        """Lower the breach flag and empty the breach window (after the risk-state machine acted)."""
        self.breach_flag = False
        self.breach_count = 0

    def counters(self) -> dict:
        """Return the acquire and breach counts by scope."""
        return {
            "acquired": self.acquired_count,
            "global_breaches": self.global_breaches,
            "session_breaches": self.session_breaches,
            "instrument_breaches": self.instrument_breaches,
            "venue_sent": self.venue_sent,
            "venue_breaches": self.venue_breaches,
        }
