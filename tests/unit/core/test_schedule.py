"""The schedule model: open or closed, next open and close, daily, overnight and weekly, in a zone."""

import datetime as dt

from fixgate.config import FixSessionSettings
from fixgate.core.schedule import Schedule

UTC = dt.timezone.utc


def at(text):
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def schedule(**settings):
    return Schedule.from_settings(FixSessionSettings(**settings), default_start="00:00",
                                  now=at("2026-12-01 12:00:00"))


def test_schedule_when_daily_is_open_between_its_times_and_names_the_next_open():
    daily = schedule(start_time="13:30", end_time="20:00")
    assert daily.quickfix_lines() == ["StartTime=13:30:00", "EndTime=20:00:00"]
    assert not daily.is_open(at("2026-12-01 13:29:59"))
    assert daily.is_open(at("2026-12-01 13:30:00")) and daily.is_open(at("2026-12-01 20:00:00"))
    assert daily.next_open(at("2026-12-01 20:00:01")) == at("2026-12-02 13:30:00")
    assert daily.describe(at("2026-12-01 15:00:00")) == {
        "schedule": "daily 13:30 to 20:00 UTC", "open": True, "next_open": None,
        "next_close": "2026-12-01T20:00:00Z"}


def test_schedule_when_overnight_or_24_hours_or_weekly_follows_quickfix():
    overnight = schedule(start_time="22:00", end_time="06:00")
    assert overnight.is_open(at("2026-12-01 23:00:00")) and overnight.is_open(at("2026-12-02 05:59:00"))
    assert not overnight.is_open(at("2026-12-02 12:00:00"))
    whole_day = Schedule.from_settings(FixSessionSettings(), default_start="21:00")
    assert whole_day.is_open(at("2026-12-01 03:00:00")) and whole_day.quickfix_lines()[0] == "StartTime=21:00:00"
    weekly = schedule(start_time="17:00", end_time="17:00", start_day="Sunday", end_day="Friday")
    assert weekly.quickfix_lines() == ["StartTime=17:00:00", "EndTime=17:00:00", "StartDay=Sunday",
                                       "EndDay=Friday"]
    assert weekly.is_open(at("2026-12-02 03:00:00"))                  # a Wednesday
    assert not weekly.is_open(at("2026-12-05 12:00:00"))              # a Saturday
    assert weekly.next_open(at("2026-12-05 12:00:00")) == at("2026-12-06 17:00:00")


def test_schedule_when_given_in_a_time_zone_is_handed_to_quickfix_in_utc():
    new_york = schedule(start_time="09:30", end_time="16:00", time_zone="America/New_York")
    assert new_york.quickfix_lines() == ["StartTime=14:30:00", "EndTime=21:00:00"]     # EST in December
    assert new_york.text == "daily 09:30 to 16:00 America/New_York"
