"""Background market maker of the venue simulator.

The maker keeps a random-walk mid price per symbol and quotes a ladder of bids and asks around it
through the matching engine, as an ordinary owner ("MM"). It reads no clock and draws its random
numbers from its own `random.Random(seed)`, so the same seed and the same calls give the same
events.

Policies
--------
Mid price
    Integer ticks, starting at the instrument's `initial_mid` rounded half-even to the tick. Each
    `step` adds a Gaussian number of ticks (standard deviation `volatility_ticks`, rounded to a
    whole tick) and never lets the mid fall below one tick. The mid keeps walking while a symbol
    is paused; only the quoting stops.
Ladder
    Best bid = mid - spread_ticks / 2, rounded down to the tick; best ask = best bid +
    spread_ticks; each further level one tick away; `quote_qty_lots` lots a level. Levels that
    would sit at or below zero are not quoted.
Requoting
    Quotes follow the mid by cancel/replace. Quotes that move away from the market (bids down,
    asks up) go first, then those that move towards it and new ones, so the maker never trades
    with itself; its quotes do trade with resting orders of others they cross. A quote partly
    filled is topped up to `quote_qty_lots` (and loses its place in the queue).
Crossed quotes
    `quotes_crossed(symbol, True)` swaps the ladder: the bids start at the ask the maker would
    otherwise show. The engine never holds a crossed book, so the maker posts the crossed bids
    (they trade with whatever resting asks they cross) and skips every ask at or below its best
    bid rather than trade with itself. `indicated_quote` returns the crossed top (bid >= ask) for
    a market-data publisher that means to put a crossed quote on the wire.
Stale feed
    `pause(symbol)` freezes the symbol's quotes where they rest; `resume(symbol)` lets the next
    `step` requote them at the current mid.
"""

from __future__ import annotations

import random
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import count
from typing import Iterable, NamedTuple

from fixgate.simulator.matching import (
    CancelReject,
    Event,
    ExecType,
    ExecutionReport,
    MatchingEngine,
    OrdStatus,
    OrdType,
    Side,
    TimeInForce,
)

__all__ = ["MarketMaker"]

_LIVE = frozenset({OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED})


class _RestingQuote(NamedTuple):
    """What the maker needs to know of one of its live quotes."""

    cl_ord_id: str
    price: Decimal
    cum_qty: Decimal
    leaves_qty: Decimal


class MarketMaker:
    """Quote a random-walk mid on each symbol through a matching engine.

    Parameters
    ----------
    engine : MatchingEngine
        The engine to quote into.
    symbols : Iterable[str]
        Symbols to quote, each traded by `engine`; they are stepped in this order.
    seed : int
        Seed of the maker's own random number generator.
    owner : str, default "MM"
        The owner the maker's orders carry.
    levels : int, default 3
        Price levels quoted on each side.
    quote_qty_lots : int, default 10
        Lots quoted at each level.
    spread_ticks : int, default 2
        Distance in ticks between the best bid and the best ask.
    volatility_ticks : float, default 1.0
        Standard deviation, in ticks, of the mid's move at each step.

    Raises
    ------
    ValueError
        When a symbol is unknown to the engine or a size is out of range.
    """

    def __init__(self, engine: MatchingEngine, symbols: Iterable[str], *, seed: int, owner: str = "MM",
                 levels: int = 3, quote_qty_lots: int = 10, spread_ticks: int = 2,
                 volatility_ticks: float = 1.0) -> None:
        if levels < 1:
            raise ValueError(f"levels must be at least 1, got {levels!r}")
        if quote_qty_lots < 1:
            raise ValueError(f"quote_qty_lots must be at least 1, got {quote_qty_lots!r}")
        if spread_ticks < 1:
            raise ValueError(f"spread_ticks must be at least 1, got {spread_ticks!r}")
        if not volatility_ticks >= 0:
            raise ValueError(f"volatility_ticks must be zero or positive, got {volatility_ticks!r}")
        self._engine = engine
        self._random = random.Random(seed)
        self._owner = owner
        self._levels = levels
        self._quote_qty_lots = quote_qty_lots
        self._spread_ticks = spread_ticks
        self._volatility_ticks = float(volatility_ticks)
        self._symbols = tuple(dict.fromkeys(symbols))
        self._mid_ticks: dict[str, int] = {}
        self._quotes: dict[str, dict[Side, list[str | None]]] = {}
        for symbol in self._symbols:
            instrument = engine.instrument(symbol)
            self._mid_ticks[symbol] = max(1, _whole(instrument.initial_mid / instrument.tick_size))
            self._quotes[symbol] = {Side.BUY: [None] * levels, Side.SELL: [None] * levels}
        self._paused: set[str] = set()
        self._crossed: set[str] = set()
        self._cl_ord_numbers = count(1)

    # -- MARKET --------------------------------------------------------------------------------------

    @property
    def owner(self) -> str:
        """Return the owner the maker's orders carry."""
        return self._owner

    @property
    def symbols(self) -> tuple[str, ...]:
        """Return the symbols the maker quotes, in stepping order."""
        return self._symbols

    def mid(self, symbol: str) -> Decimal:
        """Return the maker's current mid price of `symbol`."""
        return self._price(symbol, self._mid_ticks[self._known(symbol)])

    def indicated_quote(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        """Return the (best bid, best ask) the maker means to show, crossed when the fault is on.

        A side whose price would be zero or below is None. The book may differ: a crossed ask is
        never posted, and quotes of a paused symbol stay where they were.
        """
        best_bid, best_ask = self._best_ticks(self._known(symbol))
        return (self._price(symbol, best_bid) if best_bid >= 1 else None,
                self._price(symbol, best_ask) if best_ask >= 1 else None)

    def step(self, now_ns: int) -> list[Event]:
        """Move every mid by one random step and requote the symbols that are not paused.

        Returns
        -------
        list[Event]
            Every engine event the maker's requests produced, trades with others included.
        """
        events: list[Event] = []
        for symbol in self._symbols:
            move = round(self._random.gauss(0.0, self._volatility_ticks))
            self._mid_ticks[symbol] = max(1, self._mid_ticks[symbol] + move)
            if symbol not in self._paused:
                events.extend(self._requote(symbol, now_ns))
        return events

    # -- FAULTS --------------------------------------------------------------------------------------

    def shock(self, symbol: str, fraction: Decimal | float | str, now_ns: int) -> list[Event]:
        """Move the mid of `symbol` by `fraction` of itself at once (-0.2 is a 20% drop) and requote.

        Returns
        -------
        list[Event]
            The engine events of the requote; none while the symbol is paused.
        """
        symbol = self._known(symbol)
        change = fraction if isinstance(fraction, Decimal) else Decimal(str(fraction))
        self._mid_ticks[symbol] = max(1, _whole(Decimal(self._mid_ticks[symbol]) * (1 + change)))
        return [] if symbol in self._paused else self._requote(symbol, now_ns)

    def pause(self, symbol: str) -> None:
        """Stop requoting `symbol`: its quotes rest where they are until `resume`."""
        self._paused.add(self._known(symbol))

    def resume(self, symbol: str) -> None:
        """Requote `symbol` again from the next `step`."""
        self._paused.discard(self._known(symbol))

    def quotes_crossed(self, symbol: str, flag: bool) -> None:
        """Turn the crossed-quote fault of `symbol` on or off from the next requote."""
        if flag:
            self._crossed.add(self._known(symbol))
        else:
            self._crossed.discard(self._known(symbol))

    # -- QUOTING -------------------------------------------------------------------------------------

    def _requote(self, symbol: str, now_ns: int) -> list[Event]:
        """Bring the symbol's resting quotes to the ladder around the current mid."""
        lot_size = self._engine.instrument(symbol).lot_size
        quote_qty = Decimal(self._quote_qty_lots) * lot_size
        targets = self._targets(symbol)
        quotes = self._quotes[symbol]
        events: list[Event] = []
        current: dict[tuple[Side, int], _RestingQuote] = {}
        for side, slots in quotes.items():
            for level, cl_ord_id in enumerate(slots):
                quote = None if cl_ord_id is None else self._resting_quote(cl_ord_id)
                if quote is None:
                    slots[level] = None
                elif level >= len(targets[side]):
                    events.extend(self._engine.cancel(self._owner, self._next_cl_ord_id(), quote.cl_ord_id, symbol,
                                                      side, now_ns))
                    slots[level] = None
                else:
                    current[(side, level)] = quote
        retreating: list[tuple[Side, int, Decimal, _RestingQuote | None]] = []
        advancing: list[tuple[Side, int, Decimal, _RestingQuote | None]] = []
        for side, prices in targets.items():
            for level, ticks in enumerate(prices):
                price = self._price(symbol, ticks)
                quote = current.get((side, level))
                if quote is None:
                    advancing.append((side, level, price, None))
                elif quote.price != price or quote.leaves_qty != quote_qty:
                    moves_away = price <= quote.price if side is Side.BUY else price >= quote.price
                    (retreating if moves_away else advancing).append((side, level, price, quote))
        for side, level, price, resting in retreating + advancing:
            events.extend(self._place(symbol, side, level, price, quote_qty, resting, now_ns))
        return events

    def _resting_quote(self, cl_ord_id: str) -> _RestingQuote | None:
        """Return the maker's live quote `cl_ord_id`, or None once it is filled or gone."""
        report = self._engine.status(self._owner, cl_ord_id)
        if report is None or report.ord_status not in _LIVE or report.price is None:
            return None
        return _RestingQuote(report.cl_ord_id, report.price, report.cum_qty, report.leaves_qty)

    def _place(self, symbol: str, side: Side, level: int, price: Decimal, quote_qty: Decimal,
               resting: _RestingQuote | None, now_ns: int) -> list[Event]:
        """Post a new quote at `price`, or replace the resting one."""
        cl_ord_id = self._next_cl_ord_id()
        if resting is None:
            events = self._engine.new_order(self._owner, cl_ord_id, symbol, side, OrdType.LIMIT, quote_qty, price,
                                            TimeInForce.GTC, now_ns)
            accepted = isinstance(events[0], ExecutionReport) and events[0].exec_type is not ExecType.REJECTED
        else:
            events = self._engine.replace(self._owner, cl_ord_id, resting.cl_ord_id, symbol, side,
                                          resting.cum_qty + quote_qty, price, now_ns)
            accepted = not isinstance(events[0], CancelReject)
        if accepted:
            self._quotes[symbol][side][level] = cl_ord_id
        return events

    def _targets(self, symbol: str) -> dict[Side, list[int]]:
        """Return the ladder's prices in ticks, best first, for each side."""
        best_bid, best_ask = self._best_ticks(symbol)
        bids = [best_bid - level for level in range(self._levels) if best_bid - level >= 1]
        ceiling = bids[0] if bids else 0
        asks = [best_ask + level for level in range(self._levels) if best_ask + level > ceiling]
        return {Side.BUY: bids, Side.SELL: asks}

    def _best_ticks(self, symbol: str) -> tuple[int, int]:
        best_bid = self._mid_ticks[symbol] - (self._spread_ticks + 1) // 2
        best_ask = best_bid + self._spread_ticks
        return (best_ask, best_bid) if symbol in self._crossed else (best_bid, best_ask)

    def _price(self, symbol: str, ticks: int) -> Decimal:
        tick_size = self._engine.instrument(symbol).tick_size
        return (Decimal(ticks) * tick_size).quantize(Decimal(1).scaleb(min(int(tick_size.as_tuple().exponent), 0)))

    def _known(self, symbol: str) -> str:
        if symbol not in self._mid_ticks:
            raise ValueError(f"the market maker does not quote {symbol!r}; it quotes {', '.join(self._symbols)}")
        return symbol

    def _next_cl_ord_id(self) -> str:
        return f"{self._owner}-{next(self._cl_ord_numbers)}"


def _whole(value: Decimal) -> int:
    """Return `value` rounded half-even to a whole number."""
    return int(value.to_integral_value(rounding=ROUND_HALF_EVEN))
