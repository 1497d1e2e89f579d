"""Session schedules: when each client's and venue's FIX session is open.

QuickFIX enforces the schedule (it logs on, logs out and resets a session by its StartTime, EndTime,
StartDay and EndDay). This module reads the same schedule to say what QuickFIX will do: whether a
session is open now, when it next opens and closes (for /status), and the reason the engine gives
an order for a venue outside its session. Times are configured in a time zone and handed to
QuickFIX C++ 1.15.1, which knows only UTC, converted at start: a daylight-saving change while the
gateway runs is followed at its next start.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEK_SECONDS = 7 * 86400
DAY_SECONDS = 86400


def parse_time(text: str) -> dt.time | None:
    """HH:MM or HH:MM:SS, or None when it is not one."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(len(part) == 2 and part.isdigit() for part in parts):
        return None
    hours, minutes, seconds = (int(part) for part in parts + ["00"] * (3 - len(parts)))
    if hours > 23 or minutes > 59 or seconds > 59:
        return None
    return dt.time(hours, minutes, seconds)


def parse_day(text: str) -> int | None:
    """A day's index (Monday 0) from its name or its first three letters, or None."""
    lowered = text.strip().lower()
    for index, name in enumerate(DAYS):
        if len(lowered) >= 3 and name.lower().startswith(lowered):
            return index
    return None


def zone(name: str) -> dt.tzinfo | None:
    try:
        return dt.timezone.utc if name.upper() == "UTC" else ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True)
class Schedule:
    """A session's open period in UTC: daily from `start` to `end`, or weekly from (start_day, start)
    to (end_day, end). start == end (daily) is a 24-hour session that QuickFIX starts again at `start`."""

    start: dt.time
    end: dt.time
    start_day: int | None = None          # Monday 0; None: daily
    end_day: int | None = None
    text: str = ""                        # as configured, for people

    @classmethod
    def from_settings(cls, options: Any, *, default_start: str, now: dt.datetime | None = None) -> "Schedule":
        """The schedule of a session's settings (`FixSessionSettings`); without start and end times, the
        trading day's 24 hours from `default_start` (UTC)."""
        if not options.start_time:
            start = parse_time(default_start)
            return cls(start, start, text=f"24 hours from {default_start} UTC")
        tz = zone(options.time_zone)
        now = now or dt.datetime.now(dt.timezone.utc)
        start_day = parse_day(options.start_day) if options.start_day else None
        end_day = parse_day(options.end_day) if options.end_day else None
        start, start_day = _to_utc(parse_time(options.start_time), start_day, tz, now)
        end, end_day = _to_utc(parse_time(options.end_time), end_day, tz, now)
        days = f"{options.start_day} {options.start_time} to {options.end_day} {options.end_time}" \
            if options.start_day else f"daily {options.start_time} to {options.end_time}"
        return cls(start, end, start_day, end_day, text=f"{days} {options.time_zone}")

    @property
    def weekly(self) -> bool:
        return self.start_day is not None

    def quickfix_lines(self) -> list[str]:
        lines = [f"StartTime={self.start.strftime('%H:%M:%S')}", f"EndTime={self.end.strftime('%H:%M:%S')}"]
        if self.weekly:
            lines += [f"StartDay={DAYS[self.start_day]}", f"EndDay={DAYS[self.end_day]}"]
        return lines

    # -- WHERE NOW IS -----------------------------------------------------------------------------

    def _offsets(self) -> tuple[int, int, int]:
        """(start, end, period) in seconds from the period's origin (Monday 00:00 or midnight)."""
        start = _seconds(self.start)
        end = _seconds(self.end)
        if self.weekly:
            return self.start_day * DAY_SECONDS + start, self.end_day * DAY_SECONDS + end, WEEK_SECONDS
        return start, end, DAY_SECONDS

    def is_open(self, now: dt.datetime) -> bool:
        start, end, period = self._offsets()
        if start == end:
            return True
        at = _position(now, period)
        return start <= at <= end if start < end else (at >= start or at <= end)

    def next_open(self, now: dt.datetime) -> dt.datetime:
        """When the session next starts (the next start when it is open now)."""
        start, _, period = self._offsets()
        return _next(now, start, period, whole_period_if_now=True)

    def next_close(self, now: dt.datetime) -> dt.datetime:
        """When the session next ends (a 24-hour session ends where it starts again)."""
        start, end, period = self._offsets()
        return _next(now, end, period, whole_period_if_now=start == end)

    def describe(self, now: dt.datetime) -> dict[str, Any]:
        opened = self.is_open(now)
        return {"schedule": self.text, "open": opened,
                "next_open": None if opened else _iso(self.next_open(now)),
                "next_close": _iso(self.next_close(now)) if opened else None}


def _next(now: dt.datetime, offset: int, period: int, *, whole_period_if_now: bool) -> dt.datetime:
    """The next moment at `offset` seconds into the period; at it now: now, or a period on."""
    wait = (offset - _position(now, period)) % period
    return now + dt.timedelta(seconds=wait or (period if whole_period_if_now else 0))


def _seconds(value: dt.time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


def _position(now: dt.datetime, period: int) -> float:
    utc = now.astimezone(dt.timezone.utc)
    seconds = utc.hour * 3600 + utc.minute * 60 + utc.second + utc.microsecond / 1e6
    return seconds + (utc.weekday() * DAY_SECONDS if period == WEEK_SECONDS else 0)


def _to_utc(value: dt.time, day: int | None, tz: dt.tzinfo, now: dt.datetime) -> tuple[dt.time, int | None]:
    """A local time (and day) of this week in `tz`, in UTC."""
    local_now = now.astimezone(tz)
    monday = (local_now - dt.timedelta(days=local_now.weekday())).date()
    moment = dt.datetime.combine(monday + dt.timedelta(days=day or 0), value, tzinfo=tz).astimezone(dt.timezone.utc)
    return moment.time().replace(microsecond=0), (moment.weekday() if day is not None else None)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ScheduleAgent:
    """On the state thread, once a second: tell the engine which venues are outside their session, with
    the reason its rejects give ("outside its session ...; opens at ...")."""

    name = "schedules"

    def __init__(self, schedules: list[Schedule | None], set_reason: Callable[[int, str], None], *,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)) -> None:
        self.schedules = schedules
        self.set_reason = set_reason
        self.clock = clock
        self.reasons = [""] * len(schedules)
        self.next_check = 0.0

    def do_work(self) -> int:
        now_s = time.monotonic()
        if now_s < self.next_check:
            return 0
        self.next_check = now_s + 1.0
        now = self.clock()
        changed = 0
        for index, schedule in enumerate(self.schedules):
            reason = ""
            if schedule is not None and not schedule.is_open(now):
                reason = f"outside its session ({schedule.text}); opens {_iso(schedule.next_open(now))}"
            if reason != self.reasons[index]:
                self.reasons[index] = reason
                self.set_reason(index, reason)
                changed += 1
        return changed
