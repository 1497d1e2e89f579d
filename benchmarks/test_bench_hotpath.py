"""Hot-path micro-benchmarks: each group times the Cython implementation and its reference twin on
identical inputs, then checks that the work was really done.

Times are per round of many operations; `per_operation_ns` in extra_info (and the summary printed at
the end of the run) divides by the operations in a round.
"""

import numpy as np
import pytest

from fixgate.bench import hotpath

ORDERS = hotpath.order_stream(1000)
BATCH = hotpath.order_array(hotpath.order_stream(10_000))
QUOTES = hotpath.quote_stream(1000)


def rounds(implementation, quick):
    if quick:
        return 2
    return 50 if implementation == "fast" else 8


@pytest.mark.parametrize("implementation", hotpath.IMPLEMENTATIONS)
def test_check_chain(benchmark, implementation, quick, per_operation):
    benchmark.group = "check chain: one order per call (throttle + quotes + risk)"
    orders = ORDERS[:100] if quick else ORDERS

    def setup():
        return (hotpath.build_book(implementation), orders), {}

    accepted = benchmark.pedantic(hotpath.check_orders, setup=setup, rounds=rounds(implementation, quick))
    assert accepted == len(orders)
    durations = hotpath.per_call_ns(implementation, 500 if quick else 20_000)
    per_operation(benchmark, implementation, len(orders), p99_ns=hotpath.percentile(durations, 0.99))


@pytest.mark.parametrize("implementation", hotpath.IMPLEMENTATIONS)
def test_check_batch(benchmark, implementation, quick, per_operation):
    benchmark.group = "check batch: nogil loop over a NumPy structured array"
    batch = BATCH[:500] if quick else BATCH

    def setup():
        return (hotpath.build_book(implementation), batch, np.zeros(len(batch), np.uint8),
                np.zeros(len(batch), np.int64)), {}

    accepted = benchmark.pedantic(hotpath.check_batch, setup=setup, rounds=rounds(implementation, quick))
    assert accepted == len(batch)
    per_operation(benchmark, implementation, len(batch))


@pytest.mark.parametrize("implementation", hotpath.IMPLEMENTATIONS)
def test_quote_validation(benchmark, implementation, quick, per_operation):
    benchmark.group = "quote validation: one quote per call"
    quotes = QUOTES[:100] if quick else QUOTES

    def setup():
        return (hotpath.build_book(implementation).quotes, quotes), {}

    valid = benchmark.pedantic(hotpath.validate_quotes, setup=setup, rounds=rounds(implementation, quick))
    assert valid == len(quotes)
    per_operation(benchmark, implementation, len(quotes))
