"""Unit tests of the SPSC event ring, run against the fast ring and its reference model."""

import threading

import numpy
import pytest

from fixgate._fast import ring as fast
from fixgate.reference import ring as reference

JOIN_TIMEOUT_SECONDS = 120.0
ACCEPTED = 1
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


@pytest.fixture(params=[fast, reference], ids=["fast", "reference"])
def implementation(request):
    """Return the module under test: ``fixgate._fast.ring`` or ``fixgate.reference.ring``."""
    return request.param


def event_fields(order_id):
    """Return try_push keyword arguments that differ in every field from one order id to the next."""
    return {
        "instrument_id": order_id % 65536,
        "session_id": (order_id * 7) % 65536,
        "side": order_id % 3,
        "status": order_id % 11,
        "reject_code": order_id % 64,
        "qty_lots": order_id * 10,
        "cum_lots": order_id * 3,
        "leaves_lots": -order_id,
        "price": order_id + 0.25,
        "recv_ns": 1_700_000_000_000_000_000 + order_id,
        "sent_ns": 1_700_000_000_000_000_500 + order_id,
    }


def expected_tuple(kind, order_id, fields):
    """Return the try_pop tuple of an event pushed with `kind`, `order_id` and `fields`."""
    values = {"kind": kind, "order_id": order_id, **fields}
    return tuple(values[name] for name in fast.EVENT_FIELDS)


def push_numbered(ring, first, count):
    """Push events numbered first, first + 1, ... and return their try_pop tuples."""
    pushed = []
    for order_id in range(first, first + count):
        fields = event_fields(order_id)
        assert ring.try_push(ACCEPTED, order_id, **fields)
        pushed.append(expected_tuple(ACCEPTED, order_id, fields))
    return pushed


def drained_tuples(out, count):
    """Return the first `count` rows of an EVENT_DTYPE array as try_pop tuples."""
    return [tuple(row[name].item() for name in fast.EVENT_FIELDS) for row in out[:count]]


def consume_within_timeout(implementation, ring, first, count, batch=256):
    """Run consume_sequence on its own thread, so that a ring short of events fails the test, not hangs it."""
    results = []
    consumer = threading.Thread(
        target=lambda: results.append(implementation.consume_sequence(ring, first, count, batch)), daemon=True
    )
    consumer.start()
    consumer.join(JOIN_TIMEOUT_SECONDS / 4)
    assert not consumer.is_alive(), f"consume_sequence waited for {count} events the ring never held"
    return results[0]


def run_two_threads(implementation, capacity, count, batch=256):
    """Push 1..count on one thread and consume them on another; return the ring and both results."""
    ring = implementation.SpscRing(capacity)
    results = {}

    def produce():
        results["refusals"] = implementation.produce_sequence(ring, 1, count)

    def consume():
        results["mismatches"] = implementation.consume_sequence(ring, 1, count, batch)

    threads = [threading.Thread(target=produce, daemon=True), threading.Thread(target=consume, daemon=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_SECONDS)
    assert not any(thread.is_alive() for thread in threads), (
        f"{count} events through a ring of {capacity} did not finish in {JOIN_TIMEOUT_SECONDS} s"
    )
    return ring, results


# -- LAYOUT -----------------------------------------------------------------------------------------


def test_event_dtype_when_built_is_one_cache_line_in_struct_order():
    assert fast.EVENT_DTYPE.itemsize == 64
    assert fast.EVENT_DTYPE.names == (
        "recv_ns", "sent_ns", "order_id", "qty_lots", "cum_lots", "leaves_lots", "price",
        "instrument_id", "session_id", "kind", "side", "status", "reject_code",
    )
    assert fast.EVENT_DTYPE.fields["reject_code"][1] == 63


def test_event_fields_when_compared_across_implementations_are_equal():
    assert fast.EVENT_FIELDS == reference.EVENT_FIELDS
    assert set(fast.EVENT_FIELDS) == set(fast.EVENT_DTYPE.names)
    assert fast.MAX_CAPACITY == reference.MAX_CAPACITY


@pytest.mark.parametrize("capacity", [0, 1, 3, 6, -4])
def test_capacity_when_not_a_power_of_two_from_two_raises_value_error(implementation, capacity):
    with pytest.raises(ValueError, match=rf"capacity must be a power of two .*, got {capacity}$"):
        implementation.SpscRing(capacity)


def test_capacity_when_above_the_maximum_raises_value_error(implementation):
    with pytest.raises(ValueError, match="power of two"):
        implementation.SpscRing(implementation.MAX_CAPACITY * 2)


@pytest.mark.parametrize("capacity", [2, 1024])
def test_capacity_when_a_power_of_two_sets_capacity_and_mask(implementation, capacity):
    ring = implementation.SpscRing(capacity)
    assert ring.capacity == capacity
    assert ring.mask == capacity - 1
    assert (ring.head, ring.tail, ring.size(), ring.full_count) == (0, 0, 0, 0)
    assert repr(ring) == f"SpscRing(capacity={capacity}, size=0)"


def test_capacity_when_assigned_raises_attribute_error(implementation):
    ring = implementation.SpscRing(4)
    with pytest.raises(AttributeError):
        ring.capacity = 8


# -- PRODUCER ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [2, 8, 1024])
def test_try_push_when_ring_full_returns_false_and_counts_each_refusal(implementation, capacity):
    ring = implementation.SpscRing(capacity)
    pushed = push_numbered(ring, 1, capacity)
    assert ring.full_count == 0
    assert ring.size() == capacity
    for refusal in range(1, 4):
        assert ring.try_push(ACCEPTED, 10_000 + refusal) is False
        assert ring.full_count == refusal
    assert ring.size() == capacity
    assert ring.tail == capacity
    popped = [ring.try_pop() for _ in range(capacity)]
    assert popped == pushed
    assert ring.try_pop() is None
    assert ring.full_count == 3


def test_try_push_when_room_freed_after_full_accepts_again(implementation):
    ring = implementation.SpscRing(2)
    push_numbered(ring, 1, 2)
    assert ring.try_push(ACCEPTED, 3) is False
    assert ring.try_pop()[1] == 1
    assert ring.try_push(ACCEPTED, 3) is True
    assert [ring.try_pop()[1], ring.try_pop()[1]] == [2, 3]
    assert ring.full_count == 1


def test_try_push_when_fields_at_their_limits_round_trips_every_field(implementation):
    ring = implementation.SpscRing(4)
    extremes = {
        "instrument_id": 65535,
        "session_id": 65535,
        "side": 255,
        "status": 255,
        "reject_code": 255,
        "qty_lots": INT64_MAX,
        "cum_lots": INT64_MIN,
        "leaves_lots": -1,
        "price": 1.7976931348623157e308,
        "recv_ns": INT64_MIN,
        "sent_ns": INT64_MAX,
    }
    small = {**extremes, "price": -5e-324, "qty_lots": -123_456_789_012_345}
    assert ring.try_push(255, INT64_MIN, **extremes)
    assert ring.try_push(0, INT64_MAX, **small)
    assert ring.try_pop() == expected_tuple(255, INT64_MIN, extremes)
    assert ring.try_pop() == expected_tuple(0, INT64_MAX, small)


def test_try_pop_when_fields_pushed_returns_python_ints_and_float(implementation):
    ring = implementation.SpscRing(2)
    ring.try_push(ACCEPTED, 7, price=3)
    event = ring.try_pop()
    assert [type(value) for value in event] == [int] * 10 + [float, int, int]


@pytest.mark.parametrize(
    "arguments",
    [
        {"kind": 256},
        {"kind": -1},
        {"instrument_id": 65536},
        {"session_id": -1},
        {"side": 256},
        {"reject_code": 300},
        {"order_id": INT64_MAX + 1},
        {"qty_lots": INT64_MIN - 1},
    ],
    ids=lambda arguments: f"{next(iter(arguments))}={next(iter(arguments.values()))}",
)
def test_try_push_when_a_field_overflows_raises_overflow_error_and_stores_nothing(implementation, arguments):
    ring = implementation.SpscRing(2)
    call = {"kind": ACCEPTED, "order_id": 1, **arguments}
    kind = call.pop("kind")
    order_id = call.pop("order_id")
    with pytest.raises(OverflowError):
        ring.try_push(kind, order_id, **call)
    assert (ring.tail, ring.full_count) == (0, 0)


def test_try_push_when_price_is_text_raises_type_error(implementation):
    ring = implementation.SpscRing(2)
    with pytest.raises(TypeError):
        ring.try_push(ACCEPTED, 1, price="1.5")
    assert ring.tail == 0


# -- CONSUMER ---------------------------------------------------------------------------------------


def test_try_pop_when_empty_returns_none(implementation):
    ring = implementation.SpscRing(4)
    assert ring.try_pop() is None
    assert ring.head == 0


def test_sequences_when_wrapping_many_times_keep_growing_and_lose_nothing(implementation):
    ring = implementation.SpscRing(4)
    next_order_id = 1
    for round_number in range(1, 1001):
        pushed = push_numbered(ring, next_order_id, 3)
        next_order_id += 3
        assert [ring.try_pop() for _ in range(3)] == pushed
        assert ring.head == ring.tail == 3 * round_number
    assert ring.size() == 0
    assert ring.full_count == 0


def test_drain_when_limit_below_available_moves_limit_events_in_order(implementation):
    ring = implementation.SpscRing(8)
    pushed = push_numbered(ring, 1, 6)
    out = numpy.zeros(8, dtype=fast.EVENT_DTYPE)
    assert ring.drain(out, limit=4) == 4
    assert drained_tuples(out, 4) == pushed[:4]
    assert out[4:].tolist() == numpy.zeros(4, dtype=fast.EVENT_DTYPE).tolist()
    assert (ring.head, ring.size()) == (4, 2)
    assert [ring.try_pop(), ring.try_pop()] == pushed[4:]


def test_drain_when_limit_above_available_moves_what_is_there(implementation):
    ring = implementation.SpscRing(8)
    pushed = push_numbered(ring, 1, 3)
    out = numpy.zeros(8, dtype=fast.EVENT_DTYPE)
    assert ring.drain(out, limit=100) == 3
    assert drained_tuples(out, 3) == pushed
    assert ring.size() == 0
    assert ring.drain(out) == 0


def test_drain_when_out_shorter_than_available_fills_out(implementation):
    ring = implementation.SpscRing(16)
    pushed = push_numbered(ring, 1, 10)
    out = numpy.zeros(4, dtype=fast.EVENT_DTYPE)
    assert ring.drain(out) == 4
    assert drained_tuples(out, 4) == pushed[:4]
    assert ring.drain(out, limit=9) == 4
    assert drained_tuples(out, 4) == pushed[4:8]
    assert ring.size() == 2


def test_drain_when_batch_wraps_past_last_slot_keeps_order(implementation):
    ring = implementation.SpscRing(8)
    push_numbered(ring, 1, 6)
    out = numpy.zeros(8, dtype=fast.EVENT_DTYPE)
    assert ring.drain(out) == 6
    pushed = push_numbered(ring, 7, 8)  # sequences 6..13: slots 6, 7, then 0..5
    assert ring.drain(out) == 8
    assert drained_tuples(out, 8) == pushed
    assert (ring.head, ring.tail) == (14, 14)


def test_drain_when_limit_zero_or_out_empty_moves_nothing(implementation):
    ring = implementation.SpscRing(4)
    push_numbered(ring, 1, 2)
    assert ring.drain(numpy.zeros(4, dtype=fast.EVENT_DTYPE), limit=0) == 0
    assert ring.drain(numpy.zeros(0, dtype=fast.EVENT_DTYPE)) == 0
    assert ring.size() == 2


def test_drain_when_limit_negative_raises_value_error(implementation):
    ring = implementation.SpscRing(4)
    push_numbered(ring, 1, 2)
    with pytest.raises(ValueError, match="limit must be zero or more, got -1"):
        ring.drain(numpy.zeros(4, dtype=fast.EVENT_DTYPE), limit=-1)
    assert ring.size() == 2


def test_drain_when_out_has_another_dtype_raises_value_error():
    ring = fast.SpscRing(4)
    push_numbered(ring, 1, 2)
    with pytest.raises(ValueError):
        ring.drain(numpy.zeros(4, dtype=numpy.float64))
    with pytest.raises(ValueError):
        ring.drain(numpy.zeros(4, dtype=fast.EVENT_DTYPE)[::2])
    assert ring.size() == 2


# -- STRESS AND THROUGHPUT --------------------------------------------------------------------------


def test_produce_sequence_when_room_for_all_pushes_numbered_accepted_events(implementation):
    ring = implementation.SpscRing(8)
    assert implementation.produce_sequence(ring, 41, 8) == 0
    events = [ring.try_pop() for _ in range(8)]
    assert [(kind, order_id, qty_lots) for kind, order_id, *_, qty_lots, _, _, _, _, _ in events] == [
        (ACCEPTED, order_id, order_id) for order_id in range(41, 49)
    ]


def test_consume_sequence_when_numbers_in_order_returns_zero(implementation):
    ring = implementation.SpscRing(8)
    implementation.produce_sequence(ring, 5, 7)
    assert consume_within_timeout(implementation, ring, 5, 7, batch=3) == 0
    assert ring.size() == 0


def test_consume_sequence_when_count_below_available_leaves_the_rest(implementation):
    ring = implementation.SpscRing(8)
    implementation.produce_sequence(ring, 1, 8)
    assert consume_within_timeout(implementation, ring, 1, 5) == 0
    assert ring.size() == 3
    assert ring.try_pop()[1] == 6


@pytest.mark.parametrize(
    ("events", "mismatches"),
    [
        ([(ACCEPTED, 1, 1), (ACCEPTED, 2, 2), (ACCEPTED, 4, 4), (ACCEPTED, 5, 5)], 2),
        ([(ACCEPTED, 1, 1), (ACCEPTED, 2, 7), (ACCEPTED, 3, 3), (ACCEPTED, 4, 4)], 1),
        ([(2, 1, 1), (ACCEPTED, 2, 2), (ACCEPTED, 3, 3), (ACCEPTED, 4, 4)], 1),
        ([(ACCEPTED, 2, 2), (ACCEPTED, 1, 1), (ACCEPTED, 3, 3), (ACCEPTED, 4, 4)], 2),
    ],
    ids=["gap", "wrong-quantity", "wrong-kind", "swapped"],
)
def test_consume_sequence_when_events_out_of_sequence_counts_mismatches(implementation, events, mismatches):
    ring = implementation.SpscRing(4)
    for kind, order_id, qty_lots in events:
        assert ring.try_push(kind, order_id, qty_lots=qty_lots)
    assert consume_within_timeout(implementation, ring, 1, 4) == mismatches


@pytest.mark.parametrize(("count", "batch", "message"), [(-1, 8, "count must be"), (4, 0, "batch must be")])
def test_consume_sequence_when_count_or_batch_invalid_raises_value_error(implementation, count, batch, message):
    ring = implementation.SpscRing(4)
    with pytest.raises(ValueError, match=message):
        implementation.consume_sequence(ring, 1, count, batch)


def test_produce_sequence_when_count_negative_raises_value_error(implementation):
    with pytest.raises(ValueError, match="count must be zero or more, got -1"):
        implementation.produce_sequence(implementation.SpscRing(4), 1, -1)


@pytest.mark.parametrize(
    ("capacity", "count", "batch"),
    [(1024, 10_000_000, 256), (2, 200_000, 256), (2, 200_000, 1), (64, 1_000_000, 7)],
)
def test_fast_ring_when_two_threads_move_a_numbered_sequence_loses_and_reorders_nothing(capacity, count, batch):
    ring, results = run_two_threads(fast, capacity, count, batch)
    assert results["mismatches"] == 0
    assert (ring.head, ring.tail, ring.size()) == (count, count, 0)
    assert results["refusals"] == ring.full_count


@pytest.mark.parametrize(("capacity", "count"), [(16, 20_000), (2, 5_000)])
def test_reference_ring_when_two_threads_move_a_numbered_sequence_loses_and_reorders_nothing(capacity, count):
    ring, results = run_two_threads(reference, capacity, count)
    assert results["mismatches"] == 0
    assert (ring.head, ring.tail, ring.size()) == (count, count, 0)
    assert results["refusals"] == ring.full_count



def test_stress_helpers_when_last_order_id_beyond_int64_raise_overflow_error(implementation):
    ring = implementation.SpscRing(4)
    with pytest.raises(OverflowError, match="must fit in int64"):
        implementation.produce_sequence(ring, INT64_MAX - 1, 3)
    assert implementation.produce_sequence(ring, INT64_MAX - 1, 2) == 0
    with pytest.raises(OverflowError, match="must fit in int64"):
        implementation.consume_sequence(ring, INT64_MAX - 1, 3)
    assert consume_within_timeout(implementation, ring, INT64_MAX - 1, 2) == 0
    assert ring.head == ring.tail == 2
