"""Reject reasons read as sentences with the figures the check used."""

import pytest

from fixgate._fast.codes import RejectCode as R, RiskState
from fixgate._fast.instruments import Instruments
from fixgate._fast.quotes import QuoteBook
from fixgate._fast.risk import RiskBook
from fixgate._fast.throttle import Throttle
from fixgate.core.rejects import describe_reject

T0 = 1_700_000_000_000_000_000


def book_with(spec=None, **limits):
    instruments = Instruments(4)
    instruments.add("BTC-USD", **{"tick_size": 0.5, "lot_size": 0.001, "reference_price": 50_000.0,
                                  **(spec or {})})
    return RiskBook(instruments, QuoteBook(instruments), Throttle(2, 4), **limits)


def judged(book, qty, price, side=1, ord_type=2):
    code = book.check_new_order(0, 0, side, ord_type, qty, price, T0)
    return code, describe_reject(code, book, instrument_id=0, side=side, ord_type=ord_type, qty=qty,
                                 price=price)


@pytest.mark.parametrize("spec, limits, qty, price, code, words", [
    ({"max_order_qty": 1.0}, {}, 5.0, 50_000.0, R.MAX_ORDER_QUANTITY,
     "quantity 5 exceeds max order qty 1 for BTC-USD"),
    ({"max_order_notional": 40_000.0}, {}, 0.9, 50_000.0, R.MAX_ORDER_NOTIONAL,
     "notional 45000 exceeds max order notional 40000 for BTC-USD"),
    ({}, {"max_order_notional": 1_000.0}, 0.1, 50_000.0, R.MAX_ACCOUNT_ORDER_NOTIONAL,
     "notional 5000 exceeds the account max order notional 1000"),
    ({"adv": 100.0, "max_adv_fraction": 0.01}, {}, 1.5, 50_000.0, R.ADV_PARTICIPATION,
     "quantity 1.5 exceeds 1, the allowed share of average daily volume 100 for BTC-USD"),
    ({"price_collar": 0.05}, {}, 0.1, 60_000.0, R.PRICE_COLLAR,
     "price 60000 is 20% from reference 50000, outside the 5% collar for BTC-USD"),
    ({"max_position": 2.0}, {}, 2.5, 50_000.0, R.POSITION_LIMIT,
     "buy 2.5 would take the worst-case position to 2.5 (position 0 + open buys 0), above the limit 2"),
    ({}, {"max_gross_exposure": 10_000.0}, 0.3, 50_000.0, R.GROSS_EXPOSURE,
     "gross exposure 0 + order 15000 exceeds max gross exposure 10000"),
    ({}, {"max_leverage": 1.0, "equity": 10_000.0}, 0.3, 50_000.0, R.LEVERAGE,
     "leverage 1.5 (gross 15000 / equity 10000) exceeds max leverage 1"),
    ({}, {"max_daily_orders": 0}, 0.1, 50_000.0, R.DAILY_ORDER_COUNT, "daily order count cap 0 reached"),
    ({}, {"max_daily_notional": 1_000.0}, 0.1, 50_000.0, R.DAILY_NOTIONAL,
     "daily notional 0 + order 5000 exceeds the daily cap 1000"),
    ({"max_open_orders": 0}, {}, 0.1, 50_000.0, R.MAX_OPEN_ORDERS, "0 open orders already for BTC-USD"),
    ({"requires_live_quote": True, "stale_after_ns": 250_000_000}, {}, 0.1, 50_000.0, R.STALE_MARKET_DATA,
     "no valid quote for BTC-USD within 250 ms"),
    ({}, {}, 0.1, 50_000.2, R.PRICE_OFF_TICK, "price 50000.2 is not a multiple of the tick 0.5 for BTC-USD"),
    ({}, {}, 0.0005, 50_000.0, R.QUANTITY_NOT_LOT_MULTIPLE,
     "quantity 0.0005 is not a multiple of the lot 0.001 for BTC-USD"),
])
def test_describe_reject_when_limit_breached_names_figures_and_instrument(spec, limits, qty, price, code,
                                                                          words):
    result, text = judged(book_with(spec, **limits), qty, price)
    assert result == code
    assert words in text


def test_describe_reject_when_warning_state_explains_the_tightened_limit():
    book = book_with({"max_order_qty": 1.0, "price_collar": 0.04})
    book.set_risk_state(RiskState.WARNING)
    assert judged(book, 0.6, 50_000.0) == (
        R.WARNING_MAX_ORDER_QUANTITY,
        "quantity 0.6 exceeds max order qty 0.5 in WARNING state (1 x 0.5) for BTC-USD")
    assert judged(book, 0.1, 51_500.0) == (
        R.WARNING_PRICE_COLLAR,
        "price 51500 is 3% from reference 50000, outside the 2% collar in WARNING state for BTC-USD")


def test_describe_reject_when_code_has_no_detail_uses_table_text():
    book = book_with()
    book.set_risk_state(RiskState.KILL_SWITCH)
    assert judged(book, 0.1, 50_000.0) == (R.KILL_SWITCH, "kill switch active")
    book.set_risk_state(RiskState.NORMAL)
    book.instruments.set_halted(0, True)
    assert judged(book, 0.1, 50_000.0) == (R.INSTRUMENT_HALTED, "instrument halted: BTC-USD")


@pytest.mark.parametrize("code", list(R))
def test_describe_reject_when_any_code_and_unknown_instrument_never_raises(code):
    text = describe_reject(code, book_with(), instrument_id=9, side=1, ord_type=2, qty=-1.0,
                           price=float("nan"))
    assert text and isinstance(text, str)
