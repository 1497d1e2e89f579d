"""The single-producer single-consumer ring that carries order events to the state thread.

One QuickFIX thread pushes, the state thread pops or drains; slots are 64-byte C structs, so no
Python object crosses threads. A full ring refuses the push and counts it (backpressure: the caller
rejects the order as busy); nothing is ever dropped or overwritten. The plain-Python model with the
same names is ``fixgate.reference.ring``.
"""

from libc.stdint cimport int64_t, uint8_t, uint16_t
from libc.stdlib cimport free
from libc.string cimport memcpy, memset
from posix.stdlib cimport posix_memalign

from fixgate._fast cimport enums as e

import numpy

# -- ATOMICS ----------------------------------------------------------------------------------------

# The only place that names the __atomic builtins and their memory orders. Each call site says
# which store its ACQUIRE pairs with, or which writes its RELEASE publishes.
cdef extern from *:
    """
    #include <stdint.h>
    #include <sched.h>

    static inline int64_t fg_load_acquire(const int64_t *sequence) {
        return __atomic_load_n(sequence, __ATOMIC_ACQUIRE);
    }
    static inline void fg_store_release(int64_t *sequence, int64_t value) {
        __atomic_store_n(sequence, value, __ATOMIC_RELEASE);
    }
    static inline int64_t fg_load_relaxed(const int64_t *counter) {
        return __atomic_load_n(counter, __ATOMIC_RELAXED);
    }
    static inline void fg_store_relaxed(int64_t *counter, int64_t value) {
        __atomic_store_n(counter, value, __ATOMIC_RELAXED);
    }

    /* Idle strategy of the stress helpers: spin with the CPU's pause hint, and give the core away
       once every 1024 idle polls so that both sides progress when they share one core. */
    static inline void fg_idle(int64_t idle_polls) {
        if ((idle_polls & 1023) == 1023) {
            sched_yield();
        } else {
    #if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
    #elif defined(__aarch64__)
            __asm__ __volatile__("yield");
    #endif
        }
    }

    /* Compile-time layout checks: a slot is one cache line; the sequences are four lines. */
    #define fg_check_layout(event_size, sequences_size) \\
        _Static_assert((event_size) == 64, "sizeof(Event) must be 64 bytes"); \\
        _Static_assert((sequences_size) == 256, "sizeof(RingSequences) must be 256 bytes")
    """
    int64_t fg_load_acquire(const int64_t* sequence) noexcept nogil
    void fg_store_release(int64_t* sequence, int64_t value) noexcept nogil
    int64_t fg_load_relaxed(const int64_t* counter) noexcept nogil
    void fg_store_relaxed(int64_t* counter, int64_t value) noexcept nogil
    void fg_idle(int64_t idle_polls) noexcept nogil
    void fg_check_layout(size_t event_size, size_t sequences_size) noexcept nogil

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

# The slot as a NumPy record, in struct order: `drain` copies slots into arrays of this dtype.
EVENT_DTYPE = numpy.dtype(
    [
        ("recv_ns", numpy.int64),
        ("sent_ns", numpy.int64),
        ("order_id", numpy.int64),
        ("qty_lots", numpy.int64),
        ("cum_lots", numpy.int64),
        ("leaves_lots", numpy.int64),
        ("price", numpy.float64),
        ("instrument_id", numpy.uint16),
        ("session_id", numpy.uint16),
        ("kind", numpy.uint8),
        ("side", numpy.uint8),
        ("status", numpy.uint8),
        ("reject_code", numpy.uint8),
    ],
    align=True,
)

# -- SEQUENCES --------------------------------------------------------------------------------------

# Fails the C build, not the import, if a slot is not one cache line or the padding is wrong.
fg_check_layout(sizeof(Event), sizeof(RingSequences))

# The largest capacity accepted: 2**30 slots of 64 bytes (64 GiB).
MAX_CAPACITY = 1 << 30

# The stress helpers number events up to first + count - 1, which must fit in an int64.
cdef int64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF


cdef class SpscRing:
    """A bounded single-producer single-consumer ring of order events.

    Exactly one thread may call the producer methods (`push`, `try_push`, `produce_sequence`) and
    exactly one thread the consumer methods (`pop`, `drain_to`, `try_pop`, `drain`,
    `consume_sequence`); the snapshots (`size`, `head`, `tail`, `full_count`) may be read from any
    thread.

    Parameters
    ----------
    capacity : int
        The number of slots: a power of two from 2 to ``MAX_CAPACITY``.

    Raises
    ------
    ValueError
        If `capacity` is not such a power of two.
    MemoryError
        If the slots cannot be allocated.
    """

    # -- LAYOUT -------------------------------------------------------------------------------------

    def __cinit__(self, int64_t capacity):
        cdef void* memory = NULL
        if capacity < 2 or capacity > MAX_CAPACITY or (capacity & (capacity - 1)) != 0:
            raise ValueError(
                f"capacity must be a power of two from 2 to {MAX_CAPACITY}, got {capacity}"
            )
        self.capacity = capacity
        self.mask = capacity - 1
        if posix_memalign(&memory, CACHE_LINE_BYTES, <size_t>capacity * sizeof(Event)) != 0:
            raise MemoryError(f"cannot allocate {capacity} ring slots of {sizeof(Event)} bytes")
        memset(memory, 0, <size_t>capacity * sizeof(Event))
        self.slots = <Event*>memory
        memory = NULL
        if posix_memalign(&memory, CACHE_LINE_BYTES, sizeof(RingSequences)) != 0:
            raise MemoryError("cannot allocate the ring sequences")
        memset(memory, 0, sizeof(RingSequences))
        self.sequences = <RingSequences*>memory

    def __dealloc__(self):
        free(self.slots)
        free(self.sequences)

    def __repr__(self):
        return f"SpscRing(capacity={self.capacity}, size={self.size_snapshot()})"

    # -- PRODUCER -----------------------------------------------------------------------------------

    cdef bint push(self, const Event* event) noexcept nogil:
        """Copy `event` into the next slot; return False, and count the refusal, when full."""
        cdef RingSequences* sequences = self.sequences
        cdef int64_t tail = sequences.tail  # written by this thread only: a plain read
        if tail - sequences.head_cache >= self.capacity:
            # The cached head says full: read the real one. ACQUIRE pairs with the consumer's
            # RELEASE store of `head`, so its copies out of the slots it freed are complete before
            # this thread overwrites them.
            sequences.head_cache = fg_load_acquire(&sequences.head)
            if tail - sequences.head_cache >= self.capacity:
                # Only this thread writes the counter; relaxed, so other threads read a whole value.
                fg_store_relaxed(&sequences.full_count, sequences.full_count + 1)
                return False
        self.slots[tail & self.mask] = event[0]
        # RELEASE: the slot written above is visible to the consumer before the new `tail` is.
        fg_store_release(&sequences.tail, tail + 1)
        return True

    def try_push(
        self,
        uint8_t kind,
        int64_t order_id,
        *,
        uint16_t instrument_id=0,
        uint16_t session_id=0,
        uint8_t side=0,
        uint8_t status=0,
        uint8_t reject_code=0,
        int64_t qty_lots=0,
        int64_t cum_lots=0,
        int64_t leaves_lots=0,
        double price=0.0,
        int64_t recv_ns=0,
        int64_t sent_ns=0,
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
        cdef Event event
        event.recv_ns = recv_ns
        event.sent_ns = sent_ns
        event.order_id = order_id
        event.qty_lots = qty_lots
        event.cum_lots = cum_lots
        event.leaves_lots = leaves_lots
        event.price = price
        event.instrument_id = instrument_id
        event.session_id = session_id
        event.kind = kind
        event.side = side
        event.status = status
        event.reject_code = reject_code
        return self.push(&event)

    # -- CONSUMER -----------------------------------------------------------------------------------

    cdef bint pop(self, Event* out) noexcept nogil:
        """Copy the oldest event into `out` and free its slot; return False when empty."""
        cdef RingSequences* sequences = self.sequences
        cdef int64_t head = sequences.head  # written by this thread only: a plain read
        if head >= sequences.tail_cache:
            # The cached tail says empty: read the real one. ACQUIRE pairs with the producer's
            # RELEASE store of `tail`, so the slots it published are visible before we read them.
            sequences.tail_cache = fg_load_acquire(&sequences.tail)
            if head >= sequences.tail_cache:
                return False
        out[0] = self.slots[head & self.mask]
        # RELEASE: the copy out of the slot completes before the producer sees the slot as free.
        fg_store_release(&sequences.head, head + 1)
        return True

    cdef int64_t drain_to(self, Event* out, int64_t limit) noexcept nogil:
        """Copy up to `limit` of the oldest events into `out`, free their slots at once, return the count."""
        cdef RingSequences* sequences = self.sequences
        cdef int64_t head = sequences.head  # written by this thread only: a plain read
        cdef int64_t available = sequences.tail_cache - head
        cdef int64_t count, index, first_part
        if limit <= 0:
            return 0
        if available < limit:
            # The cached tail cannot fill the batch: read the real one. ACQUIRE pairs with the
            # producer's RELEASE store of `tail`, so every slot below it is visible before we copy.
            sequences.tail_cache = fg_load_acquire(&sequences.tail)
            available = sequences.tail_cache - head
            if available <= 0:
                return 0
        count = available if available < limit else limit
        index = head & self.mask
        first_part = self.capacity - index
        if first_part >= count:
            memcpy(out, self.slots + index, <size_t>count * sizeof(Event))
        else:
            # The batch wraps past the last slot: copy the end of the array, then its start.
            memcpy(out, self.slots + index, <size_t>first_part * sizeof(Event))
            memcpy(out + first_part, self.slots, <size_t>(count - first_part) * sizeof(Event))
        # RELEASE, once for the batch: every copy above completes before the producer sees the
        # slots as free.
        fg_store_release(&sequences.head, head + count)
        return count

    def try_pop(self):
        """Pop the oldest event (consumer thread only).

        Returns
        -------
        tuple or None
            The event's fields in the order of ``EVENT_FIELDS``, or None if the ring is empty.
        """
        cdef Event event
        if not self.pop(&event):
            return None
        return (
            event.kind,
            event.order_id,
            event.instrument_id,
            event.session_id,
            event.side,
            event.status,
            event.reject_code,
            event.qty_lots,
            event.cum_lots,
            event.leaves_lots,
            event.price,
            event.recv_ns,
            event.sent_ns,
        )

    def drain(self, Event[::1] out not None, limit=None):
        """Move the oldest events into `out`, in order, in one batch (consumer thread only).

        Parameters
        ----------
        out : numpy.ndarray
            A writable, contiguous one-dimensional array of ``EVENT_DTYPE``; rows from 0 on are
            overwritten.
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
            If `limit` is negative, or `out` is not a contiguous array of ``EVENT_DTYPE``.
        """
        cdef int64_t wanted = out.shape[0]
        cdef int64_t requested
        if limit is not None:
            requested = limit
            if requested < 0:
                raise ValueError(f"limit must be zero or more, got {requested}")
            if requested < wanted:
                wanted = requested
        if wanted == 0:
            return 0
        return self.drain_to(&out[0], wanted)

    # -- SNAPSHOTS (any thread) ---------------------------------------------------------------------

    cdef int64_t size_snapshot(self) noexcept nogil:
        """Return tail - head from one consistent pair of reads (Agrona's `size`)."""
        cdef int64_t head_before
        cdef int64_t tail
        cdef int64_t head_after = fg_load_acquire(&self.sequences.head)
        while True:
            head_before = head_after
            tail = fg_load_acquire(&self.sequences.tail)
            head_after = fg_load_acquire(&self.sequences.head)
            if head_after == head_before:
                return tail - head_after

    def size(self):
        """Return the number of events in the ring: a snapshot, exact only on a quiet ring."""
        return self.size_snapshot()

    @property
    def head(self):
        """The sequence of the next event to read; it only grows."""
        return fg_load_acquire(&self.sequences.head)

    @property
    def tail(self):
        """The sequence of the next event to write; it only grows."""
        return fg_load_acquire(&self.sequences.tail)

    @property
    def full_count(self):
        """The number of pushes refused because the ring was full."""
        return fg_load_relaxed(&self.sequences.full_count)


# -- STRESS AND THROUGHPUT --------------------------------------------------------------------------

cpdef int64_t produce_sequence(SpscRing ring, int64_t first, int64_t count) except -1:
    """Push `count` accepted events numbered from `first`, spinning while the ring is full.

    Event ``i`` carries ``order_id = qty_lots = first + i`` and ``kind = EVENT_ACCEPTED``. The
    loop runs without the GIL, so a consumer on another thread runs in parallel.

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
    cdef Event event
    cdef int64_t index
    cdef int64_t refusals = 0
    cdef int64_t idle_polls
    if ring is None:
        raise TypeError("ring must be an SpscRing, got None")
    if count < 0:
        raise ValueError(f"count must be zero or more, got {count}")
    if count > 0 and first > INT64_MAX - (count - 1):
        raise OverflowError(f"the last order id first + count - 1 must fit in int64, got {first} + {count} - 1")
    memset(&event, 0, sizeof(Event))
    event.kind = e.EVENT_ACCEPTED
    with nogil:
        for index in range(count):
            event.order_id = first + index
            event.qty_lots = first + index
            idle_polls = 0
            while not ring.push(&event):
                refusals += 1
                fg_idle(idle_polls)
                idle_polls += 1
    return refusals


cpdef int64_t consume_sequence(SpscRing ring, int64_t first, int64_t count, int64_t batch=256) except -1:
    """Drain `count` events in batches and check that they are ``first, first + 1, ...`` in order.

    The loop runs without the GIL, so a producer on another thread runs in parallel; it spins
    while the ring is empty and never takes more than `count` events.

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
    cdef void* memory = NULL
    cdef Event* buffer
    cdef int64_t seen = 0
    cdef int64_t mismatches = 0
    cdef int64_t expected
    cdef int64_t idle_polls = 0
    cdef int64_t taken
    cdef int64_t i
    if ring is None:
        raise TypeError("ring must be an SpscRing, got None")
    if count < 0:
        raise ValueError(f"count must be zero or more, got {count}")
    if count > 0 and first > INT64_MAX - (count - 1):
        raise OverflowError(f"the last order id first + count - 1 must fit in int64, got {first} + {count} - 1")
    if batch < 1:
        raise ValueError(f"batch must be 1 or more, got {batch}")
    if batch > count:
        batch = count if count > 0 else 1
    if posix_memalign(&memory, CACHE_LINE_BYTES, <size_t>batch * sizeof(Event)) != 0:
        raise MemoryError(f"cannot allocate a batch of {batch} events")
    buffer = <Event*>memory
    try:
        with nogil:
            while seen < count:
                taken = ring.drain_to(buffer, batch if batch < count - seen else count - seen)
                if taken == 0:
                    fg_idle(idle_polls)
                    idle_polls += 1
                    continue
                idle_polls = 0
                for i in range(taken):
                    expected = first + seen + i  # fits: first + count - 1 was checked above
                    if (
                        buffer[i].order_id != expected
                        or buffer[i].qty_lots != expected
                        or buffer[i].kind != e.EVENT_ACCEPTED
                    ):
                        mismatches += 1
                seen += taken
    finally:
        free(buffer)
    return mismatches
