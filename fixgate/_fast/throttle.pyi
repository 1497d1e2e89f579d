class Throttle:
    max_sessions: int
    max_instruments: int
    breach_limit: int
    breach_window_ns: int
    breach_count: int
    breach_flag: bool
    acquired_count: int
    global_breaches: int
    session_breaches: int
    instrument_breaches: int
    venue_sent: int
    venue_breaches: int
    def __init__(
        self,
        max_sessions: int,
        max_instruments: int,
        *,
        global_rate: float | None = None,
        global_burst: int = 1,
        session_rate: float | None = None,
        session_burst: int = 1,
        instrument_rate: float | None = None,
        instrument_burst: int = 1,
        breach_limit: int = 10,
        breach_window_ns: int = 1_000_000_000,
    ) -> None: ...
    def configure_session(self, session_id: int, rate: float | None, burst: int = 1) -> None: ...
    def configure_instrument(self, instrument_id: int, rate: float | None, burst: int = 1) -> None: ...
    def configure_venue(self, venue_id: int, rate: float | None, burst: int = 1) -> None: ...
    def venue_conforms(self, venue_id: int, now_ns: int) -> bool: ...
    def venue_take(self, venue_id: int, now_ns: int) -> None: ...
    def try_acquire(self, session_id: int, instrument_id: int, now_ns: int) -> int: ...
    def clear_breach_flag(self) -> None: ...
    def counters(self) -> dict[str, int]: ...
