"""The fast ring and its reference model take the same decisions on any command sequence."""

import numpy
from hypothesis import given, settings
from hypothesis import strategies as st

from fixgate._fast import ring as fast
from fixgate.reference import ring as reference

INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
UINT16 = st.integers(0, (1 << 16) - 1)
UINT8 = st.integers(0, (1 << 8) - 1)

FIELDS = st.fixed_dictionaries(
    {
        "instrument_id": UINT16,
        "session_id": UINT16,
        "side": UINT8,
        "status": UINT8,
        "reject_code": UINT8,
        "qty_lots": INT64,
        "cum_lots": INT64,
        "leaves_lots": INT64,
        "price": st.floats(allow_nan=False, width=64),
        "recv_ns": INT64,
        "sent_ns": INT64,
    }
)

PUSH = st.tuples(st.just("push"), UINT8, INT64, FIELDS)
POP = st.tuples(st.just("pop"))
DRAIN = st.tuples(st.just("drain"), st.none() | st.integers(0, 10), st.integers(0, 10))
# Pushes are drawn twice as often as each consumer command, so the small rings fill up.
COMMANDS = st.lists(st.one_of(PUSH, PUSH, POP, DRAIN), max_size=80)


def apply(ring, command):
    """Apply `command` to `ring`; return its result (a drain returns its count and the rows)."""
    if command[0] == "push":
        _, kind, order_id, fields = command
        return ring.try_push(kind, order_id, **fields)
    if command[0] == "pop":
        return ring.try_pop()
    _, limit, out_length = command
    out = numpy.zeros(out_length, dtype=fast.EVENT_DTYPE)
    count = ring.drain(out, limit)
    return count, out.tolist()


def state(ring):
    """Return what a caller can observe of `ring` without changing it."""
    return ring.size(), ring.full_count, ring.head, ring.tail, ring.capacity, ring.mask


@settings(max_examples=400, deadline=None)
@given(capacity=st.sampled_from([2, 4, 8]), commands=COMMANDS)
def test_fast_ring_when_driven_like_reference_returns_and_holds_the_same(capacity, commands):
    fast_ring = fast.SpscRing(capacity)
    reference_ring = reference.SpscRing(capacity)
    for step, command in enumerate(commands):
        assert apply(fast_ring, command) == apply(reference_ring, command), f"step {step}: {command}"
        assert state(fast_ring) == state(reference_ring), f"after step {step}: {command}"
    remaining_fast = [fast_ring.try_pop() for _ in range(capacity + 1)]
    remaining_reference = [reference_ring.try_pop() for _ in range(capacity + 1)]
    assert remaining_fast == remaining_reference
