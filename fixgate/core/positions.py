"""Positions and P&L per account and instrument, in whole lots and ticks.

A position keeps integers only: its signed quantity in lots, the cash its fills moved (lots x ticks,
exact), and the cost basis of what is open (lots x ticks, average-cost accounting). Total P&L is
cash + quantity x mark, exactly; realized P&L is cash + open cost, so the one rounding of average
cost (half a tick-lot when a position is reduced by a share that does not divide its cost) moves
between realized and unrealized and never changes the total. Money appears as a Decimal only when
lots x ticks are multiplied by the instrument's notional unit (lot x tick) for display and for the
equity the risk state machine reads. Marks are the quote book's reference prices on the tick grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from fixgate.core.numbers import plain
from fixgate.core.orders import Instrument

ZERO = Decimal(0)


def round_div(numerator: int, denominator: int) -> int:
    """Return numerator / denominator rounded half to even (denominator > 0)."""
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient


def money(value: Decimal, places: int = 2) -> str:
    """Return an amount as plain text rounded to `places` decimals (display only)."""
    return plain(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


@dataclass
class Position:
    """One account's position in one instrument."""

    instrument: Instrument
    lots: int = 0                    # signed: long > 0
    open_cost: int = 0               # signed with the position: lots x average cost, in tick-lots
    cash: int = 0                    # -sum(signed lots x ticks) over the fills
    bought_lots: int = 0
    sold_lots: int = 0
    fills: int = 0

    def apply(self, signed_lots: int, ticks: int) -> None:
        """Book a fill of `signed_lots` (buy > 0) at `ticks`."""
        self.fills += 1
        if signed_lots > 0:
            self.bought_lots += signed_lots
        else:
            self.sold_lots -= signed_lots
        self.cash -= signed_lots * ticks
        if self.lots == 0 or (self.lots > 0) == (signed_lots > 0):
            self.lots += signed_lots
            self.open_cost += signed_lots * ticks
            return
        closing = min(abs(signed_lots), abs(self.lots))
        if closing == abs(self.lots):
            self.open_cost = 0
        else:
            self.open_cost -= round_div(self.open_cost * closing, abs(self.lots))
        self.lots += closing if signed_lots > 0 else -closing
        remainder = signed_lots + (-closing if signed_lots > 0 else closing)
        if remainder:
            self.lots += remainder
            self.open_cost += remainder * ticks

    # -- FIGURES (tick-lots) ----------------------------------------------------------------------

    def realized_units(self) -> int:
        return self.cash + self.open_cost

    def unrealized_units(self, mark_ticks: int | None) -> int:
        if mark_ticks is None or self.lots == 0:
            return 0
        return self.lots * mark_ticks - self.open_cost

    # -- DISPLAY ----------------------------------------------------------------------------------

    @property
    def quantity(self) -> Decimal:
        return self.instrument.lot * self.lots

    @property
    def average_cost(self) -> Decimal:
        if not self.lots:
            return ZERO
        return (Decimal(self.open_cost) * self.instrument.tick / Decimal(self.lots)).normalize()

    def state(self) -> list[int]:
        return [self.lots, self.open_cost, self.cash, self.bought_lots, self.sold_lots, self.fills]


@dataclass
class PositionTracker:
    """Every account's positions, the marks, the equity and the day's drawdown.

    Parameters
    ----------
    starting_equity : Decimal
        Account equity before any P&L.
    instruments : list[Instrument]
        By instrument id.
    """

    starting_equity: Decimal
    instruments: list[Instrument]
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    marks: dict[int, int] = field(default_factory=dict)          # instrument id -> mark in ticks
    peak_equity: Decimal = ZERO

    def __post_init__(self) -> None:
        self.starting_equity = Decimal(self.starting_equity)
        self.peak_equity = self.starting_equity
        self._ids = {instrument.symbol: index for index, instrument in enumerate(self.instruments)}
        self._units = [instrument.lot * instrument.tick for instrument in self.instruments]

    # -- UPDATES ----------------------------------------------------------------------------------

    def apply_fill(self, account: str, instrument_id: int, buy: bool, lots: int, ticks: int) -> None:
        """Book a fill of `lots` (positive) at `ticks`."""
        instrument = self.instruments[instrument_id]
        key = (account, instrument.symbol)
        position = self.positions.get(key)
        if position is None:
            position = self.positions[key] = Position(instrument)
        position.apply(lots if buy else -lots, ticks)

    def mark(self, instrument_id: int, ticks: int) -> None:
        """Mark an instrument at `ticks` (its latest reference price on the tick grid)."""
        self.marks[instrument_id] = ticks

    def mark_price(self, instrument_id: int, price: float) -> None:
        """Mark an instrument at a float price (the quote book's reference), rounded to its tick."""
        if price > 0.0:
            tick = float(self.instruments[instrument_id].tick)
            self.marks[instrument_id] = max(int(round(price / tick)), 1)

    def update_peak(self) -> Decimal:
        """Raise the day's peak to the current equity if higher; return the current equity."""
        equity = self.equity()
        if equity > self.peak_equity:
            self.peak_equity = equity
        return equity

    def start_day(self) -> None:
        """Start a trading day: the peak becomes today's opening equity."""
        self.peak_equity = self.equity()

    # -- FIGURES ----------------------------------------------------------------------------------

    def _mark_for(self, position: Position) -> int | None:
        instrument_id = self._ids[position.instrument.symbol]
        mark = self.marks.get(instrument_id)
        if mark is not None:
            return mark
        return None

    def _money(self, position: Position, units: int) -> Decimal:
        return self._units[self._ids[position.instrument.symbol]] * units

    def realized(self) -> Decimal:
        return sum((self._money(position, position.realized_units()) for position in self.positions.values()), ZERO)

    def unrealized(self) -> Decimal:
        return sum((self._money(position, position.unrealized_units(self._mark_for(position)))
                    for position in self.positions.values()), ZERO)

    def equity(self) -> Decimal:
        """Return starting equity + realized + unrealized P&L."""
        total = ZERO
        for position in self.positions.values():
            mark = self._mark_for(position)
            units = position.cash + (position.lots * mark if mark is not None else position.open_cost)
            total += self._money(position, units)
        return self.starting_equity + total

    def gross_exposure(self) -> Decimal:
        """Return the sum of |quantity x mark| (average cost where there is no mark)."""
        total = ZERO
        for position in self.positions.values():
            mark = self._mark_for(position)
            units = position.lots * mark if mark is not None else position.open_cost
            total += abs(self._money(position, units))
        return total

    def net_exposure(self) -> Decimal:
        total = ZERO
        for position in self.positions.values():
            mark = self._mark_for(position)
            total += self._money(position, position.lots * mark if mark is not None else position.open_cost)
        return total

    def drawdown(self) -> float:
        """Return (peak equity - equity) / peak equity for the day, at least zero."""
        equity = self.update_peak()
        if self.peak_equity <= 0:
            return 0.0
        return max(0.0, float((self.peak_equity - equity) / self.peak_equity))

    def net_lots(self, instrument_id: int) -> int:
        """Return the position in an instrument summed over every account, in lots."""
        symbol = self.instruments[instrument_id].symbol
        return sum(position.lots for (_, name), position in self.positions.items() if name == symbol)

    def net_quantity(self, symbol: str) -> Decimal:
        """Return the position in `symbol` summed over every account."""
        return sum((position.quantity for (_, name), position in self.positions.items() if name == symbol), ZERO)

    # -- SNAPSHOTS --------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Return positions and account figures as display values (exact decimals as text)."""
        rows = []
        for (account, symbol), position in sorted(self.positions.items()):
            mark = self._mark_for(position)
            tick = position.instrument.tick
            rows.append({
                "account": account,
                "symbol": symbol,
                "quantity": plain(position.quantity),
                "average_cost": plain(position.average_cost),
                "mark": plain(tick * mark) if mark is not None else None,
                "realized_pnl": money(self._money(position, position.realized_units())),
                "unrealized_pnl": money(self._money(position, position.unrealized_units(mark))),
                "bought": plain(position.instrument.lot * position.bought_lots),
                "sold": plain(position.instrument.lot * position.sold_lots),
                "fills": position.fills,
            })
        return {
            "positions": rows,
            "equity": money(self.equity()),
            "realized_pnl": money(self.realized()),
            "unrealized_pnl": money(self.unrealized()),
            "gross_exposure": money(self.gross_exposure()),
            "net_exposure": money(self.net_exposure()),
            "peak_equity": money(self.peak_equity),
            "drawdown": f"{self.drawdown():.6f}",
        }

    def state(self) -> dict[str, Any]:
        """Return what the journal's snapshots keep."""
        return {"positions": [[account, symbol, *position.state()]
                              for (account, symbol), position in sorted(self.positions.items())],
                "peak_equity": str(self.peak_equity)}

    def restore(self, state: dict[str, Any]) -> None:
        """Put back what `state` kept."""
        for account, symbol, lots, open_cost, cash, bought, sold, fills in state["positions"]:
            instrument = self.instruments[self._ids[symbol]]
            self.positions[(account, symbol)] = Position(instrument, lots, open_cost, cash, bought, sold, fills)
        self.peak_equity = Decimal(state["peak_equity"])


def by_symbol(snapshot: dict[str, Any], symbols: list[str] | None = None) -> list[tuple[str, Decimal, Decimal]]:
    """(symbol, net quantity, P&L) over every account from a `PositionTracker.snapshot()`, in the
    order of `symbols` (default: the snapshot's)."""
    totals: dict[str, list[Decimal]] = {}
    for row in snapshot.get("positions", []):
        total = totals.setdefault(row["symbol"], [Decimal(0), Decimal(0)])
        total[0] += Decimal(row["quantity"])
        total[1] += Decimal(row["realized_pnl"]) + Decimal(row["unrealized_pnl"])
    return [(symbol, *totals[symbol]) for symbol in (symbols if symbols is not None else totals) if symbol in totals]
