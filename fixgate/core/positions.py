"""Positions and P&L per account and instrument, in exact arithmetic.

Quantities arrive as whole lots and become exact Decimals; prices arrive as the float the wire's
decimal string parsed to, and are taken back to that decimal (shortest repr). Cost and P&L are kept
as Fractions, so an average cost never rounds; Decimals are produced only for display.

Average-cost accounting: adding to a position adds qty x price to its cost; reducing it realizes
(average cost - price) x the signed closing quantity and removes the average cost of what closed; a
fill through zero closes the old side and opens the new one at the fill price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

ZERO = Fraction(0)


def exact_price(price: float) -> Fraction:
    """Return the decimal a float price was parsed from (its shortest repr), exactly."""
    return Fraction(Decimal(repr(price)))


def to_decimal(value: Fraction, places: int = 10) -> Decimal:
    """Return `value` as a Decimal rounded to `places` decimal places (display only)."""
    quantum = Decimal(1).scaleb(-places)
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(quantum).normalize()


def display(value: Fraction, places: int = 10) -> str:
    """Return `value` as plain decimal text, rounded to `places` places, without trailing zeros."""
    text = format(to_decimal(value, places), "f")
    return "0" if text in ("-0", "") else text


@dataclass
class Position:
    """One account's position in one instrument."""

    quantity: Fraction = ZERO        # signed: long > 0
    cost: Fraction = ZERO            # signed: quantity x average cost
    realized: Fraction = ZERO
    bought: Fraction = ZERO
    sold: Fraction = ZERO
    fills: int = 0

    @property
    def average_cost(self) -> Fraction:
        return self.cost / self.quantity if self.quantity else ZERO

    def apply(self, signed_quantity: Fraction, price: Fraction) -> Fraction:
        """Book a fill; return the P&L it realized."""
        realized = ZERO
        self.fills += 1
        if signed_quantity > 0:
            self.bought += signed_quantity
        else:
            self.sold -= signed_quantity
        if self.quantity == 0 or (self.quantity > 0) == (signed_quantity > 0):
            self.quantity += signed_quantity
            self.cost += signed_quantity * price
            return realized
        closing = min(abs(signed_quantity), abs(self.quantity))
        closing = closing if signed_quantity > 0 else -closing
        average = self.average_cost
        realized = closing * (average - price)
        self.realized += realized
        self.cost += closing * average
        self.quantity += closing
        remainder = signed_quantity - closing
        if remainder:
            self.quantity += remainder
            self.cost += remainder * price
        if self.quantity == 0:
            self.cost = ZERO
        return realized

    def unrealized(self, mark: Fraction | None) -> Fraction:
        """Return quantity x mark - cost (zero without a mark)."""
        if mark is None or self.quantity == 0:
            return ZERO
        return self.quantity * mark - self.cost


@dataclass
class PositionTracker:
    """Every account's positions, marks, equity and the day's drawdown.

    Parameters
    ----------
    starting_equity : Decimal
        Account equity before any P&L.
    """

    starting_equity: Decimal
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    marks: dict[str, Fraction] = field(default_factory=dict)
    peak_equity: Fraction = ZERO

    def __post_init__(self) -> None:
        self.peak_equity = Fraction(self.starting_equity)

    # -- UPDATES ----------------------------------------------------------------------------------

    def apply_fill(self, account: str, symbol: str, buy: bool, quantity: Decimal, price: Fraction) -> Fraction:
        """Book a fill of `quantity` (positive) at `price`; return the realized P&L."""
        position = self.positions.get((account, symbol))
        if position is None:
            position = self.positions[(account, symbol)] = Position()
        signed = Fraction(quantity) if buy else -Fraction(quantity)
        return position.apply(signed, price)

    def mark(self, symbol: str, price: Fraction) -> None:
        """Mark `symbol` at `price` (the latest valid mid)."""
        self.marks[symbol] = price

    def update_peak(self) -> Fraction:
        """Raise the day's peak to the current equity if higher; return the current equity."""
        equity = self.equity()
        if equity > self.peak_equity:
            self.peak_equity = equity
        return equity

    def start_day(self) -> None:
        """Start a trading day: the peak becomes today's opening equity."""
        self.peak_equity = self.equity()

    # -- FIGURES ----------------------------------------------------------------------------------

    def _mark_for(self, symbol: str, position: Position) -> Fraction | None:
        mark = self.marks.get(symbol)
        return mark if mark is not None else (position.average_cost if position.quantity else None)

    def realized(self) -> Fraction:
        return sum((position.realized for position in self.positions.values()), ZERO)

    def unrealized(self) -> Fraction:
        return sum((position.unrealized(self._mark_for(symbol, position))
                    for (_, symbol), position in self.positions.items()), ZERO)

    def equity(self) -> Fraction:
        """Return starting equity + realized + unrealized P&L."""
        return Fraction(self.starting_equity) + self.realized() + self.unrealized()

    def gross_exposure(self) -> Fraction:
        """Return Σ |quantity × mark|."""
        return sum((abs(position.quantity * (self._mark_for(symbol, position) or ZERO))
                    for (_, symbol), position in self.positions.items()), ZERO)

    def net_exposure(self) -> Fraction:
        """Return Σ quantity × mark."""
        return sum((position.quantity * (self._mark_for(symbol, position) or ZERO)
                    for (_, symbol), position in self.positions.items()), ZERO)

    def drawdown(self) -> Fraction:
        """Return (peak equity - equity) / peak equity for the day, at least zero."""
        equity = self.update_peak()
        if self.peak_equity <= 0:
            return ZERO
        return max(ZERO, (self.peak_equity - equity) / self.peak_equity)

    def net_quantity(self, symbol: str) -> Fraction:
        """Return the position in `symbol` summed over every account."""
        return sum((position.quantity for (_, name), position in self.positions.items() if name == symbol), ZERO)

    def snapshot(self) -> dict:
        """Return positions and account figures as display values (Decimals as strings)."""
        rows = []
        for (account, symbol), position in sorted(self.positions.items()):
            mark = self._mark_for(symbol, position)
            rows.append({
                "account": account,
                "symbol": symbol,
                "quantity": display(position.quantity),
                "average_cost": display(position.average_cost),
                "mark": display(mark) if mark is not None else None,
                "realized_pnl": display(position.realized, 2),
                "unrealized_pnl": display(position.unrealized(mark), 2),
                "bought": display(position.bought),
                "sold": display(position.sold),
                "fills": position.fills,
            })
        return {
            "positions": rows,
            "equity": display(self.equity(), 2),
            "realized_pnl": display(self.realized(), 2),
            "unrealized_pnl": display(self.unrealized(), 2),
            "gross_exposure": display(self.gross_exposure(), 2),
            "net_exposure": display(self.net_exposure(), 2),
            "peak_equity": display(self.peak_equity, 2),
            "drawdown": display(self.drawdown(), 6),
        }
