# The reject sentence of FIX Text(58), written in C without the GIL. The reference twin, and the
# definition of every byte, is `fixgate.core.rejects.describe_reject`.

from libc.stdint cimport int32_t

from fixgate._fast.risk cimport RiskBook

# -- SYMBOLS ----------------------------------------------------------------------------------------

# The instrument table keeps its symbols in a Python list; the describer keeps a C copy, one
# fixed-size buffer per instrument id, so that a thread without the GIL can name the instrument.
cdef enum:
    SYMBOL_CAPACITY = 64            # bytes per buffer, NUL included: symbols of up to 63 UTF-8 bytes

ctypedef struct SymbolText:
    char text[SYMBOL_CAPACITY]      # the symbol in UTF-8, NUL-terminated
    Py_ssize_t length               # bytes before the NUL

# -- SENTENCE ---------------------------------------------------------------------------------------

# A buffer of SENTENCE_CAPACITY bytes always holds a whole sentence: five figures of at most 321
# characters each (a double printed to ten places), the longest template and a symbol.
cdef enum:
    SENTENCE_CAPACITY = 2048

# The sentence being written into a caller's buffer. `length` counts every byte appended, also the
# ones that did not fit; at most `size` bytes of `out` are ever written.
ctypedef struct Sentence:
    char* out
    Py_ssize_t size
    Py_ssize_t length


cdef class RejectDescriber:
    # -- WIRING -------------------------------------------------------------------------------------
    cdef readonly RiskBook book

    # -- SYMBOLS ------------------------------------------------------------------------------------
    # Written only by __cinit__ (with the GIL, before the describer is handed to any other thread);
    # read by describe_c on any thread.
    cdef SymbolText* symbols
    cdef readonly int32_t symbol_count  # instruments 0 .. symbol_count - 1 have their symbol copied

    # -- SENTENCES ----------------------------------------------------------------------------------
    # Write the sentence for `code` about the order described, NUL-terminated, into `out` (at most
    # `size` bytes, NUL included; a sentence that does not fit is cut at a UTF-8 character
    # boundary). Return the bytes written before the NUL: always below `size`, 0 when `size` <= 0.
    cdef Py_ssize_t describe_c(self, int code, int32_t instrument_id, int side, int ord_type, double qty,
                               double price, char* out, Py_ssize_t size) noexcept nogil
    cdef bint _detail(self, Sentence* sentence, int code, int32_t instrument_id, int side, int ord_type,
                      double qty, double price) noexcept nogil
    cdef void _symbol(self, Sentence* sentence, int32_t instrument_id) noexcept nogil
