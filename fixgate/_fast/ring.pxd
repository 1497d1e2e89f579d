# The single-producer single-consumer ring that carries order events from a QuickFIX thread to the
# state thread. Disruptor vocabulary: a power-of-two `capacity`, unbounded int64 sequences `head`
# (next to read) and `tail` (next to write), slot index = sequence & `mask`. Agrona's producer-local
# `head_cache` (and its consumer twin `tail_cache`) keep each side off the other's cache line until
# the cached value says full (or empty).

from libc.stdint cimport int64_t, uint8_t, uint16_t

# -- SLOT -------------------------------------------------------------------------------------------

# One slot: exactly 64 bytes, one cache line (checked at compile time in ring.pyx). The field order
# is the order of EVENT_DTYPE; widest fields first, so there is no padding.
ctypedef struct Event:
    int64_t recv_ns        # when the producing thread received the message
    int64_t sent_ns        # when it handed its answer on (0 if none)
    int64_t order_id
    int64_t qty_lots       # order quantity, or last fill quantity for EVENT_FILLED
    int64_t cum_lots
    int64_t leaves_lots
    double price           # limit price or fill price
    uint16_t instrument_id
    uint16_t session_id
    uint8_t kind           # enums.EventKind
    uint8_t side           # FIX side value
    uint8_t status         # FIX OrdStatus as a small number, set by the producer
    uint8_t reject_code    # enums.RejectCode

# -- SEQUENCES --------------------------------------------------------------------------------------

cdef enum:
    CACHE_LINE_BYTES = 64

# The hot fields, allocated on their own 64-byte boundary. A full line of padding before and after
# keeps neighbouring heap objects off the two lines in use; the producer's fields and the
# consumer's fields sit on different lines, so neither side's writes invalidate the other's reads
# except when a sequence is published.
ctypedef struct RingSequences:
    char pad_before[CACHE_LINE_BYTES]
    # written by the producer only
    int64_t tail           # next sequence to write; published with RELEASE
    int64_t head_cache     # the producer's last ACQUIRE read of head
    int64_t full_count     # refused pushes; read by any thread with a relaxed load
    char pad_between[CACHE_LINE_BYTES - 3 * 8]
    # written by the consumer only
    int64_t head           # next sequence to read; published with RELEASE
    int64_t tail_cache     # the consumer's last ACQUIRE read of tail
    char pad_after[2 * CACHE_LINE_BYTES - 2 * 8]  # the rest of the consumer's line, then one line


cdef class SpscRing:
    # -- LAYOUT -------------------------------------------------------------------------------------
    cdef readonly int64_t capacity
    cdef readonly int64_t mask
    cdef Event* slots
    cdef RingSequences* sequences

    # -- PRODUCER -----------------------------------------------------------------------------------
    cdef bint push(self, const Event* event) noexcept nogil

    # -- CONSUMER -----------------------------------------------------------------------------------
    cdef bint pop(self, Event* out) noexcept nogil
    cdef int64_t drain_to(self, Event* out, int64_t limit) noexcept nogil

    # -- SNAPSHOTS (any thread) ---------------------------------------------------------------------
    cdef int64_t size_snapshot(self) noexcept nogil


# -- STRESS AND THROUGHPUT --------------------------------------------------------------------------

cpdef int64_t produce_sequence(SpscRing ring, int64_t first, int64_t count) except -1
cpdef int64_t consume_sequence(SpscRing ring, int64_t first, int64_t count, int64_t batch=*) except -1
