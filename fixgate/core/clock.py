"""Time as the state thread and the operators read it: trading days and ISO 8601."""

from __future__ import annotations

import time

NANOSECONDS_PER_DAY = 86_400_000_000_000


def day_start_at(now_ns: int, day_start_ns: int) -> int:
    """The start of the trading day that holds `now_ns`, for days starting at `day_start_ns` + k days."""
    return now_ns - (now_ns - day_start_ns) % NANOSECONDS_PER_DAY


def iso_time(nanoseconds: int) -> str | None:
    """ISO 8601 in UTC with milliseconds (None for 0: never)."""
    if not nanoseconds:
        return None
    seconds, remainder = divmod(nanoseconds, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{remainder // 1_000_000:03d}Z"
