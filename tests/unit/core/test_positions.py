"""Average-cost positions and P&L in exact arithmetic."""

from decimal import Decimal
from fractions import Fraction

from fixgate.core.positions import PositionTracker, exact_price


def test_fill_when_reducing_realizes_against_average_cost():
    tracker = PositionTracker(Decimal(1000))
    tracker.apply_fill("a", "XYZ", True, Decimal(10), Fraction(100))
    tracker.apply_fill("a", "XYZ", True, Decimal(10), Fraction(110))
    position = tracker.positions[("a", "XYZ")]
    assert position.quantity == 20 and position.average_cost == 105
    assert tracker.apply_fill("a", "XYZ", False, Decimal(5), Fraction(120)) == 75      # 5 x (120 - 105)
    assert position.quantity == 15 and position.average_cost == 105 and position.realized == 75


def test_fill_when_crossing_zero_closes_then_opens_at_the_fill_price():
    tracker = PositionTracker(Decimal(1000))
    tracker.apply_fill("a", "XYZ", True, Decimal(6), Fraction(100))
    realized = tracker.apply_fill("a", "XYZ", False, Decimal(10), Fraction(90))
    position = tracker.positions[("a", "XYZ")]
    assert realized == -60                                                              # 6 x (90 - 100)
    assert position.quantity == -4 and position.average_cost == 90
    assert tracker.apply_fill("a", "XYZ", True, Decimal(4), Fraction(80)) == 40          # short 4 at 90, cover 80
    assert position.quantity == 0 and position.cost == 0


def test_prices_when_decimal_fractions_add_up_without_float_drift():
    tracker = PositionTracker(Decimal(0) + 1)
    for _ in range(10):
        tracker.apply_fill("a", "XYZ", True, Decimal("0.1"), exact_price(0.1))
    position = tracker.positions[("a", "XYZ")]
    assert position.quantity == 1 and position.cost == Fraction(1, 10)
    tracker.apply_fill("a", "XYZ", False, Decimal(1), exact_price(0.3))
    assert position.realized == Fraction(2, 10)


def test_equity_when_marked_includes_unrealized_and_drawdown_tracks_peak():
    tracker = PositionTracker(Decimal(10_000))
    tracker.apply_fill("a", "XYZ", True, Decimal(100), Fraction(50))
    tracker.mark("XYZ", Fraction(60))
    assert tracker.equity() == 11_000 and tracker.update_peak() == 11_000
    tracker.mark("XYZ", Fraction(45))
    assert tracker.equity() == 9_500
    assert tracker.drawdown() == Fraction(1_500, 11_000)
    tracker.start_day()
    assert tracker.drawdown() == 0


def test_exposure_when_long_and_short_counts_gross_and_net():
    tracker = PositionTracker(Decimal(1))
    tracker.apply_fill("a", "XYZ", True, Decimal(10), Fraction(10))
    tracker.apply_fill("b", "ABC", False, Decimal(5), Fraction(20))
    tracker.mark("XYZ", Fraction(10))
    tracker.mark("ABC", Fraction(20))
    assert tracker.gross_exposure() == 200 and tracker.net_exposure() == 0
    snapshot = tracker.snapshot()
    assert snapshot["gross_exposure"] == "200" and snapshot["equity"] == "1"
    assert [row["quantity"] for row in snapshot["positions"]] == ["10", "-5"]
