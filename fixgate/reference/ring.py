"""Plain-Python model of ``fixgate._fast.ring``: the same class, methods and decisions.

A slot holds a tuple in the order of ``EVENT_FIELDS``. The model relies on the GIL for ordering
between the producer and consumer threads, where the fast ring uses acquire and release fences;
what either side can observe is the same.
"""

import operator
import time

# -- SLOT -------------------------------------------------------------------------------------------

# The fields in the order of a `try_pop` tuple.
EVENT_FIELDS = (
    "kind",
    "order_id",
    "instrument_id",
    "session_id",
    "side",
    "status",
    "reject_code",
    "qty_lots",
    "cum_lots",
    "leaves_lots",
    "price",
    "recv_ns",
    "sent_ns",
)

# The fields in the order of the C struct (and of ``fixgate._fast.ring.EVENT_DTYPE``): the order of
# the row tuples that `drain` writes.
_STRUCT_FIELDS = (
    "recv_ns",
    "sent_ns",
    "order_id",
    "qty_lots",
    "cum_lots",
    "leaves_lots",
    "price",
    "instrument_id",
    "session_id",
    "kind",
    "side",
    "status",
    "reject_code",
)
_STRUCT_ORDER = tuple(EVENT_FIELDS.index(name) for name in _STRUCT_FIELDS)

# The largest capacity accepted: 2**30 slots.
MAX_CAPACITY = 1 << 30

# EventKind.ACCEPTED (fixgate._fast.enums.EVENT_ACCEPTED): the kind the stress helpers push.
EVENT_ACCEPTED = 1

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT16_MAX = (1 << 16) - 1
_UINT8_MAX = (1 << 8) - 1


def _integer(name, value, low, high):
    """Return `value` as an int, or raise as Cython does for a C integer argument that cannot hold it."""
    value = operator.index(value)
    if not low <= value <= high:
        raise OverflowError(f"{name} must be from {low} to {high}, got {value}")
    return value


def _double(name, value):
    """Return `value` as a float, refusing text as Cython does for a C double argument."""
    if isinstance(value, (str, bytes, bytearray)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


class SpscRing:
    """A bounded single-producer single-consumer ring of order events.

    Exactly one thread may call the producer methods (`try_push`, `produce_sequence`) and exactly
    one thread the consumer methods (`try_pop`, `drain`, `consume_sequence`); the snapshots
    (`size`, `head`, `tail`, `full_count`) may be read from any thread.

    Parameters
    ----------
    capacity : int
        The number of slots: a power of two from 2 to ``MAX_CAPACITY``.

    Raises
    ------
    ValueError
        If `capacity` is not such a power of two.
    """

    # -- LAYOUT -------------------------------------------------------------------------------------

    def __init__(self, capacity):
        capacity = operator.index(capacity)
        if capacity < 2 or capacity > MAX_CAPACITY or (capacity & (capacity - 1)) != 0:
            raise ValueError(
                f"capacity must be a power of two from 2 to {MAX_CAPACITY}, got {capacity}"
            )
        self._capacity = capacity
        self._mask = capacity - 1
        self._slots = [None] * capacity
        self._tail = 0
        self._full_count = 0
        self._head = 0

    @property
    def capacity(self):
        """The number of slots."""
        return self._capacity

    @property
    def mask(self):
        """``capacity - 1``: a sequence's slot index is ``sequence & mask``."""
        return self._mask

    def __repr__(self):
        return f"SpscRing(capacity={self._capacity}, size={self.size()})"

    # -- PRODUCER -----------------------------------------------------------------------------------

    def _push(self, event):
        """Store the `event` tuple in the next slot; return False, and count the refusal, when full."""
        tail = self._tail
        if tail - self._head >= self._capacity:
            self._full_count += 1
            return False
        self._slots[tail & self._mask] = event
        self._tail = tail + 1  # published after the slot is written
        return True

    def try_push(
        self,
        kind,
        order_id,
        *,
        instrument_id=0,
        session_id=0,
        side=0,
        status=0,
        reject_code=0,
        qty_lots=0,
        cum_lots=0,
        leaves_lots=0,
        price=0.0,
        recv_ns=0,
        sent_ns=0,
    ):
        """Push one event built from the arguments (producer thread only).

        Parameters
        ----------
        kind : int
            The ``EventKind`` (0 to 255).
        order_id : int
            The order the event is about (int64).
        instrument_id, session_id : int
            Interned ids (0 to 65535).
        side, status, reject_code : int
            FIX Side, OrdStatus as a small number, and ``RejectCode`` (0 to 255).
        qty_lots, cum_lots, leaves_lots : int
            Quantities in lots (int64); `qty_lots` is the last fill quantity of a fill.
        price : float
            The limit price or fill price.
        recv_ns, sent_ns : int
            When the producing thread received the message and handed its answer on.

        Returns
        -------
        bool
            True if the event was stored; False if the ring was full (the event was not stored and
            `full_count` grew by one).

        Raises
        ------
        OverflowError
            If an integer does not fit its field.
        """
        event = (
            _integer("kind", kind, 0, _UINT8_MAX),
            _integer("order_id", order_id, _INT64_MIN, _INT64_MAX),
            _integer("instrument_id", instrument_id, 0, _UINT16_MAX),
            _integer("session_id", session_id, 0, _UINT16_MAX),
            _integer("side", side, 0, _UINT8_MAX),
            _integer("status", status, 0, _UINT8_MAX),
            _integer("reject_code", reject_code, 0, _UINT8_MAX),
            _integer("qty_lots", qty_lots, _INT64_MIN, _INT64_MAX),
            _integer("cum_lots", cum_lots, _INT64_MIN, _INT64_MAX),
            _integer("leaves_lots", leaves_lots, _INT64_MIN, _INT64_MAX),
            _double("price", price),
            _integer("recv_ns", recv_ns, _INT64_MIN, _INT64_MAX),
            _integer("sent_ns", sent_ns, _INT64_MIN, _INT64_MAX),
        )
        return self._push(event)

    # -- CONSUMER -----------------------------------------------------------------------------------

    def _pop(self):
        """Return the oldest event tuple and free its slot, or None when empty."""
        head = self._head
        if head >= self._tail:
            return None
        index = head & self._mask
        event = self._slots[index]
        self._slots[index] = None
        self._head = head + 1  # published after the slot is read
        return event

    def _drain_to(self, out, limit):
        """Append up to `limit` of the oldest event tuples to the list `out`; return the count."""
        head = self._head
        count = min(self._tail - head, limit)
        if count <= 0:
            return 0
        mask = self._mask
        slots = self._slots
        for sequence in range(head, head + count):
            out.append(slots[sequence & mask])
            slots[sequence & mask] = None
        self._head = head + count  # published once, after every slot is read
        return count

    def try_pop(self):
        """Pop the oldest event (consumer thread only).

        Returns
        -------
        tuple or None
            The event's fields in the order of ``EVENT_FIELDS``, or None if the ring is empty.
        """
        return self._pop()

    def drain(self, out, limit=None):
        """Move the oldest events into `out`, in order, in one batch (consumer thread only).

        Parameters
        ----------
        out : numpy.ndarray
            A one-dimensional array of ``fixgate._fast.ring.EVENT_DTYPE`` (any sequence that takes
            row tuples in struct order); rows from 0 on are overwritten.
        limit : int, optional
            The most events to move; by default ``len(out)``.

        Returns
        -------
        int
            The number of events moved: at most ``min(limit, len(out))``, fewer if the ring holds
            fewer.

        Raises
        ------
        ValueError
            If `limit` is negative.
        """
        wanted = len(out)
        if limit is not None:
            requested = _integer("limit", limit, _INT64_MIN, _INT64_MAX)
            if requested < 0:
                raise ValueError(f"limit must be zero or more, got {requested}")
            wanted = min(wanted, requested)
        events = []
        count = self._drain_to(events, wanted)
        for row, event in enumerate(events):
            out[row] = tuple(event[field] for field in _STRUCT_ORDER)
        return count

    # -- SNAPSHOTS (any thread) ---------------------------------------------------------------------

    def size(self):
        """Return the number of events in the ring: a snapshot, exact only on a quiet ring."""
        return self._tail - self._head

    @property
    def head(self):
        """The sequence of the next event to read; it only grows."""
        return self._head

    @property
    def tail(self):
        """The sequence of the next event to write; it only grows."""
        return self._tail

    @property
    def full_count(self):
        """The number of pushes refused because the ring was full."""
        return self._full_count


# -- STRESS AND THROUGHPUT --------------------------------------------------------------------------


def produce_sequence(ring, first, count):
    """Push `count` accepted events numbered from `first`, yielding the GIL while the ring is full.

    Event ``i`` carries ``order_id = qty_lots = first + i`` and ``kind = EVENT_ACCEPTED``.

    Parameters
    ----------
    ring : SpscRing
        The ring; the calling thread is its producer.
    first : int
        The order id of the first event.
    count : int
        The number of events to push (zero or more).

    Returns
    -------
    int
        The number of refused pushes while waiting for room (the growth of `ring.full_count`).
    """
    if ring is None:
        raise TypeError("ring must be an SpscRing, got None")
    first = _integer("first", first, _INT64_MIN, _INT64_MAX)
    count = _integer("count", count, _INT64_MIN, _INT64_MAX)
    if count < 0:
        raise ValueError(f"count must be zero or more, got {count}")
    if count > 0 and first > _INT64_MAX - (count - 1):
        raise OverflowError(f"the last order id first + count - 1 must fit in int64, got {first} + {count} - 1")
    push = ring._push
    refusals = 0
    for order_id in range(first, first + count):
        event = (EVENT_ACCEPTED, order_id, 0, 0, 0, 0, 0, order_id, 0, 0, 0.0, 0, 0)
        while not push(event):
            refusals += 1
            time.sleep(0)
    return refusals


def consume_sequence(ring, first, count, batch=256):
    """Drain `count` events in batches and check that they are ``first, first + 1, ...`` in order.

    Parameters
    ----------
    ring : SpscRing
        The ring; the calling thread is its consumer.
    first : int
        The order id expected first.
    count : int
        The number of events to take (zero or more).
    batch : int, default 256
        The most events taken per drain (1 or more).

    Returns
    -------
    int
        The number of events that were not the expected one: event ``i`` must carry
        ``order_id == qty_lots == first + i`` and ``kind == EVENT_ACCEPTED``. Zero means every
        number arrived once, in order.
    """
    if ring is None:
        raise TypeError("ring must be an SpscRing, got None")
    first = _integer("first", first, _INT64_MIN, _INT64_MAX)
    count = _integer("count", count, _INT64_MIN, _INT64_MAX)
    batch = _integer("batch", batch, _INT64_MIN, _INT64_MAX)
    if count < 0:
        raise ValueError(f"count must be zero or more, got {count}")
    if count > 0 and first > _INT64_MAX - (count - 1):
        raise OverflowError(f"the last order id first + count - 1 must fit in int64, got {first} + {count} - 1")
    if batch < 1:
        raise ValueError(f"batch must be 1 or more, got {batch}")
    drain_to = ring._drain_to
    seen = 0
    mismatches = 0
    expected = first
    events = []
    while seen < count:
        events.clear()
        taken = drain_to(events, min(batch, count - seen))
        if taken == 0:
            time.sleep(0)
            continue
        for kind, order_id, _, _, _, _, _, qty_lots, *_ in events:
            if order_id != expected or qty_lots != expected or kind != EVENT_ACCEPTED:
                mismatches += 1
            expected += 1
        seen += taken
    return mismatches
