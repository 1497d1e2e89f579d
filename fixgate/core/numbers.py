"""Numbers have one shape per layer: whole lots and ticks inside, decimal text for people.

Quantities and prices live in the engine, the OMS view, the positions and the journal as int64
counts of an instrument's lot and tick. These helpers are the only ones that turn them into text
(never an exponent, never a float repr, never more decimals than the step) or into Decimals for
display; the engine's C++ twin of them is ``fixgate/_engine/native/numbers.h``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

AVERAGE_EXTRA_DECIMALS = 6      # an average price carries six decimals beyond the tick


def plain(value: Decimal) -> str:
    """Return a Decimal as plain text without an exponent or trailing zeros: 1E+2 -> "100"."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def units_text(units: int, step: Decimal) -> str:
    """Return `units` lots (or ticks) of `step` as text: 150 lots of 0.01 -> "1.5"."""
    return plain(step * units)


def units_value(units: int, step: Decimal) -> Decimal:
    """Return `units` lots (or ticks) of `step` as an exact Decimal."""
    return step * units


def units_of(text: str | None, step: Decimal) -> int:
    """Return decimal `text` in whole `step` units: -1 when not a positive number, 0 off the grid."""
    if text is None:
        return -1
    try:
        value = Decimal(text)
    except ArithmeticError:
        return -1
    if not value.is_finite() or value <= 0:
        return -1
    units = value / step
    if units != units.to_integral_value():
        return 0
    return int(units)


def average_text(cost_tick_lots: int, lots: int, tick: Decimal) -> str:
    """Return the average price of fills costing `cost_tick_lots` (lots x ticks) over `lots`, rounded
    half to even at six decimals beyond the tick."""
    if not lots:
        return "0"
    quantum = tick.normalize().scaleb(-AVERAGE_EXTRA_DECIMALS)
    exponent = min(quantum.as_tuple().exponent, 0)
    average = (Decimal(cost_tick_lots) * tick / Decimal(lots)).quantize(Decimal(1).scaleb(exponent),
                                                                        rounding=ROUND_HALF_EVEN)
    return plain(average)

