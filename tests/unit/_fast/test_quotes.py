"""Quote validation at its boundaries; invalid quotes are counted by reason and never move prices."""

import math

import pytest

from fixgate._fast.codes import RejectCode as R

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


@pytest.fixture
def book(impl):
    instruments = impl.Instruments(4)
    instruments.add("XYZ", tick_size=0.01, lot_size=1.0, reference_price=100.0, stale_after_ns=500 * MS)
    return impl.QuoteBook(instruments, max_spread_fraction=0.01, max_age_ns=1_000 * MS,
                          max_future_skew_ns=100 * MS, max_jump_fraction=0.10)


def test_quote_when_valid_becomes_reference_price(book):
    assert book.reference_price(0) == 100.0
    assert book.on_quote(0, 99.5, 100.5, T0, T0) == R.OK
    assert book.reference_price(0) == 100.0
    assert book.on_quote(0, 101.0, 101.5, T0, T0) == R.OK
    assert book.reference_price(0) == 101.25
    assert book.quote(0)["arrival_ns"] == T0


@pytest.mark.parametrize("bid, ask, code", [
    (0.0, 100.0, R.QUOTE_NON_POSITIVE_BID),
    (-1.0, 100.0, R.QUOTE_NON_POSITIVE_BID),
    (math.nan, 100.0, R.QUOTE_NON_POSITIVE_BID),
    (math.inf, 100.0, R.QUOTE_NON_POSITIVE_BID),
    (100.0, 0.0, R.QUOTE_NON_POSITIVE_ASK),
    (100.0, math.nan, R.QUOTE_NON_POSITIVE_ASK),
    (100.0, 100.0, R.QUOTE_CROSSED),                  # locked
    (100.1, 100.0, R.QUOTE_CROSSED),                  # crossed
    (99.0, 101.0, R.QUOTE_SPREAD_TOO_WIDE),           # 2 / 100 = 2% > 1%
])
def test_quote_when_prices_invalid_is_refused_and_counted(book, bid, ask, code):
    assert book.on_quote(0, bid, ask, T0, T0) == code
    assert book.reference_price(0) == 100.0
    assert book.counters() == {"valid": 0, "invalid": {code: 1}}


def test_quote_when_spread_exactly_at_max_is_valid(book):
    assert book.on_quote(0, 99.5, 100.5, T0, T0) == R.OK            # 1 / 100 = 1%
    assert book.on_quote(0, 99.49, 100.5, T0, T0) == R.QUOTE_SPREAD_TOO_WIDE


def test_quote_when_older_than_max_age_is_refused(book):
    assert book.on_quote(0, 99.9, 100.1, T0 - 1_000 * MS, T0) == R.OK
    assert book.on_quote(0, 99.9, 100.1, T0 - 1_000 * MS - 1, T0) == R.QUOTE_TOO_OLD


def test_quote_when_dated_in_future_beyond_skew_is_refused(book):
    assert book.on_quote(0, 99.9, 100.1, T0 + 100 * MS, T0) == R.OK
    assert book.on_quote(0, 99.9, 100.1, T0 + 100 * MS + 1, T0) == R.QUOTE_FUTURE_DATED


def test_quote_when_mid_jumps_beyond_band_is_refused_until_reset(book):
    assert book.on_quote(0, 99.5, 100.5, T0, T0) == R.OK            # mid 100
    assert book.on_quote(0, 109.5, 110.5, T0, T0) == R.OK            # +10% exactly
    assert book.on_quote(0, 120.5, 121.5, T0, T0) == R.OK            # +10% again, from 110
    assert book.on_quote(0, 133.6, 134.62, T0, T0) == R.QUOTE_PRICE_JUMP  # mid 134.11: +10.008%
    assert book.reference_price(0) == 121.0
    book.reset(0)
    assert book.reference_price(0) == 100.0                          # back to the configured price
    assert book.on_quote(0, 133.6, 134.62, T0, T0) == R.OK


def test_quote_when_instrument_unknown_is_refused(book):
    assert book.on_quote(3, 99.9, 100.1, T0, T0) == R.UNKNOWN_INSTRUMENT
    assert book.on_trade(-1, 100.0, T0, T0) == R.UNKNOWN_INSTRUMENT


def test_trade_when_no_quote_becomes_reference_and_bad_price_is_refused(book):
    assert book.on_trade(0, 0.0, T0, T0) == R.TRADE_INVALID_PRICE
    assert book.on_trade(0, math.nan, T0, T0) == R.TRADE_INVALID_PRICE
    assert book.on_trade(0, 98.0, T0, T0) == R.OK
    assert book.reference_price(0) == 98.0
    assert book.on_quote(0, 99.5, 100.5, T0, T0) == R.OK
    assert book.reference_price(0) == 100.0                          # a valid mid beats the last trade


def test_is_stale_when_no_valid_quote_within_stale_after(book):
    assert book.is_stale(0, T0)
    assert book.on_quote(0, 99.9, 100.1, T0, T0) == R.OK
    assert not book.is_stale(0, T0 + 500 * MS)
    assert book.is_stale(0, T0 + 500 * MS + 1)
    assert book.on_quote(0, 99.0, 101.0, T0 + 400 * MS, T0 + 400 * MS) != R.OK   # invalid: no refresh
    assert book.is_stale(0, T0 + 500 * MS + 1)


@pytest.mark.parametrize("setting", [{"max_spread_fraction": 0.0}, {"max_age_ns": 0},
                                     {"max_future_skew_ns": -1}, {"max_jump_fraction": math.nan}])
def test_quote_book_when_configured_with_nonsense_raises_naming_the_setting(impl, setting):
    instruments = impl.Instruments(1)
    with pytest.raises(ValueError, match=next(iter(setting))):
        impl.QuoteBook(instruments, **setting)
