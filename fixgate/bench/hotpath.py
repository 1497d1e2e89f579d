"""Hot-path scenarios: the same inputs for the Cython implementation and its reference twin.

A scenario builds a realistic book (eight instruments with every limit switched on, four sessions
with their own credit, duplicate window and self-match prevention, fresh quotes) and a stream of
orders that the book accepts, so each check runs the whole chain: client kill switch, restricted list,
throttle, fields, duplicates, self-match (a walk over the instrument's live orders), size, notional,
ADV, collar, position, gross exposure, leverage, concentration by instrument and sector, daily caps,
open orders, quote freshness and the client's credit, then reserves the order.
"""

from __future__ import annotations

import functools

import importlib
import random
import statistics
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

NOW_NS = 1_700_000_000_000_000_000
SESSIONS = 4
IMPLEMENTATIONS = ("fast", "reference")

# symbol, tick, lot, reference price, ADV (the first three share a sector, the two coins another)
SECTORS = (0, 0, 0, 1, 1, -1, -1, -1)
INSTRUMENTS = (
    ("AAPL", 0.01, 1.0, 190.0, 5.0e7),
    ("MSFT", 0.01, 1.0, 410.0, 2.0e7),
    ("SPY", 0.01, 1.0, 520.0, 8.0e7),
    ("BTC-USD", 0.5, 0.0001, 60_000.0, 2.0e4),
    ("ETH-USD", 0.05, 0.001, 3_000.0, 3.0e5),
    ("EUR-USD", 0.00001, 1000.0, 1.0850, 5.0e9),
    ("ES-FUT", 0.25, 1.0, 5_200.0, 1.5e6),
    ("GOLD", 0.1, 1.0, 2_300.0, 2.0e5),
)


def modules(implementation: str) -> SimpleNamespace:
    """Return the classes of one implementation: ``"fast"`` (Cython) or ``"reference"``."""
    package = {"fast": "fixgate._fast", "reference": "fixgate.reference"}[implementation]
    return SimpleNamespace(
        Instruments=importlib.import_module(f"{package}.instruments").Instruments,
        QuoteBook=importlib.import_module(f"{package}.quotes").QuoteBook,
        Throttle=importlib.import_module(f"{package}.throttle").Throttle,
        RiskBook=importlib.import_module(f"{package}.risk").RiskBook,
    )


def build_book(implementation: str, *, order_capacity: int = 1 << 14, client_controls: bool = True,
               firm_budgets: bool = False):
    """Build a book with every limit on, quoted fresh at NOW_NS, generous enough to accept the
    order stream of `order_stream`; without `client_controls`, only the account and instrument
    limits (no per-client credit, duplicate window, self-match prevention or concentration); with
    `firm_budgets`, a budget of every firm-wide limit too (each client's credit included)."""
    impl = modules(implementation)
    instruments = impl.Instruments(len(INSTRUMENTS))
    for (symbol, tick, lot, price, adv), sector in zip(INSTRUMENTS, SECTORS):
        instruments.add(symbol, tick_size=tick, lot_size=lot, reference_price=price, adv=adv,
                        max_adv_fraction=0.05, max_order_qty=adv * 0.01, max_order_notional=5e6,
                        max_position=adv * 0.05, max_open_orders=5000, price_collar=0.05,
                        stale_after_ns=2_000_000_000, requires_live_quote=True, sector=sector)
    quotes = impl.QuoteBook(instruments)
    for instrument_id, (_, tick, _, price, _) in enumerate(INSTRUMENTS):
        quotes.on_quote(instrument_id, price - 2 * tick, price + 2 * tick, NOW_NS, NOW_NS)
    throttle = impl.Throttle(SESSIONS, len(INSTRUMENTS), global_rate=1e7, global_burst=1_000_000,
                             session_rate=1e6, session_burst=1_000_000, instrument_rate=1e6,
                             instrument_burst=1_000_000, breach_limit=10, breach_window_ns=1_000_000_000)
    book = impl.RiskBook(instruments, quotes, throttle, max_order_notional=1e7, max_gross_exposure=1e12,
                         max_leverage=50.0, max_daily_orders=10_000_000, max_daily_notional=1e13,
                         max_concentration=0.2 if client_controls else None,
                         max_sector_concentration=0.4 if client_controls else None, equity=1e11,
                         order_capacity=order_capacity)
    for session_id in range(SESSIONS if client_controls else 0):
        book.configure_client(session_id, max_daily_notional=1e13, max_open_notional=1e13,
                              max_window_notional=1e13, window_ns=1_000_000_000,
                              duplicate_window_ns=1_000_000_000, self_match_prevention=True)
    if firm_budgets:
        book.set_firm_budget("gross_exposure", 1e12)
        book.set_firm_budget("daily_notional", 1e13)
        book.set_firm_budget("daily_orders", 1e7)
        for session_id in range(SESSIONS):
            book.set_firm_budget("client_credit", 1e13, session_id=session_id)
    return book


def order_stream(count: int, seed: int = 7) -> list[tuple[int, int, int, int, float, float]]:
    """Return `count` orders (session, instrument, side, ord_type, qty, price) that pass every check:
    bids below the reference price and offers above it (no client meets its own orders), no two alike."""
    rng = random.Random(seed)
    orders = []
    seen = set()
    while len(orders) < count:
        instrument_id = rng.randrange(len(INSTRUMENTS))
        _, tick, lot, price, _ = INSTRUMENTS[instrument_id]
        side = rng.choice((1, 2))
        away = rng.uniform(0.0005, 0.01)
        limit_ticks = round(price * (1 - away if side == 1 else 1 + away) / tick)
        order = (rng.randrange(SESSIONS), instrument_id, side, 2, rng.randint(1, 20), limit_ticks)
        if order in seen:
            continue
        seen.add(order)
        session_id, _, _, ord_type, lots, ticks = order
        orders.append((session_id, instrument_id, side, ord_type, lots * lot, ticks * tick))
    return orders


def quote_stream(count: int, seed: int = 11) -> list[tuple[int, float, float, int, int]]:
    """Return `count` valid quotes (instrument, bid, ask, venue_ns, now_ns) wandering near the
    reference prices."""
    rng = random.Random(seed)
    quotes = []
    for index in range(count):
        instrument_id = rng.randrange(len(INSTRUMENTS))
        _, tick, _, price, _ = INSTRUMENTS[instrument_id]
        mid = round(price * (1 + rng.uniform(-0.005, 0.005)) / tick) * tick
        half_spread = tick * rng.randint(1, 3)
        quotes.append((instrument_id, mid - half_spread, mid + half_spread, NOW_NS + index, NOW_NS + index))
    return quotes


RING_CAPACITY = 1024
RING_JOIN_TIMEOUT_SECONDS = 120.0


def ring_module(implementation: str):
    """Return the ring module of one implementation."""
    package = {"fast": "fixgate._fast", "reference": "fixgate.reference"}[implementation]
    return importlib.import_module(f"{package}.ring")


def ring_transfer(implementation: str, count: int) -> int:
    """Push 1..count through a ring from a producer thread while this thread consumes them; return
    the number of mismatches (0: every number once, in order)."""
    module = ring_module(implementation)
    ring = module.SpscRing(RING_CAPACITY)
    producer = threading.Thread(target=module.produce_sequence, args=(ring, 1, count), daemon=True)
    producer.start()
    mismatches = module.consume_sequence(ring, 1, count)
    producer.join(RING_JOIN_TIMEOUT_SECONDS)
    if producer.is_alive():
        raise AssertionError(f"the producer did not finish {count} events in {RING_JOIN_TIMEOUT_SECONDS} s")
    return mismatches


def order_array(orders):
    """Return `orders` as a NumPy array of the risk book's ORDER_DTYPE, for `check_batch`."""
    import numpy as np

    from fixgate._fast.risk import ORDER_DTYPE

    return np.array(orders, dtype=ORDER_DTYPE)


def check_orders(book, orders, now_ns: int = NOW_NS) -> int:
    """Check each order through the whole chain; return how many were accepted."""
    check = book.check_new_order
    accepted = 0
    for session_id, instrument_id, side, ord_type, qty, price in orders:
        if check(session_id, instrument_id, side, ord_type, qty, price, now_ns) == 0:
            accepted += 1
    return accepted


def check_batch(book, array, codes, order_ids, now_ns: int = NOW_NS) -> int:
    """Check a NumPy batch of orders in one call; return how many were accepted."""
    return book.check_batch(array, codes, order_ids, now_ns)


def validate_quotes(quote_book, quotes) -> int:
    """Validate each quote; return how many were valid."""
    on_quote = quote_book.on_quote
    valid = 0
    for instrument_id, bid, ask, venue_ns, now_ns in quotes:
        if on_quote(instrument_id, bid, ask, venue_ns, now_ns) == 0:
            valid += 1
    return valid


def timer_overhead_ns(samples: int = 20_000) -> float:
    """Return the median cost of one back-to-back ``perf_counter_ns`` pair."""
    clock = time.perf_counter_ns
    costs = []
    for _ in range(samples):
        start = clock()
        costs.append(clock() - start)
    return statistics.median(costs)


def per_call_ns(implementation: str, count: int) -> list[int]:
    """Time each of `count` order checks one by one (timer pair included); return the durations."""
    book = build_book(implementation, order_capacity=1 << max(14, (count - 1).bit_length()))
    check = book.check_new_order
    clock = time.perf_counter_ns
    durations = []
    for session_id, instrument_id, side, ord_type, qty, price in order_stream(count):
        start = clock()
        check(session_id, instrument_id, side, ord_type, qty, price, NOW_NS)
        durations.append(clock() - start)
    return durations


def percentile(values, fraction: float) -> float:
    """Return the `fraction` quantile of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


@dataclass
class Measurement:
    """Median seconds per operation over rounds of `operations` calls."""

    group: str
    implementation: str
    median_ns: float
    p99_ns: float | None
    operations: int
    rounds: int
    p50_call_ns: float | None = None      # one call timed alone (timer pair included), like p99_ns


def measure(group: str, implementation: str, setup: Callable[[], Any], run: Callable[[Any], int],
            operations: int, rounds: int, expected: int) -> Measurement:
    """Time `run(setup())` `rounds` times; each round performs `operations` operations and must
    report `expected` successes (a benchmark that stops doing the work is caught, not timed)."""
    times = []
    for _ in range(rounds):
        state = setup()
        start = time.perf_counter_ns()
        result = run(state)
        times.append(time.perf_counter_ns() - start)
        if result != expected:
            raise AssertionError(f"{group}/{implementation}: {result} successes, expected {expected}")
    return Measurement(group, implementation, statistics.median(times) / operations, None, operations, rounds)


def summary(quick: bool = False) -> list[tuple[Measurement, Measurement]]:
    """Measure every hot-path group, fast and reference on identical inputs; return the pairs.

    `quick` shrinks the inputs and rounds so that the whole run takes a few seconds.
    """
    orders = order_stream(200 if quick else 1000)
    batch = order_array(order_stream(2000 if quick else 10_000))
    quotes = quote_stream(200 if quick else 1000)
    pairs = []
    for group, run in (("check chain, one order per call", _measure_chain),
                       ("check batch, nogil loop over NumPy", _measure_batch),
                       ("check batch, with firm budgets too",
                        functools.partial(_measure_batch, book_options={"firm_budgets": True})),
                       ("check batch, account and instrument limits only",
                        functools.partial(_measure_batch, book_options={"client_controls": False})),
                       ("quote validation", _measure_quotes),
                       ("ring push+pop, two threads", _measure_ring)):
        pair = []
        for implementation in IMPLEMENTATIONS:
            pair.append(run(group, implementation, quick, orders=orders, batch=batch, quotes=quotes))
        pairs.append(tuple(pair))
    return pairs


def _rounds(implementation: str, quick: bool) -> int:
    if quick:
        return 3
    return 30 if implementation == "fast" else 5


def _measure_chain(group, implementation, quick, *, orders, **_):
    measurement = measure(group, implementation, lambda: build_book(implementation),
                          lambda book: check_orders(book, orders), len(orders),
                          _rounds(implementation, quick), len(orders))
    durations = per_call_ns(implementation, 2_000 if quick else 20_000)
    measurement.p50_call_ns = percentile(durations, 0.50)
    measurement.p99_ns = percentile(durations, 0.99)
    return measurement


def _measure_batch(group, implementation, quick, *, batch, book_options=None, **_):
    """The batch check on a book of `build_book(implementation, **book_options)`."""
    import numpy as np

    def setup():
        return (build_book(implementation, **(book_options or {})), np.zeros(len(batch), np.uint8),
                np.zeros(len(batch), np.int64))

    return measure(group, implementation, setup, lambda state: check_batch(state[0], batch, state[1], state[2]),
                   len(batch), _rounds(implementation, quick), len(batch))


def _measure_quotes(group, implementation, quick, *, quotes, **_):
    return measure(group, implementation, lambda: build_book(implementation).quotes,
                   lambda quote_book: validate_quotes(quote_book, quotes), len(quotes),
                   _rounds(implementation, quick), len(quotes))


def _measure_ring(group, implementation, quick, **_):
    count = 20_000 if quick or implementation == "reference" else 2_000_000
    return measure(group, implementation, lambda: count, lambda events: ring_transfer(implementation, events),
                   count, 3 if quick else 5, 0)


# -- THE NATIVE ENGINE --------------------------------------------------------------------------------

def engine_message_costs(count: int) -> list[int]:
    """The ns of each order's three messages through the native engine, sessions faked: a client
    NewOrderSingle, the venue's New and its Canceled, parsed from wire text, decided, answered as text."""
    import tempfile
    from pathlib import Path

    from fixgate._engine.engine import NativeEngine
    from fixgate._fast.describe import RejectDescriber
    from fixgate.bench.e2e import AWAY_PRICE, SYMBOL, bench_config
    from fixgate.gateway import build_book, engine_config

    config = bench_config(message_log=False)
    book = build_book(config)
    with tempfile.TemporaryDirectory(prefix="fixgate-engine-bench-") as directory:
        settings = engine_config(config, Path(directory), "BENCH", message_log=False)
        settings.update(acceptor_settings="", initiator_settings="")
        engine = NativeEngine(settings, book, RejectDescriber(book))
        samples = engine.bench_messages(count, book.instruments.id_of(SYMBOL), AWAY_PRICE)
        del engine
    if len(samples) != count:
        raise AssertionError(f"the engine took {len(samples)} of {count} orders")
    return samples


def engine_summary(quick: bool = False) -> list[dict[str, Any]]:
    """The native engine's own costs: an order's messages with the sessions faked, and the event ring."""
    from fixgate._engine.engine import event_ring_ns_per_event

    samples = engine_message_costs(2_000 if quick else 50_000)
    per_event = [event_ring_ns_per_event(100_000 if quick else 2_000_000) for _ in range(1 if quick else 3)]
    return [
        {"group": "order through the engine (NewOrderSingle + New + Canceled, sessions faked)",
         "fast_median_ns": statistics.median(samples), "fast_call_p50_ns": percentile(samples, 0.50),
         "fast_p99_ns": percentile(samples, 0.99)},
        {"group": "event ring (engine -> state thread), push under the lock, batch drain",
         "fast_median_ns": statistics.median(per_event)},
    ]
