"""The reject sentences written in C read exactly as the Python gateway words them.

Every expected string below was taken from `fixgate.core.rejects.describe_reject`, the reference twin;
each test also asks the twin, so that a change to either side shows here.
"""

import ast
import math
import os
from importlib import resources
from pathlib import Path

import pytest

from fixgate._fast.codes import REJECT_TABLE, RejectCode as R, RiskState
from fixgate._fast.describe import MAX_SENTENCE_BYTES, MAX_SYMBOL_BYTES, RejectDescriber
from fixgate._fast.instruments import Instruments
from fixgate._fast.quotes import QuoteBook
from fixgate._fast.risk import RiskBook
from fixgate._fast.throttle import Throttle
from fixgate.core.rejects import describe_reject

T0 = 1_700_000_000_000_000_000
BTC, AAPL = 0, 2            # ids in the bundled configuration: BTC-USD, ETH-USD, AAPL
UNKNOWN = 7


@pytest.fixture(scope="module")
def book():
    """The bundled configuration's book, quoted and trading: AAPL long 600 with 600 more bid and
    300 offered, BTC-USD 2 bid."""
    from fixgate import config, gateway     # the whole gateway stack: only the tests that need it

    book = gateway.build_book(config.load(), now_ns=T0)
    assert book.instruments.symbols == ["BTC-USD", "ETH-USD", "AAPL"]
    assert book.quotes.on_quote(AAPL, 190.10, 190.14, T0, T0) == R.OK
    assert book.quotes.on_quote(BTC, 60_000.0, 60_001.0, T0, T0) == R.OK
    assert book.check_new_order(0, AAPL, 1, 2, 1200.0, 190.12, T0) == R.OK
    assert book.on_filled(book.last_order_id, 600.0, 190.12) == R.OK
    assert book.check_new_order(0, AAPL, 2, 2, 300.0, 190.15, T0) == R.OK
    assert book.check_new_order(0, BTC, 1, 2, 2.0, 60_000.5, T0) == R.OK
    return book


@pytest.fixture(scope="module")
def describer(book):
    return RejectDescriber(book)


def both(describer, code, book=None, **order):
    """The sentence from the describer, after checking that the reference twin says the same."""
    text = describer.describe(code, **order)
    assert text == describe_reject(code, book or describer.book, **order)
    return text


# -- ONE EXAMPLE PER CODE ---------------------------------------------------------------------------

EXAMPLES = [
    (R.OK, AAPL, 1, 2, 100.0, 190.12, "accepted"),
    (R.KILL_SWITCH, AAPL, 1, 2, 100.0, 190.12, "kill switch active"),
    (R.CIRCUIT_BREAKER, AAPL, 1, 2, 100.0, 190.12,
     "circuit breaker active: only orders that reduce the position in AAPL are accepted"),
    (R.REDUCE_ONLY, AAPL, 1, 2, 100.0, 190.12,
     "the gateway is reduce-only: only orders that reduce the position in AAPL are accepted"),
    (R.FIRM_GROSS_EXPOSURE, AAPL, 1, 2, 100.0, 190.12,
     "gross exposure would exceed this gateway's budget of the firm's gross exposure limit"),
    (R.FIRM_DAILY_NOTIONAL, AAPL, 1, 2, 100.0, 190.12,
     "daily notional would exceed this gateway's budget of the firm's daily notional limit"),
    (R.FIRM_DAILY_ORDERS, AAPL, 1, 2, 100.0, 190.12, "this gateway's budget of the firm's daily order limit is used up"),
    (R.FIRM_CLIENT_CREDIT, AAPL, 1, 2, 100.0, 190.12,
     "the client's open notional would exceed this gateway's budget of its firm-wide credit"),
    (R.UNKNOWN_INSTRUMENT, UNKNOWN, 1, 2, 100.0, 190.12, "unknown instrument"),
    (R.INSTRUMENT_HALTED, AAPL, 1, 2, 100.0, 190.12, "instrument halted: AAPL"),
    (R.THROTTLED, AAPL, 1, 2, 100.0, 190.12, "order rate limit exceeded"),
    (R.INVALID_SIDE, AAPL, 7, 2, 100.0, 190.12, "side must be buy, sell or sell short"),
    (R.INVALID_ORDER_TYPE, AAPL, 1, 4, 100.0, 190.12, "order type must be market or limit"),
    (R.INVALID_QUANTITY, AAPL, 1, 2, -5.0, 190.12, "quantity must be a positive number"),
    (R.QUANTITY_NOT_LOT_MULTIPLE, BTC, 1, 2, 0.0005, 60_000.5,
     "quantity 0.0005 is not a multiple of the lot 0.001 for BTC-USD"),
    (R.INVALID_PRICE, AAPL, 1, 2, 100.0, 0.0, "limit price must be a positive number"),
    (R.PRICE_OFF_TICK, AAPL, 1, 2, 100.0, 190.123,
     "price 190.123 is not a multiple of the tick 0.01 for AAPL"),
    (R.NO_REFERENCE_PRICE, AAPL, 1, 1, 100.0, 0.0, "market order without a valid reference price"),
    (R.MAX_ORDER_QUANTITY, AAPL, 1, 2, 5000.0, 190.12, "quantity 5000 exceeds max order qty 2000 for AAPL"),
    (R.WARNING_MAX_ORDER_QUANTITY, BTC, 1, 2, 3.0, 60_000.5,
     "quantity 3 exceeds max order qty 2.5 in WARNING state (5 x 0.5) for BTC-USD"),
    (R.MAX_ORDER_NOTIONAL, AAPL, 1, 1, 1500.0, 0.0,
     "notional 285180 exceeds max order notional 250000 for AAPL"),
    (R.MAX_ACCOUNT_ORDER_NOTIONAL, BTC, 2, 2, 4.5, 60_000.5,
     "notional 270002.25 exceeds the account max order notional 500000"),
    (R.ADV_PARTICIPATION, BTC, 1, 2, 250.0, 60_000.5,
     "quantity 250 exceeds 200, the allowed share of average daily volume 20000 for BTC-USD"),
    (R.PRICE_COLLAR, AAPL, 1, 2, 100.0, 196.0,
     "price 196 is 3.092784% from reference 190.12, outside the 3% collar for AAPL"),
    (R.WARNING_PRICE_COLLAR, AAPL, 2, 2, 100.0, 187.0,
     "price 187 is 1.641069% from reference 190.12, outside the 1.5% collar in WARNING state for AAPL"),
    (R.POSITION_LIMIT, AAPL, 1, 2, 19_500.0, 190.12,
     "buy 19500 would take the worst-case position to 20700 (position 600 + open buys 600), "
     "above the limit 20000 for AAPL"),
    (R.GROSS_EXPOSURE, BTC, 1, 2, 4.0, 60_000.5,
     "gross exposure 405190 + order 240002 exceeds max gross exposure 3000000"),
    (R.LEVERAGE, AAPL, 1, 2, 1800.0, 190.13,
     "leverage 0.7474 (gross 747424 / equity 1000000) exceeds max leverage 3"),
    (R.DAILY_ORDER_COUNT, AAPL, 1, 2, 100.0, 190.12, "daily order count cap 1000000 reached"),
    (R.DAILY_NOTIONAL, AAPL, 1, 2, 100.0, 190.12,
     "daily notional 405190 + order 19012 exceeds the daily cap 100000000"),
    (R.MAX_OPEN_ORDERS, AAPL, 1, 2, 100.0, 190.12, "200 open orders already for AAPL, the maximum"),
    (R.STALE_MARKET_DATA, AAPL, 1, 2, 100.0, 190.12, "no valid quote for AAPL within 2000 ms"),
    (R.ORDER_TABLE_FULL, AAPL, 1, 2, 100.0, 190.12, "the risk book has no free order slot"),
    (R.REPLACE_BELOW_FILLED, AAPL, 1, 2, 100.0, 190.12, "replace quantity is not above the filled quantity"),
    (R.UNKNOWN_SESSION, AAPL, 1, 2, 100.0, 190.12, "unknown session"),
    (R.VENUE_UNAVAILABLE, AAPL, 1, 2, 100.0, 190.12, "venue not logged on"),
    (R.BUSY, AAPL, 1, 2, 100.0, 190.12, "gateway busy: event queue full"),
    (R.DUPLICATE_CL_ORD_ID, AAPL, 1, 2, 100.0, 190.12, "duplicate ClOrdID"),
    (R.INVALID_FIELD, AAPL, 1, 2, 100.0, 190.12, "missing or invalid field"),
    (R.INTERNAL_ERROR, AAPL, 1, 2, 100.0, 190.12, "internal error"),
    (R.INSTRUMENT_NOT_PERMITTED, AAPL, 1, 2, 100.0, 190.12, "instrument not permitted for this client"),
    (R.GATEWAY_CLOSED, AAPL, 1, 2, 100.0, 190.12, "the gateway takes no new orders (draining or stopping)"),
    (R.CLIENT_KILLED, AAPL, 1, 2, 100.0, 190.12, "kill switch active for this client"),
    (R.RESTRICTED_INSTRUMENT, AAPL, 1, 2, 100.0, 190.12, "instrument on the restricted list"),
    (R.DUPLICATE_ORDER, AAPL, 1, 2, 100.0, 190.12,
     "same side, quantity and price as an order of this client within the duplicate window"),
    (R.UNKNOWN_ORDER, AAPL, 1, 2, 100.0, 190.12, "unknown order"),
    (R.OVERFILL, AAPL, 1, 2, 100.0, 190.12, "fill quantity exceeds the open quantity"),
    (R.NO_PENDING_REPLACE, AAPL, 1, 2, 100.0, 190.12, "no replace is pending for the order"),
    (R.REPLACE_PENDING, AAPL, 1, 2, 100.0, 190.12, "a replace is already pending for the order"),
    (R.CLIENT_DAILY_NOTIONAL, AAPL, 1, 2, 100.0, 190.12, "the client's daily notional cap would be exceeded"),
    (R.CLIENT_OPEN_NOTIONAL, AAPL, 1, 2, 100.0, 190.12, "the client's open notional would exceed its limit"),
    (R.CLIENT_WINDOW_NOTIONAL, AAPL, 1, 2, 100.0, 190.12,
     "the client's notional within its short window would exceed its limit"),
    (R.CONCENTRATION, AAPL, 1, 2, 100.0, 190.12,
     "worst-case position value would exceed the instrument's share of equity"),
    (R.SECTOR_CONCENTRATION, AAPL, 1, 2, 100.0, 190.12,
     "worst-case position value of the sector would exceed its share of equity"),
    (R.VENUE_RATE_LIMIT, AAPL, 1, 2, 100.0, 190.12, "the venue's message rate limit is reached: not sent"),
    (R.QUOTE_NON_POSITIVE_BID, AAPL, 1, 2, 100.0, 190.12, "bid is not positive"),
    (R.QUOTE_NON_POSITIVE_ASK, AAPL, 1, 2, 100.0, 190.12, "ask is not positive"),
    (R.QUOTE_CROSSED, AAPL, 1, 2, 100.0, 190.12, "bid is at or above the ask (crossed or locked)"),
    (R.QUOTE_SPREAD_TOO_WIDE, AAPL, 1, 2, 100.0, 190.12, "spread is wider than the max spread"),
    (R.QUOTE_TOO_OLD, AAPL, 1, 2, 100.0, 190.12, "quote is older than the max age"),
    (R.QUOTE_FUTURE_DATED, AAPL, 1, 2, 100.0, 190.12, "quote is dated in the future beyond the clock skew"),
    (R.QUOTE_PRICE_JUMP, AAPL, 1, 2, 100.0, 190.12, "mid jumped beyond the band from the previous valid mid"),
    (R.TRADE_INVALID_PRICE, AAPL, 1, 2, 100.0, 190.12, "trade price is not positive"),
    (R.SELF_MATCH, AAPL, 1, 2, 100.0, 190.12, "the order would trade against the client's own resting order"),
]


def test_examples_when_listed_cover_every_code():
    assert sorted({example[0] for example in EXAMPLES}) == sorted(R)


@pytest.mark.parametrize("code, instrument_id, side, ord_type, qty, price, expected", EXAMPLES,
                         ids=[example[0].name for example in EXAMPLES])
def test_describe_when_bundled_book_trades_matches_reference_sentence(describer, code, instrument_id, side,
                                                                      ord_type, qty, price, expected):
    assert both(describer, code, instrument_id=instrument_id, side=side, ord_type=ord_type, qty=qty,
                price=price) == expected


def test_describe_when_selling_reads_the_short_side_of_the_position(describer):
    assert both(describer, R.POSITION_LIMIT, instrument_id=AAPL, side=5, ord_type=2, qty=20_500.0,
                price=190.12) == ("sell 20500 would take the worst-case position to -20200 "
                                  "(position 600 - open sells 300), below the limit -20000 for AAPL")


def test_describe_when_book_is_killed_keeps_kill_switch_plain(book, describer):
    book.set_risk_state(RiskState.KILL_SWITCH)
    try:
        assert both(describer, R.KILL_SWITCH, instrument_id=AAPL, side=1, ord_type=2, qty=1.0,
                    price=190.12) == "kill switch active"
    finally:
        book.set_risk_state(RiskState.NORMAL)


# -- FALLBACKS --------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", list(R))
def test_describe_when_instrument_unknown_uses_plain_text(describer, code):
    plain = dict((number, text) for number, _, text in REJECT_TABLE)[code]
    for instrument_id in (UNKNOWN, -1, 3):
        assert both(describer, code, instrument_id=instrument_id, side=1, ord_type=2, qty=-1.0,
                    price=math.nan) == plain


@pytest.mark.parametrize("code", [64, 65, 100, 1000, -1, -2**31])
def test_describe_when_code_outside_table_names_the_number(describer, code):
    assert both(describer, code, instrument_id=AAPL, side=1, ord_type=2, qty=1.0,
                price=190.12) == f"unknown reject code {code}"


def plain_book(spec=None, **limits):
    instruments = Instruments(4)
    instruments.add("XYZ", **{"tick_size": 0.01, "lot_size": 1.0, **(spec or {})})
    return RiskBook(instruments, QuoteBook(instruments), Throttle(1, 4), **limits)


@pytest.mark.parametrize("code, expected", [
    # A limit that is off reads None: the reference's arithmetic raises, the plain text stands.
    (R.MAX_ORDER_QUANTITY, "quantity exceeds the max order quantity"),
    (R.WARNING_MAX_ORDER_QUANTITY, "quantity exceeds the max order quantity in WARNING state"),
    (R.POSITION_LIMIT, "worst-case position would exceed the position limit"),
    # No reference price: the collar's distance divides by zero.
    (R.PRICE_COLLAR, "price outside the collar around the reference price"),
    (R.WARNING_PRICE_COLLAR, "price outside the tighter WARNING-state collar"),
    # ... and an f-string prints None, so this one keeps its detail.
    (R.MAX_OPEN_ORDERS, "None open orders already for XYZ, the maximum"),
    (R.MAX_ORDER_NOTIONAL, "notional 0 exceeds max order notional inf for XYZ"),
    (R.ADV_PARTICIPATION, "quantity 3 exceeds inf, the allowed share of average daily volume 0 for XYZ"),
    (R.DAILY_ORDER_COUNT, "daily order count cap 4611686018427387904 reached"),
    (R.LEVERAGE, "equity is 0: no leverage allowed (max leverage inf)"),
])
def test_describe_when_limit_off_or_no_reference_matches_reference(code, expected):
    book = plain_book()
    assert both(RejectDescriber(book), code, instrument_id=0, side=1, ord_type=1, qty=3.0,
                price=12.5) == expected


# -- NUMBERS ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("code, qty, price, expected", [
    (R.MAX_ORDER_NOTIONAL, 1.0, 123456789.123, "notional 123456789.1200000048 exceeds max order notional"),
    (R.MAX_ORDER_NOTIONAL, 1.0, 0.125, "notional 0.12 exceeds"),           # a tie rounds to even
    (R.MAX_ORDER_NOTIONAL, 1.0, 0.375, "notional 0.38 exceeds"),
    (R.MAX_ORDER_NOTIONAL, 1.0, 2.675, "notional 2.67 exceeds"),           # 2.67499999... in binary
    (R.MAX_ORDER_NOTIONAL, 1.0, -0.001, "notional 0 exceeds"),             # -0.0 prints as 0
    (R.PRICE_OFF_TICK, 1.0, 0.1 + 0.2, "price 0.3 is not"),
    (R.PRICE_OFF_TICK, 1.0, 1e-7, "price 0.0000001 is not"),
    (R.PRICE_OFF_TICK, 1.0, 1e-11, "price 0 is not"),
    (R.PRICE_OFF_TICK, 1.0, -1e-11, "price 0 is not"),
    (R.PRICE_OFF_TICK, 1.0, 1e22, "price 10000000000000000000000 is not"),
    (R.PRICE_OFF_TICK, 1.0, math.inf, "price inf is not"),
    (R.PRICE_OFF_TICK, 1.0, -math.inf, "price -inf is not"),
    (R.PRICE_OFF_TICK, 1.0, math.nan, "price nan is not"),
    (R.MAX_ORDER_NOTIONAL, math.inf, 0.0, "notional nan exceeds"),         # inf x 0
])
def test_describe_when_figures_are_awkward_floats_prints_them_as_python(code, qty, price, expected):
    book = plain_book({"reference_price": 10.0})
    text = both(RejectDescriber(book), code, instrument_id=0, side=1, ord_type=2, qty=qty, price=price)
    assert text.startswith(expected)


def test_describe_when_figures_are_the_largest_doubles_fits_max_sentence_bytes():
    book = plain_book({"max_position": 1e9, "max_order_qty": 1e9})
    book.restore_position(0, -(2**63))
    describer = RejectDescriber(book)
    for code in (R.POSITION_LIMIT, R.WARNING_MAX_ORDER_QUANTITY, R.PRICE_COLLAR, R.LEVERAGE):
        for side in (1, 2):
            text = both(describer, code, book, instrument_id=0, side=side, ord_type=2,
                        qty=-1.7976931348623157e308, price=1.7976931348623157e308)
            assert len(text.encode()) <= MAX_SENTENCE_BYTES


def test_describe_when_position_is_extreme_sums_lots_exactly():
    book = plain_book({"max_position": 5.0})
    book.restore_position(0, 2**63 - 1)
    assert book.restore_order(1, 0, 0, 1, 2, 2**62, 0, 1) is None
    assert both(RejectDescriber(book), R.POSITION_LIMIT, instrument_id=0, side=1, ord_type=2, qty=1.0,
                price=0.01) == ("buy 1 would take the worst-case position to 13835058055282163712 "
                                "(position 9223372036854775808 + open buys 4611686018427387904), "
                                "above the limit 5 for XYZ")


def test_describe_when_process_locale_uses_decimal_comma_still_prints_points(tmp_path):
    # A locale with a decimal comma, built for this test (glibc's localedef and its locale sources),
    # set in a fresh process before the describer formats a number.
    import subprocess
    import sys

    built = subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", str(tmp_path / "de_DE.UTF-8")],
                           capture_output=True, text=True)
    assert (tmp_path / "de_DE.UTF-8").exists(), built.stderr
    program = """
import locale
locale.setlocale(locale.LC_NUMERIC, "de_DE.UTF-8")
assert locale.localeconv()["decimal_point"] == ","
from tests.unit._fast.test_describe import plain_book, both
from fixgate._fast.codes import RejectCode as R
from fixgate._fast.describe import RejectDescriber
book = plain_book({"reference_price": 10.0})
print(both(RejectDescriber(book), R.MAX_ORDER_NOTIONAL, instrument_id=0, side=1, ord_type=2, qty=1.5, price=2.25))
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "LOCPATH": str(tmp_path)}, cwd=Path(__file__).parents[3])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "notional 3.38 exceeds max order notional inf for XYZ"


# -- SYMBOLS ----------------------------------------------------------------------------------------

def test_describer_when_built_copies_every_symbol(book, describer):
    assert describer.book is book
    assert describer.symbol_count == book.instruments.count == 3
    for instrument_id, symbol in enumerate(book.instruments.symbols):
        assert describer.describe(R.INSTRUMENT_HALTED, instrument_id=instrument_id, side=1, ord_type=2,
                                  qty=1.0, price=1.0) == f"instrument halted: {symbol}"


def test_describer_when_symbol_is_longest_allowed_or_not_ascii_names_it():
    instruments = Instruments(4)
    instruments.add("S" * MAX_SYMBOL_BYTES, tick_size=0.01, lot_size=1.0)
    instruments.add("ÄPFEL-€", tick_size=0.01, lot_size=1.0)
    book = RiskBook(instruments, QuoteBook(instruments), Throttle(1, 4))
    describer = RejectDescriber(book)
    for instrument_id in (0, 1):
        assert both(describer, R.CIRCUIT_BREAKER, instrument_id=instrument_id, side=1, ord_type=2, qty=1.0,
                    price=1.0).endswith(f"position in {instruments.symbol_of(instrument_id)} are accepted")


def test_describer_when_symbol_too_long_raises_naming_it():
    instruments = Instruments(4)
    instruments.add("É" * 32, tick_size=0.01, lot_size=1.0)         # 64 bytes in UTF-8
    book = RiskBook(instruments, QuoteBook(instruments), Throttle(1, 4))
    with pytest.raises(ValueError, match="64 bytes in UTF-8.*at most 63"):
        RejectDescriber(book)


def test_describer_when_instrument_added_after_it_reads_that_instrument_as_unknown():
    book = plain_book()
    describer = RejectDescriber(book)
    book.instruments.add("LATE", tick_size=0.01, lot_size=1.0)
    assert describer.describe(R.INSTRUMENT_HALTED, instrument_id=1, side=1, ord_type=2, qty=1.0,
                              price=1.0) == "instrument halted"
    assert RejectDescriber(book).describe(R.INSTRUMENT_HALTED, instrument_id=1, side=1, ord_type=2, qty=1.0,
                                          price=1.0) == "instrument halted: LATE"


# -- BUFFERS ----------------------------------------------------------------------------------------

def test_describe_into_when_buffer_is_short_cuts_safely_at_character_boundaries():
    instruments = Instruments(2)
    instruments.add("ÄPFEL-€", tick_size=0.01, lot_size=1.0)
    describer = RejectDescriber(RiskBook(instruments, QuoteBook(instruments), Throttle(1, 2)))
    order = dict(instrument_id=0, side=1, ord_type=2, qty=1.5, price=1.0)
    whole = describer.describe(R.QUANTITY_NOT_LOT_MULTIPLE, **order).encode()
    assert whole == "quantity 1.5 is not a multiple of the lot 1 for ÄPFEL-€".encode()
    for size in range(len(whole) + 3):
        memory = bytearray(b"\xaa" * (size + 8))
        length = describer.describe_into(memoryview(memory)[:size], R.QUANTITY_NOT_LOT_MULTIPLE, **order)
        assert memory[size:] == b"\xaa" * 8                           # nothing past the buffer
        if size == 0:
            assert length == 0
            continue
        assert length <= size - 1 and memory[length] == 0
        assert memory[:length] == whole[:length]
        memory[:length].decode()                                    # never half a character
        assert length == len(whole) or length >= size - 3           # only a partial character is dropped


def test_describe_into_when_buffer_is_large_writes_the_sentence_and_a_nul(describer):
    memory = bytearray(MAX_SENTENCE_BYTES + 1)
    length = describer.describe_into(memory, R.MAX_ORDER_QUANTITY, instrument_id=AAPL, side=1, ord_type=2,
                                     qty=5000.0, price=190.12)
    assert memory[:length + 1] == b"quantity 5000 exceeds max order qty 2000 for AAPL\x00"


# -- STUB -------------------------------------------------------------------------------------------

def test_stub_when_compared_to_extension_lists_only_real_names():
    import fixgate._fast.describe as runtime

    tree = ast.parse(resources.files("fixgate._fast").joinpath("describe.pyi").read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            cls = getattr(runtime, node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    assert hasattr(cls, item.name), f"{node.name}.{item.name}"
        elif isinstance(node, ast.AnnAssign):
            assert hasattr(runtime, node.target.id), node.target.id
