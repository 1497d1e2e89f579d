"""Pre-trade checks at their exact boundaries: at the limit accepted, one lot or tick over rejected.

Each test runs against the Cython book and its reference twin.
"""

import math

import pytest


from fixgate._fast.codes import OrdType, RejectCode as R, RiskState, Side
from fixgate.reference.instruments import MAX_UNITS

T0 = 1_700_000_000_000_000_000
MAX_LOTS = int(MAX_UNITS)                   # the largest lot or tick count the units API takes
INT64_MAX, INT64_MIN = 2**63 - 1, -2**63
BUY, SELL, SELL_SHORT = Side.BUY, Side.SELL, Side.SELL_SHORT
LIMIT, MARKET = OrdType.LIMIT, OrdType.MARKET


def order(book, qty, price=100.0, side=BUY, ord_type=LIMIT, *, instrument=0, session=0, now=T0):
    return book.check_new_order(session, instrument, side, ord_type, qty, price, now)


def order_units(book, lots, ticks=10_000, side=BUY, ord_type=LIMIT, *, instrument=0, session=0, now=T0):
    return book.check_new_order_units(session, instrument, side, ord_type, lots, ticks, now)


def filled(book, qty, price=100.0, side=BUY, instrument=0):
    """Accept and fully fill an order; return its id."""
    assert order(book, qty, price, side, instrument=instrument) == R.OK
    order_id = book.last_order_id
    assert book.on_filled(order_id, qty, price) == R.OK
    return order_id


# -- RISK STATE ---------------------------------------------------------------------------------------

def test_check_when_kill_switch_on_rejects_everything_first(make_book):
    book = make_book()
    book.set_risk_state(RiskState.KILL_SWITCH)
    assert order(book, 1) == R.KILL_SWITCH
    assert order(book, -5, instrument=99) == R.KILL_SWITCH        # beats every other reason
    book.set_risk_state(RiskState.NORMAL)
    assert order(book, 1) == R.OK


def test_check_when_circuit_breaker_on_accepts_only_position_reducing_orders(make_book):
    book = make_book()
    filled(book, 10)
    book.set_risk_state(RiskState.CIRCUIT_BREAKER)
    assert order(book, 1, side=BUY) == R.CIRCUIT_BREAKER
    assert order(book, 11, side=SELL) == R.CIRCUIT_BREAKER           # would flip the position
    assert order(book, 4, side=SELL) == R.OK                         # 10 - 4 open
    assert order(book, 7, side=SELL_SHORT) == R.CIRCUIT_BREAKER      # 10 - 4 - 7 < 0
    assert order(book, 6, side=SELL) == R.OK                         # 10 - 4 - 6 == 0


def test_check_when_circuit_breaker_on_and_flat_rejects_both_sides(make_book):
    book = make_book()
    book.set_risk_state(RiskState.CIRCUIT_BREAKER)
    assert order(book, 1, side=BUY) == R.CIRCUIT_BREAKER
    assert order(book, 1, side=SELL) == R.CIRCUIT_BREAKER


def test_check_when_reduce_only_accepts_only_position_reducing_orders_in_any_risk_state(make_book):
    book = make_book()
    filled(book, 10)
    book.set_reduce_only(True)
    assert order(book, 1, side=BUY) == R.REDUCE_ONLY
    assert order(book, 11, side=SELL) == R.REDUCE_ONLY               # would flip the position
    assert order(book, 4, side=SELL) == R.OK
    book.set_risk_state(RiskState.CIRCUIT_BREAKER)                   # the breaker names itself first
    assert order(book, 1, side=BUY) == R.CIRCUIT_BREAKER
    book.set_risk_state(RiskState.NORMAL)
    book.set_reduce_only(False)
    assert order(book, 1, side=BUY) == R.OK


def test_check_when_firm_budgets_set_refuses_past_each_of_them(make_book):
    book = make_book()
    assert book.firm_budget("daily_orders") == (None, 0.0)
    book.set_firm_budget("daily_orders", 2)
    assert order(book, 1) == R.OK and order(book, 1) == R.OK
    assert order(book, 1) == R.FIRM_DAILY_ORDERS
    assert book.firm_budget("daily_orders") == (2.0, 2.0)
    book.set_firm_budget("daily_orders", None)
    book.set_firm_budget("daily_notional", 500.0)                  # 200 so far
    assert order(book, 4) == R.FIRM_DAILY_NOTIONAL                  # 200 + 400 > 500
    assert order(book, 3) == R.OK
    book.set_firm_budget("daily_notional", None)
    book.set_firm_budget("gross_exposure", 1_000.0)                 # 3 open buys: 500
    assert order(book, 6) == R.FIRM_GROSS_EXPOSURE
    assert order(book, 5) == R.OK
    assert book.firm_budget("gross_exposure") == (1_000.0, 1_000.0)
    assert order(book, 1, side=SELL) == R.FIRM_GROSS_EXPOSURE       # an open sell adds to it too
    book.set_firm_budget("gross_exposure", None)
    book.set_firm_budget("client_credit", 300.0, session_id=1)
    assert order(book, 4, session=1) == R.FIRM_CLIENT_CREDIT
    assert order(book, 3, session=1) == R.OK
    assert order(book, 4, session=0) == R.OK                        # another client's credit is its own


def test_trim_firm_budget_when_usage_below_keeps_usage_plus_the_reserve_never_raises(make_book):
    book = make_book()
    book.set_firm_budget("daily_orders", 100)
    assert order(book, 1) == R.OK
    assert book.trim_firm_budget("daily_orders", 9.0) == (10.0, 1.0)
    assert book.trim_firm_budget("daily_orders", 50.0) == (10.0, 1.0)    # a trim never raises it
    assert book.trim_firm_budget("gross_exposure", 0.0) == (100.0, 100.0)  # from none: the usage
    with pytest.raises(ValueError):
        book.set_firm_budget("daily_orders", -1.0)
    with pytest.raises(ValueError):
        book.set_firm_budget("daily_orders", math.nan)
    with pytest.raises(ValueError, match="unknown firm budget"):
        book.firm_budget("positions")
    with pytest.raises(KeyError):
        book.firm_budget("client_credit", session_id=9)


def test_set_risk_state_when_out_of_range_raises(make_book):
    with pytest.raises(ValueError, match="risk state"):
        make_book().set_risk_state(4)


# -- INSTRUMENT, SESSION, FIELDS ----------------------------------------------------------------------

def test_check_when_instrument_unknown_or_halted_rejects(make_book):
    book = make_book()
    assert order(book, 1, instrument=-1) == R.UNKNOWN_INSTRUMENT
    assert order(book, 1, instrument=1) == R.UNKNOWN_INSTRUMENT
    book.instruments.set_halted(0, True)
    assert order(book, 1) == R.INSTRUMENT_HALTED
    book.instruments.set_halted(0, False)
    assert order(book, 1) == R.OK


def test_check_when_session_unknown_rejects(make_book):
    book = make_book()
    assert order(book, 1, session=4) == R.UNKNOWN_SESSION
    assert order(book, 1, session=-1) == R.UNKNOWN_SESSION
    assert order(book, 1, session=3) == R.OK


def test_check_when_side_or_order_type_unknown_rejects(make_book):
    book = make_book()
    assert order(book, 1, side=3) == R.INVALID_SIDE
    assert order(book, 1, ord_type=3) == R.INVALID_ORDER_TYPE
    assert order(book, 1, side=SELL_SHORT) == R.OK


@pytest.mark.parametrize("qty", [0.0, -1.0, math.nan, math.inf, -math.inf, 1e300])
def test_check_when_quantity_nonsense_rejects_invalid_quantity(make_book, qty):
    assert order(make_book(), qty) == R.INVALID_QUANTITY


def test_check_when_quantity_off_the_lot_rejects(make_book):
    book = make_book([("ABC", {"lot_size": 0.1})])
    assert order(book, 0.15) == R.QUANTITY_NOT_LOT_MULTIPLE
    assert order(book, 0.04) == R.QUANTITY_NOT_LOT_MULTIPLE
    assert order(book, 0.1 * 3) == R.OK                               # 0.30000000000000004 is 3 lots
    assert book.order(book.last_order_id)["qty_lots"] == 3


@pytest.mark.parametrize("price", [0.0, -100.0, math.nan, math.inf, 1e300])
def test_check_when_limit_price_nonsense_rejects_invalid_price(make_book, price):
    assert order(make_book(), 1, price) == R.INVALID_PRICE


def test_check_when_price_off_tick_rejects(make_book):
    book = make_book([("ABC", {"tick_size": 0.05})])
    assert order(book, 1, 100.02) == R.PRICE_OFF_TICK
    assert order(book, 1, 100.05) == R.OK
    assert order(book, 1, -3.0, ord_type=MARKET) == R.OK              # a market order has no price


def test_check_when_market_order_has_no_reference_price_rejects(make_book):
    book = make_book([("ABC", {"reference_price": 0.0})])
    assert order(book, 1, ord_type=MARKET) == R.NO_REFERENCE_PRICE
    assert book.quotes.on_trade(0, 99.5, T0, T0) == R.OK
    assert order(book, 1, ord_type=MARKET) == R.OK
    assert book.order(book.last_order_id)["price_ticks"] == 9950      # reserved at the reference


def test_check_when_market_reference_beyond_max_units_ticks_rejects_no_reference_price(make_book):
    book = make_book([("ABC", {"reference_price": 0.0})])
    assert book.quotes.on_trade(0, 1e300, T0, T0) == R.OK            # no ticks the book can reserve at
    assert order(book, 1, ord_type=MARKET) == R.NO_REFERENCE_PRICE
    assert order_units(book, 1, ord_type=MARKET) == (R.NO_REFERENCE_PRICE, 0)
    book = make_book([("ABC", {"reference_price": MAX_UNITS * 0.01})])
    assert order(book, 1, ord_type=MARKET) == R.NO_REFERENCE_PRICE     # MAX_UNITS ticks is not below it
    book = make_book([("ABC", {"reference_price": (MAX_UNITS - 1) * 0.01})])
    assert order_units(book, 1, ord_type=MARKET) == (R.OK, 1)
    assert book.order(1)["price_ticks"] == MAX_LOTS - 1


def test_check_when_limit_order_has_collar_but_no_reference_rejects(make_book):
    book = make_book([("ABC", {"reference_price": 0.0, "price_collar": 0.05})])
    assert order(book, 1) == R.NO_REFERENCE_PRICE
    book = make_book([("ABC", {"reference_price": 0.0})])
    assert order(book, 1) == R.OK                                     # no collar: nothing to measure


# -- ORDER SIZE ---------------------------------------------------------------------------------------

def test_check_when_quantity_above_max_order_quantity_rejects(make_book):
    book = make_book([("ABC", {"lot_size": 0.01, "max_order_qty": 1.0})])
    assert order(book, 1.0) == R.OK
    assert order(book, 1.01) == R.MAX_ORDER_QUANTITY


def test_check_when_warning_state_halves_max_order_quantity(make_book):
    book = make_book([("ABC", {"max_order_qty": 100})], warning_order_qty_factor=0.5)
    assert order(book, 51) == R.OK
    book.set_risk_state(RiskState.WARNING)
    assert order(book, 50) == R.OK
    assert order(book, 51) == R.WARNING_MAX_ORDER_QUANTITY
    assert order(book, 101) == R.MAX_ORDER_QUANTITY                   # the hard limit reads first


def test_check_when_notional_above_instrument_max_rejects(make_book):
    book = make_book([("ABC", {"max_order_notional": 10_000})])
    assert order(book, 100, 100.00) == R.OK
    assert order(book, 100, 100.01) == R.MAX_ORDER_NOTIONAL           # one tick over
    assert order(book, 101, 100.00) == R.MAX_ORDER_NOTIONAL           # one lot over


def test_check_when_notional_above_account_max_rejects(make_book):
    book = make_book(max_order_notional=10_000)
    assert order(book, 100, 100.00) == R.OK
    assert order(book, 100, 100.01) == R.MAX_ACCOUNT_ORDER_NOTIONAL


def test_check_when_quantity_above_adv_share_rejects(make_book):
    book = make_book([("ABC", {"adv": 10_000, "max_adv_fraction": 0.01})])
    assert order(book, 100) == R.OK
    assert order(book, 101) == R.ADV_PARTICIPATION


# -- PRICE COLLAR -------------------------------------------------------------------------------------

def test_check_when_price_outside_collar_around_configured_reference_rejects(make_book):
    book = make_book([("ABC", {"price_collar": 0.05})])
    assert order(book, 1, 105.00) == R.OK
    assert order(book, 1, 105.01) == R.PRICE_COLLAR
    assert order(book, 1, 95.00, SELL) == R.OK
    assert order(book, 1, 94.99, SELL) == R.PRICE_COLLAR


def test_check_when_quote_is_valid_collar_centres_on_mid(make_book):
    book = make_book([("ABC", {"price_collar": 0.25})])
    assert book.quotes.on_quote(0, 127.9, 128.1, T0, T0) == R.OK      # mid 128
    assert order(book, 1, 160.00) == R.OK                              # +25%
    assert order(book, 1, 160.01) == R.PRICE_COLLAR


def test_check_when_no_quote_collar_centres_on_last_trade(make_book):
    book = make_book([("ABC", {"price_collar": 0.25})])
    assert book.quotes.on_trade(0, 64.0, T0, T0) == R.OK
    assert order(book, 1, 80.00) == R.OK
    assert order(book, 1, 80.01) == R.PRICE_COLLAR


def test_check_when_warning_state_tightens_collar(make_book):
    book = make_book([("ABC", {"price_collar": 0.05})], warning_collar_factor=0.5)
    book.set_risk_state(RiskState.WARNING)
    assert order(book, 1, 102.50) == R.OK
    assert order(book, 1, 102.51) == R.WARNING_PRICE_COLLAR
    assert order(book, 1, 105.01) == R.PRICE_COLLAR


# -- EXPOSURE -----------------------------------------------------------------------------------------

def test_check_when_worst_case_position_above_limit_rejects(make_book):
    book = make_book([("ABC", {"max_position": 100})])
    assert order(book, 60) == R.OK                                     # open, not filled
    assert order(book, 40) == R.OK
    assert order(book, 1) == R.POSITION_LIMIT                          # 0 + 100 open + 1
    assert order(book, 100, side=SELL) == R.OK                         # sells are checked on their own
    assert order(book, 1, side=SELL) == R.POSITION_LIMIT


def test_check_when_fill_moves_open_to_position_limit_counts_both(make_book):
    book = make_book([("ABC", {"max_position": 100})])
    first = filled(book, 70)
    assert book.exposure(0)["position_lots"] == 70
    assert order(book, 30) == R.OK
    assert order(book, 1) == R.POSITION_LIMIT
    assert book.on_canceled(book.last_order_id) == R.OK
    assert order(book, 30) == R.OK
    assert first != book.last_order_id


def test_check_when_gross_exposure_above_max_rejects(make_book):
    book = make_book([("ABC", {}), ("DEF", {"reference_price": 50.0})], max_gross_exposure=10_000)
    filled(book, 50, instrument=1)                                     # |50 x 50| = 2500
    assert order(book, 75, 100.00) == R.OK                             # 2500 + 7500
    assert order(book, 1, 0.01) == R.GROSS_EXPOSURE                    # one lot at one tick over


def test_check_when_gross_counts_short_positions_by_absolute_value(make_book):
    book = make_book(max_gross_exposure=10_000)
    filled(book, 60, side=SELL)                                        # |-60 x 100| = 6000
    assert order(book, 40) == R.OK
    assert order(book, 1, 0.01) == R.GROSS_EXPOSURE


def test_check_when_leverage_above_max_rejects(make_book):
    book = make_book(max_leverage=2.0, equity=5_000.0)
    assert order(book, 100, 100.00) == R.OK                            # 10000 / 5000 = 2
    assert order(book, 1, 0.01) == R.LEVERAGE
    book.set_equity(0.0)
    assert book.on_canceled(book.last_order_id) == R.OK
    assert order(book, 1) == R.LEVERAGE                                # no equity, no leverage


def test_check_when_concentration_above_share_of_equity_rejects_and_warning_tightens(make_book):
    book = make_book(max_concentration=0.2, equity=50_000.0)           # 10,000 in one instrument
    filled(book, 60)                                                   # 60 x 100 = 6000
    assert order(book, 40) == R.OK                                     # worst case 100 x 100 = 10,000
    assert order(book, 1) == R.CONCENTRATION
    assert order(book, 30, side=SELL) == R.OK                          # towards flat: always passes
    book.set_risk_state(1)                                             # WARNING: half the share
    assert book.on_canceled(book.last_order_id - 1) == R.OK            # the 40 go: worst case 6000
    assert order(book, 1) == R.CONCENTRATION                           # 6100 > 5000
    book.set_risk_state(0)
    book.set_equity(0.0)
    assert order(book, 1) == R.CONCENTRATION                           # no equity, no position


def test_check_when_a_sectors_worst_case_sum_above_its_share_rejects(make_book):
    book = make_book([("ABC", {"sector": 0}), ("DEF", {"sector": 0, "reference_price": 50.0}),
                      ("XYZ", {"sector": 1})], max_sector_concentration=0.4, equity=10_000.0)
    filled(book, 20)                                                   # ABC 2000
    filled(book, 20, price=50.0, side=SELL, instrument=1)              # DEF |-20 x 50| = 1000
    assert order(book, 10) == R.OK                                     # ABC 3000 + DEF 1000 = 4000
    assert order(book, 1) == R.SECTOR_CONCENTRATION
    assert order(book, 30, instrument=2) == R.OK                       # another sector: 3000 of its own
    assert order(book, 5, price=50.0, instrument=1) == R.OK            # DEF buys towards flat


def test_check_when_daily_order_count_reached_rejects_until_next_day(make_book):
    day = 1_000_000_000
    book = make_book(max_daily_orders=3, day_start_ns=T0 + day, day_length_ns=day)
    for _ in range(3):
        assert order(book, 1) == R.OK
    assert order(book, 1) == R.DAILY_ORDER_COUNT
    assert order(book, 1, now=T0 + day - 1) == R.DAILY_ORDER_COUNT
    assert order(book, 1, now=T0 + day) == R.OK
    assert book.daily_orders == 1
    assert book.next_day_ns == T0 + 2 * day


def test_check_when_daily_notional_would_exceed_cap_rejects(make_book):
    day = 1_000_000_000
    book = make_book(max_daily_notional=10_000, day_start_ns=T0 + day, day_length_ns=day)
    assert order(book, 50) == R.OK
    assert order(book, 50) == R.OK
    assert order(book, 1, 0.01) == R.DAILY_NOTIONAL
    assert order(book, 1, 0.01, now=T0 + 5 * day) == R.OK
    assert book.next_day_ns == T0 + 6 * day


def test_check_when_open_orders_at_max_rejects(make_book):
    book = make_book([("ABC", {"max_open_orders": 2})])
    assert order(book, 1) == R.OK
    assert order(book, 1) == R.OK
    assert order(book, 1) == R.MAX_OPEN_ORDERS
    assert book.on_filled(book.last_order_id, 1, 100.0) == R.OK
    assert order(book, 1) == R.OK


def test_check_when_quote_stale_and_live_quote_required_rejects(make_book):
    second = 1_000_000_000
    book = make_book([("ABC", {"requires_live_quote": True, "stale_after_ns": second})])
    assert order(book, 1) == R.STALE_MARKET_DATA                       # never quoted
    assert book.quotes.on_quote(0, 99.99, 100.01, T0, T0) == R.OK
    assert order(book, 1, now=T0 + second) == R.OK
    assert order(book, 1, now=T0 + second + 1) == R.STALE_MARKET_DATA


def test_check_when_order_table_full_rejects_until_a_slot_frees(make_book):
    book = make_book(order_capacity=2)
    assert order(book, 1) == R.OK
    first = book.last_order_id
    assert order(book, 1) == R.OK
    assert order(book, 1) == R.ORDER_TABLE_FULL
    assert book.on_filled(first, 1, 100.0) == R.OK
    assert order(book, 1) == R.OK
    assert book.live_orders == 2


def test_order_ids_when_a_long_lived_order_holds_a_slot_skip_it(make_book):
    book = make_book(order_capacity=4)
    assert order(book, 1) == R.OK
    resting = book.last_order_id
    for _ in range(6):
        assert order(book, 1) == R.OK
        assert book.on_canceled(book.last_order_id) == R.OK
    ids = set()
    for _ in range(3):
        assert order(book, 1) == R.OK
        ids.add(book.last_order_id & 3)
    assert resting & 3 not in ids
    assert book.order(resting)["qty_lots"] == 1


def test_check_when_several_limits_fail_reports_the_first_in_chain_order(make_book):
    book = make_book([("ABC", {"max_order_qty": 10, "price_collar": 0.01, "max_position": 5})])
    assert order(book, 11, 150.0) == R.MAX_ORDER_QUANTITY
    assert order(book, 6, 150.0) == R.PRICE_COLLAR
    assert order(book, 6, 100.0) == R.POSITION_LIMIT


# -- ORDER EVENTS AND RESERVATIONS --------------------------------------------------------------------

def test_book_when_order_lives_through_fills_replace_and_cancel_keeps_reservations_exact(make_book):
    book = make_book()
    assert order(book, 10, 100.00) == R.OK
    order_id = book.last_order_id
    assert book.exposure(0)["open_buy_lots"] == 10
    assert book.exposure(0)["open_buy_tick_lots"] == 10 * 10_000
    assert book.on_acked(order_id) == R.OK
    assert book.on_filled(order_id, 4, 100.0) == R.OK
    assert book.exposure(0)["position_lots"] == 4
    assert book.exposure(0)["open_buy_lots"] == 6
    # Replace up to 15 at 101.00: while pending the order reserves the larger of old and new.
    assert book.check_replace(order_id, 15, 101.00, T0) == R.OK
    assert book.exposure(0)["open_buy_lots"] == 11
    assert book.exposure(0)["open_buy_tick_lots"] == 11 * 10_100
    assert book.on_filled(order_id, 2, 100.0) == R.OK                 # a fill while pending
    assert book.exposure(0)["open_buy_lots"] == 9
    assert book.on_replaced(order_id) == R.OK
    assert book.order(order_id)["qty_lots"] == 15
    assert book.exposure(0)["open_buy_lots"] == 9
    assert book.exposure(0)["open_buy_tick_lots"] == 9 * 10_100
    assert book.on_canceled(order_id) == R.OK
    assert book.exposure(0) == {"position_lots": 6, "open_buy_lots": 0, "open_sell_lots": 0,
                                "open_buy_tick_lots": 0, "open_sell_tick_lots": 0, "open_orders": 0,
                                "last_fill_price": 100.0}
    assert book.order(order_id) is None
    assert book.on_canceled(order_id) == R.UNKNOWN_ORDER


def test_replace_when_rejected_by_venue_restores_old_reservation(make_book):
    book = make_book()
    assert order(book, 10, 100.00, SELL) == R.OK
    order_id = book.last_order_id
    assert book.check_replace(order_id, 5, 99.00, T0) == R.OK
    assert book.exposure(0)["open_sell_lots"] == 10                    # the old one is still larger
    assert book.check_replace(order_id, 6, 99.00, T0) == R.REPLACE_PENDING
    assert book.on_replace_rejected(order_id) == R.OK
    assert book.exposure(0)["open_sell_tick_lots"] == 10 * 10_000
    assert book.on_replace_rejected(order_id) == R.NO_PENDING_REPLACE
    assert book.on_replaced(order_id) == R.NO_PENDING_REPLACE


def test_replace_when_quantity_not_above_filled_rejects(make_book):
    book = make_book()
    assert order(book, 10) == R.OK
    order_id = book.last_order_id
    assert book.on_filled(order_id, 5, 100.0) == R.OK
    assert book.check_replace(order_id, 5, 100.0, T0) == R.REPLACE_BELOW_FILLED
    assert book.check_replace(order_id, 6, 100.0, T0) == R.OK
    assert book.check_replace(999, 6, 100.0, T0) == R.UNKNOWN_ORDER


def test_replace_when_increase_breaks_position_limit_rejects(make_book):
    book = make_book([("ABC", {"max_position": 20})])
    assert order(book, 10) == R.OK
    order_id = book.last_order_id
    assert book.check_replace(order_id, 21, 100.0, T0) == R.POSITION_LIMIT
    assert book.check_replace(order_id, 20, 100.0, T0) == R.OK


def test_fill_when_above_open_quantity_books_it_and_reports_overfill(make_book):
    book = make_book()
    assert order(book, 10) == R.OK
    order_id = book.last_order_id
    assert book.on_filled(order_id, 12, 100.0) == R.OVERFILL
    assert book.exposure(0)["position_lots"] == 12
    assert book.exposure(0)["open_buy_lots"] == 0
    assert book.live_orders == 0
    assert book.counters()["events"] == {R.OVERFILL: 1}


def test_fill_when_quantity_nonsense_changes_nothing(make_book):
    book = make_book()
    assert order(book, 10) == R.OK
    order_id = book.last_order_id
    assert book.on_filled(order_id, -1, 100.0) == R.INVALID_QUANTITY
    assert book.on_filled(order_id, 0.5, 100.0) == R.QUANTITY_NOT_LOT_MULTIPLE
    assert book.on_filled(0, 1, 100.0) == R.UNKNOWN_ORDER
    assert book.exposure(0)["position_lots"] == 0
    assert book.exposure(0)["open_buy_lots"] == 10


def test_events_when_order_id_unknown_return_unknown_order(make_book):
    book = make_book()
    for event in (book.on_acked, book.on_canceled, book.on_venue_rejected, book.on_replaced,
                  book.on_replace_rejected):
        assert event(12345) == R.UNKNOWN_ORDER


def test_gross_exposure_when_no_reference_values_position_at_last_fill(make_book):
    book = make_book([("ABC", {"reference_price": 0.0})])
    filled(book, 10, 42.0)
    assert book.gross_exposure() == 420.0


def test_check_batch_when_rows_mix_accepts_and_rejects_matches_single_calls(impl, make_book):
    import numpy as np

    from fixgate._fast.risk import ORDER_DTYPE

    batch_book = make_book([("ABC", {"max_position": 25})])
    single_book = make_book([("ABC", {"max_position": 25})])
    rows = [(0, 0, 1, 2, 10.0, 100.0), (0, 0, 1, 2, 10.0, 100.0), (0, 0, 1, 2, 10.0, 100.0),
            (0, 7, 1, 2, 1.0, 100.0), (0, 0, 2, 1, 3.0, 0.0), (1, 0, 1, 2, 5.0, 100.005)]
    orders = np.array(rows, dtype=ORDER_DTYPE)
    codes = np.zeros(len(rows), np.uint8)
    ids = np.zeros(len(rows), np.int64)
    assert batch_book.check_batch(orders, codes, ids, T0) == 3
    expected = [single_book.check_new_order(*row, T0) for row in rows]
    assert codes.tolist() == expected == [R.OK, R.OK, R.POSITION_LIMIT, R.UNKNOWN_INSTRUMENT, R.OK,
                                          R.PRICE_OFF_TICK]
    assert ids.tolist() == [1, 2, 0, 0, 3, 0]
    with pytest.raises(ValueError, match="at least 6"):
        batch_book.check_batch(orders, codes[:2], ids, T0)


# -- UNITS API ----------------------------------------------------------------------------------------

def test_check_new_order_units_when_on_lot_and_tick_accepts_and_returns_distinct_ids(make_book):
    book = make_book()
    assert order_units(book, 10, 10_000) == (R.OK, 1)
    assert order_units(book, 3, 9_999, SELL) == (R.OK, 2)
    assert book.order(1)["qty_lots"] == 10 and book.order(1)["price_ticks"] == 10_000
    assert book.order(2)["side"] == SELL and book.order(2)["price_ticks"] == 9_999
    assert book.exposure(0)["open_buy_tick_lots"] == 10 * 10_000
    assert book.last_order_id == 2                                    # still kept for old callers
    assert book.counters()["checks"] == 2


@pytest.mark.parametrize("lots, code", [
    (-1, R.INVALID_QUANTITY), (0, R.QUANTITY_NOT_LOT_MULTIPLE), (-2, R.INVALID_QUANTITY),
    (MAX_LOTS + 1, R.INVALID_QUANTITY), (INT64_MAX, R.INVALID_QUANTITY), (INT64_MIN, R.INVALID_QUANTITY),
])
def test_check_new_order_units_when_lots_not_a_whole_positive_count_rejects_with_id_zero(make_book, lots, code):
    book = make_book()
    assert order_units(book, lots) == (code, 0)
    assert book.live_orders == 0 and book.daily_orders == 0
    assert book.counters()["decisions"] == {code: 1}


@pytest.mark.parametrize("ticks, code", [
    (-1, R.INVALID_PRICE), (0, R.PRICE_OFF_TICK), (-2, R.INVALID_PRICE),
    (MAX_LOTS + 1, R.INVALID_PRICE), (INT64_MAX, R.INVALID_PRICE), (INT64_MIN, R.INVALID_PRICE),
])
def test_check_new_order_units_when_limit_ticks_not_a_whole_positive_count_rejects_with_id_zero(
        make_book, ticks, code):
    book = make_book()
    assert order_units(book, 1, ticks) == (code, 0)
    assert book.live_orders == 0


def test_check_new_order_units_when_lots_and_ticks_at_max_units_reserves_without_overflow(make_book):
    book = make_book()
    assert order_units(book, MAX_LOTS, MAX_LOTS) == (R.OK, 1)        # 10**18 tick-lots fit an int64
    assert book.exposure(0)["open_buy_tick_lots"] == MAX_LOTS * MAX_LOTS
    assert order_units(book, MAX_LOTS + 1, 1) == (R.INVALID_QUANTITY, 0)
    assert order_units(book, 1, MAX_LOTS + 1) == (R.INVALID_PRICE, 0)


def test_check_new_order_units_when_fields_wrong_reports_them_where_the_double_check_does(make_book):
    book = make_book([("ABC", {"max_order_qty": 10})])
    assert order_units(book, -1, -1, side=3) == (R.INVALID_SIDE, 0)              # side before quantity
    assert order_units(book, -1, -1, ord_type=3) == (R.INVALID_ORDER_TYPE, 0)    # type before quantity
    assert order_units(book, 0, -1) == (R.QUANTITY_NOT_LOT_MULTIPLE, 0)          # quantity before price
    assert order_units(book, 11, 0) == (R.PRICE_OFF_TICK, 0)                      # price before size
    assert order_units(book, 11, 10_000) == (R.MAX_ORDER_QUANTITY, 0)
    assert order_units(book, -1, instrument=7) == (R.UNKNOWN_INSTRUMENT, 0)      # instrument before all
    book.set_risk_state(RiskState.CIRCUIT_BREAKER)
    assert order_units(book, -1, -1) == (R.INVALID_QUANTITY, 0)                  # quantity before breaker
    assert order_units(book, 1, -1) == (R.CIRCUIT_BREAKER, 0)                    # breaker before price
    book.set_risk_state(RiskState.KILL_SWITCH)
    assert order_units(book, -1, -1, side=3, instrument=7) == (R.KILL_SWITCH, 0)


def test_check_new_order_units_when_market_order_ignores_ticks_and_reserves_at_reference(make_book):
    book = make_book()
    assert order_units(book, 2, -1, ord_type=MARKET) == (R.OK, 1)
    assert order_units(book, 2, INT64_MAX, ord_type=MARKET) == (R.OK, 2)
    assert book.order(1)["price_ticks"] == book.order(2)["price_ticks"] == 10_000
    assert order_units(book, 0, 10_000, ord_type=MARKET) == (R.QUANTITY_NOT_LOT_MULTIPLE, 0)


def test_check_new_order_units_when_price_on_the_collar_edge_decides_as_the_double_check(make_book):
    book = make_book([("ABC", {"price_collar": 0.05})])
    assert order_units(book, 1, 10_500)[0] == order(book, 1, 105.00) == R.OK
    assert order_units(book, 1, 10_501)[0] == order(book, 1, 105.01) == R.PRICE_COLLAR
    assert order_units(book, 1, 9_500, SELL)[0] == order(book, 1, 95.00, SELL) == R.OK
    assert order_units(book, 1, 9_499, SELL)[0] == order(book, 1, 94.99, SELL) == R.PRICE_COLLAR


def test_check_new_order_when_doubles_off_the_grid_converts_them_as_before(make_book):
    book = make_book([("ABC", {"lot_size": 0.1, "tick_size": 0.05})])
    assert order(book, 0.15) == R.QUANTITY_NOT_LOT_MULTIPLE                    # units_of gives 0
    assert order(book, 1e300) == R.INVALID_QUANTITY                              # units_of gives -1
    assert order(book, 1, 100.02) == R.PRICE_OFF_TICK
    assert order(book, 0.1 * 3, 100.05) == R.OK
    assert book.order(book.last_order_id)["qty_lots"] == 3
    assert book.order(book.last_order_id)["price_ticks"] == 2001


def test_check_replace_units_when_on_lot_and_tick_makes_the_replace_pending(make_book):
    book = make_book()
    _, order_id = order_units(book, 10, 10_000)
    assert book.check_replace_units(order_id, 15, 10_100, T0) == R.OK
    slot = book.order(order_id)
    assert slot["replace_pending"] and slot["new_qty_lots"] == 15 and slot["new_price_ticks"] == 10_100
    assert book.exposure(0)["open_buy_tick_lots"] == 15 * 10_100


@pytest.mark.parametrize("lots, ticks, code", [
    (-1, 10_000, R.INVALID_QUANTITY), (0, 10_000, R.QUANTITY_NOT_LOT_MULTIPLE),
    (MAX_LOTS + 1, 10_000, R.INVALID_QUANTITY), (INT64_MIN, 10_000, R.INVALID_QUANTITY),
    (0, -1, R.QUANTITY_NOT_LOT_MULTIPLE),                                       # quantity before price
    (4, -1, R.REPLACE_BELOW_FILLED),                                            # filled before price
    (6, -1, R.INVALID_PRICE), (6, 0, R.PRICE_OFF_TICK), (6, MAX_LOTS + 1, R.INVALID_PRICE),
    (6, INT64_MAX, R.INVALID_PRICE),
])
def test_check_replace_units_when_lots_or_ticks_wrong_rejects_in_chain_order(make_book, lots, ticks, code):
    book = make_book()
    _, order_id = order_units(book, 10, 10_000)
    assert book.on_filled_units(order_id, 4, 10_000) == R.OK
    before = book.order(order_id)
    assert book.check_replace_units(order_id, lots, ticks, T0) == code
    assert book.order(order_id) == before


def test_check_replace_units_when_order_unknown_or_market_answers_before_reading_ticks(make_book):
    book = make_book()
    assert book.check_replace_units(999, -1, -1, T0) == R.UNKNOWN_ORDER
    _, order_id = order_units(book, 2, ord_type=MARKET)
    assert book.check_replace_units(order_id, 3, -1, T0) == R.OK             # a market order has no price
    assert book.order(order_id)["new_price_ticks"] == 10_000
    assert book.check_replace_units(order_id, 4, 10_000, T0) == R.REPLACE_PENDING


def test_on_filled_units_when_on_lot_books_position_and_last_fill_price(make_book):
    book = make_book([("ABC", {"reference_price": 0.0})])
    _, order_id = order_units(book, 10, 4_200)
    assert book.on_filled_units(order_id, 4, 4_200) == R.OK
    assert book.exposure(0)["position_lots"] == 4
    assert book.exposure(0)["last_fill_price"] == 4_200 * 0.01
    assert book.on_filled_units(order_id, 7, 4_201) == R.OVERFILL
    assert book.exposure(0)["position_lots"] == 11
    assert book.live_orders == 0


@pytest.mark.parametrize("lots, code", [
    (-1, R.INVALID_QUANTITY), (0, R.QUANTITY_NOT_LOT_MULTIPLE), (MAX_LOTS + 1, R.INVALID_QUANTITY),
    (INT64_MIN, R.INVALID_QUANTITY),
])
def test_on_filled_units_when_lots_not_a_whole_positive_count_books_nothing(make_book, lots, code):
    book = make_book()
    _, order_id = order_units(book, 10)
    assert book.on_filled_units(order_id, lots, 10_000) == code
    assert book.exposure(0)["position_lots"] == 0 and book.exposure(0)["open_buy_lots"] == 10
    assert book.on_filled_units(0, 1, 10_000) == R.UNKNOWN_ORDER


@pytest.mark.parametrize("ticks", [0, -1, MAX_LOTS + 1, INT64_MAX])
def test_on_filled_units_when_ticks_not_a_valid_price_books_quantity_keeps_last_fill_price(make_book, ticks):
    book = make_book()
    _, order_id = order_units(book, 10)
    assert book.on_filled_units(order_id, 2, 9_900) == R.OK
    assert book.on_filled_units(order_id, 3, ticks) == R.OK
    assert book.exposure(0)["position_lots"] == 5
    assert book.exposure(0)["last_fill_price"] == 9_900 * 0.01


@pytest.mark.parametrize("price, last_fill_price", [
    (100.004, 100.0), (100.006, 10_001 * 0.01), (0.004, 99.0), (-1.0, 99.0), (math.nan, 99.0),
    (math.inf, 99.0), (1e300, 99.0),
])
def test_on_filled_when_price_off_tick_or_nonsense_books_quantity_at_nearest_tick_or_keeps_price(
        make_book, price, last_fill_price):
    book = make_book()
    assert order(book, 10) == R.OK
    order_id = book.last_order_id
    assert book.on_filled(order_id, 1, 99.0) == R.OK
    assert book.on_filled(order_id, 1, price) == R.OK
    assert book.exposure(0)["position_lots"] == 2
    assert book.exposure(0)["last_fill_price"] == last_fill_price


def test_check_batch_when_rows_accepted_returns_the_ids_the_units_check_hands_out(make_book):
    import numpy as np

    from fixgate._fast.risk import ORDER_DTYPE

    batch_book = make_book(order_capacity=4)
    units_book = make_book(order_capacity=4)
    for book in (batch_book, units_book):                             # a resting order holds slot 1
        assert order_units(book, 1) == (R.OK, 1)
        for _ in range(3):
            code, order_id = order_units(book, 1)
            assert code == R.OK and book.on_canceled(order_id) == R.OK
    rows = [(0, 0, 1, 2, 2.0, 100.0), (0, 0, 1, 2, 0.5, 100.0), (0, 0, 2, 2, 3.0, 100.01),
            (0, 0, 1, 1, 1.0, -1.0), (0, 0, 1, 2, 1.0, 100.0)]
    orders = np.array(rows, dtype=ORDER_DTYPE)
    codes = np.full(len(rows), 255, np.uint8)
    ids = np.full(len(rows), -7, np.int64)
    assert batch_book.check_batch(orders, codes, ids, T0) == 3
    expected = [order_units(units_book, 2), order_units(units_book, 0), order_units(units_book, 3, 10_001, SELL),
                order_units(units_book, 1, ord_type=MARKET), order_units(units_book, 1)]
    assert list(zip(codes.tolist(), ids.tolist())) == expected
    assert ids.tolist() == [6, 0, 7, 8, 0]                             # 5 skipped (slot of 1); table full
    assert codes.tolist()[-1] == R.ORDER_TABLE_FULL
    assert batch_book.snapshot() == units_book.snapshot()


def test_order_ids_of_session_when_orders_of_several_sessions_live_lists_one_session_ascending(make_book):
    book = make_book()
    ids = [order_units(book, 1, session=session)[1] for session in (1, 0, 1, 2, 1)]
    assert ids == [1, 2, 3, 4, 5]
    assert book.on_canceled(3) == R.OK
    assert book.order_ids_of_session(1) == [1, 5]
    assert book.order_ids_of_session(0) == [2]
    assert book.order_ids_of_session(3) == []
    assert sorted(sum((book.order_ids_of_session(s) for s in range(3)), [])) == book.live_order_ids()


# -- CONFIGURATION ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    {"order_capacity": 3}, {"order_capacity": 1}, {"max_gross_exposure": -1.0},
    {"max_leverage": math.nan}, {"warning_order_qty_factor": 0.0}, {"warning_collar_factor": 1.5},
    {"max_daily_orders": -1}, {"equity": math.inf}, {"day_length_ns": 0},
])
def test_risk_book_when_configured_with_nonsense_raises_naming_the_setting(make_book, bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        make_book(**bad)


# -- RECOVERY -----------------------------------------------------------------------------------------

def test_restore_when_orders_and_positions_come_back_reserves_exactly_as_before(make_book):
    live = make_book([("ABC", {"max_position": 100})])
    assert order(live, 30, 100.00) == R.OK
    first = live.last_order_id
    assert live.on_filled(first, 10, 100.0) == R.OK
    assert order(live, 5, 99.50, SELL) == R.OK
    second = live.last_order_id
    assert live.check_replace(second, 8, 99.00, T0) == R.OK
    restored = make_book([("ABC", {"max_position": 100})])
    restored.restore_position(0, 10, 100.0)
    for order_id in live.live_order_ids():
        slot = live.order(order_id)
        restored.restore_order(order_id, slot["instrument_id"], slot["session_id"], slot["side"], slot["ord_type"],
                               slot["qty_lots"], slot["cum_lots"], slot["price_ticks"], acked=slot["acked"],
                               replace_pending=slot["replace_pending"], new_qty_lots=slot["new_qty_lots"],
                               new_price_ticks=slot["new_price_ticks"])
    assert restored.exposure(0) == live.exposure(0)
    assert [restored.order(order_id) for order_id in restored.live_order_ids()] == [
        live.order(order_id) for order_id in live.live_order_ids()]
    assert order(restored, 71, 100.00) == R.POSITION_LIMIT          # 10 + 20 open + 71 > 100
    assert order(restored, 70, 100.00) == R.OK
    assert restored.last_order_id > second                          # ids go on, never reused


def test_restore_when_order_cannot_be_live_raises(make_book):
    book = make_book()
    with pytest.raises(ValueError, match="not live"):
        book.restore_order(1, 0, 0, 1, 2, 5, 5, 10000)
    with pytest.raises(ValueError, match="unknown instrument"):
        book.restore_order(1, 7, 0, 1, 2, 5, 0, 10000)
    book.restore_order(3, 0, 0, 1, 2, 5, 0, 10000)
    with pytest.raises(ValueError, match="slot holds order 3"):
        book.restore_order(3, 0, 0, 1, 2, 5, 0, 10000)
    book.restore_next_order_id(1000)
    assert order(book, 1) == R.OK and book.last_order_id == 1000
