"""Positions in whole lots and tick-lots: average cost, one rounding on reductions, exact total P&L."""

from decimal import Decimal

import orjson
import pytest

from fixgate.core.orders import Instrument
from fixgate.core.positions import Position, PositionTracker, money, round_div

INSTRUMENTS = [Instrument("BTC-USD", "simvenue", Decimal("0.001"), Decimal("0.5")),
               Instrument("ETH-USD", "simvenue", Decimal("0.01"), Decimal("0.05")),
               Instrument("AAPL", "simvenue", Decimal("1"), Decimal("0.01"))]
BTC, ETH, AAPL = 0, 1, 2


def tracker(equity=1_000_000) -> PositionTracker:
    return PositionTracker(Decimal(equity), INSTRUMENTS)


def total_units(position: Position, mark: int) -> int:
    return position.cash + position.lots * mark


@pytest.mark.parametrize("numerator, denominator, quotient", [
    (7, 2, 4), (5, 2, 2), (20_001, 2, 10_000), (20_003, 2, 10_002), (30_002, 3, 10_001), (30_001, 3, 10_000),
    (-5, 2, -2), (-7, 2, -4), (-20_001, 2, -10_000), (-30_002, 3, -10_001), (-7, 3, -2), (0, 5, 0),
])
def test_round_div_when_dividing_rounds_half_to_even_on_both_sides_of_zero(numerator, denominator, quotient):
    assert round_div(numerator, denominator) == quotient


def test_position_when_bought_twice_keeps_the_open_cost_and_average():
    positions = tracker()
    positions.apply_fill("a", AAPL, True, 10, 10_000)
    positions.apply_fill("a", AAPL, True, 10, 11_000)
    position = positions.positions[("a", "AAPL")]
    assert (position.lots, position.open_cost, position.cash) == (20, 210_000, -210_000)
    assert position.quantity == 20 and position.average_cost == Decimal("105")
    assert position.realized_units() == 0


def test_position_when_reduced_realizes_against_the_average_cost():
    positions = tracker()
    positions.apply_fill("a", AAPL, True, 10, 10_000)
    positions.apply_fill("a", AAPL, True, 10, 11_000)
    positions.apply_fill("a", AAPL, False, 5, 12_000)
    position = positions.positions[("a", "AAPL")]
    assert position.lots == 15 and position.average_cost == Decimal("105")
    assert position.realized_units() == 5 * (12_000 - 10_500)                 # 75.00 in money
    assert positions.realized() == Decimal("75")


def test_position_when_a_reduction_does_not_divide_the_cost_moves_the_rounding_into_unrealized():
    positions = tracker()
    positions.apply_fill("a", AAPL, True, 1, 10_000)
    positions.apply_fill("a", AAPL, True, 2, 10_001)                            # 3 lots costing 30002 tick-lots
    positions.apply_fill("a", AAPL, False, 1, 10_005)                           # closes 10000.67 of it: 10001
    position = positions.positions[("a", "AAPL")]
    assert position.open_cost == 20_001
    assert position.realized_units() == 4                                      # exactly 4.33
    assert position.unrealized_units(10_005) == 9                              # exactly 8.67
    assert position.realized_units() + position.unrealized_units(10_005) == total_units(position, 10_005) == 13
    positions.mark(AAPL, 10_005)
    assert (positions.realized(), positions.unrealized()) == (Decimal("0.04"), Decimal("0.09"))
    assert positions.equity() == Decimal("1000000.13")


@pytest.mark.parametrize("first, second, open_cost", [
    (10_000, 10_001, 10_001),            # 20001 / 2 = 10000.5 -> 10000 closed, 10001 stays open
    (10_001, 10_002, 10_001),            # 20003 / 2 = 10001.5 -> 10002 closed, 10001 stays open
])
def test_position_when_a_reduction_is_exactly_half_a_tick_lot_rounds_the_closed_cost_half_to_even(
        first, second, open_cost):
    positions = tracker()
    positions.apply_fill("a", AAPL, True, 1, first)
    positions.apply_fill("a", AAPL, True, 1, second)
    positions.apply_fill("a", AAPL, False, 1, 10_000)
    position = positions.positions[("a", "AAPL")]
    assert position.open_cost == open_cost
    assert total_units(position, 10_007) == -(first + second) + 10_000 + 10_007


def test_position_when_short_and_partly_covered_rounds_the_same_way_and_keeps_the_total_exact():
    positions = tracker()
    positions.apply_fill("a", ETH, False, 1, 60_000)
    positions.apply_fill("a", ETH, False, 1, 60_001)                            # short 2 at -120001
    positions.apply_fill("a", ETH, True, 1, 59_990)
    position = positions.positions[("a", "ETH-USD")]
    assert position.lots == -1 and position.open_cost == -60_001                # -60000.5 closed as -60000
    assert position.realized_units() == 10
    assert position.unrealized_units(59_980) == 21
    assert position.realized_units() + position.unrealized_units(59_980) == total_units(position, 59_980) == 31
    assert position.average_cost == Decimal("3000.05")


def test_position_when_a_fill_crosses_zero_closes_then_opens_the_rest_at_the_fill_price():
    positions = tracker()
    positions.apply_fill("a", AAPL, True, 6, 10_000)
    positions.apply_fill("a", AAPL, False, 10, 9_000)
    position = positions.positions[("a", "AAPL")]
    assert position.lots == -4 and position.open_cost == -36_000 and position.average_cost == Decimal("90")
    assert position.realized_units() == 6 * (9_000 - 10_000)
    assert (position.bought_lots, position.sold_lots, position.fills) == (6, 10, 2)
    positions.apply_fill("a", AAPL, True, 4, 8_000)
    assert position.lots == 0 and position.open_cost == 0 and position.average_cost == 0
    assert position.realized_units() == -6_000 + 4 * 1_000 == position.cash
    assert position.unrealized_units(12_345) == 0


def test_position_when_closed_exactly_leaves_no_open_cost_whatever_the_rounding():
    positions = tracker()
    for ticks in (10_000, 10_001, 10_001):
        positions.apply_fill("a", AAPL, True, 1, ticks)
    positions.apply_fill("a", AAPL, False, 3, 10_003)
    position = positions.positions[("a", "AAPL")]
    assert (position.lots, position.open_cost) == (0, 0)
    assert position.realized_units() == 3 * 10_003 - 30_002


def test_positions_when_split_by_account_and_instrument_sum_net_lots_over_accounts():
    positions = tracker()
    positions.apply_fill("a", BTC, True, 2_000, 120_000)
    positions.apply_fill("b", BTC, False, 500, 120_010)
    positions.apply_fill("a", AAPL, False, 7, 19_000)
    assert positions.net_lots(BTC) == 1_500 and positions.net_lots(AAPL) == -7 and positions.net_lots(ETH) == 0
    assert positions.net_quantity("BTC-USD") == Decimal("1.5")


# -- MARKS, EQUITY, DRAWDOWN ------------------------------------------------------------------------

def test_equity_when_unmarked_counts_open_positions_at_cost():
    positions = tracker(10_000)
    positions.apply_fill("a", AAPL, True, 100, 5_000)
    assert positions.equity() == Decimal("10000") and positions.unrealized() == 0
    assert positions.gross_exposure() == Decimal("5000")


def test_equity_when_marked_moves_with_the_mark_and_drawdown_follows_the_peak():
    positions = tracker(10_000)
    positions.apply_fill("a", AAPL, True, 100, 5_000)                          # 100 at 50.00
    positions.mark(AAPL, 6_000)
    assert positions.equity() == Decimal("11000") and positions.update_peak() == Decimal("11000")
    positions.mark(AAPL, 4_500)
    assert positions.equity() == Decimal("9500")
    assert positions.drawdown() == pytest.approx(1_500 / 11_000)
    assert positions.peak_equity == Decimal("11000")
    positions.start_day()
    assert positions.peak_equity == Decimal("9500") and positions.drawdown() == 0.0


def test_drawdown_when_equity_makes_a_new_high_is_zero_and_raises_the_peak():
    positions = tracker(10_000)
    positions.apply_fill("a", AAPL, True, 100, 5_000)
    positions.mark(AAPL, 7_000)
    assert positions.drawdown() == 0.0 and positions.peak_equity == Decimal("12000")


def test_mark_price_when_given_a_float_rounds_to_the_nearest_tick_and_ignores_no_price():
    positions = tracker()
    positions.mark_price(BTC, 60_000.26)
    positions.mark_price(AAPL, 190.004)
    positions.mark_price(ETH, 0.0)
    assert positions.marks == {BTC: 120_001, AAPL: 19_000}
    positions.mark_price(AAPL, 0.001)                                           # below a tick: one tick
    assert positions.marks[AAPL] == 1


def test_exposure_when_long_and_short_counts_gross_and_net_at_the_marks():
    positions = tracker()
    positions.apply_fill("a", AAPL, True, 10, 10_000)
    positions.apply_fill("b", ETH, False, 100, 20_000)                         # 1 ETH short at 1000.00
    positions.mark(AAPL, 11_000)
    positions.mark(ETH, 20_000)
    assert positions.gross_exposure() == Decimal("2100") and positions.net_exposure() == Decimal("100")


def test_total_pnl_when_many_reductions_round_is_cash_plus_quantity_times_mark_exactly():
    positions = tracker(0)
    fills = [(True, 7, 120_001), (True, 3, 119_999), (False, 4, 120_003), (True, 9, 120_000), (False, 2, 119_997),
             (False, 20, 120_005), (True, 5, 119_990), (False, 1, 120_011)]
    for buy, lots, ticks in fills:
        positions.apply_fill("a", BTC, buy, lots, ticks)
    position = positions.positions[("a", "BTC-USD")]
    cash = sum((-lots if buy else lots) * ticks for buy, lots, ticks in fills)
    assert position.cash == cash and position.lots == 7 + 3 - 4 + 9 - 2 - 20 + 5 - 1
    positions.mark(BTC, 120_002)
    unit = Decimal("0.001") * Decimal("0.5")
    assert positions.realized() + positions.unrealized() == unit * (cash + position.lots * 120_002)
    assert positions.equity() == unit * (cash + position.lots * 120_002)


# -- DISPLAY AND STATE ------------------------------------------------------------------------------

def test_snapshot_when_displayed_writes_exact_plain_text():
    positions = tracker()
    positions.apply_fill("a", AAPL, True, 1, 10_000)
    positions.apply_fill("a", AAPL, True, 2, 10_001)
    positions.apply_fill("a", AAPL, False, 1, 10_005)
    positions.apply_fill("a", BTC, True, 1_500, 120_000)
    positions.mark(AAPL, 10_005)
    positions.update_peak()
    snapshot = positions.snapshot()
    assert snapshot["positions"] == [
        {"account": "a", "symbol": "AAPL", "quantity": "2", "average_cost": "100.005", "mark": "100.05",
         "realized_pnl": "0.04", "unrealized_pnl": "0.09", "bought": "3", "sold": "1", "fills": 3},
        {"account": "a", "symbol": "BTC-USD", "quantity": "1.5", "average_cost": "60000", "mark": None,
         "realized_pnl": "0", "unrealized_pnl": "0", "bought": "1.5", "sold": "0", "fills": 1},
    ]
    assert snapshot["equity"] == "1000000.13" and snapshot["realized_pnl"] == "0.04"
    assert snapshot["gross_exposure"] == "90200.1" and snapshot["drawdown"] == "0.000000"


def test_money_when_displayed_rounds_half_to_even_at_cents():
    assert money(Decimal("0.125")) == "0.12" and money(Decimal("0.135")) == "0.14" and money(Decimal("-0.001")) == "0"


def test_tracker_when_restored_from_its_state_has_the_same_positions_and_figures():
    positions = tracker()
    positions.apply_fill("a", AAPL, True, 3, 10_001)
    positions.apply_fill("a", AAPL, False, 1, 10_010)
    positions.apply_fill("b", ETH, False, 250, 60_000)
    positions.mark(AAPL, 10_020)
    positions.update_peak()
    state = orjson.loads(orjson.dumps(positions.state()))                       # as a snapshot stores it
    again = tracker()
    again.restore(state)
    again.mark(AAPL, 10_020)
    assert again.state() == positions.state()
    assert again.equity() == positions.equity() and again.peak_equity == positions.peak_equity
    assert again.snapshot() == positions.snapshot()
    again.apply_fill("a", AAPL, False, 2, 10_030)
    assert again.positions[("a", "AAPL")].lots == 0
