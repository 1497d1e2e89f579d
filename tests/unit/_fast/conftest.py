"""Every suite in this folder runs against both implementations: Cython (`fast`) and reference."""

from types import SimpleNamespace

import pytest

from fixgate._fast import codes as fast_codes
from fixgate._fast import instruments as fast_instruments
from fixgate._fast import quotes as fast_quotes
from fixgate._fast import risk as fast_risk
from fixgate._fast import throttle as fast_throttle
from fixgate.reference import codes as reference_codes
from fixgate.reference import instruments as reference_instruments
from fixgate.reference import quotes as reference_quotes
from fixgate.reference import risk as reference_risk
from fixgate.reference import throttle as reference_throttle

FAST = SimpleNamespace(name="fast", codes=fast_codes, Instruments=fast_instruments.Instruments,
                       QuoteBook=fast_quotes.QuoteBook, Throttle=fast_throttle.Throttle,
                       RiskBook=fast_risk.RiskBook)
REFERENCE = SimpleNamespace(name="reference", codes=reference_codes,
                            Instruments=reference_instruments.Instruments,
                            QuoteBook=reference_quotes.QuoteBook, Throttle=reference_throttle.Throttle,
                            RiskBook=reference_risk.RiskBook)

T0 = 1_700_000_000_000_000_000


@pytest.fixture(params=[FAST, REFERENCE], ids=lambda impl: impl.name)
def impl(request):
    """The implementation under test."""
    return request.param


@pytest.fixture
def make_book(impl):
    """Build a risk book with one instrument XYZ (tick 0.01, lot 1, reference 100.00) by default.

    `instruments` is a list of (symbol, spec) pairs; `quotes` and `throttle` are keyword arguments of
    the quote book and throttle; the rest go to the risk book.
    """

    def build(instruments=None, *, quotes=None, throttle=None, **book):
        table = impl.Instruments(16)
        for symbol, spec in instruments or [("XYZ", {})]:
            table.add(symbol, **{"tick_size": 0.01, "lot_size": 1.0, "reference_price": 100.0, **spec})
        quote_book = impl.QuoteBook(table, **(quotes or {}))
        limiter = impl.Throttle(4, 16, **(throttle or {}))
        return impl.RiskBook(table, quote_book, limiter, **book)

    return build
