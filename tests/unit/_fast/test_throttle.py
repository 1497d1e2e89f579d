"""Token buckets in integer nanoseconds: exact at the boundary, no sleeps (time is an argument)."""

import pytest

from fixgate._fast.codes import RejectCode as R

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


def test_session_bucket_when_burst_used_refuses_until_one_interval_passes(impl):
    throttle = impl.Throttle(2, 2, session_rate=10.0, session_burst=3)
    assert [throttle.try_acquire(0, 0, T0) for _ in range(3)] == [R.OK] * 3
    assert throttle.try_acquire(0, 0, T0) == R.THROTTLED
    assert throttle.try_acquire(1, 0, T0) == R.OK                    # another session has its own
    assert throttle.try_acquire(0, 0, T0 + 100 * MS - 1) == R.THROTTLED
    assert throttle.try_acquire(0, 0, T0 + 100 * MS) == R.OK
    assert throttle.try_acquire(0, 0, T0 + 100 * MS) == R.THROTTLED


def test_bucket_when_idle_refills_to_burst_and_no_more(impl):
    throttle = impl.Throttle(1, 1, session_rate=1000.0, session_burst=2)
    assert throttle.try_acquire(0, 0, T0) == R.OK
    later = T0 + 10_000 * MS
    assert [throttle.try_acquire(0, 0, later) for _ in range(3)] == [R.OK, R.OK, R.THROTTLED]


def test_global_and_instrument_buckets_when_empty_refuse_and_take_nothing_elsewhere(impl):
    throttle = impl.Throttle(2, 2, global_rate=1.0, global_burst=2, instrument_rate=1.0, instrument_burst=1)
    assert throttle.try_acquire(0, 0, T0) == R.OK
    assert throttle.try_acquire(1, 0, T0) == R.THROTTLED             # instrument 0 is empty
    assert throttle.try_acquire(1, 1, T0) == R.OK
    assert throttle.try_acquire(0, 1, T0) == R.THROTTLED             # global is empty
    assert throttle.counters() == {"acquired": 2, "global_breaches": 1, "session_breaches": 0,
                                   "instrument_breaches": 1, "venue_sent": 0, "venue_breaches": 0}


def test_venue_bucket_when_full_refuses_new_messages_but_counts_every_message_sent(impl):
    throttle = impl.Throttle(1, 1)
    throttle.configure_venue(0, 10.0, 2)                             # 2 at once, then one per 100 ms
    assert throttle.venue_conforms(0, T0)
    throttle.venue_take(0, T0)
    throttle.venue_take(0, T0)
    assert not throttle.venue_conforms(0, T0)                        # a new order waits
    throttle.venue_take(0, T0)                                       # a cancel goes all the same
    assert not throttle.venue_conforms(0, T0 + 150 * MS)             # and pushed the next slot back
    assert throttle.venue_conforms(0, T0 + 200 * MS)
    assert throttle.venue_conforms(1, T0)                            # a venue without a limit
    assert throttle.counters()["venue_sent"] == 3 and throttle.counters()["venue_breaches"] == 2
    with pytest.raises(KeyError):
        throttle.configure_venue(64, 1.0)


def test_breach_flag_when_limit_breaches_fall_inside_window_is_raised(impl):
    throttle = impl.Throttle(1, 1, session_rate=1.0, session_burst=1, breach_limit=3,
                             breach_window_ns=100 * MS)
    assert throttle.try_acquire(0, 0, T0) == R.OK
    assert throttle.try_acquire(0, 0, T0) == R.THROTTLED
    assert throttle.try_acquire(0, 0, T0 + 60 * MS) == R.THROTTLED
    assert not throttle.breach_flag
    assert throttle.try_acquire(0, 0, T0 + 101 * MS) == R.THROTTLED   # 3 breaches over 101 ms
    assert not throttle.breach_flag
    assert throttle.try_acquire(0, 0, T0 + 160 * MS) == R.THROTTLED   # last 3 within 100 ms
    assert throttle.breach_flag
    assert throttle.try_acquire(0, 0, T0 + 10_000 * MS) == R.OK
    assert throttle.breach_flag                                       # sticky until cleared
    throttle.clear_breach_flag()
    assert not throttle.breach_flag


def test_breach_flag_when_limit_is_one_rises_on_first_breach(impl):
    throttle = impl.Throttle(1, 1, global_rate=1.0, breach_limit=1)
    throttle.try_acquire(0, 0, T0)
    assert throttle.try_acquire(0, 0, T0) == R.THROTTLED
    assert throttle.breach_flag


def test_configure_session_when_given_own_rate_overrides_default(impl):
    throttle = impl.Throttle(2, 1, session_rate=1.0, session_burst=1)
    throttle.configure_session(1, None)
    assert [throttle.try_acquire(1, 0, T0) for _ in range(100)] == [R.OK] * 100
    with pytest.raises(KeyError):
        throttle.configure_session(2, 5.0)


def test_try_acquire_when_ids_out_of_range_refuses(impl):
    throttle = impl.Throttle(2, 2)
    assert throttle.try_acquire(2, 0, T0) == R.UNKNOWN_SESSION
    assert throttle.try_acquire(0, -1, T0) == R.UNKNOWN_INSTRUMENT


@pytest.mark.parametrize("setting, message", [
    ({"session_rate": 0.0}, "session rate"), ({"global_rate": -5.0}, "global rate"),
    ({"instrument_rate": 10.0, "instrument_burst": 0}, "instrument burst"),
    ({"breach_limit": 65}, "breach_limit"), ({"breach_window_ns": 0}, "breach_window_ns"),
])
def test_throttle_when_configured_with_nonsense_raises_naming_the_setting(impl, setting, message):
    with pytest.raises(ValueError, match=message):
        impl.Throttle(1, 1, **setting)
