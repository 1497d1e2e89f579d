"""The reject sentence a client reads in FIX Text(58), written in C without the GIL.

The order path on QuickFIX threads never holds the GIL, yet its rejects must read exactly as the
Python gateway's. `RejectDescriber.describe_c` writes, byte for byte, what
`fixgate.core.rejects.describe_reject` (the reference twin) returns, for every code and every state
of the book: the figures come straight from the book's C structs, the symbols from a C copy taken
when the describer is built.

Python's formatting, reproduced with the C library:

- ``_number``: ``f"{value:.10f}"`` and ``snprintf("%.10f")`` both print the exact binary value
  correctly rounded to ten places (CPython's dtoa and glibc alike, ties to even); then the same
  stripping of zeros and of the point, "0" for "-0", and "inf", "-inf", "nan" when not finite.
- ``round(x, n)``: CPython rounds the exact binary value to n places with dtoa and reads the digits
  back with strtod. Here ``snprintf("%.*f")`` then ``strtod``, both correctly rounded, give the
  same double; it keeps its binary noise, as in Python (123456789.123 rounded to 2 places prints
  as 123456789.1200000048).
- integers: Python's int arithmetic is exact and converts to float once, correctly rounded; the
  worst-case position is summed in 128 bits before that one conversion.
- where the reference raises (a limit that is off reads None, a reference price of 0 divides) and
  falls back to the code's plain text, the same conditions fall back here.

snprintf and strtod read the decimal point from the thread's LC_NUMERIC, Python's formatting never
does: `describe_c` switches the calling thread to the C locale for the call (``uselocale``), so a
process locale with a decimal comma cannot change a byte.
"""

from libc.math cimport fabs, isfinite, isinf, isnan, trunc
from libc.stdint cimport int32_t, int64_t
from libc.stdio cimport snprintf
from libc.stdlib cimport free, strtod
from libc.string cimport memcpy, strlen

from fixgate._fast cimport enums as e
from fixgate._fast.instruments cimport InstrumentSpec, Instruments, NO_COUNT_LIMIT, NO_LOT_LIMIT
from fixgate._fast.memory cimport alloc_prefaulted
from fixgate._fast.risk cimport Exposure

from fixgate._fast.codes import REJECT_TABLE

# The longest symbol the describer copies, and the longest sentence it writes (NUL excluded).
MAX_SYMBOL_BYTES = SYMBOL_CAPACITY - 1
MAX_SENTENCE_BYTES = SENTENCE_CAPACITY - 1

# -- C LIBRARY --------------------------------------------------------------------------------------

cdef extern from "<locale.h>" nogil:
    ctypedef void* locale_t
    int LC_ALL_MASK
    locale_t newlocale(int category_mask, const char* locale, locale_t base)
    locale_t uselocale(locale_t locale)

cdef extern from *:
    """
    #include <stdint.h>

    /* An int64 sum or difference as Python's ints compute it: exact, then one rounding to double. */
    static inline double fg_exact_sum(int64_t a, int64_t b) {
        return (double)((__int128)a + (__int128)b);
    }
    static inline double fg_exact_difference(int64_t a, int64_t b) {
        return (double)((__int128)a - (__int128)b);
    }
    """
    double exact_sum "fg_exact_sum"(int64_t a, int64_t b) noexcept nogil
    double exact_difference "fg_exact_difference"(int64_t a, int64_t b) noexcept nogil

cdef enum:
    NUMBER_CAPACITY = 352           # "%.10f" of -DBL_MAX is 321 characters
    INTEGER_CAPACITY = 24           # "%lld" of INT64_MIN is 20

# The C locale, made once at import and never freed: what every describe_c call formats in.
cdef locale_t _C_LOCALE = newlocale(LC_ALL_MASK, "C", <locale_t>NULL)
if _C_LOCALE == NULL:
    raise MemoryError("newlocale could not make the C locale for the reject describer")

# -- CODE TEXTS -------------------------------------------------------------------------------------

# The plain text of each code, from the one table in codes.pyx: UTF-8 bytes kept alive by
# _CODE_TEXT_BYTES, pointed to by _CODE_TEXTS (NULL: a number the table does not name).
_CODE_TEXT_BYTES = {}
cdef const char* _CODE_TEXTS[<int>e.CODE_COUNT]
cdef Py_ssize_t _CODE_TEXT_LENGTHS[<int>e.CODE_COUNT]


cdef int _load_code_texts() except -1:
    cdef bytes text
    for code, _, words in REJECT_TABLE:
        if not 0 <= code < e.CODE_COUNT:
            raise ValueError(f"reject code {code} is outside 0 .. {e.CODE_COUNT - 1}")
        text = words.encode("utf-8")
        _CODE_TEXT_BYTES[code] = text
        _CODE_TEXTS[code] = text
        _CODE_TEXT_LENGTHS[code] = len(text)
    return 0


_load_code_texts()

# -- SENTENCE ---------------------------------------------------------------------------------------

cdef inline void _bytes(Sentence* sentence, const char* text, Py_ssize_t count) noexcept nogil:
    # Append `count` bytes; what does not fit in `size` bytes is counted and dropped. Up to `size`
    # bytes are stored (not `size - 1`): `_finish` reads the first byte left out to cut whole
    # UTF-8 characters, then puts the NUL over it.
    cdef Py_ssize_t room = sentence.size - sentence.length
    if room > 0:
        memcpy(sentence.out + sentence.length, text, <size_t>(count if count < room else room))
    sentence.length += count


cdef inline void _text(Sentence* sentence, const char* text) noexcept nogil:
    _bytes(sentence, text, <Py_ssize_t>strlen(text))


cdef void _number(Sentence* sentence, double value) noexcept nogil:
    # rejects._number: f"{value:.10f}".rstrip("0").rstrip("."), "" and "-0" as "0"; str(value)
    # when not finite.
    cdef char digits[NUMBER_CAPACITY]
    cdef Py_ssize_t count
    if isnan(value):
        _text(sentence, "nan")
        return
    if isinf(value):
        if value > 0.0:
            _text(sentence, "inf")
        else:
            _text(sentence, "-inf")
        return
    count = snprintf(digits, NUMBER_CAPACITY, "%.10f", value)
    while count > 0 and digits[count - 1] == c'0':
        count -= 1
    if count > 0 and digits[count - 1] == c'.':
        count -= 1
    if count == 0 or (count == 2 and digits[0] == c'-' and digits[1] == c'0'):
        _text(sentence, "0")
    else:
        _bytes(sentence, digits, count)


cdef double _rounded(double value, int places) noexcept nogil:
    # round(value, places) for a float: the correctly rounded decimal, read back as a double;
    # nan and the infinities round to themselves.
    cdef char digits[NUMBER_CAPACITY]
    if not isfinite(value):
        return value
    snprintf(digits, NUMBER_CAPACITY, "%.*f", places, value)
    return strtod(digits, NULL)


cdef void _percent(Sentence* sentence, double fraction) noexcept nogil:
    # rejects._percent: _number(round(fraction * 100.0, 6)) + "%".
    _number(sentence, _rounded(fraction * 100.0, 6))
    _text(sentence, "%")


cdef void _integer(Sentence* sentence, int64_t value) noexcept nogil:
    cdef char digits[INTEGER_CAPACITY]
    cdef int count = snprintf(digits, INTEGER_CAPACITY, "%lld", <long long>value)
    _bytes(sentence, digits, count)


cdef Py_ssize_t _finish(Sentence* sentence) noexcept nogil:
    # NUL-terminate; return the bytes before the NUL. A sentence that does not fit is cut before the
    # first byte left out, moved back while that byte continues a UTF-8 character.
    cdef Py_ssize_t end = sentence.length
    if sentence.size <= 0:
        return 0
    if end >= sentence.size:
        end = sentence.size - 1
        while end > 0 and (<unsigned char>sentence.out[end] & 0xC0) == 0x80:
            end -= 1
    sentence.out[end] = 0
    return end


cdef class RejectDescriber:
    """The reject sentences of one risk book, written in C and callable without the GIL.

    `describe_c` is the entry point for the native order path; `describe` and `describe_into` call
    it for Python. Call either right after the check, before the book moves, so that the figures are
    the ones the check saw; `fixgate.core.rejects.describe_reject` is the reference twin.

    Parameters
    ----------
    book : RiskBook
        The book whose figures the sentences quote. Its symbols are copied now: build the describer
        after the last instrument is added (an instrument added later reads as unknown).

    Raises
    ------
    ValueError
        When a symbol is longer than `MAX_SYMBOL_BYTES` in UTF-8.
    """

    # -- WIRING -------------------------------------------------------------------------------------

    def __cinit__(self, RiskBook book not None):
        cdef Instruments instruments = book.instruments
        cdef int32_t count = instruments.count
        cdef int32_t index
        cdef bytes text
        cdef Py_ssize_t length
        self.symbols = <SymbolText*>alloc_prefaulted(count if count > 0 else 1, sizeof(SymbolText))
        if self.symbols == NULL:
            raise MemoryError()
        for index in range(count):
            symbol = instruments.symbol_of(index)
            text = symbol.encode("utf-8")
            length = len(text)
            if length >= SYMBOL_CAPACITY:
                raise ValueError(
                    f"instrument {symbol!r}: the symbol is {length} bytes in UTF-8, the reject "
                    f"describer holds symbols of at most {MAX_SYMBOL_BYTES} bytes")
            memcpy(self.symbols[index].text, <const char*>text, <size_t>length)
            self.symbols[index].text[length] = 0
            self.symbols[index].length = length
        self.book = book
        self.symbol_count = count

    def __dealloc__(self):
        free(self.symbols)

    # -- SENTENCES ----------------------------------------------------------------------------------

    cdef Py_ssize_t describe_c(self, int code, int32_t instrument_id, int side, int ord_type, double qty,
                               double price, char* out, Py_ssize_t size) noexcept nogil:
        # describe_reject: the detailed sentence when the code has one and the instrument is known
        # (and copied), else the code's plain text, with ": SYMBOL" for UNKNOWN_INSTRUMENT and
        # INSTRUMENT_HALTED about a known instrument. KILL_SWITCH is always the plain text.
        cdef Sentence sentence
        cdef bint known = (self.book.instruments.contains(instrument_id)
                           and instrument_id < self.symbol_count)
        cdef locale_t caller_locale = uselocale(_C_LOCALE)
        sentence.out = out
        sentence.size = size
        sentence.length = 0
        if not (known and self._detail(&sentence, code, instrument_id, side, ord_type, qty, price)):
            sentence.length = 0
            if 0 <= code < e.CODE_COUNT and _CODE_TEXTS[code] != NULL:
                _bytes(&sentence, _CODE_TEXTS[code], _CODE_TEXT_LENGTHS[code])
            else:
                _text(&sentence, "unknown reject code ")
                _integer(&sentence, code)
            if known and (code == e.UNKNOWN_INSTRUMENT or code == e.INSTRUMENT_HALTED):
                _text(&sentence, ": ")
                self._symbol(&sentence, instrument_id)
        if caller_locale != NULL:
            uselocale(caller_locale)
        return _finish(&sentence)

    cdef bint _detail(self, Sentence* sentence, int code, int32_t instrument_id, int side, int ord_type,
                      double qty, double price) noexcept nogil:
        # One branch per entry of rejects._DETAIL, in its order. Return False where the reference
        # has no detail or its detail raises (the caller then writes the plain text over whatever
        # was appended).
        cdef InstrumentSpec* spec = &self.book.instruments.specs[instrument_id]
        cdef Exposure* exposure = &self.book.exposures[instrument_id]
        cdef double lot = spec.lot_size
        cdef double notional, ref, collar, gross, equity, factor
        if ord_type == e.MARKET:
            notional = qty * self.book.quotes.reference_price_c(instrument_id)
        else:
            notional = qty * price

        if code == e.MAX_ORDER_QUANTITY:
            if spec.max_order_lots == NO_LOT_LIMIT:
                return False            # None * lot_size: TypeError
            _text(sentence, "quantity ")
            _number(sentence, qty)
            _text(sentence, " exceeds max order qty ")
            _number(sentence, <double>spec.max_order_lots * lot)
            _text(sentence, " for ")
            self._symbol(sentence, instrument_id)

        elif code == e.WARNING_MAX_ORDER_QUANTITY:
            if spec.max_order_lots == NO_LOT_LIMIT:
                return False            # None * factor: TypeError
            factor = self.book.warning_order_qty_factor
            _text(sentence, "quantity ")
            _number(sentence, qty)
            _text(sentence, " exceeds max order qty ")
            # int(max_order_lots * factor) * lot_size: the int of a double converts back exactly
            _number(sentence, trunc(<double>spec.max_order_lots * factor) * lot)
            _text(sentence, " in WARNING state (")
            _number(sentence, <double>spec.max_order_lots * lot)
            _text(sentence, " x ")
            _number(sentence, factor)
            _text(sentence, ") for ")
            self._symbol(sentence, instrument_id)

        elif code == e.MAX_ORDER_NOTIONAL:
            _text(sentence, "notional ")
            _number(sentence, _rounded(notional, 2))
            _text(sentence, " exceeds max order notional ")
            _number(sentence, spec.max_order_notional)
            _text(sentence, " for ")
            self._symbol(sentence, instrument_id)

        elif code == e.MAX_ACCOUNT_ORDER_NOTIONAL:
            _text(sentence, "notional ")
            _number(sentence, _rounded(notional, 2))
            _text(sentence, " exceeds the account max order notional ")
            _number(sentence, self.book.max_order_notional)

        elif code == e.ADV_PARTICIPATION:
            _text(sentence, "quantity ")
            _number(sentence, qty)
            _text(sentence, " exceeds ")
            _number(sentence, spec.adv_limit_qty)
            _text(sentence, ", the allowed share of average daily volume ")
            _number(sentence, spec.adv)
            _text(sentence, " for ")
            self._symbol(sentence, instrument_id)

        elif code == e.PRICE_COLLAR or code == e.WARNING_PRICE_COLLAR:
            ref = self.book.quotes.reference_price_c(instrument_id)
            if ref == 0.0:
                return False            # |price - ref| / ref: ZeroDivisionError
            if code == e.WARNING_PRICE_COLLAR:
                collar = spec.price_collar * self.book.warning_collar_factor
            else:
                collar = spec.price_collar * 1.0
            _text(sentence, "price ")
            _number(sentence, price)
            _text(sentence, " is ")
            _percent(sentence, fabs(price - ref) / ref)
            _text(sentence, " from reference ")
            _number(sentence, ref)
            _text(sentence, ", outside the ")
            _percent(sentence, collar)
            if code == e.WARNING_PRICE_COLLAR:
                _text(sentence, " collar in WARNING state for ")
            else:
                _text(sentence, " collar for ")
            self._symbol(sentence, instrument_id)

        elif code == e.POSITION_LIMIT:
            if spec.max_position_lots == NO_LOT_LIMIT:
                return False            # None * lot_size: TypeError
            if side == e.BUY:
                _text(sentence, "buy ")
                _number(sentence, qty)
                _text(sentence, " would take the worst-case position to ")
                _number(sentence,
                        exact_sum(exposure.position_lots, exposure.open_buy_lots) * lot + qty)
                _text(sentence, " (position ")
                _number(sentence, <double>exposure.position_lots * lot)
                _text(sentence, " + open buys ")
                _number(sentence, <double>exposure.open_buy_lots * lot)
                _text(sentence, "), above the limit ")
            else:
                _text(sentence, "sell ")
                _number(sentence, qty)
                _text(sentence, " would take the worst-case position to ")
                _number(sentence,
                        exact_difference(exposure.position_lots, exposure.open_sell_lots) * lot - qty)
                _text(sentence, " (position ")
                _number(sentence, <double>exposure.position_lots * lot)
                _text(sentence, " - open sells ")
                _number(sentence, <double>exposure.open_sell_lots * lot)
                _text(sentence, "), below the limit -")
            _number(sentence, <double>spec.max_position_lots * lot)
            _text(sentence, " for ")
            self._symbol(sentence, instrument_id)

        elif code == e.GROSS_EXPOSURE:
            _text(sentence, "gross exposure ")
            _number(sentence, _rounded(self.book.gross_exposure_c(), 2))
            _text(sentence, " + order ")
            _number(sentence, _rounded(notional, 2))
            _text(sentence, " exceeds max gross exposure ")
            _number(sentence, self.book.max_gross_exposure)

        elif code == e.LEVERAGE:
            equity = self.book.equity
            if not equity > 0.0:
                _text(sentence, "equity is ")
                _number(sentence, equity)
                _text(sentence, ": no leverage allowed (max leverage ")
                _number(sentence, self.book.max_leverage)
                _text(sentence, ")")
            else:
                gross = self.book.gross_exposure_c() + notional
                _text(sentence, "leverage ")
                _number(sentence, _rounded(gross / equity, 4))
                _text(sentence, " (gross ")
                _number(sentence, _rounded(gross, 2))
                _text(sentence, " / equity ")
                _number(sentence, equity)
                _text(sentence, ") exceeds max leverage ")
                _number(sentence, self.book.max_leverage)

        elif code == e.DAILY_ORDER_COUNT:
            _text(sentence, "daily order count cap ")
            _integer(sentence, self.book.max_daily_orders)
            _text(sentence, " reached")

        elif code == e.DAILY_NOTIONAL:
            _text(sentence, "daily notional ")
            _number(sentence, _rounded(self.book.daily_notional, 2))
            _text(sentence, " + order ")
            _number(sentence, _rounded(notional, 2))
            _text(sentence, " exceeds the daily cap ")
            _number(sentence, self.book.max_daily_notional)

        elif code == e.MAX_OPEN_ORDERS:
            if spec.max_open_orders == NO_COUNT_LIMIT:
                _text(sentence, "None")  # the spec reads None, and an f-string prints it
            else:
                _integer(sentence, spec.max_open_orders)
            _text(sentence, " open orders already for ")
            self._symbol(sentence, instrument_id)
            _text(sentence, ", the maximum")

        elif code == e.STALE_MARKET_DATA:
            _text(sentence, "no valid quote for ")
            self._symbol(sentence, instrument_id)
            _text(sentence, " within ")
            _number(sentence, <double>spec.stale_after_ns / 1e6)
            _text(sentence, " ms")

        elif code == e.PRICE_OFF_TICK:
            _text(sentence, "price ")
            _number(sentence, price)
            _text(sentence, " is not a multiple of the tick ")
            _number(sentence, spec.tick_size)
            _text(sentence, " for ")
            self._symbol(sentence, instrument_id)

        elif code == e.QUANTITY_NOT_LOT_MULTIPLE:
            _text(sentence, "quantity ")
            _number(sentence, qty)
            _text(sentence, " is not a multiple of the lot ")
            _number(sentence, lot)
            _text(sentence, " for ")
            self._symbol(sentence, instrument_id)

        elif code == e.CIRCUIT_BREAKER:
            _text(sentence, "circuit breaker active: only orders that reduce the position in ")
            self._symbol(sentence, instrument_id)
            _text(sentence, " are accepted")

        elif code == e.REDUCE_ONLY:
            _text(sentence, "the gateway is reduce-only: only orders that reduce the position in ")
            self._symbol(sentence, instrument_id)
            _text(sentence, " are accepted")

        else:
            return False
        return True

    cdef void _symbol(self, Sentence* sentence, int32_t instrument_id) noexcept nogil:
        _bytes(sentence, self.symbols[instrument_id].text, self.symbols[instrument_id].length)

    def describe(self, int code, *, int32_t instrument_id, int side, int ord_type, double qty, double price):
        """Return the sentence for `code` about the order described, as `describe_reject` words it.

        Parameters
        ----------
        code : int
            The `RejectCode` the check returned.
        instrument_id, side, ord_type, qty, price
            The order as the check saw it (FIX Side(54) and OrdType(40) values).

        Returns
        -------
        str
            The sentence for FIX Text(58).
        """
        cdef char out[SENTENCE_CAPACITY]
        cdef Py_ssize_t length
        with nogil:
            length = self.describe_c(code, instrument_id, side, ord_type, qty, price, out,
                                     SENTENCE_CAPACITY)
        return out[:length].decode("utf-8")

    def describe_into(self, unsigned char[::1] out not None, int code, *, int32_t instrument_id, int side,
                      int ord_type, double qty, double price):
        """Write the sentence NUL-terminated into `out`, as `describe_c` does, and return its length.

        Parameters
        ----------
        out : writable bytes-like (a bytearray, a uint8 array)
            At most ``len(out)`` bytes are written, NUL included; a sentence that does not fit is
            cut at a UTF-8 character boundary.
        code, instrument_id, side, ord_type, qty, price
            As for `describe`.

        Returns
        -------
        int
            The bytes written before the NUL: below ``len(out)``, 0 when `out` is empty.
        """
        cdef Py_ssize_t size = out.shape[0]
        cdef char* buffer = NULL
        cdef Py_ssize_t length
        if size > 0:
            buffer = <char*>&out[0]
        with nogil:
            length = self.describe_c(code, instrument_id, side, ord_type, qty, price, buffer, size)
        return length
