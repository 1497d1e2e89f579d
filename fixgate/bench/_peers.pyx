"""Native benchmark peers over QuickFIX C++: an echo venue and a load client.

Each run holds its thread, without the GIL, until it is done or SIGINT/SIGTERM arrives (the run
installs its own handlers for its duration and restores the previous ones afterwards). One peer runs
per process at a time; the harness starts each in its own process (``fixgate.bench.native_peers``).

The C++ lives in ``fixgate/bench/native``; this module checks the arguments, fills the C++ config,
runs, and turns the C++ report into a dict.
"""

import os

from libc.stdint cimport int64_t, uint8_t
from libcpp cimport bool as cbool
from libcpp.string cimport string
from libcpp.vector cimport vector

# -- C++ DECLARATIONS -------------------------------------------------------------------------------

cdef extern from "echo_venue.h" namespace "fixgate::bench" nogil:
    cdef cppclass EchoQuote:
        string symbol
        string bid_price
        string offer_price

    cdef cppclass EchoVenueConfig:
        int port
        vector[string] sender_comp_ids
        vector[string] target_comp_ids
        int heartbeat_seconds
        string data_dictionary
        string state_dir
        cbool file_store
        cbool reset_on_logon
        cbool persist_messages
        string mode
        double duration_seconds
        string ready_file
        vector[EchoQuote] quotes
        string quote_size

    cdef cppclass EchoVenueReport:
        int64_t logons
        int64_t logouts
        int64_t orders_received
        int64_t cancels_received
        int64_t replaces_received
        int64_t status_requests_received
        int64_t mass_status_requests_received
        int64_t market_data_requests_received
        int64_t execution_reports_sent
        int64_t cancel_rejects_sent
        int64_t market_data_snapshots_sent
        int64_t send_failures
        int64_t unsupported_messages
        int64_t callback_errors
        int64_t resting_orders
        double elapsed_seconds
        string stopped_by
        int signal_number
        string settings_file

    void cpp_run_echo_venue "fixgate::bench::run_echo_venue"(const EchoVenueConfig& config,
                                                             EchoVenueReport& report) except +

cdef extern from "load_client.h" namespace "fixgate::bench" nogil:
    cdef cppclass LoadClientConfig:
        string host
        int port
        string sender_comp_id
        string target_comp_id
        string username
        string password
        int heartbeat_seconds
        string data_dictionary
        string state_dir
        cbool file_store
        cbool reset_on_logon
        cbool persist_messages
        string mode
        int64_t orders
        int64_t warmup_orders
        int64_t outstanding
        double duration_seconds
        double rate_per_second
        string complete_on
        string symbol
        string side
        string quantity
        string price
        string time_in_force
        string cl_ord_id_prefix
        double answer_timeout_seconds
        double logon_timeout_seconds

    cdef cppclass LoadClientReport:
        int64_t orders_sent
        int64_t warmup_orders_sent
        int64_t measured_orders_sent
        int64_t send_failures
        int64_t execution_reports_received
        int64_t orders_answered
        int64_t orders_completed
        int64_t orders_lost
        int64_t orders_incomplete
        int64_t rejects
        vector[string] reject_texts
        int64_t cancel_rejects_received
        int64_t business_rejects_received
        int64_t unmatched_reports
        int64_t callback_errors
        int64_t logons
        int64_t logouts
        double elapsed_seconds
        double send_seconds
        double orders_per_second
        double send_rate_per_second
        string stopped_by
        int signal_number
        string cl_ord_id_prefix
        string settings_file
        vector[int64_t] latency_ns
        vector[uint8_t] completed

    void cpp_run_load_client "fixgate::bench::run_load_client"(const LoadClientConfig& config,
                                                               LoadClientReport& report) except +

# -- ARGUMENTS --------------------------------------------------------------------------------------

VENUE_MODES = ("ack", "fill", "ioc")
CLIENT_MODES = ("latency", "throughput", "rate")
COMPLETE_ON = ("first", "final")
STORES = ("memory", "file")

_REQUIRED = object()

# key: (expected kind, default). Kinds: "int", "bool", "text", "path", "sessions".
VENUE_SETTINGS = {
    "port": ("int", _REQUIRED),
    "sessions": ("sessions", _REQUIRED),
    "data_dictionary": ("path", _REQUIRED),
    "state_dir": ("path", _REQUIRED),
    "store": ("text", "memory"),
    "heartbeat_seconds": ("int", 30),
    "reset_on_logon": ("bool", False),
    "persist_messages": ("bool", False),
}

CLIENT_SETTINGS = {
    "host": ("text", "127.0.0.1"),
    "port": ("int", _REQUIRED),
    "sender": ("text", _REQUIRED),
    "target": ("text", _REQUIRED),
    "username": ("text", None),
    "password": ("text", None),
    "data_dictionary": ("path", _REQUIRED),
    "state_dir": ("path", _REQUIRED),
    "store": ("text", "memory"),
    "heartbeat_seconds": ("int", 30),
    "reset_on_logon": ("bool", True),
    "persist_messages": ("bool", False),
}


def _checked_settings(settings, table):
    """Return `settings` with defaults filled in; raise ValueError naming a wrong or unknown key."""
    unknown = sorted(set(settings) - set(table))
    if unknown:
        raise ValueError(f"settings: unknown keys {unknown}; expected some of {sorted(table)}")
    checked = {}
    for key, (kind, default) in table.items():
        value = settings.get(key, default)
        if value is _REQUIRED:
            raise ValueError(f"settings[{key!r}]: required, found nothing")
        if value is None:
            checked[key] = None
            continue
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"settings[{key!r}]: expected an int, found {value!r}")
        elif kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"settings[{key!r}]: expected a bool, found {value!r}")
        elif kind == "text":
            if not isinstance(value, str):
                raise ValueError(f"settings[{key!r}]: expected a str, found {value!r}")
        elif kind == "path":
            if not isinstance(value, (str, os.PathLike)):
                raise ValueError(f"settings[{key!r}]: expected a path, found {value!r}")
            value = os.fspath(value)
        elif kind == "sessions":
            pairs = list(value)
            if not pairs or not all(len(pair) == 2 and all(isinstance(part, str) for part in pair)
                                    for pair in pairs):
                raise ValueError(f"settings[{key!r}]: expected (sender, target) pairs of str, found {value!r}")
            value = [tuple(pair) for pair in pairs]
        checked[key] = value
    if checked["store"] not in STORES:
        raise ValueError(f"settings['store']: expected one of {STORES}, found {checked['store']!r}")
    return checked


def _choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}: expected one of {choices}, found {value!r}")
    return value


cdef string _text(value):
    return value.encode()


cdef str _str(const string& value):
    return value.decode(errors="replace")


# -- ECHO VENUE -------------------------------------------------------------------------------------

def run_echo_venue(settings, mode="ack", duration_seconds=None, ready_file=None, quotes=None, *,
                   quote_size="100"):
    """Run the echo venue until `duration_seconds` pass or SIGINT/SIGTERM arrives; return its counts.

    Parameters
    ----------
    settings : Mapping[str, object]
        The sessions: ``port``, ``sessions`` (a list of (sender, target) CompID pairs, the venue
        being the sender), ``data_dictionary`` (FIX44.xml), ``state_dir`` (the QuickFIX settings
        file, and the file store), and optionally ``store`` ("memory" or "file"),
        ``heartbeat_seconds``, ``reset_on_logon`` (False), ``persist_messages`` (False).
    mode : {"ack", "fill", "ioc"}
        What follows the acknowledgement of a new order: nothing (it rests), a full fill, or a
        cancel when its TimeInForce is IOC or FOK (it rests otherwise).
    duration_seconds : float, optional
        Stop after this long; None runs until a signal.
    ready_file : str or PathLike, optional
        Written (``{"port": ..., "pid": ...}``) once the venue listens.
    quotes : Mapping[str, tuple[str, str]], optional
        Bid and offer price text by symbol for market-data snapshots (others get 99.99 / 100.01).
    quote_size : str
        MDEntrySize of each quoted side.

    Returns
    -------
    dict
        The counters of the run, ``elapsed_seconds``, ``stopped_by`` ("duration" or "signal"),
        ``signal_number`` and ``settings_file``.

    Raises
    ------
    ValueError
        For a wrong argument (the message names it).
    RuntimeError
        When QuickFIX refuses the settings or cannot listen, or another peer runs in this process.
    """
    checked = _checked_settings(settings, VENUE_SETTINGS)
    cdef EchoVenueConfig config
    cdef EchoVenueReport report
    cdef EchoQuote quote
    config.port = checked["port"]
    for sender, target in checked["sessions"]:
        config.sender_comp_ids.push_back(_text(sender))
        config.target_comp_ids.push_back(_text(target))
    config.heartbeat_seconds = checked["heartbeat_seconds"]
    config.data_dictionary = _text(checked["data_dictionary"])
    config.state_dir = _text(checked["state_dir"])
    config.file_store = checked["store"] == "file"
    config.reset_on_logon = checked["reset_on_logon"]
    config.persist_messages = checked["persist_messages"]
    config.mode = _text(_choice("mode", mode, VENUE_MODES))
    if duration_seconds is not None and not duration_seconds > 0:
        raise ValueError(f"duration_seconds: expected a positive number or None, found {duration_seconds!r}")
    config.duration_seconds = 0.0 if duration_seconds is None else float(duration_seconds)
    config.ready_file = _text(os.fspath(ready_file)) if ready_file is not None else string()
    for symbol, (bid_price, offer_price) in (quotes or {}).items():
        quote.symbol = _text(symbol)
        quote.bid_price = _text(bid_price)
        quote.offer_price = _text(offer_price)
        config.quotes.push_back(quote)
    config.quote_size = _text(quote_size)
    with nogil:
        cpp_run_echo_venue(config, report)
    return {
        "mode": mode,
        "sessions": [list(pair) for pair in checked["sessions"]],
        "logons": report.logons,
        "logouts": report.logouts,
        "orders_received": report.orders_received,
        "cancels_received": report.cancels_received,
        "replaces_received": report.replaces_received,
        "status_requests_received": report.status_requests_received,
        "mass_status_requests_received": report.mass_status_requests_received,
        "market_data_requests_received": report.market_data_requests_received,
        "execution_reports_sent": report.execution_reports_sent,
        "cancel_rejects_sent": report.cancel_rejects_sent,
        "market_data_snapshots_sent": report.market_data_snapshots_sent,
        "send_failures": report.send_failures,
        "unsupported_messages": report.unsupported_messages,
        "callback_errors": report.callback_errors,
        "resting_orders": report.resting_orders,
        "elapsed_seconds": report.elapsed_seconds,
        "stopped_by": _str(report.stopped_by),
        "signal_number": report.signal_number,
        "settings_file": _str(report.settings_file),
    }


# -- LOAD CLIENT ------------------------------------------------------------------------------------

def run_load_client(settings, mode="latency", *, orders=10_000, warmup_orders=1_000, outstanding=64,
                    duration_seconds=None, rate_per_second=None, complete_on="final", symbol="AAPL",
                    side="1", quantity="1", price="187.00", time_in_force="3", cl_ord_id_prefix=None,
                    answer_timeout_seconds=5.0, logon_timeout_seconds=10.0):
    """Log on, send orders in `mode`, time each to its first report; return counts and samples.

    Parameters
    ----------
    settings : Mapping[str, object]
        The session: ``port``, ``sender``, ``target``, ``data_dictionary`` (FIX44.xml),
        ``state_dir``, and optionally ``host`` (127.0.0.1 only), ``username`` and ``password``
        (sent on Logon), ``store`` ("memory" or "file"), ``heartbeat_seconds``,
        ``reset_on_logon`` (True), ``persist_messages`` (False).
    mode : {"latency", "throughput", "rate"}
        One order outstanding at a time; `outstanding` in flight; or `rate_per_second` on a fixed
        schedule.
    orders : int or None
        Measured orders (after the warm-up); None for no count limit (then `duration_seconds`).
    warmup_orders : int
        Orders sent one at a time before the measured phase, not measured.
    outstanding : int
        Orders in flight in throughput mode.
    duration_seconds : float, optional
        Length of the measured phase.
    rate_per_second : float, optional
        Orders a second in rate mode.
    complete_on : {"first", "final"}
        An order completes on its first report, or on a report with a final OrdStatus (filled,
        canceled, rejected, expired, done for day). Use "first" against a venue that only acknowledges.
    symbol, side, quantity, price, time_in_force : str
        The terms of every order (a limit order).
    cl_ord_id_prefix : str, optional
        ClOrdIDs are the prefix and the order's index; by default "L", six base-36 digits of the
        wall clock and "-".
    answer_timeout_seconds : float
        How long to wait, after sending ends (or without any report while sending), before the
        orders still unanswered count as lost.
    logon_timeout_seconds : float
        How long to wait for the Logon answer.

    Returns
    -------
    dict
        Counts over every order (``orders_sent``, ``orders_answered``, ``orders_completed``,
        ``orders_lost``, ``rejects``, ``reject_texts``, ...), rates and times of the measured phase,
        ``stopped_by``, and per measured order in send order ``latency_ns`` (numpy int64, -1 for no
        report) and ``completed`` (numpy bool).

    Raises
    ------
    ValueError
        For a wrong argument (the message names it).
    RuntimeError
        When no logon comes in time, QuickFIX refuses the settings, or another peer runs in this
        process.
    """
    checked = _checked_settings(settings, CLIENT_SETTINGS)
    cdef LoadClientConfig config
    cdef LoadClientReport report
    config.host = _text(checked["host"])
    config.port = checked["port"]
    config.sender_comp_id = _text(checked["sender"])
    config.target_comp_id = _text(checked["target"])
    config.username = _text(checked["username"] or "")
    config.password = _text(checked["password"] or "")
    config.heartbeat_seconds = checked["heartbeat_seconds"]
    config.data_dictionary = _text(checked["data_dictionary"])
    config.state_dir = _text(checked["state_dir"])
    config.file_store = checked["store"] == "file"
    config.reset_on_logon = checked["reset_on_logon"]
    config.persist_messages = checked["persist_messages"]
    config.mode = _text(_choice("mode", mode, CLIENT_MODES))
    config.orders = 0 if orders is None else orders
    config.warmup_orders = warmup_orders
    config.outstanding = outstanding
    config.duration_seconds = 0.0 if duration_seconds is None else float(duration_seconds)
    config.rate_per_second = 0.0 if rate_per_second is None else float(rate_per_second)
    config.complete_on = _text(_choice("complete_on", complete_on, COMPLETE_ON))
    config.symbol = _text(symbol)
    config.side = _text(side)
    config.quantity = _text(quantity)
    config.price = _text(price)
    config.time_in_force = _text(time_in_force)
    config.cl_ord_id_prefix = _text(cl_ord_id_prefix or "")
    config.answer_timeout_seconds = answer_timeout_seconds
    config.logon_timeout_seconds = logon_timeout_seconds
    with nogil:
        cpp_run_load_client(config, report)
    # NumPy only after the run: importing it starts OpenBLAS's thread pool, which has no business
    # sharing the peer's cores while it measures.
    import numpy as np
    cdef size_t count = report.latency_ns.size()
    latency_ns = np.empty(count, dtype=np.int64)
    completed = np.empty(count, dtype=np.bool_)
    cdef int64_t[::1] latency_view = latency_ns
    cdef uint8_t[::1] completed_view = completed.view(np.uint8)
    cdef size_t index
    for index in range(count):
        latency_view[index] = report.latency_ns[index]
        completed_view[index] = report.completed[index]
    return {
        "mode": mode,
        "complete_on": complete_on,
        "orders_sent": report.orders_sent,
        "warmup_orders_sent": report.warmup_orders_sent,
        "measured_orders_sent": report.measured_orders_sent,
        "send_failures": report.send_failures,
        "execution_reports_received": report.execution_reports_received,
        "orders_answered": report.orders_answered,
        "orders_completed": report.orders_completed,
        "orders_lost": report.orders_lost,
        "orders_incomplete": report.orders_incomplete,
        "rejects": report.rejects,
        "reject_texts": [_str(text) for text in report.reject_texts],
        "cancel_rejects_received": report.cancel_rejects_received,
        "business_rejects_received": report.business_rejects_received,
        "unmatched_reports": report.unmatched_reports,
        "callback_errors": report.callback_errors,
        "logons": report.logons,
        "logouts": report.logouts,
        "elapsed_seconds": report.elapsed_seconds,
        "send_seconds": report.send_seconds,
        "orders_per_second": report.orders_per_second,
        "send_rate_per_second": report.send_rate_per_second,
        "stopped_by": _str(report.stopped_by),
        "signal_number": report.signal_number,
        "cl_ord_id_prefix": _str(report.cl_ord_id_prefix),
        "settings_file": _str(report.settings_file),
        "latency_ns": latency_ns,
        "completed": completed,
    }


# -- RAW TCP ------------------------------------------------------------------------------------------

cdef extern from "tcp_pingpong.h" namespace "fixgate::bench" nogil:
    int run_tcp_echo(int port, int message_bytes, double seconds, const string& ready_file)
    int run_tcp_pingpong(int port, int message_bytes, int64_t count, vector[int64_t]& samples)


def tcp_echo(int port, int message_bytes=200, double seconds=0.0, ready_file=None):
    """Echo `message_bytes`-byte messages on 127.0.0.1:`port`, one connection at a time, in C, until
    `seconds` pass (0: until the process ends)."""
    cdef string ready = (ready_file or "").encode()
    cdef int error
    with nogil:
        error = run_tcp_echo(port, message_bytes, seconds, ready)
    if error:
        raise OSError(error, os.strerror(error))


def tcp_pingpong(int port, int message_bytes=200, int64_t count=10_000):
    """Return `count` round trips (ns, a list) of one message to the echo on 127.0.0.1:`port`, in C."""
    cdef vector[int64_t] samples
    cdef int error
    with nogil:
        error = run_tcp_pingpong(port, message_bytes, count, samples)
    if error:
        raise OSError(error, os.strerror(error))
    return list(samples)
