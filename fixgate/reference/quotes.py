"""Reference twin of ``fixgate._fast.quotes``."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fixgate.reference.codes import RejectCode as R
from fixgate.reference.instruments import Instruments


@dataclass
class QuoteState:
    bid: float = 0.0
    ask: float = 0.0
    mid: float = 0.0
    venue_ns: int = 0
    arrival_ns: int = 0
    last_trade_price: float = 0.0
    last_trade_ns: int = 0
    has_quote: bool = False
    has_trade: bool = False


class QuoteBook:
    """Last valid quote and trade per instrument; invalid quotes are counted and never stored."""

    def __init__(
        self,
        instruments: Instruments,
        *,
        max_spread_fraction: float = 0.01,
        max_age_ns: int = 1_000_000_000,
        max_future_skew_ns: int = 100_000_000,
        max_jump_fraction: float = 0.10,
    ) -> None:
        if not (math.isfinite(max_spread_fraction) and max_spread_fraction > 0.0):
            raise ValueError(f"max_spread_fraction must be a positive number, got {max_spread_fraction!r}")
        if max_age_ns <= 0:
            raise ValueError(f"max_age_ns must be positive, got {max_age_ns!r}")
        if max_future_skew_ns < 0:
            raise ValueError(f"max_future_skew_ns must be zero or positive, got {max_future_skew_ns!r}")
        if not (max_jump_fraction > 0.0):
            raise ValueError(f"max_jump_fraction must be a positive number, got {max_jump_fraction!r}")
        self.instruments = instruments
        self.max_spread_fraction = float(max_spread_fraction)
        self.max_age_ns = int(max_age_ns)
        self.max_future_skew_ns = int(max_future_skew_ns)
        self.max_jump_fraction = float(max_jump_fraction)
        self.states = [QuoteState() for _ in range(instruments.capacity)]
        self.invalid_counts = [0] * 64
        self.valid_count = 0

    def on_quote(self, instrument_id: int, bid: float, ask: float, venue_ns: int, now_ns: int) -> int:
        """Validate a top-of-book quote and store it when valid; return the `RejectCode` (OK = 0)."""
        code = self._validate(instrument_id, bid, ask, venue_ns, now_ns)
        if code != R.OK:
            self.invalid_counts[code] += 1
            return code
        state = self.states[instrument_id]
        state.bid = bid
        state.ask = ask
        state.mid = (bid + ask) * 0.5
        state.venue_ns = venue_ns
        state.arrival_ns = now_ns
        state.has_quote = True
        self.valid_count += 1
        return R.OK

    def on_trade(self, instrument_id: int, price: float, venue_ns: int, now_ns: int) -> int:
        """Record the last trade price when it is valid; return the `RejectCode` (OK = 0)."""
        if not self.instruments.known(instrument_id):
            self.invalid_counts[R.UNKNOWN_INSTRUMENT] += 1
            return R.UNKNOWN_INSTRUMENT
        if not (math.isfinite(price) and price > 0.0):
            self.invalid_counts[R.TRADE_INVALID_PRICE] += 1
            return R.TRADE_INVALID_PRICE
        state = self.states[instrument_id]
        state.last_trade_price = price
        state.last_trade_ns = now_ns
        state.has_trade = True
        return R.OK

    def _validate(self, instrument_id: int, bid: float, ask: float, venue_ns: int, now_ns: int) -> int:
        if not self.instruments.known(instrument_id):
            return R.UNKNOWN_INSTRUMENT
        if not (math.isfinite(bid) and bid > 0.0):
            return R.QUOTE_NON_POSITIVE_BID
        if not (math.isfinite(ask) and ask > 0.0):
            return R.QUOTE_NON_POSITIVE_ASK
        if bid >= ask:
            return R.QUOTE_CROSSED
        mid = (bid + ask) * 0.5
        if (ask - bid) / mid > self.max_spread_fraction:
            return R.QUOTE_SPREAD_TOO_WIDE
        if now_ns - venue_ns > self.max_age_ns:
            return R.QUOTE_TOO_OLD
        if venue_ns - now_ns > self.max_future_skew_ns:
            return R.QUOTE_FUTURE_DATED
        state = self.states[instrument_id]
        if state.has_quote and abs(mid - state.mid) / state.mid > self.max_jump_fraction:
            return R.QUOTE_PRICE_JUMP
        return R.OK

    def reset(self, instrument_id: int) -> None:
        """Forget the last valid quote and trade of `instrument_id`."""
        self.instruments._require(instrument_id)
        self.states[instrument_id] = QuoteState()

    def reference_price(self, instrument_id: int) -> float:
        """Return the reference price: the last valid mid, else the last trade, else the configured
        price (0.0 when there is none)."""
        state = self.states[instrument_id]
        if state.has_quote:
            return state.mid
        if state.has_trade:
            return state.last_trade_price
        return self.instruments.specs[instrument_id].reference_price

    def is_stale(self, instrument_id: int, now_ns: int) -> bool:
        """Return True when no valid quote arrived within the instrument's `stale_after_ns`."""
        state = self.states[instrument_id]
        return (not state.has_quote
                or now_ns - state.arrival_ns > self.instruments.specs[instrument_id].stale_after_ns)

    def quote(self, instrument_id: int) -> dict:
        """Return the last valid quote and trade of `instrument_id` as a dict."""
        self.instruments._require(instrument_id)
        state = self.states[instrument_id]
        return {
            "bid": state.bid if state.has_quote else None,
            "ask": state.ask if state.has_quote else None,
            "mid": state.mid if state.has_quote else None,
            "venue_ns": state.venue_ns if state.has_quote else None,
            "arrival_ns": state.arrival_ns if state.has_quote else None,
            "last_trade_price": state.last_trade_price if state.has_trade else None,
            "last_trade_ns": state.last_trade_ns if state.has_trade else None,
        }

    def counters(self) -> dict:
        """Return ``{"valid": n, "invalid": {code: n}}`` with only the non-zero invalid counts."""
        return {
            "valid": self.valid_count,
            "invalid": {code: count for code, count in enumerate(self.invalid_counts) if count},
        }
