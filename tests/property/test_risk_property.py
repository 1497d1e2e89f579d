"""The Cython risk book, quote book and throttle decide exactly as their plain-Python reference twins.

Hypothesis draws a configuration and a sequence of quotes, trades, orders, replaces, venue events,
risk-state changes and clock steps; both implementations get the same calls and must return the same
codes and ids and hold the same state after every step. Orders, replaces and fills go sometimes
through the double API and sometimes through the units API (whole lots and ticks, with -1, 0 and
values past MAX_UNITS and int64 mixed in); on the grid the two APIs must decide alike.
"""

import math
import random

import pytest

from hypothesis import given, strategies as st

from fixgate._fast import instruments as fast_instruments
from fixgate._fast import quotes as fast_quotes
from fixgate._fast import risk as fast_risk
from fixgate._fast import throttle as fast_throttle
from fixgate.reference import instruments as ref_instruments
from fixgate.reference.instruments import MAX_UNITS
from fixgate.reference import quotes as ref_quotes
from fixgate.reference import risk as ref_risk
from fixgate.reference import throttle as ref_throttle

START_NS = 1_700_000_000_000_000_000
SESSIONS = 3
MAX_LOTS = int(MAX_UNITS)

ticks = st.sampled_from([0.01, 0.05, 0.25, 1.0, 0.0001, 0.5])
lots = st.sampled_from([1.0, 0.1, 0.001, 100.0, 0.0001])


def loose(*values):
    """Mostly no limit (None), sometimes one of `values`: most orders pass, every limit gets hit."""
    return st.sampled_from([None, None, None, *values])


instrument_specs = st.fixed_dictionaries({
    "tick_size": ticks,
    "lot_size": lots,
    "reference_price": st.sampled_from([0.0, 10.0, 100.5, 2500.0, 50000.0]),
    "adv": st.sampled_from([0.0, 1000.0, 1e6]),
    "max_adv_fraction": loose(0.01, 0.1, 0.5),
    "max_order_qty": loose(1.0, 10.0, 500.0, 1e5),
    "max_order_notional": loose(1e3, 1e5, 1e7),
    "max_position": loose(0.0, 5.0, 100.0, 1e5),
    "max_open_orders": loose(0, 1, 3, 5),
    "price_collar": loose(0.01, 0.05, 0.2),
    "stale_after_ns": st.sampled_from([1_000_000, 1_000_000_000, 10_000_000_000]),
    "requires_live_quote": st.sampled_from([False, False, True]),
    "sector": st.sampled_from([-1, 0, 0, 1]),
})

books = st.fixed_dictionaries({
    "max_order_notional": loose(1e3, 1e5, 1e7),
    "max_gross_exposure": loose(1e4, 1e6, 1e8),
    "max_leverage": loose(0.5, 2.0, 10.0),
    "max_daily_orders": loose(0, 5, 30),
    "max_daily_notional": loose(1e4, 1e6, 1e8),
    "warning_order_qty_factor": st.sampled_from([0.5, 0.25, 1.0]),
    "warning_collar_factor": st.sampled_from([0.5, 1.0]),
    "max_concentration": loose(0.001, 0.2, 1.0),
    "max_sector_concentration": loose(0.002, 0.4),
    "warning_concentration_factor": st.sampled_from([0.5, 1.0]),
    "order_capacity": st.sampled_from([1024, 16, 4]),
    "equity": st.sampled_from([1e7, 1e6, 1e4, 0.0, -5.0]),
    "day_start_ns": loose(START_NS, START_NS + 7_000_000_000),
    "day_length_ns": st.sampled_from([5_000_000_000, 86_400_000_000_000]),
})

throttles = st.fixed_dictionaries({
    "global_rate": loose(5.0, 100.0, 1e6),
    "global_burst": st.integers(1, 10),
    "session_rate": loose(1.0, 3.0, 50.0),
    "session_burst": st.integers(1, 5),
    "instrument_rate": loose(2.0, 30.0),
    "instrument_burst": st.integers(1, 5),
    "breach_limit": st.integers(1, 8),
    "breach_window_ns": st.sampled_from([1_000_000, 1_000_000_000]),
    "venue_rate": st.sampled_from([None, (1.0, 1), (10.0, 3), (1000.0, 5)]),
})

quote_books = st.fixed_dictionaries({
    "max_spread_fraction": st.sampled_from([0.001, 0.01, 0.05]),
    "max_age_ns": st.sampled_from([1_000_000, 1_000_000_000]),
    "max_future_skew_ns": st.sampled_from([0, 100_000_000]),
    "max_jump_fraction": st.sampled_from([0.01, 0.1, 0.5]),
})

# Each client session's own credit and duplicate window.
client_configs = st.lists(st.fixed_dictionaries({
    "max_daily_notional": loose(1e4, 1e6),
    "max_open_notional": loose(1e3, 1e5, 1e7),
    "max_window_notional": loose(1e3, 1e5, 1e7),
    "window_ns": st.sampled_from([1_000_000, 1_000_000_000]),
    "duplicate_window_ns": st.sampled_from([0, 0, 1_000, 1_000_000_000]),
    "self_match_prevention": st.booleans(),
}), min_size=SESSIONS, max_size=SESSIONS)

odd_numbers = st.sampled_from([0.0, -1.0, math.nan, math.inf, -math.inf, 1e300, 5e-324])
multipliers = st.one_of(st.integers(1, 20), st.integers(-3, 3000))
price_moves = st.one_of(st.floats(-0.03, 0.03, allow_nan=False), st.floats(-0.3, 0.3, allow_nan=False))
instrument_ids = st.sampled_from([0, 0, 0, 1, 1, 2, -1, 3])      # mostly known, sometimes not
session_ids = st.sampled_from([0, 0, 1, 2, -1, SESSIONS])
oddities = st.integers(0, 19)                                    # 0, 5..19: well-formed
order_refs = st.integers(0, 1000)                                # an accepted order, or a made-up id

quote = st.tuples(st.just("quote"), instrument_ids, price_moves,
                  st.sampled_from([0.0002, 0.001, 0.004, 0.0004, 0.0, 0.05]),
                  st.sampled_from([0, 1_000, 500_000, 2_000_000_000, -200_000_000]),
                  st.sampled_from([False] * 9 + [True]), odd_numbers)
new_order = st.tuples(st.just("new"), session_ids, instrument_ids, st.sampled_from([1, 2, 5, 1, 2, 3]),
                      st.sampled_from([2, 2, 2, 1, 4]), multipliers, price_moves, oddities, odd_numbers)
fill = st.tuples(st.just("fill"), order_refs, st.integers(-1, 50), st.sampled_from([0] * 9 + [1]),
                 st.sampled_from([None] * 9 + [0.0, -1.0, math.nan, math.inf, 1e300, 5e-324, 0.003]))

# Whole lots or ticks as a wire parser might hand them over: -1 (not a number in range), 0 (off the
# grid), the MAX_UNITS edge, and values past it up to the ends of an int64.
odd_units = st.sampled_from([-1, 0, -2, 1, MAX_LOTS, MAX_LOTS + 1, 2**62, 2**63 - 1, -2**63])
unit_oddities = st.integers(0, 9)                                # 0, 3..9: on the grid
new_order_units = st.tuples(st.just("new_units"), session_ids, instrument_ids,
                            st.sampled_from([1, 2, 5, 1, 2, 3]), st.sampled_from([2, 2, 2, 1, 4]), multipliers,
                            price_moves, unit_oddities, odd_units)
replace_units = st.tuples(st.just("replace_units"), order_refs, multipliers, price_moves, unit_oddities,
                          odd_units)
fill_units = st.tuples(st.just("fill_units"), order_refs, st.integers(-1, 50), unit_oddities, odd_units)
venue_event = st.tuples(st.sampled_from(["ack", "cancel", "venue_reject", "replaced", "replace_rejected",
                                         "replaced", "ack"]), order_refs)

COMMANDS = {
    "quote": quote,
    "new": new_order,
    "fill": fill,
    "venue": venue_event,
    "replace": st.tuples(st.just("replace"), order_refs, multipliers, price_moves, oddities, odd_numbers),
    "new_units": new_order_units,
    "replace_units": replace_units,
    "fill_units": fill_units,
    "trade": st.tuples(st.just("trade"), instrument_ids, price_moves, st.sampled_from([False] * 9 + [True]),
                       odd_numbers),
    "state": st.tuples(st.just("state"), st.sampled_from([0, 0, 1, 2, 3])),
    "reduce_only": st.tuples(st.just("reduce_only"), st.booleans()),
    # This gateway's budget of a firm limit: set to a multiple of what it uses now (None: no budget),
    # trimmed to that use plus a part of it, or read; a client's credit budget is one session's.
    "firm_budget": st.tuples(st.just("firm_budget"), st.sampled_from(["gross_exposure", "daily_notional",
                                                                      "daily_orders", "client_credit"]),
                             st.sampled_from([0, 1, 2, -1]), st.sampled_from(["set", "set", "trim", "read"]),
                             st.sampled_from([None, 0.0, 0.5, 1.0, 1.0, 1.2, 3.0, -1.0]),
                             st.sampled_from([0.0, 1.0, 5_000.0])),
    "equity": st.tuples(st.just("equity"), st.sampled_from([1e7, 1e5, 1e3, 0.0, -1.0])),
    "halt": st.tuples(st.just("halt"), instrument_ids, st.sampled_from([False, False, True])),
    "advance": st.tuples(st.just("advance"), st.sampled_from([0, 1, 1_000, 1_000_000, 200_000_000,
                                                              1_500_000_000, 30_000_000_000])),
    "clear_breach": st.tuples(st.just("clear_breach")),
    "reset_quotes": st.tuples(st.just("reset_quotes"), instrument_ids),
    "client_kill": st.tuples(st.just("client_kill"), st.integers(0, SESSIONS - 1), st.booleans()),
    "restrict": st.tuples(st.just("restrict"), instrument_ids, st.sampled_from([-1, 0, 1, 2]), st.booleans()),
    "repeat": st.tuples(st.just("repeat")),
    "venue_send": st.tuples(st.just("venue_send"), st.sampled_from([0, 0, 1, 63, 64, -1]), st.booleans()),
    # A venue's trade bust (negative) or correction of a fill, on an order that may be live or not.
    "bust": st.tuples(st.just("bust"), order_refs, instrument_ids, st.sampled_from([1, 2, 2, 5]),
                      st.sampled_from([-1, -3, -50, 2, 0, MAX_LOTS + 1, -MAX_LOTS - 1]), st.sampled_from([0, 1, 9000, -1])),
    "restate": st.tuples(st.just("restate"), order_refs, st.sampled_from([1, 2, 5, 40, 0, -1, MAX_LOTS + 1])),
}
# How often each kind of command comes up, by repetition.
WEIGHTED_KINDS = (["new"] * 5 + ["new_units"] * 4 + ["quote"] * 4 + ["fill"] * 3 + ["fill_units"] * 2
                  + ["venue"] * 4 + ["replace"] * 2 + ["replace_units"] * 2 + ["advance"] * 3
                  + ["firm_budget"] * 3
                  + ["trade", "state", "reduce_only", "equity", "halt", "clear_breach", "reset_quotes"]
                  + ["repeat"] * 3 + ["client_kill", "restrict"] + ["bust", "restate"] * 2 + ["venue_send"] * 3)
commands = st.sampled_from(WEIGHTED_KINDS).flatmap(COMMANDS.__getitem__)


def build(modules, specs, book_config, throttle_config, quote_config, clients=()):
    instruments_module, quotes_module, throttle_module, risk_module = modules
    instruments = instruments_module.Instruments(8)
    for index, spec in enumerate(specs):
        instruments.add(f"SYM{index}", **spec)
    quotes = quotes_module.QuoteBook(instruments, **quote_config)
    throttle_config = dict(throttle_config)
    venue_rate = throttle_config.pop("venue_rate", None)
    throttle = throttle_module.Throttle(SESSIONS, 8, **throttle_config)
    if venue_rate is not None:
        throttle.configure_venue(0, venue_rate[0], venue_rate[1])
        throttle.configure_venue(1, venue_rate[0] * 2, 1)
    book = risk_module.RiskBook(instruments, quotes, throttle, **book_config)
    for session_id, client in enumerate(clients):
        book.configure_client(session_id, **client)
    return book


FAST = (fast_instruments, fast_quotes, fast_throttle, fast_risk)
REFERENCE = (ref_instruments, ref_quotes, ref_throttle, ref_risk)


def base_price(book, instrument_id):
    if not book.instruments.known(instrument_id):
        return 100.0
    ref = book.quotes.reference_price(instrument_id)
    return ref if ref > 0.0 else 100.0


def on_grid(step, value):
    return max(round(value / step), 1) * step


def resolve(book, instrument_id):
    """Map ids 0..2 onto the instruments there are; -1 and 3 stay unknown."""
    return instrument_id % book.instruments.count if 0 <= instrument_id < 3 else instrument_id


def pick(accepted, index):
    return accepted[index % len(accepted)] if accepted else index


def ticks_of(book, instrument_id, move):
    """The tick count of the base price moved by `move`: at least one, at most the int64 maximum."""
    tick = book.instruments.spec(instrument_id)["tick_size"] if book.instruments.known(instrument_id) else 0.01
    return min(max(round(base_price(book, instrument_id) * (1.0 + move) / tick), 1), 2**63 - 1)


def fill_lots_of(order, fraction):
    """A fill of a share of the order's leaves (`fraction` / 40), or two lots past them when < 0."""
    leaves = (order["qty_lots"] - order["cum_lots"]) if order else 10
    return max(leaves * fraction // 40, 1) if fraction >= 0 else leaves + 2


def units_call(command, book, now_ns, accepted):
    """Return the units call of a units command: (method name, arguments)."""
    kind = command[0]
    if kind == "new_units":
        _, session_id, instrument_id, side, ord_type, qty_lots, move, oddity, odd_value = command
        instrument_id = resolve(book, instrument_id)
        price_ticks = ticks_of(book, instrument_id, move)
        if oddity == 1:
            qty_lots = odd_value
        elif oddity == 2:
            price_ticks = odd_value
        return "check_new_order_units", (session_id, instrument_id, side, ord_type, qty_lots, price_ticks, now_ns)
    if kind == "replace_units":
        _, index, qty_lots, move, oddity, odd_value = command
        order_id = pick(accepted, index)
        order = book.order(order_id)
        price_ticks = ticks_of(book, order["instrument_id"] if order else 0, move)
        if oddity == 1:
            qty_lots = odd_value
        elif oddity == 2:
            price_ticks = odd_value
        return "check_replace_units", (order_id, qty_lots, price_ticks, now_ns)
    if kind == "fill_units":
        _, index, fraction, oddity, odd_value = command
        order_id = pick(accepted, index)
        order = book.order(order_id)
        qty_lots = fill_lots_of(order, fraction)
        price_ticks = ticks_of(book, order["instrument_id"] if order else 0, 0.0)
        if oddity == 1:
            qty_lots = odd_value
        elif oddity == 2:
            price_ticks = odd_value
        return "on_filled_units", (order_id, qty_lots, price_ticks)
    raise AssertionError(kind)


def as_doubles(book, name, arguments):
    """The double call that stands for a units call with on-grid values: lots x lot, ticks x tick."""
    if name == "check_new_order_units":
        session_id, instrument_id, side, ord_type, qty_lots, price_ticks, now_ns = arguments
        if not book.instruments.known(instrument_id):                   # no grid: any number will do
            return "check_new_order", (session_id, instrument_id, side, ord_type, 1.0, 1.0, now_ns)
        spec = book.instruments.spec(instrument_id)
        return "check_new_order", (session_id, instrument_id, side, ord_type, qty_lots * spec["lot_size"],
                                   price_ticks * spec["tick_size"], now_ns)
    order_id, qty_lots, price_ticks = arguments[:3]
    order = book.order(order_id)
    spec = book.instruments.spec(order["instrument_id"] if order else 0)
    qty, price = qty_lots * spec["lot_size"], price_ticks * spec["tick_size"]
    if name == "check_replace_units":
        return "check_replace", (order_id, qty, price, arguments[3])
    return "on_filled", (order_id, qty, price)


def apply(book, command, now_ns, accepted):
    """Apply one command to `book`; return (result, new now_ns)."""
    kind = command[0]
    if kind == "quote":
        _, instrument_id, move, spread, age, odd, odd_value = command
        instrument_id = resolve(book, instrument_id)
        mid = base_price(book, instrument_id) * (1.0 + move)
        bid, ask = mid * (1.0 - spread / 2), mid * (1.0 + spread / 2)
        if odd:
            bid = odd_value
        return book.quotes.on_quote(instrument_id, bid, ask, now_ns - age, now_ns), now_ns
    if kind == "trade":
        _, instrument_id, move, odd, odd_value = command
        instrument_id = resolve(book, instrument_id)
        price = odd_value if odd else base_price(book, instrument_id) * (1.0 + move)
        return book.quotes.on_trade(instrument_id, price, now_ns, now_ns), now_ns
    if kind == "new":
        _, session_id, instrument_id, side, ord_type, multiplier, move, oddity, odd_value = command
        instrument_id = resolve(book, instrument_id)
        spec = book.instruments.spec(instrument_id) if book.instruments.known(instrument_id) else None
        lot = spec["lot_size"] if spec else 1.0
        tick = spec["tick_size"] if spec else 0.01
        qty = multiplier * lot
        price = on_grid(tick, base_price(book, instrument_id) * (1.0 + move))
        if oddity == 1:
            qty = odd_value
        elif oddity == 2:
            price = odd_value
        elif oddity == 3:
            qty += lot * 0.37
        elif oddity == 4:
            price += tick * 0.5
        return book.check_new_order(session_id, instrument_id, side, ord_type, qty, price, now_ns), now_ns
    if kind == "replace":
        _, index, multiplier, move, oddity, odd_value = command
        order_id = pick(accepted, index)
        order = book.order(order_id)
        instrument_id = order["instrument_id"] if order else 0
        spec = book.instruments.spec(instrument_id)
        qty = multiplier * spec["lot_size"]
        price = on_grid(spec["tick_size"], base_price(book, instrument_id) * (1.0 + move))
        if oddity == 1:
            qty = odd_value
        elif oddity == 2:
            price = odd_value
        return book.check_replace(order_id, qty, price, now_ns), now_ns
    if kind == "fill":
        _, index, fraction, oddity, odd_price = command
        order_id = pick(accepted, index)
        order = book.order(order_id)
        instrument_id = order["instrument_id"] if order else 0
        lot = book.instruments.spec(instrument_id)["lot_size"]
        fill_lots = fill_lots_of(order, fraction)
        qty = fill_lots * lot if oddity != 1 else fill_lots * lot * 1.5 + lot * 0.3
        price = base_price(book, instrument_id) if odd_price is None else odd_price
        return book.on_filled(order_id, qty, price), now_ns
    if kind in ("new_units", "replace_units", "fill_units"):
        name, arguments = units_call(command, book, now_ns, accepted)
        return getattr(book, name)(*arguments), now_ns
    if kind in ("ack", "cancel", "venue_reject", "replaced", "replace_rejected"):
        method = {"ack": book.on_acked, "cancel": book.on_canceled, "venue_reject": book.on_venue_rejected,
                  "replaced": book.on_replaced, "replace_rejected": book.on_replace_rejected}[kind]
        return method(pick(accepted, command[1])), now_ns
    if kind == "state":
        return book.set_risk_state(command[1]), now_ns
    if kind == "reduce_only":
        return book.set_reduce_only(command[1]), now_ns
    if kind == "firm_budget":
        _, budget_kind, session_id, op, factor, extra = command
        try:
            _, usage = book.firm_budget(budget_kind, session_id=session_id)
            if op == "read":
                return ("read", usage), now_ns
            value = None if factor is None else usage * factor + extra
            if op == "set":
                return book.set_firm_budget(budget_kind, value, session_id=session_id), now_ns
            return book.trim_firm_budget(budget_kind, 0.0 if value is None else value, session_id=session_id), now_ns
        except (KeyError, ValueError) as error:
            return type(error).__name__, now_ns
    if kind == "equity":
        return book.set_equity(command[1]), now_ns
    if kind == "halt":
        if book.instruments.known(command[1]):
            book.instruments.set_halted(command[1], command[2])
        return None, now_ns
    if kind == "advance":
        return None, now_ns + command[1]
    if kind == "clear_breach":
        return book.throttle.clear_breach_flag(), now_ns
    if kind == "reset_quotes":
        if book.instruments.known(command[1]):
            book.quotes.reset(command[1])
        return None, now_ns
    if kind == "venue_send":                 # a new order asks first; a cancel goes whatever the answer
        _, venue_id, is_cancel = command
        conforms = book.throttle.venue_conforms(venue_id, now_ns)
        if conforms or is_cancel:
            book.throttle.venue_take(venue_id, now_ns)
        return conforms, now_ns
    if kind == "bust":
        _, index, instrument_id, side, delta, price_ticks = command
        order_id = pick(accepted, index)
        order = book.order(order_id)
        if order is not None and instrument_id == 0:         # mostly about the order's own instrument
            instrument_id, side = order["instrument_id"], order["side"]
        else:
            instrument_id = resolve(book, instrument_id)
        return book.on_trade_corrected_units(order_id, instrument_id, side, delta, price_ticks), now_ns
    if kind == "restate":
        return book.on_restated_units(pick(accepted, command[1]), command[2]), now_ns
    if kind == "client_kill":
        return book.set_client_killed(command[1], command[2]), now_ns
    if kind == "restrict":
        _, instrument_id, session_id, restricted = command
        instrument_id = resolve(book, instrument_id)
        if book.instruments.known(instrument_id):
            book.set_restricted(instrument_id, restricted, session_id)
            return book.is_restricted(instrument_id, session_id), now_ns
        return None, now_ns
    raise AssertionError(kind)


def accepted_id(command, result, book):
    """The id of the order a command created, or None: a units check returns it, the double check
    leaves it only in `last_order_id`."""
    if command[0] == "new_units" and result[0] == 0:
        assert result[1] > 0 and result[1] == book.last_order_id
        return result[1]
    if command[0] == "new" and result == 0:
        return book.last_order_id
    if command[0] == "new_units":
        assert result[1] == 0
    return None


def state_of(book):
    return {
        "book": book.snapshot(),
        "counters": book.counters(),
        "quotes": book.quotes.counters(),
        "quote_states": [book.quotes.quote(i) for i in range(book.instruments.count)],
        "throttle": book.throttle.counters(),
        "breach_flag": bool(book.throttle.breach_flag),
        "gross": book.gross_exposure(),
        "last_order_id": book.last_order_id,
        "reduce_only": book.reduce_only,
    }


def assert_consistent(book):
    """Open quantities are never negative and equal the sum of the live orders' reservations."""
    snapshot = book.snapshot()
    for instrument_id, exposure in enumerate(snapshot["exposures"]):
        orders = [order for order in snapshot["orders"] if order["instrument_id"] == instrument_id]
        buys = [order for order in orders if order["side"] == 1]
        sells = [order for order in orders if order["side"] == 2]
        assert exposure["open_orders"] == len(orders)
        assert book.order_ids_of_instrument(instrument_id) == sorted(order["order_id"] for order in orders)
        assert exposure["open_buy_lots"] == sum(order["reserved_lots"] for order in buys) >= 0
        assert exposure["open_sell_lots"] == sum(order["reserved_lots"] for order in sells) >= 0
        assert exposure["open_buy_tick_lots"] == sum(order["reserved_tick_lots"] for order in buys) >= 0
        assert exposure["open_sell_tick_lots"] == sum(order["reserved_tick_lots"] for order in sells) >= 0
        for order in orders:
            assert order["qty_lots"] > order["cum_lots"] >= 0
            assert order["reserved_lots"] >= order["qty_lots"] - order["cum_lots"]
    assert snapshot["live_orders"] == len(snapshot["orders"])


@given(
    specs=st.lists(instrument_specs, min_size=1, max_size=3),
    book_config=books,
    throttle_config=throttles,
    quote_config=quote_books,
    clients=client_configs,
    script=st.lists(commands, min_size=5, max_size=100),
)
def test_risk_book_when_driven_by_any_script_matches_reference(specs, book_config, throttle_config,
                                                               quote_config, clients, script):
    fast = build(FAST, specs, book_config, throttle_config, quote_config, clients)
    reference = build(REFERENCE, specs, book_config, throttle_config, quote_config, clients)
    now_ns = START_NS
    accepted = []
    last_new = None
    for step, command in enumerate(script):
        if command[0] in ("new", "new_units"):
            last_new = command
        elif command[0] == "repeat":          # the same order again: what the duplicate check is for
            if last_new is None:
                continue
            command = last_new
        fast_result, _ = apply(fast, command, now_ns, accepted)
        reference_result, now_ns = apply(reference, command, now_ns, accepted)
        assert fast_result == reference_result, (step, command)
        order_id = accepted_id(command, fast_result, fast)
        if order_id is not None:
            assert accepted_id(command, reference_result, reference) == order_id
            accepted.append(order_id)
        assert state_of(fast) == state_of(reference), (step, command)
        assert_consistent(fast)
        assert_consistent(reference)
        if order_id is not None:                 # an accepted order fits in every firm budget
            for kind in ("daily_orders", "daily_notional"):
                budget, usage = fast.firm_budget(kind)
                assert budget is None or usage <= budget * (1 + 1e-12), (step, kind, usage, budget)


@given(
    specs=st.lists(instrument_specs, min_size=1, max_size=3),
    book_config=books,
    rows=st.lists(st.tuples(st.integers(0, SESSIONS - 1), st.integers(-1, 3), st.sampled_from([1, 2, 5, 7]),
                            st.sampled_from([1, 2]), st.integers(-1, 200), price_moves), max_size=50),
)
def test_check_batch_when_given_any_rows_matches_reference(specs, book_config, rows):
    import numpy as np

    fast = build(FAST, specs, book_config, {}, {})
    reference = build(REFERENCE, specs, book_config, {}, {})
    orders = np.zeros(len(rows), dtype=fast_risk.ORDER_DTYPE)
    for index, (session_id, instrument_id, side, ord_type, multiplier, move) in enumerate(rows):
        spec = fast.instruments.spec(instrument_id) if fast.instruments.known(instrument_id) else None
        lot, tick = (spec["lot_size"], spec["tick_size"]) if spec else (1.0, 0.01)
        orders[index] = (session_id, instrument_id, side, ord_type, multiplier * lot,
                         on_grid(tick, base_price(fast, instrument_id) * (1.0 + move)))
    fast_codes = np.zeros(len(rows), np.uint8)
    fast_ids = np.zeros(len(rows), np.int64)
    reference_codes = np.zeros(len(rows), np.uint8)
    reference_ids = np.zeros(len(rows), np.int64)
    fast_accepted = fast.check_batch(orders, fast_codes, fast_ids, START_NS)
    reference_accepted = reference.check_batch(orders, reference_codes, reference_ids, START_NS)
    assert fast_accepted == reference_accepted == int((fast_codes == 0).sum())
    assert fast_codes.tolist() == reference_codes.tolist()
    assert fast_ids.tolist() == reference_ids.tolist()
    assert state_of(fast) == state_of(reference)


# Well-formed orders on the grid, mostly for known sessions and instruments and without a throttle,
# so that many are accepted and replaces and fills find them live.
on_grid_commands = st.sampled_from(["new_units"] * 6 + ["replace_units"] * 3 + ["fill_units"] * 3
                                   + ["venue"] * 2 + ["quote"] * 2 + ["advance", "state", "trade"]).flatmap(
    lambda kind: st.tuples(st.just(kind), st.sampled_from([0, 1, 2, 0, -1]), st.sampled_from([0, 0, 1, 2, 3]),
                           st.sampled_from([1, 2, 5]), st.sampled_from([2, 2, 1]), st.integers(1, 3000),
                           price_moves, st.just(0), st.just(1))
    if kind == "new_units" else
    st.tuples(st.just(kind), order_refs, st.integers(1, 3000), price_moves, st.just(0), st.just(1))
    if kind == "replace_units" else
    st.tuples(st.just(kind), order_refs, st.integers(-1, 50), st.just(0), st.just(1))
    if kind == "fill_units" else COMMANDS[kind])


@pytest.mark.parametrize("implementation", [FAST, REFERENCE], ids=["fast", "reference"])
@given(
    specs=st.lists(instrument_specs, min_size=1, max_size=3),
    book_config=books,
    quote_config=quote_books,
    script=st.lists(on_grid_commands, min_size=5, max_size=80),
)
def test_units_api_when_values_on_the_grid_decides_as_the_double_api(implementation, specs, book_config,
                                                                     quote_config, script):
    units = build(implementation, specs, book_config, {}, quote_config)
    doubles = build(implementation, specs, book_config, {}, quote_config)
    now_ns = START_NS
    accepted = []
    for step, command in enumerate(script):
        if command[0] not in ("new_units", "replace_units", "fill_units"):
            units_result, _ = apply(units, command, now_ns, accepted)
            doubles_result, now_ns = apply(doubles, command, now_ns, accepted)
            assert units_result == doubles_result, (step, command)
        else:
            name, arguments = units_call(command, units, now_ns, accepted)
            double_name, double_arguments = as_doubles(doubles, name, arguments)
            units_result = getattr(units, name)(*arguments)
            doubles_result = getattr(doubles, double_name)(*double_arguments)
            if name == "check_new_order_units":
                code, order_id = units_result
                assert code == doubles_result, (step, command)
                if code == 0:
                    assert order_id == doubles.last_order_id
                    accepted.append(order_id)
            else:
                assert units_result == doubles_result, (step, command)
        assert state_of(units) == state_of(doubles), (step, command)


def random_command(rng):
    """Draw one command of a busy, mostly well-formed trading flow."""
    roll = rng.random()
    if roll < 0.25:
        oddity = rng.choice([0] * 30 + [1, 2, 3, 4])
        return ("new", rng.choice([0, 1, 2]), rng.choice([0, 1, 2]), rng.choice([1, 2, 5]),
                rng.choice([2, 2, 2, 1]), rng.randint(1, 60), rng.uniform(-0.05, 0.05), oddity,
                rng.choice([0.0, -2.0, math.nan, math.inf]))
    if roll < 0.35:
        return ("new_units", rng.choice([0, 1, 2]), rng.choice([0, 1, 2]), rng.choice([1, 2, 5]),
                rng.choice([2, 2, 2, 1]), rng.randint(1, 60), rng.uniform(-0.05, 0.05),
                rng.choice([0] * 30 + [1, 2]), rng.choice([-1, 0, MAX_LOTS + 1]))
    if roll < 0.48:
        return ("fill", rng.randrange(1000), rng.choice([5, 10, 20, 40, 40, -1]), rng.choice([0] * 30 + [1]), None)
    if roll < 0.55:
        return ("fill_units", rng.randrange(1000), rng.choice([5, 10, 20, 40, 40, -1]),
                rng.choice([0] * 30 + [1, 2]), rng.choice([-1, 0]))
    if roll < 0.65:
        return ("quote", rng.choice([0, 1, 2]), rng.uniform(-0.02, 0.02), rng.choice([0.0004, 0.001, 0.03]),
                rng.choice([0, 1_000, 2_000_000_000]), False, 0.0)
    if roll < 0.72:
        kind = rng.choice(["replace", "replace_units"])
        return (kind, rng.randrange(1000), rng.randint(1, 80), rng.uniform(-0.05, 0.05), 0,
                0.0 if kind == "replace" else 0)
    if roll < 0.90:
        return (rng.choice(["ack", "cancel", "venue_reject", "replaced", "replace_rejected", "ack"]),
                rng.randrange(1000))
    if roll < 0.95:
        return ("advance", rng.choice([1_000, 1_000_000, 50_000_000, 900_000_000]))
    if roll < 0.97:
        return ("state", rng.choice([0, 0, 0, 1, 2]))
    if roll < 0.98:
        return ("trade", rng.choice([0, 1, 2]), rng.uniform(-0.01, 0.01), False, 0.0)
    return ("equity", rng.choice([1e6, 1e7, 1e8]))


BUSY_INSTRUMENTS = [
    {"tick_size": 0.01, "lot_size": 1.0, "reference_price": 101.25, "adv": 1e6, "max_adv_fraction": 0.001,
     "max_order_qty": 50.0, "max_position": 400.0, "max_open_orders": 40, "price_collar": 0.04},
    {"tick_size": 0.5, "lot_size": 0.001, "reference_price": 50000.0, "max_order_qty": 0.05,
     "max_order_notional": 2500.0, "max_position": 0.3, "price_collar": 0.03, "stale_after_ns": 5_000_000_000},
    {"tick_size": 0.0001, "lot_size": 1000.0, "reference_price": 1.0850, "max_position": 200_000.0,
     "price_collar": 0.01},
]


@pytest.mark.parametrize("seed", range(4))
def test_risk_book_when_a_long_seeded_flow_runs_matches_reference(seed):
    rng = random.Random(seed)
    book_config = {"max_gross_exposure": 2e6, "max_leverage": 4.0, "equity": 1e6, "max_daily_orders": 2500,
                   "max_daily_notional": 5e7, "order_capacity": 256,
                   "day_start_ns": START_NS + 60_000_000_000, "day_length_ns": 120_000_000_000}
    throttle_config = {"session_rate": 2000.0, "session_burst": 20, "breach_limit": 5}
    fast = build(FAST, BUSY_INSTRUMENTS, book_config, throttle_config, {})
    reference = build(REFERENCE, BUSY_INSTRUMENTS, book_config, throttle_config, {})
    now_ns = START_NS
    accepted = []
    for step in range(4000):
        command = random_command(rng)
        fast_result, _ = apply(fast, command, now_ns, accepted)
        reference_result, now_ns = apply(reference, command, now_ns, accepted)
        assert fast_result == reference_result, (step, command)
        order_id = accepted_id(command, fast_result, fast)
        if order_id is not None:
            accepted.append(order_id)
            del accepted[:-200]
        if step % 100 == 0:
            assert state_of(fast) == state_of(reference), step
            assert_consistent(fast)
    assert state_of(fast) == state_of(reference)
    decisions = fast.counters()["decisions"]
    assert decisions.get(0, 0) > 300, decisions            # the flow really trades
    assert len(decisions) >= 8, decisions                   # and hits many different checks


# Well-formed orders from three clients with their own credit, duplicate windows, kills and
# restricted lists: the per-client checks are where most of these orders end.
client_commands = st.sampled_from(["new_units"] * 6 + ["repeat"] * 4 + ["replace_units"] * 2 + ["fill_units"] * 2
                                  + ["venue"] * 2 + ["advance"] * 2 + ["client_kill", "restrict"] * 2
                                  + ["bust", "restate"] * 2).flatmap(
    lambda kind: st.tuples(st.just(kind), st.sampled_from([0, 1, 2, 0, -1]), st.sampled_from([0, 0, 1, 2]),
                           st.sampled_from([1, 2, 5]), st.sampled_from([2, 2, 1]), st.integers(1, 300),
                           st.sampled_from([0.0, 0.0, 0.01, -0.01]), st.just(0), st.just(1))
    if kind == "new_units" else
    st.tuples(st.just(kind), order_refs, st.integers(1, 300), st.sampled_from([0.0, 0.01]), st.just(0), st.just(1))
    if kind == "replace_units" else
    st.tuples(st.just(kind), order_refs, st.integers(-1, 50), st.just(0), st.just(1))
    if kind == "fill_units" else COMMANDS[kind])

client_specs = st.fixed_dictionaries({
    "tick_size": st.sampled_from([0.01, 0.25]),
    "lot_size": st.sampled_from([1.0, 100.0]),
    "reference_price": st.sampled_from([10.0, 100.5]),
    "sector": st.sampled_from([-1, 0, 0]),
})

# Concentration limits tight enough for these orders to meet them.
client_books = st.fixed_dictionaries({
    "max_concentration": loose(0.01, 0.05),
    "max_sector_concentration": loose(0.02, 0.08),
    "equity": st.sampled_from([1e6, 1e5, 0.0]),
})


@given(
    specs=st.lists(client_specs, min_size=1, max_size=3),
    book_config=client_books,
    clients=client_configs,
    script=st.lists(client_commands, min_size=5, max_size=120),
)
def test_client_controls_when_driven_by_any_script_match_reference(specs, book_config, clients, script):
    fast = build(FAST, specs, book_config, {}, {}, clients)
    reference = build(REFERENCE, specs, book_config, {}, {}, clients)
    now_ns = START_NS
    accepted = []
    last_new = None
    restated = False
    for step, command in enumerate(script):
        restated = restated or command[0] == "restate"
        if command[0] == "new_units":
            last_new = command
        elif command[0] == "repeat":
            if last_new is None:
                continue
            command = last_new
        fast_result, _ = apply(fast, command, now_ns, accepted)
        reference_result, now_ns = apply(reference, command, now_ns, accepted)
        assert fast_result == reference_result, (step, command)
        order_id = accepted_id(command, fast_result, fast)
        if order_id is not None:
            accepted.append(order_id)
        assert state_of(fast) == state_of(reference), (step, command)
        assert_consistent(fast)
        # A venue's restatement may raise an order's quantity past the client's credit (the venue
        # did it; nothing refuses it), so the credit bound is held right after an order or a replace
        # the book accepted, in a flow the venue never restated.
        decided = command[0] in ("new_units", "replace_units") and (
            fast_result == 0 or (isinstance(fast_result, tuple) and fast_result[0] == 0))
        for session_id in range(SESSIONS):
            client = fast.client(session_id)
            assert client["open_notional"] >= 0.0
            if client["max_open_notional"] is not None and decided and not restated:
                assert client["open_notional"] <= client["max_open_notional"] * (1 + 1e-12)
            if client["max_daily_notional"] is not None:
                assert client["daily_notional"] <= client["max_daily_notional"] * (1 + 1e-12)


# Self-match prevention under churn: two clients quoting both sides of one instrument a few ticks
# around its price, cancelling, replacing and filling, so the best own prices keep leaving.
self_match_commands = st.one_of(
    st.tuples(st.just("quote_order"), st.integers(0, 1), st.sampled_from([1, 2, 5]), st.sampled_from([2, 2, 2, 1]),
              st.integers(-3, 3)),
    st.tuples(st.just("cancel"), order_refs),
    st.tuples(st.just("replace_price"), order_refs, st.integers(-3, 3)),
    st.tuples(st.sampled_from(["replaced", "replace_rejected"]), order_refs),
    st.tuples(st.just("fill_units"), order_refs, st.integers(-1, 50), st.just(0), st.just(1)),
)


@given(script=st.lists(self_match_commands, min_size=5, max_size=150))
def test_self_match_when_own_best_prices_keep_leaving_matches_reference(script):
    specs = [{"tick_size": 0.01, "lot_size": 1.0, "reference_price": 100.0}]
    clients = [{"self_match_prevention": True}] * SESSIONS
    fast = build(FAST, specs, {}, {}, {}, clients)
    reference = build(REFERENCE, specs, {}, {}, {}, clients)
    accepted = []
    for step, command in enumerate(script):
        results = []
        for book in (fast, reference):
            kind = command[0]
            if kind == "quote_order":
                _, session_id, side, ord_type, offset = command
                result = book.check_new_order_units(session_id, 0, side, ord_type, 1, 10_000 + offset, START_NS)
            elif kind == "cancel":
                result = book.on_canceled(pick(accepted, command[1]))
            elif kind == "replace_price":
                order_id = pick(accepted, command[1])
                order = book.order(order_id)
                qty = order["qty_lots"] if order else 1
                result = book.check_replace_units(order_id, qty, 10_000 + command[2], START_NS)
            elif kind in ("replaced", "replace_rejected"):
                result = getattr(book, "on_" + kind)(pick(accepted, command[1]))
            else:
                result, _ = apply(book, command, START_NS, accepted)
            results.append(result)
        assert results[0] == results[1], (step, command)
        if command[0] == "quote_order" and results[0][0] == 0:
            accepted.append(results[0][1])
        assert state_of(fast) == state_of(reference), (step, command)
        assert_consistent(fast)
