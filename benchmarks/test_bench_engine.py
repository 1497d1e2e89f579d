"""Benchmarks of the native engine itself, without sockets: what one order costs it, and its event ring.

- An order's three messages (the client's NewOrderSingle, the venue's New and its Canceled), each
  parsed from wire text as QuickFIX would, decided (checks, ids, write-ahead, events) and answered as
  text, with the sessions faked: the engine's own cost per order, next to which the end-to-end
  benchmark shows what QuickFIX's sessions and the sockets add.
- The production event ring: one thread pushes under a lock (as the engine does, one writer at a
  time), another drains in batches (as the state thread does).
"""

import statistics

import pytest

from fixgate._engine.engine import event_ring_ns_per_event
from fixgate.bench import hotpath


@pytest.mark.benchmark(group="engine: one order's three messages, sessions faked")
def test_order_through_the_engine(benchmark, quick):
    count = 1_000 if quick else 20_000
    samples = benchmark.pedantic(hotpath.engine_message_costs, args=(count,), rounds=1 if quick else 3,
                                 iterations=1)
    assert len(samples) == count
    # The round includes building the engine; the figures that matter are the per-order samples.
    benchmark.extra_info["p50_per_order_ns"] = statistics.median(samples)
    benchmark.extra_info["p99_per_order_ns"] = hotpath.percentile(samples, 0.99)


@pytest.mark.benchmark(group="engine: event ring, push under the lock + batch drain")
def test_event_ring(benchmark, quick, per_operation):
    count = 50_000 if quick else 1_000_000
    per_event = benchmark.pedantic(event_ring_ns_per_event, args=(count,), rounds=1 if quick else 5, iterations=1)
    assert per_event > 0
    benchmark.extra_info["ns_per_event"] = round(per_event, 1)
    per_operation(benchmark, "fast", count, unit="event")
