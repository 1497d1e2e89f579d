"""Numbers have one shape per layer: whole lots and ticks inside, plain decimal text for people."""

from decimal import Decimal

import pytest

from fixgate.core.numbers import average_text, plain, units_of, units_text, units_value


@pytest.mark.parametrize("value, text", [
    (Decimal("1E+2"), "100"),
    (Decimal("100.000"), "100"),
    (Decimal("1.50"), "1.5"),
    (Decimal("0.001"), "0.001"),
    (Decimal("1E-7"), "0.0000001"),
    (Decimal("0E-8"), "0"),
    (Decimal("-0.00"), "0"),
    (Decimal("-2.50"), "-2.5"),
])
def test_plain_when_decimal_has_an_exponent_or_trailing_zeros_writes_plain_digits(value, text):
    assert plain(value) == text


@pytest.mark.parametrize("units, step, text", [
    (150, Decimal("0.01"), "1.5"),
    (100, Decimal("1"), "100"),
    (10_000, Decimal("0.01"), "100"),
    (120_001, Decimal("0.5"), "60000.5"),
    (1, Decimal("0.001"), "0.001"),
    (0, Decimal("0.05"), "0"),
    (-5, Decimal("0.5"), "-2.5"),
])
def test_units_text_when_given_whole_steps_writes_the_exact_quantity(units, step, text):
    assert units_text(units, step) == text


def test_units_value_when_given_whole_steps_is_the_exact_decimal():
    assert units_value(3, Decimal("0.1")) == Decimal("0.3")          # never 0.30000000000000004


@pytest.mark.parametrize("text, step, units", [
    ("1.5", Decimal("0.01"), 150),
    ("1.50000", Decimal("0.01"), 150),
    ("1e2", Decimal("1"), 100),
    ("60000.5", Decimal("0.5"), 120_001),
    ("0.001", Decimal("0.001"), 1),
])
def test_units_of_when_text_is_on_the_grid_returns_whole_steps(text, step, units):
    assert units_of(text, step) == units


@pytest.mark.parametrize("text", ["1.505", "0.0001", "60000.25"])
def test_units_of_when_text_is_off_the_grid_returns_zero(text):
    step = Decimal("0.5") if text == "60000.25" else Decimal("0.01")
    assert units_of(text, step) == 0


@pytest.mark.parametrize("text", [None, "", "abc", "0", "-1", "-0.5", "NaN", "Infinity", "-Infinity", "sNaN"])
def test_units_of_when_text_is_not_a_positive_number_returns_minus_one(text):
    assert units_of(text, Decimal("0.01")) == -1


@pytest.mark.parametrize("cost, lots, tick, text", [
    (45_000, 3, Decimal("0.01"), "150"),                  # 3 lots at 150.00: never "150.00000000" or "1.5E+2"
    (30_001, 3, Decimal("0.01"), "100.00333333"),         # 10000.333... ticks, six decimals beyond the tick
    (1, 2, Decimal("0.5"), "0.25"),
    (240_001, 2, Decimal("0.5"), "60000.25"),
    (3, 16_000_000, Decimal("0.5"), "0.0000001"),         # 0.00000009375 to seven decimals
])
def test_average_text_when_fills_cost_tick_lots_writes_the_average_to_six_decimals_beyond_the_tick(
        cost, lots, tick, text):
    assert average_text(cost, lots, tick) == text


@pytest.mark.parametrize("cost, text", [
    (1, "0"),                     # 0.000000005 -> 0.00000000 (even)
    (3, "0.00000002"),            # 0.000000015 -> 0.00000002 (even)
    (5, "0.00000002"),            # 0.000000025 -> 0.00000002 (even)
    (7, "0.00000004"),            # 0.000000035 -> 0.00000004 (even)
])
def test_average_text_when_exactly_half_way_rounds_half_to_even(cost, text):
    assert average_text(cost, 2_000_000, Decimal("0.01")) == text


def test_average_text_when_nothing_filled_is_zero():
    assert average_text(0, 0, Decimal("0.01")) == "0"
