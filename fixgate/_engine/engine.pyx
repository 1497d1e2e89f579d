# distutils: language = c++
"""The native order path, driven from Python: build the engine from a plain configuration, start and
stop it, restore it from the journal, give it commands, drain its events, read its counters.

Every call that can wait (start, stop, commands that take the engine lock, waiting for events)
releases the GIL, so an engine thread never waits for Python and Python never holds the GIL while it
waits for the engine. The hot path's entry points are handed to the C++ engine as C function
pointers (`fg_fast_api`) that call fixgate._fast without the GIL.
"""

import numpy as np

from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t
from libc.math cimport INFINITY, isfinite
from libc.string cimport memcpy
from libcpp cimport bool as cbool
from libcpp.string cimport string
from libcpp.vector cimport vector

from fixgate._fast cimport enums as e
from fixgate._fast.describe cimport RejectDescriber
from fixgate._fast.risk cimport Exposure, RiskBook

from fixgate._fast.codes import REJECT_TABLE
from fixgate._fast.risk import FIRM_BUDGETS
from fixgate.core.events import EVENT_DTYPE

# -- THE C++ ENGINE ---------------------------------------------------------------------------------

cdef extern from "event.h":
    ctypedef struct fg_event:
        int64_t recv_ns
        int64_t sent_ns
        int64_t order_id
        int64_t qty_lots
        int64_t price_ticks
        int64_t cum_lots
        int64_t aux
        int64_t seq
        int32_t instrument_id
        int16_t session_id
        int16_t venue_id
        uint8_t kind
        uint8_t side
        uint8_t ord_type
        uint8_t tif
        uint8_t status
        uint8_t code
        uint8_t flags
        uint8_t reserved
        char text_a[64]
        char text_b[64]
        char text_c[48]
    int FG_EVENT_BYTES

cdef extern from "fast_api.h":
    ctypedef struct fg_fast_api:
        void* book
        void* describer
        int (*check_new_order)(void*, int32_t, int32_t, int, int, int64_t, int64_t, int64_t, int64_t*) noexcept nogil
        int (*check_replace)(void*, int64_t, int64_t, int64_t, int64_t) noexcept nogil
        int (*on_acked)(void*, int64_t) noexcept nogil
        int (*on_filled)(void*, int64_t, int64_t, int64_t) noexcept nogil
        int (*on_canceled)(void*, int64_t) noexcept nogil
        int (*on_replaced)(void*, int64_t) noexcept nogil
        int (*on_replace_rejected)(void*, int64_t) noexcept nogil
        int (*on_loose_fill)(void*, int32_t, int, int64_t, int64_t) noexcept nogil
        int (*on_trade_corrected)(void*, int64_t, int32_t, int, int64_t, int64_t) noexcept nogil
        int (*on_restated)(void*, int64_t, int64_t) noexcept nogil
        int (*venue_conforms)(void*, int, int64_t) noexcept nogil
        void (*venue_take)(void*, int, int64_t) noexcept nogil
        int (*on_quote)(void*, int32_t, double, double, int64_t, int64_t) noexcept nogil
        int (*on_trade)(void*, int32_t, double, int64_t, int64_t) noexcept nogil
        int (*risk_state)(void*) noexcept nogil
        int64_t (*live_orders)(void*) noexcept nogil
        int (*firm_budget)(void*, int, int32_t, int, double, double*, double*) noexcept nogil
        Py_ssize_t (*describe)(void*, int, int32_t, int, int, double, double, char*, Py_ssize_t) noexcept nogil

cdef extern from "engine.h" namespace "fixgate" nogil:
    cdef cppclass Step:
        int64_t mantissa
        int scale

    cdef cppclass InstrumentConfig:
        string symbol
        int venue
        int quote_backup
        int64_t stale_ns
        Step lot
        Step tick

    cdef cppclass ClientConfig:
        string name
        string comp_id
        string username
        string password
        cbool all_instruments
        vector[int] instruments
        cbool cancel_on_disconnect
        vector[string] source_addresses
        string certificate_name

    cdef cppclass VenueConfig:
        string name
        string comp_id
        string username
        string password
        cbool market_data

    cdef cppclass EngineConfig:
        string comp_id
        string token
        string acceptor_settings
        cbool acceptor_tls
        vector[string] initiator_settings
        vector[int] initiator_tls
        string acceptor_address
        int acceptor_port
        string fixlog_dir
        int64_t fixlog_max_bytes
        string store_dir
        cbool mapped_store
        string intent_log
        vector[InstrumentConfig] instruments
        vector[ClientConfig] clients
        vector[VenueConfig] venues
        vector[string] reject_names
        int64_t ring_capacity
        int64_t max_queued_bytes
        int64_t stall_limit_ms
        int64_t retention_orders
        int64_t reconcile_timeout_ms

    cdef cppclass Request:
        uint8_t kind
        int64_t number
        string client_cl_ord_id
        string orig_client_cl_ord_id
        int64_t qty_lots
        int64_t price_ticks
        uint8_t reason
        string text

    cdef cppclass Order:
        int64_t id
        int session
        int instrument
        int venue
        char side
        char ord_type
        char tif
        int64_t qty_lots
        int64_t price_ticks
        int64_t cum_lots
        int64_t cost
        char status
        cbool acked
        cbool in_book
        string cl_ord_id
        vector[string] replaced_ids
        string account
        string venue_cl_ord_id
        string venue_order_id
        int64_t next_request
        Request cancel
        Request replace

    cdef cppclass RestoredOrder:
        Order order
        vector[string] client_ids

    cdef cppclass Engine:
        Engine(const EngineConfig&, const fg_fast_api&) except +
        void start() except +
        void stop(int64_t) except +
        void set_accepting(cbool, const string&)
        void restore_order(const RestoredOrder&) except +
        void restore_used_cl_ord_id(int, const string&) except +
        void restore_exec_id(const string&) except +
        void restore_next_exec_id(int64_t)
        void restore_next_event_seq(int64_t)
        int64_t cancel_all(int, uint8_t, const string&) except +
        void log_out_venues(const string&) except +
        void log_on_venues() except +
        int64_t reconcile(int) except +
        void set_risk_reason(const string&) except +
        void set_reduce_only_reason(const string&) except +
        void set_client_kill_reason(int, const string&) except +
        int64_t set_account_killed(const string&, cbool, const string&) except +
        int64_t rotate_intents(const string&) except +
        void inject_error_before_send(int64_t)
        void inject_error_after_send(int64_t)
        void inject_stall(int64_t)
        void forget_day() except +
        int64_t drain(fg_event*, int64_t) except +
        void wait_events(int64_t) except +
        void wake_consumer()
        int read_counters(int64_t*, int)
        int64_t read_stage(int, int64_t*, int)
        int64_t ring_size()
        int64_t ring_overflow_size()
        int64_t ring_overflow_count()
        int64_t ring_capacity()
        cbool client_logged_on(int)
        cbool venue_logged_on(int)
        string venue_connection(int) except +
        int quote_source(int) except +
        void set_venue_closed_reason(int, const string&) except +
        int venue_state(int)
        string venue_state_reason(int) except +
        int64_t outbox_queued_bytes(cbool, int)
        int64_t outbox_slow_count(cbool, int)
        int64_t longest_callback_ns()
        int64_t service_age_ns()
        int64_t order_count() except +
        int64_t live_order_count() except +
        int firm_budget(int, int, int, double, double*, double*) except +
        void set_code_reason(int, const string&) except +
        string describe_order(int64_t) except +
        vector[int64_t] live_order_ids() except +
        int64_t bench_messages(int64_t, int, const string&, vector[int64_t]&) except +

    double bench_event_ring(int64_t, int64_t) except +

# -- EVENTS -----------------------------------------------------------------------------------------

# NumPy's view of fg_event (event.h) is fixgate.core.events.EVENT_DTYPE: the state thread drains into
# arrays of it, the journal and the intent log store its bytes. The two layouts must agree field by
# field; this module refuses to load otherwise.
cdef fg_event _probe
_C_OFFSETS = {
    "recv_ns": <char*>&_probe.recv_ns - <char*>&_probe, "sent_ns": <char*>&_probe.sent_ns - <char*>&_probe,
    "order_id": <char*>&_probe.order_id - <char*>&_probe, "qty_lots": <char*>&_probe.qty_lots - <char*>&_probe,
    "price_ticks": <char*>&_probe.price_ticks - <char*>&_probe, "cum_lots": <char*>&_probe.cum_lots - <char*>&_probe,
    "aux": <char*>&_probe.aux - <char*>&_probe, "seq": <char*>&_probe.seq - <char*>&_probe,
    "instrument_id": <char*>&_probe.instrument_id - <char*>&_probe,
    "session_id": <char*>&_probe.session_id - <char*>&_probe, "venue_id": <char*>&_probe.venue_id - <char*>&_probe,
    "kind": <char*>&_probe.kind - <char*>&_probe, "side": <char*>&_probe.side - <char*>&_probe,
    "ord_type": <char*>&_probe.ord_type - <char*>&_probe, "tif": <char*>&_probe.tif - <char*>&_probe,
    "status": <char*>&_probe.status - <char*>&_probe, "code": <char*>&_probe.code - <char*>&_probe,
    "flags": <char*>&_probe.flags - <char*>&_probe, "reserved": <char*>&_probe.reserved - <char*>&_probe,
    "text_a": <char*>&_probe.text_a - <char*>&_probe, "text_b": <char*>&_probe.text_b - <char*>&_probe,
    "text_c": <char*>&_probe.text_c - <char*>&_probe,
}
_NUMPY_OFFSETS = {name: EVENT_DTYPE.fields[name][1] for name in EVENT_DTYPE.names}
if _C_OFFSETS != _NUMPY_OFFSETS or EVENT_DTYPE.itemsize != sizeof(fg_event) or sizeof(fg_event) != FG_EVENT_BYTES:
    raise ImportError(f"fixgate.core.events.EVENT_DTYPE does not match fg_event in event.h: C {_C_OFFSETS}, "
                      f"NumPy {_NUMPY_OFFSETS}")

EVENT_BYTES = FG_EVENT_BYTES

COUNTER_NAMES = ("received", "accepted", "rejected", "fills", "cancels", "replaces", "duplicate_fills",
                 "reconciled", "unknown_venue_orders", "unknown_venue_reports", "callback_errors", "alarms",
                 "messages_in", "status_requests", "late_venue_reports")
STAGE_NAMES = ("decode", "checks", "journal", "encode_send", "internal", "relay")


def stage_bucket_bounds(bucket: int) -> tuple[int, int]:
    """Return the [low, high) nanoseconds of a stage histogram's bucket (8 per power of two)."""
    if bucket < 8:
        return bucket, bucket + 1
    msb = bucket // 8 + 2
    low = (8 + bucket % 8) << (msb - 3)
    return low, low + (1 << (msb - 3))

# -- THE HOT PATH, WITHOUT THE GIL ------------------------------------------------------------------

cdef int _check_new_order(void* book, int32_t session_id, int32_t instrument_id, int side, int ord_type,
                          int64_t qty_lots, int64_t price_ticks, int64_t now_ns, int64_t* order_id) noexcept nogil:
    return (<RiskBook>book).check_new_order_units_c(session_id, instrument_id, side, ord_type, qty_lots,
                                                    price_ticks, now_ns, order_id)

cdef int _check_replace(void* book, int64_t order_id, int64_t qty_lots, int64_t price_ticks,
                        int64_t now_ns) noexcept nogil:
    return (<RiskBook>book).check_replace_units_c(order_id, qty_lots, price_ticks, now_ns)

cdef int _on_acked(void* book, int64_t order_id) noexcept nogil:
    return (<RiskBook>book).on_acked_c(order_id)

cdef int _on_filled(void* book, int64_t order_id, int64_t qty_lots, int64_t price_ticks) noexcept nogil:
    return (<RiskBook>book).on_filled_units_c(order_id, qty_lots, price_ticks)

cdef int _on_canceled(void* book, int64_t order_id) noexcept nogil:
    return (<RiskBook>book).on_canceled_c(order_id)

cdef int _on_replaced(void* book, int64_t order_id) noexcept nogil:
    return (<RiskBook>book).on_replaced_c(order_id)

cdef int _on_replace_rejected(void* book, int64_t order_id) noexcept nogil:
    return (<RiskBook>book).on_replace_rejected_c(order_id)

cdef int _on_trade_corrected(void* book, int64_t order_id, int32_t instrument_id, int side, int64_t delta_lots,
                             int64_t price_ticks) noexcept nogil:
    return (<RiskBook>book).on_trade_corrected_units_c(order_id, instrument_id, side, delta_lots, price_ticks)

cdef int _on_restated(void* book, int64_t order_id, int64_t qty_lots) noexcept nogil:
    return (<RiskBook>book).on_restated_units_c(order_id, qty_lots)

cdef int _venue_conforms(void* book, int venue, int64_t now_ns) noexcept nogil:
    return (<RiskBook>book).throttle.venue_conforms_c(venue, now_ns)

cdef void _venue_take(void* book, int venue, int64_t now_ns) noexcept nogil:
    (<RiskBook>book).throttle.venue_take_c(venue, now_ns)

cdef int _on_loose_fill(void* book, int32_t instrument_id, int side, int64_t qty_lots,
                        int64_t price_ticks) noexcept nogil:
    # A fill for an order the book no longer holds (an overfill after it was filled or cancelled):
    # the position is what the venue says it is.
    cdef Exposure* exposure
    if not (<RiskBook>book).instruments.contains(instrument_id) or qty_lots <= 0:
        return e.UNKNOWN_ORDER
    exposure = &(<RiskBook>book).exposures[instrument_id]
    if side == e.BUY:
        exposure.position_lots = exposure.position_lots + qty_lots
    else:
        exposure.position_lots = exposure.position_lots - qty_lots
    if price_ticks > 0:
        exposure.last_fill_price = price_ticks * (<RiskBook>book).instruments.specs[instrument_id].tick_size
    return e.OVERFILL

cdef int _on_quote(void* book, int32_t instrument_id, double bid, double ask, int64_t venue_ns,
                   int64_t now_ns) noexcept nogil:
    if not (<RiskBook>book).instruments.contains(instrument_id):
        return e.UNKNOWN_INSTRUMENT
    return (<RiskBook>book).quotes.on_quote_c(instrument_id, bid, ask, venue_ns, now_ns)

cdef int _on_trade(void* book, int32_t instrument_id, double price, int64_t venue_ns, int64_t now_ns) noexcept nogil:
    if not (<RiskBook>book).instruments.contains(instrument_id):
        return e.UNKNOWN_INSTRUMENT
    return (<RiskBook>book).quotes.on_trade_c(instrument_id, price, venue_ns, now_ns)

cdef int _risk_state(void* book) noexcept nogil:
    return (<RiskBook>book).risk_state

cdef int64_t _live_orders(void* book) noexcept nogil:
    return (<RiskBook>book).live_orders

cdef int _firm_budget(void* book, int kind, int32_t session, int op, double value, double* budget,
                      double* usage) noexcept nogil:
    return (<RiskBook>book).firm_budget_c(kind, session, op, value, budget, usage)

cdef Py_ssize_t _describe(void* describer, int code, int32_t instrument_id, int side, int ord_type, double qty,
                          double price, char* out, Py_ssize_t size) noexcept nogil:
    return (<RejectDescriber>describer).describe_c(code, instrument_id, side, ord_type, qty, price, out, size)


cdef Step _step(object pair) except *:
    cdef Step step
    step.mantissa = int(pair[0])
    step.scale = int(pair[1])
    if step.mantissa <= 0 or step.scale < 0 or step.scale > 18:
        raise ValueError(f"a lot or tick step must be (mantissa > 0, 0 <= scale <= 18), got {pair!r}")
    return step


cdef string _bytes(object text) except *:
    return text.encode() if isinstance(text, str) else bytes(text)


cdef extern from "listen.h" namespace "fixgate":
    string c_listening_address "fixgate::listening_address"(int) except +


def listening_address(int port) -> str:
    """The local address of this process's listening TCP socket on `port` ("" when there is none)."""
    return c_listening_address(port).decode()


def decimal_step(value) -> tuple[int, int]:
    """Return a positive Decimal lot or tick size as (mantissa, scale): Decimal('0.05') -> (5, 2)."""
    sign, digits, exponent = value.normalize().as_tuple()
    if sign or not digits or value <= 0:
        raise ValueError(f"a step must be positive, got {value}")
    mantissa = int("".join(map(str, digits)))
    if exponent > 0:
        return mantissa * 10 ** exponent, 0
    return mantissa, -exponent


cdef class NativeEngine:
    """The gateway's sessions and order path in C++ over QuickFIX C++.

    Parameters
    ----------
    config : dict
        ``comp_id``, ``token``, ``acceptor_settings`` (a QuickFIX settings file, "" for none) and
        ``acceptor_tls``, ``initiator_settings`` (a list of (settings file, speaks TLS), one initiator
        each; or one file, "" for none), ``acceptor_address`` and ``acceptor_port``, ``fixlog_dir`` ("" for no message logs) and ``fixlog_max_bytes`` (the size at
        which a log rotates; 0: daily only), ``store_dir`` and ``store``
        ("mapped" or "file": the sessions' MessageStore), ``intent_log``, ``instruments``
        (dicts: ``symbol``, ``venue`` index, ``lot`` and ``tick`` as (mantissa, scale)), ``clients``
        (dicts: ``name``, ``comp_id``, ``username``, ``password``, ``instruments`` (list of ids, or None
        for all), ``cancel_on_disconnect``, ``source_addresses``), ``venues`` (dicts: ``name``, ``comp_id``, ``username``,
        ``password``, ``market_data``), and optionally ``ring_capacity``, ``max_queued_bytes``,
        ``stall_limit_ms``, ``retention_orders``, ``reconcile_timeout_ms``.
    book : fixgate._fast.risk.RiskBook
        The risk book the engine decides with (its only writer from now on).
    describer : fixgate._fast.describe.RejectDescriber
        Formats the reject sentences.
    """

    cdef Engine* engine
    cdef readonly RiskBook book
    cdef readonly RejectDescriber describer
    cdef readonly int64_t ring_capacity_slots
    cdef readonly bint started
    cdef readonly int client_count
    cdef readonly int venue_count

    def __cinit__(self, dict config, RiskBook book not None, RejectDescriber describer not None):
        cdef EngineConfig native
        cdef InstrumentConfig instrument
        cdef ClientConfig client
        cdef VenueConfig venue
        cdef fg_fast_api fast
        cdef int flag
        self.book = book
        self.describer = describer
        native.comp_id = _bytes(config["comp_id"])
        native.token = _bytes(config["token"])
        native.acceptor_settings = _bytes(config.get("acceptor_settings", ""))
        native.acceptor_address = _bytes(config.get("acceptor_address", ""))
        native.acceptor_port = config.get("acceptor_port", 0)
        native.acceptor_tls = config.get("acceptor_tls", False)
        initiators = config.get("initiator_settings", "")
        if isinstance(initiators, str):
            initiators = [(initiators, False)] if initiators else []
        native.initiator_settings.clear()
        native.initiator_tls.clear()
        for path, tls in initiators:
            native.initiator_settings.push_back(_bytes(path))
            flag = 1 if tls else 0
            native.initiator_tls.push_back(flag)
        native.fixlog_dir = _bytes(config.get("fixlog_dir", ""))
        native.fixlog_max_bytes = int(config.get("fixlog_max_bytes", 0))
        native.store_dir = _bytes(config["store_dir"])
        native.mapped_store = config.get("store", "mapped") == "mapped"
        native.intent_log = _bytes(config["intent_log"])
        for item in config["instruments"]:
            instrument.symbol = _bytes(item["symbol"])
            instrument.venue = item["venue"]
            instrument.quote_backup = item.get("quote_backup", -1)
            instrument.stale_ns = item.get("stale_ns", 2_000_000_000)
            instrument.lot = _step(item["lot"])
            instrument.tick = _step(item["tick"])
            native.instruments.push_back(instrument)
        for item in config["clients"]:
            client.name = _bytes(item["name"])
            client.comp_id = _bytes(item["comp_id"])
            client.username = _bytes(item.get("username", ""))
            client.password = _bytes(item.get("password", ""))
            permitted = item.get("instruments")
            client.all_instruments = permitted is None
            client.instruments.clear()
            for instrument_id in permitted or ():
                client.instruments.push_back(instrument_id)
            client.cancel_on_disconnect = item.get("cancel_on_disconnect", True)
            client.certificate_name = _bytes(item.get("certificate_name", ""))
            client.source_addresses.clear()
            for address in item.get("source_addresses", ()):
                client.source_addresses.push_back(_bytes(address))
            native.clients.push_back(client)
        for item in config["venues"]:
            venue.name = _bytes(item["name"])
            venue.comp_id = _bytes(item["comp_id"])
            venue.username = _bytes(item.get("username", ""))
            venue.password = _bytes(item.get("password", ""))
            venue.market_data = item.get("market_data", True)
            native.venues.push_back(venue)
        names = {code: name for code, name, _ in REJECT_TABLE}
        for code in range(<int>e.CODE_COUNT):
            native.reject_names.push_back(_bytes(names.get(code, f"CODE_{code}")))
        native.ring_capacity = config.get("ring_capacity", 65536)
        if native.ring_capacity < 2 or native.ring_capacity & (native.ring_capacity - 1):
            raise ValueError(f"ring_capacity must be a power of two, got {native.ring_capacity}")
        native.max_queued_bytes = config.get("max_queued_bytes", 16 << 20)
        native.stall_limit_ms = config.get("stall_limit_ms", 5000)
        native.retention_orders = config.get("retention_orders", 100000)
        native.reconcile_timeout_ms = config.get("reconcile_timeout_ms", 10000)
        self.ring_capacity_slots = native.ring_capacity
        self.client_count = native.clients.size()
        self.venue_count = native.venues.size()
        fast.book = <void*>book
        fast.describer = <void*>describer
        fast.check_new_order = _check_new_order
        fast.check_replace = _check_replace
        fast.on_acked = _on_acked
        fast.on_filled = _on_filled
        fast.on_canceled = _on_canceled
        fast.on_replaced = _on_replaced
        fast.on_replace_rejected = _on_replace_rejected
        fast.on_loose_fill = _on_loose_fill
        fast.on_trade_corrected = _on_trade_corrected
        fast.on_restated = _on_restated
        fast.venue_conforms = _venue_conforms
        fast.venue_take = _venue_take
        fast.on_quote = _on_quote
        fast.on_trade = _on_trade
        fast.risk_state = _risk_state
        fast.live_orders = _live_orders
        fast.firm_budget = _firm_budget
        fast.describe = _describe
        self.engine = new Engine(native, fast)

    def __dealloc__(self):
        if self.engine != NULL:
            with nogil:
                del self.engine
            self.engine = NULL

    # -- LIFE CYCLE -------------------------------------------------------------------------------

    def start(self):
        """Listen for clients and connect to the venues (QuickFIX's threads do the work)."""
        with nogil:
            self.engine.start()
        self.started = True

    def stop(self, int64_t logout_timeout_ms=2000):
        """Log every session out (waiting up to `logout_timeout_ms`), then stop QuickFIX's threads."""
        with nogil:
            self.engine.stop(logout_timeout_ms)
        self.started = False

    def set_accepting(self, bint accepting, str reason=""):
        """Accept new orders, or refuse them all GATEWAY_CLOSED with `reason` as the text (a drain or
        a stop in progress)."""
        self.engine.set_accepting(accepting, _bytes(reason))

    # -- RECOVERY (before start) ------------------------------------------------------------------

    def restore_order(self, dict order):
        """Give the engine back a live order from the journal.

        Keys: ``order_id``, ``session``, ``instrument``, ``venue``, ``side``, ``ord_type``, ``tif``
        (FIX characters), ``qty_lots``, ``price_ticks``, ``cum_lots``, ``cost``, ``status`` (OrdStatus
        character), ``acked``, ``cl_ord_id``, ``account``, ``venue_cl_ord_id``, ``venue_order_id``,
        ``next_request``, ``client_ids``, ``replaced_ids``, and optionally ``cancel`` / ``replace``
        (dicts: ``number``, ``client_cl_ord_id``, ``orig_client_cl_ord_id``, ``qty_lots``,
        ``price_ticks``, ``reason``, ``text``).
        """
        cdef RestoredOrder restored
        cdef Request* request
        restored.order.id = order["order_id"]
        restored.order.session = order["session"]
        restored.order.instrument = order["instrument"]
        restored.order.venue = order["venue"]
        restored.order.side = ord(order["side"])
        restored.order.ord_type = ord(order["ord_type"])
        restored.order.tif = ord(order["tif"])
        restored.order.qty_lots = order["qty_lots"]
        restored.order.price_ticks = order["price_ticks"]
        restored.order.cum_lots = order["cum_lots"]
        restored.order.cost = order["cost"]
        restored.order.status = ord(order["status"])
        restored.order.acked = order["acked"]
        restored.order.in_book = order.get("in_book", True)
        restored.order.cl_ord_id = _bytes(order["cl_ord_id"])
        restored.order.account = _bytes(order.get("account", ""))
        restored.order.venue_cl_ord_id = _bytes(order["venue_cl_ord_id"])
        restored.order.venue_order_id = _bytes(order.get("venue_order_id", ""))
        restored.order.next_request = order.get("next_request", 0)
        for text in order.get("replaced_ids", ()):
            restored.order.replaced_ids.push_back(_bytes(text))
        for text in order.get("client_ids", ()):
            restored.client_ids.push_back(_bytes(text))
        for kind, name in ((1, "cancel"), (2, "replace")):
            pending = order.get(name)
            if not pending:
                continue
            request = &restored.order.cancel if kind == 1 else &restored.order.replace
            request.kind = kind
            request.number = pending["number"]
            request.client_cl_ord_id = _bytes(pending.get("client_cl_ord_id", ""))
            request.orig_client_cl_ord_id = _bytes(pending.get("orig_client_cl_ord_id", ""))
            request.qty_lots = pending.get("qty_lots", 0)
            request.price_ticks = pending.get("price_ticks", 0)
            request.reason = pending.get("reason", 0)
            request.text = _bytes(pending.get("text", ""))
        self.engine.restore_order(restored)

    def restore_used_cl_ord_id(self, int session, str cl_ord_id):
        """Remember a ClOrdID the client used earlier today (duplicates are refused)."""
        self.engine.restore_used_cl_ord_id(session, _bytes(cl_ord_id))

    def restore_exec_id(self, str venue_exec_id):
        """Remember a venue ExecID booked earlier today (the fill is never booked twice)."""
        self.engine.restore_exec_id(_bytes(venue_exec_id))

    def restore_next_exec_id(self, int64_t next_exec_id):
        self.engine.restore_next_exec_id(next_exec_id)

    def restore_next_event_seq(self, int64_t next_seq):
        """Number new events after every event the journal and the intent log hold."""
        self.engine.restore_next_event_seq(next_seq)

    # -- COMMANDS ---------------------------------------------------------------------------------

    def cancel_all(self, int session=-1, int reason=1, str text="cancel all"):
        """Send a cancel for every live order (of client `session` when >= 0); return how many."""
        cdef string native_text = _bytes(text)
        cdef int64_t sent
        with nogil:
            sent = self.engine.cancel_all(session, <uint8_t>reason, native_text)
        return sent

    def log_out_venues(self, str reason):
        """Log every venue out and keep it out (QuickFIX does not reconnect a disabled session)."""
        cdef string native_reason = _bytes(reason)
        with nogil:
            self.engine.log_out_venues(native_reason)

    def log_on_venues(self):
        """Enable every venue session again; QuickFIX reconnects and logs on."""
        with nogil:
            self.engine.log_on_venues()

    def reconcile(self, int venue):
        """Ask `venue` the status of every order open there; return how many requests went out."""
        cdef int64_t sent
        with nogil:
            sent = self.engine.reconcile(venue)
        return sent

    def set_risk_reason(self, str reason):
        """Why the risk state is what it is: the text of a kill switch reject."""
        cdef string native_reason = _bytes(reason)
        with nogil:
            self.engine.set_risk_reason(native_reason)

    def set_reduce_only_reason(self, str reason):
        """Why the book takes only position-reducing orders: added to the text of a REDUCE_ONLY reject."""
        cdef string native_reason = _bytes(reason)
        with nogil:
            self.engine.set_reduce_only_reason(native_reason)

    def firm_budget(self, str kind, int op=0, value=0.0, int session=-1):
        """Read (op 0), set (1) or trim (2) one of the book's firm budgets under the engine lock, so that
        no order is decided between reading its usage and moving it; return (budget or None, usage)."""
        cdef int index = FIRM_BUDGETS.index(kind) if kind in FIRM_BUDGETS else -1
        cdef double number = INFINITY if value is None else value
        cdef double budget = 0.0, usage = 0.0
        cdef int result
        if index < 0:
            raise ValueError(f"unknown firm budget {kind!r}: one of {', '.join(FIRM_BUDGETS)}")
        with nogil:
            result = self.engine.firm_budget(index, session, op, number, &budget, &usage)
        if result != 0:
            raise ValueError(f"firm budget {kind!r}: unknown session {session} or not a number >= 0: {value!r}")
        return (budget if isfinite(budget) else None), usage

    def set_code_reason(self, int code, str reason):
        """Why orders are refused with `code` now, added to their Text(58) ("" for none)."""
        cdef string native_reason = _bytes(reason)
        with nogil:
            self.engine.set_code_reason(code, native_reason)

    def set_client_kill_reason(self, int session, str reason):
        """Why one client's kill switch is on: the text of its CLIENT_KILLED rejects."""
        cdef string native_reason = _bytes(reason)
        if not (0 <= session < self.client_count):
            raise IndexError(f"no client session {session}")
        with nogil:
            self.engine.set_client_kill_reason(session, native_reason)

    def set_account_killed(self, str account, bint killed, str reason=""):
        """Refuse (or take again) the orders of one account, the Account(1) of its orders or else its
        client's name; on a kill its working orders are cancelled. Return the cancels sent."""
        cdef string native_account = _bytes(account)
        cdef string native_reason = _bytes(reason)
        cdef cbool native_killed = killed
        cdef int64_t sent
        with nogil:
            sent = self.engine.set_account_killed(native_account, native_killed, native_reason)
        return sent

    def rotate_intents(self, str previous_path):
        """Move the intent log to `previous_path` and start a new one; return 0, or -1 on failure."""
        cdef string native_path = _bytes(previous_path)
        cdef int64_t result
        with nogil:
            result = self.engine.rotate_intents(native_path)
        return result

    def inject_error_before_send(self, int64_t count=1):
        """Make the next `count` new orders fail just before they are sent (tests of fail-closed)."""
        self.engine.inject_error_before_send(count)

    def inject_error_after_send(self, int64_t count=1):
        """Make the next `count` new orders fail right after they were sent (tests of fail-closed)."""
        self.engine.inject_error_after_send(count)

    def inject_stall(self, int64_t ms):
        """Make the next application message's callback hang for `ms` (tests of the watchdog)."""
        self.engine.inject_stall(ms)

    def forget_day(self):
        """A new trading day: forget yesterday's ClOrdIDs and ExecIDs (memory stays bounded)."""
        with nogil:
            self.engine.forget_day()

    # -- EVENTS -----------------------------------------------------------------------------------

    def drain(self, buffer, Py_ssize_t limit=-1):
        """Move up to `limit` events (all that fit when -1) into `buffer` (a writable, C-contiguous
        EVENT_DTYPE array); return how many."""
        cdef int64_t count
        cdef int64_t room
        if buffer.dtype != EVENT_DTYPE or not buffer.flags["C_CONTIGUOUS"] or not buffer.flags["WRITEABLE"]:
            raise ValueError("buffer must be a writable, C-contiguous EVENT_DTYPE array")
        room = buffer.shape[0] if limit < 0 or limit > buffer.shape[0] else limit
        cdef fg_event* out = <fg_event*><size_t>buffer.ctypes.data
        with nogil:
            count = self.engine.drain(out, room)
        return count

    def wait_events(self, int64_t timeout_ms):
        """Sleep until events may be waiting (or `timeout_ms` passed), without the GIL."""
        with nogil:
            self.engine.wait_events(timeout_ms)

    def wake_consumer(self):
        """Wake a `wait_events` in progress (used to stop the state thread)."""
        self.engine.wake_consumer()

    # -- READS ------------------------------------------------------------------------------------

    def counters(self):
        """Return the engine's counters by name, with ``rejected_by_code`` {code: count} (non-zero)."""
        cdef int64_t values[128]
        cdef int count = self.engine.read_counters(values, 128)
        result = {name: values[index] for index, name in enumerate(COUNTER_NAMES)}
        first = len(COUNTER_NAMES)
        result["rejected_by_code"] = {code: values[first + code] for code in range(count - first)
                                      if values[first + code]}
        return result

    def stages(self):
        """Return each stage's histogram: {name: [256 counts]}, bucket b as `stage_bucket_bounds(b)`."""
        cdef int64_t buckets[256]
        result = {}
        for index, name in enumerate(STAGE_NAMES):
            self.engine.read_stage(index, buckets, 256)
            result[name] = [buckets[bucket] for bucket in range(256)]
        return result

    def ring(self):
        """Return the event ring's occupancy, capacity and overflow (held, and ever held)."""
        return {"occupancy": self.engine.ring_size(), "capacity": self.engine.ring_capacity(),
                "overflow": self.engine.ring_overflow_size(), "overflow_total": self.engine.ring_overflow_count()}

    def client_logged_on(self, int index):
        return bool(self.engine.client_logged_on(index))

    def venue_logged_on(self, int index):
        return bool(self.engine.venue_logged_on(index))

    def set_venue_closed_reason(self, int index, str reason):
        """Say why the venue takes no order now ("outside its session ...; opens ..."), or "" when it does."""
        self.engine.set_venue_closed_reason(index, _bytes(reason))

    def quote_source(self, int instrument):
        """The index of the venue whose quotes the instrument's quote book takes now."""
        return self.engine.quote_source(instrument)

    def venue_connection(self, int index):
        """"address:port" of the venue's live connection ("" when it is down)."""
        return self.engine.venue_connection(index).decode()

    def venue_state(self, int index):
        """Return a venue's state: 0 down, 1 reconciling, 2 ready, 3 refused (not ready)."""
        return self.engine.venue_state(index)

    def venue_state_reason(self, int index):
        cdef string reason
        with nogil:
            reason = self.engine.venue_state_reason(index)
        return reason.decode(errors="replace")

    def outbox_queued_bytes(self, bint venue, int index):
        """Bytes waiting for a peer beyond what its socket took."""
        return self.engine.outbox_queued_bytes(venue, index)

    def outbox_slow_count(self, bint venue, int index):
        """How often a peer was disconnected as a slow consumer."""
        return self.engine.outbox_slow_count(venue, index)

    def longest_callback_ns(self):
        """How long the engine thread that has been inside a callback longest has been there now."""
        return self.engine.longest_callback_ns()

    def service_age_ns(self):
        """How long ago the service thread last went round its loop."""
        return self.engine.service_age_ns()

    def order_count(self):
        cdef int64_t count
        with nogil:
            count = self.engine.order_count()
        return count

    def live_order_ids(self):
        cdef vector[int64_t] ids
        with nogil:
            ids = self.engine.live_order_ids()
        return list(ids)

    # -- BENCHMARKS -------------------------------------------------------------------------------

    def bench_messages(self, int64_t count, int instrument, str price):
        """Run `count` orders through the engine with its sessions faked (a NewOrderSingle, the venue's
        New and Canceled, each parsed from wire text, handled and answered as text); return the ns of
        each order's three messages (a list). Orders are buys of one lot of `instrument` at `price` (an
        IOC the book must accept). For an engine built without sessions, never started."""
        cdef vector[int64_t] samples
        cdef string native_price = _bytes(price)
        with nogil:
            self.engine.bench_messages(count, instrument, native_price, samples)
        return list(samples)

    def order(self, int64_t order_id):
        """Return the engine's view of one order as a dict of text, or None when it holds none."""
        cdef string text
        with nogil:
            text = self.engine.describe_order(order_id)
        if text.empty():
            return None
        return dict(line.split("=", 1) for line in text.decode(errors="replace").splitlines())


def event_ring_ns_per_event(int64_t count=1_000_000, int64_t batch=4096):
    """The production event ring: one thread pushes `count` events (holding a lock, as the engine does),
    another drains them in batches (as the state thread does); return the ns per event."""
    cdef double result
    with nogil:
        result = bench_event_ring(count, batch)
    return result
