"""Benchmarks of the SPSC event ring: events moved per second between two threads.

Each round (`fixgate.bench.hotpath.ring_transfer`) builds a ring of capacity 1024, starts a producer
thread running `produce_sequence` and runs `consume_sequence` on the benchmarking thread; the time covers the whole transfer,
thread start and join included. The fast ring and its reference model move the same events.
"""

import pytest

from fixgate._fast import ring as fast
from fixgate.bench import hotpath
from fixgate.reference import ring as reference


def record_rate(benchmark, count):
    """Put events per second, from the median round, into the benchmark's extra info."""
    benchmark.extra_info["events"] = count
    if benchmark.stats is not None:  # None when benchmarking is disabled
        benchmark.extra_info["events_per_second"] = round(count / benchmark.stats.stats.median)


def run_benchmark(benchmark, implementation, count, rounds, per_operation):
    """Time `rounds` transfers of `count` events, then check them and record the rate."""
    name = "fast" if implementation is fast else "reference"
    mismatches = benchmark.pedantic(hotpath.ring_transfer, args=(name, count), rounds=rounds, iterations=1)
    assert mismatches == 0
    record_rate(benchmark, count)
    per_operation(benchmark, name, count, unit="event")


# -- TWO THREADS: FAST AGAINST REFERENCE ------------------------------------------------------------


@pytest.fixture
def two_thread_events(quick):
    """Return (events per round, rounds) of the fast-against-reference comparison."""
    return (2_000, 1) if quick else (200_000, 10)


@pytest.mark.benchmark(group="ring: push + pop across two threads")
def test_ring_two_threads(benchmark, two_thread_events, per_operation):
    count, rounds = two_thread_events
    run_benchmark(benchmark, fast, count, rounds, per_operation)


@pytest.mark.benchmark(group="ring: push + pop across two threads")
def test_ring_two_threads_reference(benchmark, two_thread_events, per_operation):
    count, rounds = two_thread_events
    run_benchmark(benchmark, reference, count, rounds, per_operation)


# -- THROUGHPUT -------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="ring throughput: 10 million events")
def test_ring_two_threads_throughput(benchmark, quick, per_operation):
    count, rounds = (200_000, 1) if quick else (10_000_000, 5)
    run_benchmark(benchmark, fast, count, rounds, per_operation)
