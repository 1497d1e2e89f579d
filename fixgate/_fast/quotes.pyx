"""The quote book: last valid bid, ask and trade per instrument, and the checks a quote must pass."""

from libc.math cimport fabs, isfinite
from libc.stdlib cimport free

from fixgate._fast cimport enums as e
from fixgate._fast.memory cimport alloc_prefaulted
from fixgate._fast.enums cimport RejectCode


cdef class QuoteBook:
    """Last valid quote and trade per instrument; invalid quotes are counted and never stored.

    Parameters
    ----------
    instruments : Instruments
        The instrument table; the book holds one state per id of its capacity.
    max_spread_fraction : float
        The widest valid spread as a fraction of the mid (0.01 = 1%).
    max_age_ns : int
        The oldest valid quote, by its venue timestamp against `now_ns`.
    max_future_skew_ns : int
        How far in the future a venue timestamp may be (clock skew) and still count.
    max_jump_fraction : float
        The largest move of the mid from the previous valid mid, as a fraction of it.
    """

    # -- CONFIGURATION ------------------------------------------------------------------------------

    def __cinit__(
        self,
        Instruments instruments not None,
        *,
        double max_spread_fraction=0.01,
        int64_t max_age_ns=1_000_000_000,
        int64_t max_future_skew_ns=100_000_000,
        double max_jump_fraction=0.10,
    ):
        if not (isfinite(max_spread_fraction) and max_spread_fraction > 0.0):
            raise ValueError(f"max_spread_fraction must be a positive number, got {max_spread_fraction!r}")
        if max_age_ns <= 0:
            raise ValueError(f"max_age_ns must be positive, got {max_age_ns!r}")
        if max_future_skew_ns < 0:
            raise ValueError(f"max_future_skew_ns must be zero or positive, got {max_future_skew_ns!r}")
        if not (max_jump_fraction > 0.0):
            raise ValueError(f"max_jump_fraction must be a positive number, got {max_jump_fraction!r}")
        self.states = <QuoteState*>alloc_prefaulted(instruments.capacity, sizeof(QuoteState))
        if self.states == NULL:
            raise MemoryError()
        self.instruments = instruments
        self.max_spread_fraction = max_spread_fraction
        self.max_age_ns = max_age_ns
        self.max_future_skew_ns = max_future_skew_ns
        self.max_jump_fraction = max_jump_fraction

    def __dealloc__(self):
        free(self.states)

    # -- UPDATES ------------------------------------------------------------------------------------

    cdef RejectCode on_quote_c(self, int32_t instrument_id, double bid, double ask, int64_t venue_ns,
                        int64_t now_ns) noexcept nogil:
        cdef RejectCode code = self._validate(instrument_id, bid, ask, venue_ns, now_ns)
        cdef QuoteState* state
        if code != e.OK:
            self.invalid_counts[<int>code] += 1
            return code
        state = &self.states[instrument_id]
        state.bid = bid
        state.ask = ask
        state.mid = (bid + ask) * 0.5
        state.venue_ns = venue_ns
        state.arrival_ns = now_ns
        state.has_quote = True
        self.valid_count += 1
        return e.OK

    cdef RejectCode on_trade_c(self, int32_t instrument_id, double price, int64_t venue_ns,
                        int64_t now_ns) noexcept nogil:
        cdef QuoteState* state
        if not self.instruments.contains(instrument_id):
            self.invalid_counts[<int>e.UNKNOWN_INSTRUMENT] += 1
            return e.UNKNOWN_INSTRUMENT
        if not (isfinite(price) and price > 0.0):
            self.invalid_counts[<int>e.TRADE_INVALID_PRICE] += 1
            return e.TRADE_INVALID_PRICE
        state = &self.states[instrument_id]
        state.last_trade_price = price
        state.last_trade_ns = now_ns
        state.has_trade = True
        return e.OK

    cdef RejectCode _validate(self, int32_t instrument_id, double bid, double ask, int64_t venue_ns,
                              int64_t now_ns) noexcept nogil:
        cdef double mid
        cdef QuoteState* state
        if not self.instruments.contains(instrument_id):
            return e.UNKNOWN_INSTRUMENT
        if not (isfinite(bid) and bid > 0.0):
            return e.QUOTE_NON_POSITIVE_BID
        if not (isfinite(ask) and ask > 0.0):
            return e.QUOTE_NON_POSITIVE_ASK
        if bid >= ask:
            return e.QUOTE_CROSSED
        mid = (bid + ask) * 0.5
        if (ask - bid) / mid > self.max_spread_fraction:
            return e.QUOTE_SPREAD_TOO_WIDE
        if now_ns - venue_ns > self.max_age_ns:
            return e.QUOTE_TOO_OLD
        if venue_ns - now_ns > self.max_future_skew_ns:
            return e.QUOTE_FUTURE_DATED
        state = &self.states[instrument_id]
        if state.has_quote and fabs(mid - state.mid) / state.mid > self.max_jump_fraction:
            return e.QUOTE_PRICE_JUMP
        return e.OK

    def on_quote(self, int32_t instrument_id, double bid, double ask, int64_t venue_ns, int64_t now_ns):
        """Validate a top-of-book quote and store it when valid; return the `RejectCode` (OK = 0)."""
        return self.on_quote_c(instrument_id, bid, ask, venue_ns, now_ns)

    def on_trade(self, int32_t instrument_id, double price, int64_t venue_ns, int64_t now_ns):
        """Record the last trade price when it is valid; return the `RejectCode` (OK = 0)."""
        return self.on_trade_c(instrument_id, price, venue_ns, now_ns)

    def reset(self, int32_t instrument_id):
        """Forget the last valid quote and trade of `instrument_id`.

        After a genuine move larger than the jump band every quote is refused as a jump; an operator
        resets the instrument so that the next valid quote is taken as the new base.
        """
        self.instruments._require(instrument_id)
        self.states[instrument_id] = QuoteState(0.0, 0.0, 0.0, 0, 0, 0.0, 0, False, False)

    # -- READS --------------------------------------------------------------------------------------

    cdef double reference_price_c(self, int32_t instrument_id) noexcept nogil:
        cdef QuoteState* state = &self.states[instrument_id]
        if state.has_quote:
            return state.mid
        if state.has_trade:
            return state.last_trade_price
        return self.instruments.specs[instrument_id].reference_price

    cdef bint is_stale_c(self, int32_t instrument_id, int64_t now_ns) noexcept nogil:
        cdef QuoteState* state = &self.states[instrument_id]
        return (not state.has_quote
                or now_ns - state.arrival_ns > self.instruments.specs[instrument_id].stale_after_ns)

    def reference_price(self, int32_t instrument_id):
        """Return the reference price: the last valid mid, else the last trade, else the configured
        price (0.0 when there is none)."""
        self.instruments._require(instrument_id)
        return self.reference_price_c(instrument_id)

    def is_stale(self, int32_t instrument_id, int64_t now_ns):
        """Return True when no valid quote arrived within the instrument's `stale_after_ns`."""
        self.instruments._require(instrument_id)
        return self.is_stale_c(instrument_id, now_ns)

    def quote(self, int32_t instrument_id):
        """Return the last valid quote and trade of `instrument_id` as a dict."""
        self.instruments._require(instrument_id)
        cdef QuoteState* state = &self.states[instrument_id]
        return {
            "bid": state.bid if state.has_quote else None,
            "ask": state.ask if state.has_quote else None,
            "mid": state.mid if state.has_quote else None,
            "venue_ns": state.venue_ns if state.has_quote else None,
            "arrival_ns": state.arrival_ns if state.has_quote else None,
            "last_trade_price": state.last_trade_price if state.has_trade else None,
            "last_trade_ns": state.last_trade_ns if state.has_trade else None,
        }

    # -- COUNTERS -----------------------------------------------------------------------------------

    def counters(self):
        """Return ``{"valid": n, "invalid": {code: n}}`` with only the non-zero invalid counts."""
        return {
            "valid": self.valid_count,
            "invalid": {code: self.invalid_counts[code] for code in range(<int>e.CODE_COUNT)
                        if self.invalid_counts[code]},
        }
