"""The C reject describer writes exactly what the Python reference twin words, in every book state.

Hypothesis draws instruments and a book, drives them with orders, fills, cancels, quotes, trades,
restored positions and daily totals, equity and risk-state changes, so that exposures, equity and
reference prices move (awkward floats included: 0.1 + 0.2, 1e-7, 123456789.123, ties at the rounding
digit, negative equity, a reference price of zero). Between steps it asks for the sentence of any
code about any order and demands that `RejectDescriber.describe` equals
`fixgate.core.rejects.describe_reject`, and that `describe_into` cuts it safely in a short buffer.
"""

import math

from hypothesis import example, given, strategies as st

from fixgate._fast.codes import RejectCode
from fixgate._fast.describe import MAX_SENTENCE_BYTES, RejectDescriber
from fixgate._fast.instruments import Instruments
from fixgate._fast.quotes import QuoteBook
from fixgate._fast.risk import RiskBook
from fixgate._fast.throttle import Throttle
from fixgate.core.rejects import describe_reject

START_NS = 1_700_000_000_000_000_000
SESSIONS = 2
CODES = [int(code) for code in RejectCode] + [36, 44, 63, 64, 255, -1]

# -- FLOATS -----------------------------------------------------------------------------------------

AWKWARD = [
    0.1 + 0.2, 1e-7, 123456789.123, 0.125, 0.375, 2.675, 1.005, 0.5, 2.5, 0.0, -0.0, 5e-324, 1e-11,
    -1e-11, 1e22, 1.7976931348623157e308, 1234.56785, 0.0000005, 0.00005, 99.995, 1e15 + 0.3,
    math.inf, -math.inf, math.nan,
]


def ties(places):
    """Decimals with a 5 just past `places` digits: the binary value sits on either side of the tie."""
    return st.integers(-10**12, 10**12).map(lambda n: (10 * n + 5) / 10 ** (places + 1))


awkward_floats = st.one_of(
    st.sampled_from(AWKWARD),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e9, 1e9),
    ties(2), ties(4), ties(6), ties(10),
)
positive_floats = st.one_of(
    st.sampled_from([0.1 + 0.2, 1e-7, 123456789.123, 0.125, 2.675, 1.005, 99.995, 1234.56785, 190.12]),
    st.floats(1e-9, 1e9),
    ties(2).map(abs).filter(lambda value: value > 0.0),
)

# -- BOOKS ------------------------------------------------------------------------------------------

SYMBOLS = ["AAPL", "BTC-USD", "ÄPFEL-€", "EUR/USD", "S" * 63, "x", "日本株"]


def loose(*values):
    """Mostly no limit (None), else one of `values`: most orders pass, every limit gets hit."""
    return st.sampled_from([None, None, None, None, *values])


instrument_specs = st.fixed_dictionaries({
    "tick_size": st.sampled_from([0.01, 0.05, 0.25, 0.5, 1.0, 0.0001, 0.1 + 0.2]),
    "lot_size": st.sampled_from([1.0, 0.1, 0.001, 100.0, 0.0001, 0.1 + 0.2]),
    "reference_price": st.sampled_from([0.0, 10.0, 100.5, 2500.0, 50000.0, 0.1 + 0.2, 123456789.123, 1.005]),
    "adv": st.sampled_from([0.0, 1000.0, 1e6, 333.3]),
    "max_adv_fraction": loose(0.01, 0.1, 1 / 3),
    "max_order_qty": loose(1.0, 10.0, 500.0, 1e5, 7.77),
    "max_order_notional": loose(1e3, 1e5, 123456.789),
    "max_position": loose(0.0, 5.0, 100.0, 1e5),
    "max_open_orders": loose(0, 1, 3, 2**40),
    "price_collar": loose(0.0, 0.01, 0.05, 0.2, 1 / 3),
    "stale_after_ns": st.sampled_from([1, 1_000_000, 1_234_567, 1_000_000_000, 2**62]),
    "requires_live_quote": st.sampled_from([False, False, False, True]),
})

books = st.fixed_dictionaries({
    "max_order_notional": loose(1e5, 1e7, 12345.678),
    "max_gross_exposure": loose(1e4, 1e6, 1e8, 12345.678),
    "max_leverage": loose(0.5, 2.0, 10.0, 1 / 3),
    "max_daily_orders": loose(0, 5, 30, 2**62),
    "max_daily_notional": loose(1e4, 1e6, 1e8, 1e-7),
    "warning_order_qty_factor": st.sampled_from([0.5, 0.25, 1.0, 1 / 3, 0.1]),
    "warning_collar_factor": st.sampled_from([0.5, 1.0, 1 / 3]),
    "order_capacity": st.sampled_from([1024, 8]),
    "equity": st.sampled_from([1e7, 1e6, 1e4, 0.0, -5.0, 0.1 + 0.2, 123456789.123]),
})

# -- COMMANDS ---------------------------------------------------------------------------------------

instrument_ids = st.sampled_from([0, 0, 0, 1, 1, 2, 3, 0, 1, -1, 4])   # 0..3 resolve to a known id
sides = st.sampled_from([1, 2, 5, 1, 2, 7])
ord_types = st.sampled_from([2, 2, 1, 1, 3])
multipliers = st.one_of(st.integers(1, 5), st.integers(1, 50), st.integers(-2, 10**6))

COMMANDS = {
    # a limit or market order on the grid of its instrument, mostly a few lots at the reference
    "new": st.tuples(st.just("new"), st.integers(0, SESSIONS - 1), instrument_ids, st.sampled_from([1, 2, 5]),
                     st.sampled_from([2, 2, 1]), multipliers,
                     st.one_of(st.floats(-0.01, 0.01), st.floats(-0.2, 0.2))),
    "fill": st.tuples(st.just("fill"), st.integers(0, 40), st.integers(1, 60), positive_floats),
    "cancel": st.tuples(st.just("cancel"), st.integers(0, 40)),
    "ack": st.tuples(st.just("ack"), st.integers(0, 40)),
    # forget the quote, then quote around an awkward price (kept when the spread is valid)
    "quote": st.tuples(st.just("quote"), instrument_ids, positive_floats,
                       st.sampled_from([0.0001, 0.001, 0.003])),
    "trade": st.tuples(st.just("trade"), instrument_ids, awkward_floats),
    "reset_quotes": st.tuples(st.just("reset_quotes"), instrument_ids),
    "equity": st.tuples(st.just("equity"), st.one_of(st.sampled_from([1e6, 0.0, -1.0, -2500.5, 0.1 + 0.2]),
                                                     st.floats(-1e12, 1e12))),
    "state": st.tuples(st.just("state"), st.sampled_from([0, 0, 0, 1, 1, 2, 3])),
    "position": st.tuples(st.just("position"), instrument_ids,
                          st.one_of(st.integers(-10**6, 10**6), st.integers(-2**63, 2**63 - 1)),
                          positive_floats),
    "daily": st.tuples(st.just("daily"), st.integers(0, 2**40), awkward_floats.filter(math.isfinite)),
    "halt": st.tuples(st.just("halt"), instrument_ids, st.booleans()),
    # ask for a sentence: any code about any order, then the same into a buffer of `size` bytes
    "describe": st.tuples(st.just("describe"), st.sampled_from(CODES), instrument_ids, sides, ord_types,
                          awkward_floats, awkward_floats, st.integers(0, 160)),
}
WEIGHTED_KINDS = (["describe"] * 6 + ["new"] * 6 + ["fill"] * 3 + ["quote"] * 2
                  + ["cancel", "ack", "trade", "reset_quotes", "equity", "state", "position", "daily",
                     "halt"])
commands = st.sampled_from(WEIGHTED_KINDS).flatmap(COMMANDS.__getitem__)


def build(specs, book_config):
    instruments = Instruments(8)
    for index, spec in enumerate(specs):
        instruments.add(SYMBOLS[index % len(SYMBOLS)] + ("" if index < len(SYMBOLS) else str(index)), **spec)
    quotes = QuoteBook(instruments, max_spread_fraction=0.01)
    throttle = Throttle(SESSIONS, 8)
    return RiskBook(instruments, quotes, throttle, **book_config)


def resolve(book, instrument_id):
    """Map ids 0..3 onto the instruments there are; -1 and 4 stay unknown."""
    return instrument_id % book.instruments.count if 0 <= instrument_id < 4 else instrument_id


def reference_of(book, instrument_id):
    if not book.instruments.known(instrument_id):
        return 100.0
    ref = book.quotes.reference_price(instrument_id)
    return ref if 0.0 < ref < 1e12 else 100.0


def apply(book, command, accepted):
    """Apply one command that moves the book; return nothing (the describer is judged, not the book)."""
    kind = command[0]
    known = book.instruments.known
    if kind == "new":
        _, session_id, instrument_id, side, ord_type, multiplier, move = command
        instrument_id = resolve(book, instrument_id)
        spec = book.instruments.spec(instrument_id) if known(instrument_id) else {"lot_size": 1.0,
                                                                                  "tick_size": 0.01}
        tick = spec["tick_size"]
        price = max(round(reference_of(book, instrument_id) * (1.0 + move) / tick), 1) * tick
        qty = multiplier * spec["lot_size"]
        if book.check_new_order(session_id, instrument_id, side, ord_type, qty, price, START_NS) == 0:
            accepted.append(book.last_order_id)
    elif kind in ("fill", "cancel", "ack"):
        if not accepted:
            return
        order_id = accepted[command[1] % len(accepted)]
        order = book.order(order_id)
        if order is None:
            return
        if kind == "fill":
            lot = book.instruments.spec(order["instrument_id"])["lot_size"]
            book.on_filled(order_id, min(command[2], order["qty_lots"] - order["cum_lots"]) * lot, command[3])
        elif kind == "cancel":
            book.on_canceled(order_id)
        else:
            book.on_acked(order_id)
    elif kind == "quote":
        _, instrument_id, price, spread = command
        instrument_id = resolve(book, instrument_id)
        if known(instrument_id):
            book.quotes.reset(instrument_id)
            book.quotes.on_quote(instrument_id, price, price * (1.0 + spread), START_NS, START_NS)
    elif kind == "trade":
        instrument_id = resolve(book, command[1])
        if known(instrument_id):
            book.quotes.on_trade(instrument_id, command[2], START_NS, START_NS)
    elif kind == "reset_quotes":
        instrument_id = resolve(book, command[1])
        if known(instrument_id):
            book.quotes.reset(instrument_id)
    elif kind == "equity":
        book.set_equity(command[1])
    elif kind == "state":
        book.set_risk_state(command[1])
    elif kind == "position":
        instrument_id = resolve(book, command[1])
        if known(instrument_id):
            book.restore_position(instrument_id, command[2], command[3])
    elif kind == "daily":
        book.restore_daily(command[1], command[2])
    elif kind == "halt":
        instrument_id = resolve(book, command[1])
        if known(instrument_id):
            book.instruments.set_halted(instrument_id, command[2])
    else:
        raise AssertionError(kind)


def assert_describes_as_reference(describer, book, code, instrument_id, side, ord_type, qty, price, size):
    order = dict(instrument_id=instrument_id, side=side, ord_type=ord_type, qty=qty, price=price)
    expected = describe_reject(code, book, **order)
    assert describer.describe(code, **order) == expected, (code, order)
    whole = expected.encode()
    assert len(whole) <= MAX_SENTENCE_BYTES
    memory = bytearray(b"\xaa" * (size + 4))
    length = describer.describe_into(memoryview(memory)[:size], code, **order)
    assert memory[size:] == b"\xaa" * 4
    if size == 0:
        assert length == 0
    else:
        if len(whole) < size:
            assert length == len(whole)
        else:                                   # cut, dropping at most a partial UTF-8 character
            assert size - 4 <= length <= size - 1
        assert memory[:length] == whole[:length] and memory[length] == 0
        memory[:length].decode()


@given(
    specs=st.lists(instrument_specs, min_size=1, max_size=4),
    book_config=books,
    script=st.lists(commands, min_size=20, max_size=80),
)
def test_describe_when_book_driven_by_any_script_matches_reference(specs, book_config, script):
    book = build(specs, book_config)
    describer = RejectDescriber(book)
    accepted = []
    for command in script:
        if command[0] == "describe":
            _, code, instrument_id, *order = command
            assert_describes_as_reference(describer, book, code, resolve(book, instrument_id), *order)
        else:
            apply(book, command, accepted)
    # every script ends by asking about each code for a known instrument
    for code in CODES:
        assert_describes_as_reference(describer, book, code, 0, 1, 2, 1.0 + 0.1 + 0.2, 123456789.123, 64)


@given(value=awkward_floats,
       equity=st.one_of(st.sampled_from([1.0, 3.0, 0.1 + 0.2, 7e-5]), st.floats(1e-6, 1e9)),
       reference=positive_floats)
@example(value=123456789.123, equity=1.0, reference=100.0)
@example(value=0.125, equity=1.0, reference=0.1 + 0.2)
@example(value=2.675, equity=3.0, reference=1e-7)
@example(value=1.00005, equity=1.0, reference=1.0)      # round(x, 4) with a 5 past the last place
@example(value=0.0000005, equity=1.0, reference=0.1)    # round(x, 6) likewise
def test_describe_when_figure_is_any_float_formats_it_as_python(value, equity, reference):
    instruments = Instruments(2)
    instruments.add("XYZ", tick_size=0.01, lot_size=1.0, reference_price=reference, price_collar=0.05,
                    max_position=1e6)
    book = RiskBook(instruments, QuoteBook(instruments), Throttle(1, 2), equity=equity)
    describer = RejectDescriber(book)
    for code, qty, price in [
        (RejectCode.PRICE_OFF_TICK, 1.0, value),              # _number(value)
        (RejectCode.MAX_ORDER_NOTIONAL, 1.0, value),          # _number(round(value, 2))
        (RejectCode.LEVERAGE, value, 1.0),                    # round((0 + value) / equity, 4)
        (RejectCode.PRICE_COLLAR, 1.0, value),                # _percent(|value - ref| / ref)
        (RejectCode.POSITION_LIMIT, value, 1.0),
    ]:
        for ord_type in (1, 2):
            assert_describes_as_reference(describer, book, code, 0, 1, ord_type, qty, price, 40)
