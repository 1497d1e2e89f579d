"""Matching engine: price-time priority, order types, cancel/replace and their rejects, exact numbers."""

import random
import time
from decimal import Decimal

import pytest

from fixgate.simulator.matching import (
    BookChanged,
    CancelReject,
    CancelRejectReason,
    CancelRejectResponseTo,
    ExecType,
    ExecutionReport,
    MatchingEngine,
    OrdStatus,
    Side,
    SimInstrument,
    Trade,
)

D = Decimal
T0 = 1_700_000_000_000_000_000


@pytest.fixture
def engine():
    return MatchingEngine([
        SimInstrument("XYZ", D("0.01"), D("1"), D("100")),
        SimInstrument("BTC-USD", D("0.5"), D("0.001"), D("50000")),
    ])


def buy(engine, owner, cl_ord_id, qty, price, tif="DAY", ord_type="LIMIT", symbol="XYZ", now_ns=T0):
    return engine.new_order(owner, cl_ord_id, symbol, "BUY", ord_type, D(qty), None if price is None else D(price),
                            tif, now_ns)


def sell(engine, owner, cl_ord_id, qty, price, tif="DAY", ord_type="LIMIT", symbol="XYZ", now_ns=T0):
    return engine.new_order(owner, cl_ord_id, symbol, "SELL", ord_type, D(qty), None if price is None else D(price),
                            tif, now_ns)


def reports(events, owner=None, exec_type=None):
    return [event for event in events if isinstance(event, ExecutionReport)
            and (owner is None or event.owner == owner) and (exec_type is None or event.exec_type is exec_type)]


def trades(events):
    return [event for event in events if isinstance(event, Trade)]


def fills(events):
    """Return (cl_ord_id, last_qty, last_px) for every TRADE report of a resting order (second of each pair)."""
    pairs = reports(events, exec_type=ExecType.TRADE)
    return [(report.cl_ord_id, report.last_qty, report.last_px) for report in pairs[1::2]]


def kinds(events):
    return [event.exec_type if isinstance(event, ExecutionReport) else type(event).__name__ for event in events]


# -- ACCEPTANCE AND REJECTS ---------------------------------------------------------------------------


def test_new_order_when_limit_does_not_cross_acknowledges_and_rests(engine):
    events = buy(engine, "FIXGATE", "c1", 10, "99.50")
    assert kinds(events) == [ExecType.NEW, "BookChanged"]
    (report,) = reports(events)
    assert (report.order_id, report.exec_id, report.ord_status) == ("O1", "E1", OrdStatus.NEW)
    assert (report.order_qty, report.price, report.cum_qty, report.leaves_qty) == (D(10), D("99.50"), 0, D(10))
    assert report.last_px is None and report.transact_ns == T0
    assert events[-1] == BookChanged("XYZ", T0)
    assert engine.top_of_book("XYZ") == (D("99.50"), D(10), None, None)


@pytest.mark.parametrize("symbol, qty, price, ord_type, words", [
    ("XYZ", "10", "100.003", "LIMIT", "price 100.003 is not a multiple of the tick 0.01"),
    ("XYZ", "1.5", "100.00", "LIMIT", "quantity 1.5 is not a multiple of the lot 1"),
    ("XYZ", "0", "100.00", "LIMIT", "quantity 0 must be positive"),
    ("XYZ", "-3", "100.00", "LIMIT", "quantity -3 must be positive"),
    ("XYZ", "10", "0", "LIMIT", "price 0 must be positive"),
    ("XYZ", "10", "-1.00", "LIMIT", "price -1.00 must be positive"),
    ("XYZ", "10", None, "LIMIT", "a limit order needs a price"),
    ("XYZ", "10", "NaN", "LIMIT", "is not a number"),
    ("XYZ", "1E+80", "100.00", "LIMIT", "quantity 1E+80 is too large"),
    ("NOPE", "10", "100.00", "LIMIT", "unknown symbol NOPE"),
    ("BTC-USD", "0.0005", "50000", "LIMIT", "quantity 0.0005 is not a multiple of the lot 0.001"),
    ("BTC-USD", "0.001", "50000.2", "LIMIT", "price 50000.2 is not a multiple of the tick 0.5"),
    ("XYZ", "2.5", None, "MARKET", "quantity 2.5 is not a multiple of the lot 1"),
])
def test_new_order_when_input_invalid_rejects_with_readable_text(engine, symbol, qty, price, ord_type, words):
    events = engine.new_order("FIXGATE", "c1", symbol, "BUY", ord_type, D(qty), None if price is None else D(price),
                              "DAY", T0)
    (report,) = events
    assert (report.exec_type, report.ord_status, report.order_id) == (ExecType.REJECTED, OrdStatus.REJECTED, "NONE")
    assert words in report.text
    assert report.leaves_qty == 0 and report.cum_qty == 0
    assert engine.open_orders("FIXGATE") == []


def test_new_order_when_off_tick_text_is_exactly_the_figures(engine):
    (report,) = buy(engine, "FIXGATE", "c1", 10, "100.003")
    assert report.text == "price 100.003 is not a multiple of the tick 0.01"


def test_new_order_when_cl_ord_id_is_live_for_the_owner_rejects(engine):
    buy(engine, "FIXGATE", "c1", 10, "99.00")
    (report,) = buy(engine, "FIXGATE", "c1", 5, "98.00")
    assert report.exec_type is ExecType.REJECTED
    assert report.text == "cl_ord_id c1 is already used by a live order of FIXGATE"
    assert engine.depth("XYZ") == ([(D("99.00"), D(10))], [])


def test_new_order_when_cl_ord_id_is_live_for_another_owner_or_finished_accepts(engine):
    buy(engine, "FIXGATE", "c1", 10, "99.00")
    assert kinds(buy(engine, "OTHER", "c1", 5, "98.00"))[0] is ExecType.NEW
    engine.cancel("FIXGATE", "c2", "c1", "XYZ", "BUY", T0)
    assert kinds(buy(engine, "FIXGATE", "c1", 5, "97.00"))[0] is ExecType.NEW


def test_new_order_when_side_is_unknown_raises_value_error(engine):
    with pytest.raises(ValueError):
        engine.new_order("FIXGATE", "c1", "XYZ", "SIDEWAYS", "LIMIT", D(1), D(100), "DAY", T0)


def test_new_order_when_price_is_a_float_raises_value_error(engine):
    with pytest.raises(ValueError, match="float"):
        engine.new_order("FIXGATE", "c1", "XYZ", "BUY", "LIMIT", D(1), 100.25, "DAY", T0)


def test_new_order_when_numbers_are_int_or_str_accepts_them_exactly(engine):
    events = engine.new_order("FIXGATE", "c1", "XYZ", "BUY", "LIMIT", 3, "100.10", "DAY", T0)
    assert reports(events)[0].price == D("100.10") and reports(events)[0].order_qty == D(3)


# -- PRICE-TIME PRIORITY ------------------------------------------------------------------------------


def test_matching_when_two_orders_rest_at_one_price_fills_them_in_arrival_order(engine):
    sell(engine, "A", "first", 5, "100.00")
    sell(engine, "B", "second", 5, "100.00")
    events = buy(engine, "C", "taker", 7, "100.00")
    assert fills(events) == [("first", D(5), D("100.00")), ("second", D(2), D("100.00"))]
    assert engine.top_of_book("XYZ") == (None, None, D("100.00"), D(3))


def test_matching_when_a_better_price_arrives_later_fills_it_first(engine):
    sell(engine, "A", "early", 5, "100.02")
    sell(engine, "B", "better", 5, "100.01")
    events = buy(engine, "C", "taker", 6, "100.02")
    assert fills(events) == [("better", D(5), D("100.01")), ("early", D(1), D("100.02"))]


def test_matching_when_bids_rest_fills_the_highest_then_earliest(engine):
    buy(engine, "A", "low", 1, "99.00")
    buy(engine, "A", "high-early", 1, "99.50")
    buy(engine, "B", "high-late", 1, "99.50")
    events = sell(engine, "C", "taker", 3, "98.00")
    assert [fill[0] for fill in fills(events)] == ["high-early", "high-late", "low"]


def test_matching_when_buy_limit_below_the_ask_does_not_trade(engine):
    sell(engine, "A", "s1", 5, "100.01")
    events = buy(engine, "B", "b1", 5, "100.00")
    assert trades(events) == []
    assert engine.top_of_book("XYZ") == (D("100.00"), D(5), D("100.01"), D(5))


def test_trade_when_aggressor_crosses_prints_at_the_resting_price_for_both_sides(engine):
    sell(engine, "A", "s1", 5, "100.00")
    events = buy(engine, "B", "b1", 5, "101.00", now_ns=T0 + 7)
    assert kinds(events) == [ExecType.NEW, ExecType.TRADE, ExecType.TRADE, "Trade", "BookChanged"]
    taker, maker = reports(events, exec_type=ExecType.TRADE)
    assert (taker.owner, maker.owner) == ("B", "A")
    assert taker.last_px == maker.last_px == D("100.00")
    assert taker.ord_status is maker.ord_status is OrdStatus.FILLED
    assert trades(events) == [Trade("XYZ", D("100.00"), D(5), Side.BUY, T0 + 7)]
    assert engine.last_trade("XYZ") == trades(events)[0]


def test_partial_fill_when_sweeping_levels_reports_exact_cum_leaves_and_average_price(engine):
    sell(engine, "A", "s1", 3, "100.00")
    sell(engine, "A", "s2", 2, "100.01")
    sell(engine, "A", "s3", 1, "100.03")
    events = buy(engine, "B", "b1", 10, "100.02")
    taker = [report for report in reports(events, owner="B", exec_type=ExecType.TRADE)]
    assert [(r.last_qty, r.cum_qty, r.leaves_qty, r.ord_status) for r in taker] == [
        (D(3), D(3), D(7), OrdStatus.PARTIALLY_FILLED), (D(2), D(5), D(5), OrdStatus.PARTIALLY_FILLED)]
    assert taker[0].avg_px == D("100.00") and str(taker[0].avg_px) == "100.00"
    assert taker[1].avg_px == D("100.004")
    assert engine.top_of_book("XYZ") == (D("100.02"), D(5), D("100.03"), D(1))
    (status,) = engine.open_orders("B")
    assert (status.exec_type, status.cum_qty, status.leaves_qty) == (ExecType.ORDER_STATUS, D(5), D(5))


def test_average_price_when_not_a_whole_tick_is_exact_to_ten_places(engine):
    sell(engine, "A", "s1", 1, "100.00")
    sell(engine, "A", "s2", 2, "100.01")
    events = buy(engine, "B", "b1", 3, "100.01")
    assert reports(events, owner="B")[-1].avg_px == D("100.0066666667")


def test_numbers_when_instrument_has_fractional_lot_come_back_exact(engine):
    sell(engine, "A", "s1", "0.005", "50000.5", symbol="BTC-USD")
    events = buy(engine, "B", "b1", "0.012", "50001", symbol="BTC-USD")
    taker = reports(events, owner="B")
    assert str(taker[0].order_qty) == "0.012" and str(taker[0].price) == "50001.0"
    assert (str(taker[1].last_qty), str(taker[1].last_px), str(taker[1].leaves_qty)) == ("0.005", "50000.5", "0.007")
    assert engine.depth("BTC-USD") == ([(D("50001.0"), D("0.007"))], [])


def test_self_trade_when_owner_crosses_its_own_order_trades(engine):
    sell(engine, "A", "s1", 5, "100.00")
    events = buy(engine, "A", "b1", 5, "100.00")
    assert [r.cl_ord_id for r in reports(events, exec_type=ExecType.TRADE)] == ["b1", "s1"]


def test_sell_short_when_it_crosses_a_bid_matches_as_a_sell_and_echoes_its_side(engine):
    buy(engine, "A", "b1", 5, "100.00")
    events = engine.new_order("B", "s1", "XYZ", "SELL_SHORT", "LIMIT", D(5), D("100.00"), "DAY", T0)
    assert reports(events, owner="B")[-1].side is Side.SELL_SHORT
    assert trades(events)[0].aggressor_side is Side.SELL
    assert engine.cancel("B", "x", "s1", "XYZ", "SELL", T0)[0].reason is CancelRejectReason.TOO_LATE


# -- IMMEDIATE ORDERS ---------------------------------------------------------------------------------


def test_ioc_when_partly_executable_fills_and_cancels_the_rest(engine):
    sell(engine, "A", "s1", 3, "100.00")
    events = buy(engine, "B", "b1", 10, "100.00", tif="IOC")
    assert kinds(events) == [ExecType.NEW, ExecType.TRADE, ExecType.TRADE, "Trade", ExecType.CANCELED, "BookChanged"]
    cancel = reports(events, exec_type=ExecType.CANCELED)[0]
    assert (cancel.ord_status, cancel.cum_qty, cancel.leaves_qty) == (OrdStatus.CANCELED, D(3), D(0))
    assert engine.top_of_book("XYZ") == (None, None, None, None)
    assert engine.open_orders("B") == []


def test_ioc_when_nothing_crosses_cancels_without_touching_the_book(engine):
    sell(engine, "A", "s1", 3, "100.01")
    events = buy(engine, "B", "b1", 10, "100.00", tif="IOC")
    assert kinds(events) == [ExecType.NEW, ExecType.CANCELED]
    assert reports(events)[-1].cum_qty == 0


def test_fok_when_only_part_is_available_trades_nothing(engine):
    sell(engine, "A", "s1", 4, "100.00")
    sell(engine, "A", "s2", 4, "100.01")
    sell(engine, "A", "s3", 9, "100.02")
    events = buy(engine, "B", "b1", 10, "100.01", tif="FOK")
    assert kinds(events) == [ExecType.NEW, ExecType.CANCELED]
    assert reports(events)[-1].text == "fill-or-kill quantity 10 is not available at once (available 8)"
    assert engine.depth("XYZ")[1] == [(D("100.00"), D(4)), (D("100.01"), D(4)), (D("100.02"), D(9))]
    assert engine.last_trade("XYZ") is None


def test_fok_when_two_levels_hold_the_quantity_fills_across_them(engine):
    sell(engine, "A", "s1", 4, "100.00")
    sell(engine, "A", "s2", 8, "100.01")
    events = buy(engine, "B", "b1", 10, "100.01", tif="FOK")
    assert fills(events) == [("s1", D(4), D("100.00")), ("s2", D(6), D("100.01"))]
    assert reports(events, owner="B")[-1].ord_status is OrdStatus.FILLED
    assert ExecType.CANCELED not in kinds(events)


def test_market_order_when_book_is_empty_cancels_with_no_liquidity(engine):
    events = buy(engine, "B", "m1", 5, None, ord_type="MARKET", tif="DAY")
    assert kinds(events) == [ExecType.NEW, ExecType.CANCELED]
    assert reports(events)[-1].text == "no liquidity" and reports(events)[-1].price is None
    assert engine.status("B", "m1").ord_status is OrdStatus.CANCELED


def test_market_order_when_day_sweeps_every_price_and_never_rests(engine):
    buy(engine, "A", "b1", 2, "99.00")
    buy(engine, "A", "b2", 2, "50.00")
    events = sell(engine, "B", "m1", 6, "1000.00", ord_type="MARKET", tif="GTC")
    assert fills(events) == [("b1", D(2), D("99.00")), ("b2", D(2), D("50.00"))]
    last = reports(events)[-1]
    assert (last.exec_type, last.cum_qty, last.leaves_qty) == (ExecType.CANCELED, D(4), D(0))
    assert last.text == "no liquidity for the remaining 2" and last.avg_px == D("74.50")
    assert engine.top_of_book("XYZ") == (None, None, None, None)


# -- CANCEL -------------------------------------------------------------------------------------------


def test_cancel_when_order_is_live_reports_canceled_with_both_ids(engine):
    buy(engine, "A", "b1", 5, "99.00")
    events = engine.cancel("A", "b1-cancel", "b1", "XYZ", "BUY", T0 + 1)
    assert kinds(events) == [ExecType.CANCELED, "BookChanged"]
    report = events[0]
    assert (report.cl_ord_id, report.orig_cl_ord_id, report.ord_status, report.leaves_qty) == (
        "b1-cancel", "b1", OrdStatus.CANCELED, D(0))
    assert engine.top_of_book("XYZ") == (None, None, None, None)


def test_cancel_when_order_is_unknown_rejects_as_unknown_order(engine):
    (reject,) = engine.cancel("A", "x1", "ghost", "XYZ", "BUY", T0)
    assert isinstance(reject, CancelReject)
    assert (reject.reason, reject.response_to, reject.order_id, reject.ord_status) == (
        CancelRejectReason.UNKNOWN_ORDER, CancelRejectResponseTo.CANCEL, "NONE", OrdStatus.REJECTED)


def test_cancel_when_order_belongs_to_another_owner_rejects_as_unknown_order(engine):
    buy(engine, "A", "b1", 5, "99.00")
    assert engine.cancel("B", "x1", "b1", "XYZ", "BUY", T0)[0].reason is CancelRejectReason.UNKNOWN_ORDER


def test_cancel_when_order_is_filled_rejects_too_late(engine):
    sell(engine, "A", "s1", 5, "100.00")
    buy(engine, "B", "b1", 5, "100.00")
    (reject,) = engine.cancel("A", "x1", "s1", "XYZ", "SELL", T0)
    assert (reject.reason, reject.order_id, reject.ord_status) == (CancelRejectReason.TOO_LATE, "O1", OrdStatus.FILLED)
    assert "too late to cancel" in reject.text


def test_cancel_when_sent_twice_rejects_the_second_too_late(engine):
    buy(engine, "A", "b1", 5, "99.00")
    engine.cancel("A", "x1", "b1", "XYZ", "BUY", T0)
    (reject,) = engine.cancel("A", "x2", "b1", "XYZ", "BUY", T0)
    assert (reject.reason, reject.ord_status) == (CancelRejectReason.TOO_LATE, OrdStatus.CANCELED)


@pytest.mark.parametrize("symbol, side", [("BTC-USD", "BUY"), ("XYZ", "SELL")])
def test_cancel_when_symbol_or_side_differs_rejects_and_leaves_the_order(engine, symbol, side):
    buy(engine, "A", "b1", 5, "99.00")
    (reject,) = engine.cancel("A", "x1", "b1", symbol, side, T0)
    assert reject.reason is CancelRejectReason.UNKNOWN_ORDER and reject.order_id == "O1"
    assert engine.top_of_book("XYZ")[:2] == (D("99.00"), D(5))


def test_cancel_when_new_cl_ord_id_is_another_live_order_rejects_as_duplicate(engine):
    buy(engine, "A", "b1", 5, "99.00")
    buy(engine, "A", "b2", 5, "98.00")
    (reject,) = engine.cancel("A", "b2", "b1", "XYZ", "BUY", T0)
    assert reject.reason is CancelRejectReason.DUPLICATE_CL_ORD_ID


def test_cancel_all_when_owner_has_orders_cancels_only_them(engine):
    buy(engine, "A", "b1", 5, "99.00")
    sell(engine, "A", "s1", 5, "50001", symbol="BTC-USD")
    buy(engine, "B", "b1", 5, "98.00")
    events = engine.cancel_all("A", T0 + 5)
    assert kinds(events) == [ExecType.CANCELED, ExecType.CANCELED, "BookChanged", "BookChanged"]
    assert [r.cl_ord_id for r in reports(events)] == ["b1", "s1"]
    assert engine.open_orders("A") == [] and len(engine.open_orders("B")) == 1
    assert engine.top_of_book("XYZ") == (D("98.00"), D(5), None, None)
    assert engine.cancel_all("A", T0 + 6) == []


def test_expire_day_orders_when_called_expires_day_and_keeps_gtc(engine):
    buy(engine, "A", "day", 5, "99.00", tif="DAY")
    buy(engine, "A", "gtc", 5, "98.00", tif="GTC")
    events = engine.expire_day_orders(T0)
    assert [(r.cl_ord_id, r.exec_type, r.ord_status) for r in reports(events)] == [
        ("day", ExecType.EXPIRED, OrdStatus.EXPIRED)]
    assert [r.cl_ord_id for r in engine.open_orders("A")] == ["gtc"]


# -- REPLACE ------------------------------------------------------------------------------------------


def test_replace_when_quantity_goes_down_keeps_priority(engine):
    sell(engine, "A", "first", 10, "100.00")
    sell(engine, "B", "second", 10, "100.00")
    events = engine.replace("A", "first-2", "first", "XYZ", "SELL", D(4), D("100.00"), T0)
    assert kinds(events) == [ExecType.REPLACED, "BookChanged"]
    report = events[0]
    assert (report.cl_ord_id, report.orig_cl_ord_id, report.order_qty, report.leaves_qty, report.ord_status) == (
        "first-2", "first", D(4), D(4), OrdStatus.NEW)
    assert fills(buy(engine, "C", "taker", 5, "100.00")) == [("first-2", D(4), D("100.00")),
                                                               ("second", D(1), D("100.00"))]


def test_replace_when_quantity_goes_up_loses_priority(engine):
    sell(engine, "A", "first", 10, "100.00")
    sell(engine, "B", "second", 10, "100.00")
    engine.replace("A", "first-2", "first", "XYZ", "SELL", D(15), D("100.00"), T0)
    assert fills(buy(engine, "C", "taker", 12, "100.00")) == [("second", D(10), D("100.00")),
                                                                ("first-2", D(2), D("100.00"))]


def test_replace_when_price_changes_loses_priority(engine):
    sell(engine, "A", "first", 10, "100.01")
    sell(engine, "B", "second", 10, "100.00")
    engine.replace("A", "first-2", "first", "XYZ", "SELL", D(10), D("100.00"), T0)
    assert fills(buy(engine, "C", "taker", 12, "100.00")) == [("second", D(10), D("100.00")),
                                                                ("first-2", D(2), D("100.00"))]


def test_replace_when_price_unchanged_and_no_price_given_keeps_the_price(engine):
    buy(engine, "A", "b1", 10, "99.00")
    events = engine.replace("A", "b2", "b1", "XYZ", "BUY", D(6), None, T0)
    assert events[0].price == D("99.00") and engine.top_of_book("XYZ")[:2] == (D("99.00"), D(6))


def test_replace_when_partly_filled_reports_leaves_as_new_quantity_less_filled(engine):
    buy(engine, "A", "b1", 10, "99.00")
    sell(engine, "B", "s1", 4, "99.00")
    (report, changed) = engine.replace("A", "b2", "b1", "XYZ", "BUY", D(7), D("99.00"), T0)
    assert (report.ord_status, report.cum_qty, report.leaves_qty) == (OrdStatus.PARTIALLY_FILLED, D(4), D(3))
    assert engine.top_of_book("XYZ")[:2] == (D("99.00"), D(3))


def test_replace_when_new_price_crosses_trades_after_the_replaced_report(engine):
    buy(engine, "B", "b1", 3, "99.00")
    sell(engine, "A", "s1", 5, "99.50")
    events = engine.replace("A", "s2", "s1", "XYZ", "SELL", D(5), D("98.00"), T0)
    assert kinds(events) == [ExecType.REPLACED, ExecType.TRADE, ExecType.TRADE, "Trade", "BookChanged"]
    assert fills(events) == [("b1", D(3), D("99.00"))]
    assert trades(events)[0].aggressor_side is Side.SELL
    assert engine.top_of_book("XYZ") == (None, None, D("98.00"), D(2))


@pytest.mark.parametrize("new_qty", [4, 3])
def test_replace_when_quantity_not_above_filled_rejects(engine, new_qty):
    buy(engine, "A", "b1", 10, "99.00")
    sell(engine, "B", "s1", 4, "99.00")
    (reject,) = engine.replace("A", "b2", "b1", "XYZ", "BUY", D(new_qty), D("99.00"), T0)
    assert (reject.reason, reject.response_to, reject.ord_status) == (
        CancelRejectReason.OTHER, CancelRejectResponseTo.REPLACE, OrdStatus.PARTIALLY_FILLED)
    assert reject.text == f"new quantity {new_qty} is not above the filled quantity 4"
    assert engine.status("A", "b1").leaves_qty == D(6)


@pytest.mark.parametrize("qty, price, words", [
    ("10", "99.005", "price 99.005 is not a multiple of the tick 0.01"),
    ("2.5", "99.00", "quantity 2.5 is not a multiple of the lot 1"),
    ("10", "0", "price 0 must be positive"),
])
def test_replace_when_price_or_quantity_invalid_rejects_and_keeps_the_order(engine, qty, price, words):
    buy(engine, "A", "b1", 10, "99.00")
    (reject,) = engine.replace("A", "b2", "b1", "XYZ", "BUY", D(qty), D(price), T0)
    assert reject.reason is CancelRejectReason.OTHER and reject.text == words
    assert engine.top_of_book("XYZ")[:2] == (D("99.00"), D(10))


def test_replace_when_done_moves_the_order_to_the_new_cl_ord_id(engine):
    buy(engine, "A", "b1", 10, "99.00")
    engine.replace("A", "b2", "b1", "XYZ", "BUY", D(8), D("99.00"), T0)
    assert engine.status("A", "b1") is None
    assert engine.cancel("A", "x", "b1", "XYZ", "BUY", T0)[0].reason is CancelRejectReason.UNKNOWN_ORDER
    assert engine.status("A", "b2").leaves_qty == D(8)
    assert engine.cancel("A", "b3", "b2", "XYZ", "BUY", T0)[0].exec_type is ExecType.CANCELED


def test_replace_when_order_is_filled_rejects_too_late(engine):
    sell(engine, "A", "s1", 5, "100.00")
    buy(engine, "B", "b1", 5, "100.00")
    (reject,) = engine.replace("A", "s2", "s1", "XYZ", "SELL", D(9), D("100.00"), T0)
    assert (reject.reason, reject.response_to) == (CancelRejectReason.TOO_LATE, CancelRejectResponseTo.REPLACE)


# -- QUERIES AND IDENTIFIERS --------------------------------------------------------------------------


def test_status_when_order_is_unknown_returns_none(engine):
    assert engine.status("A", "nothing") is None


def test_status_when_order_is_filled_reports_its_final_state(engine):
    sell(engine, "A", "s1", 5, "100.00")
    buy(engine, "B", "b1", 5, "100.00", now_ns=T0 + 9)
    report = engine.status("A", "s1")
    assert (report.exec_type, report.ord_status, report.cum_qty, report.leaves_qty, report.transact_ns) == (
        ExecType.ORDER_STATUS, OrdStatus.FILLED, D(5), D(0), T0 + 9)


def test_exec_ids_when_many_reports_are_issued_are_unique_across_the_engine(engine):
    events = []
    for number in range(20):
        events += sell(engine, "A", f"s{number}", 2, "100.00")
        events += buy(engine, "B", f"b{number}", 3, "100.00", tif="IOC")
        events += engine.cancel("B", f"x{number}", f"b{number}", "XYZ", "BUY", T0)
    events += engine.open_orders("A")
    exec_ids = [report.exec_id for report in reports(events)]
    assert len(exec_ids) == len(set(exec_ids)) > 60
    assert [r.order_id for r in reports(events, owner="A", exec_type=ExecType.NEW)][:3] == ["O1", "O3", "O5"]


def test_depth_when_orders_share_levels_aggregates_them_best_first(engine):
    for number, price in enumerate(["99.00", "99.50", "99.00", "98.00", "97.00"]):
        buy(engine, "A", f"b{number}", number + 1, price)
    sell(engine, "A", "s1", 7, "101.00")
    bids, asks = engine.depth("XYZ", levels=3)
    assert bids == [(D("99.50"), D(2)), (D("99.00"), D(4)), (D("98.00"), D(4))]
    assert asks == [(D("101.00"), D(7))]
    assert engine.depth("XYZ", levels=0) == ([], [])


def test_book_views_when_symbol_unknown_raise_value_error(engine):
    with pytest.raises(ValueError, match="unknown symbol"):
        engine.top_of_book("NOPE")



def test_remembered_orders_when_the_limit_is_reached_forgets_the_oldest_finished_order():
    engine = MatchingEngine([SimInstrument("XYZ", D("0.01"), D("1"), D("100"))], remembered_orders=2)
    for number in range(3):
        buy(engine, "A", f"c{number}", 1, "99.00", tif="IOC")
    assert engine.status("A", "c0") is None and engine.status("A", "c2").ord_status is OrdStatus.CANCELED
    assert engine.cancel("A", "x", "c0", "XYZ", "BUY", T0)[0].reason is CancelRejectReason.UNKNOWN_ORDER
    assert engine.cancel("A", "x", "c1", "XYZ", "BUY", T0)[0].reason is CancelRejectReason.TOO_LATE


def test_priority_when_an_order_reenters_one_level_many_times_stays_in_arrival_order(engine):
    sell(engine, "A", "steady", 1, "100.00")
    sell(engine, "B", "mover-0", 1, "100.00")
    for number in range(1, 200):
        engine.replace("B", f"mover-{number}", f"mover-{number - 1}", "XYZ", "SELL", D(1 + number % 2 + 1),
                       D("100.00"), T0)
    sell(engine, "C", "late", 1, "100.00")
    events = buy(engine, "D", "taker", 10, "100.00")
    assert [fill[0] for fill in fills(events)] == ["steady", "mover-199", "late"]
    assert engine.top_of_book("XYZ") == (D("100.00"), D(5), None, None)

# -- LOAD ---------------------------------------------------------------------------------------------


def test_engine_when_twenty_thousand_random_orders_arrive_stays_fast_and_consistent(engine):
    generator = random.Random(42)
    start = time.perf_counter()
    bought = sold = D(0)
    live: list[tuple[str, str]] = []
    for number in range(20_000):
        owner = generator.choice("ABC")
        side = generator.choice(("BUY", "SELL"))
        action = generator.random()
        if action < 0.15 and live:
            owner, cl_ord_id = live.pop(generator.randrange(len(live)))
            events = engine.cancel(owner, f"x{number}", cl_ord_id, "XYZ", "BUY", number)
            events += engine.cancel(owner, f"y{number}", cl_ord_id, "XYZ", "SELL", number)
        elif action < 0.25 and live:
            index = generator.randrange(len(live))
            owner, cl_ord_id = live[index]
            live[index] = (owner, f"r{number}")
            events = engine.replace(owner, f"r{number}", cl_ord_id, "XYZ", "BUY", D(generator.randint(1, 20)),
                                    D(9_900 + generator.randint(0, 200)) / 100, number)
            events += engine.replace(owner, f"r{number}", cl_ord_id, "XYZ", "SELL", D(generator.randint(1, 20)),
                                     D(9_900 + generator.randint(0, 200)) / 100, number)
        else:
            tif = generator.choice(("DAY", "GTC", "GTC", "IOC", "FOK"))
            ord_type = "MARKET" if generator.random() < 0.05 else "LIMIT"
            events = engine.new_order(owner, f"c{number}", "XYZ", side, ord_type, D(generator.randint(1, 20)),
                                      D(9_900 + generator.randint(0, 200)) / 100, tif, number)
            live.append((owner, f"c{number}"))
        for report in reports(events, exec_type=ExecType.TRADE):
            if report.side is Side.BUY:
                bought += report.last_qty
            else:
                sold += report.last_qty
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"20,000 orders took {elapsed:.2f} s"
    assert bought == sold > 0
    best_bid, _, best_ask, _ = engine.top_of_book("XYZ")
    assert best_bid < best_ask
    open_orders = [report for owner in "ABC" for report in engine.open_orders(owner)]
    assert all(report.cum_qty + report.leaves_qty == report.order_qty for report in open_orders)
    bids, asks = engine.depth("XYZ", levels=1_000)
    assert sum(qty for _, qty in bids + asks) == sum(report.leaves_qty for report in open_orders)
