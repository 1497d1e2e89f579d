"""The engine's complete events as Python reads them: one 256-byte record per state change.

The C struct is ``fg_event`` in ``fixgate/_engine/native/event.h``; `EVENT_DTYPE` is its NumPy view
(the engine refuses to load unless the two agree, field by field). Every event carries the engine's
sequence number; every order event but ACKED is also written to the intent log before anything
reveals it, so recovery applies what the journal lacks by sequence. The state thread drains events
into arrays of it, the journal stores each record's bytes, and the intent log holds the same bytes
for intents written ahead. A record carries everything its consumer needs: ids, lots, ticks, the
client's ids, the venue's ids, timestamps.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fixgate._fast.codes import EventKind

EVENT_BYTES = 256

EVENT_DTYPE = np.dtype([
    ("recv_ns", np.int64), ("sent_ns", np.int64), ("order_id", np.int64), ("qty_lots", np.int64),
    ("price_ticks", np.int64), ("cum_lots", np.int64), ("aux", np.int64), ("seq", np.int64), ("instrument_id", np.int32),
    ("session_id", np.int16), ("venue_id", np.int16), ("kind", np.uint8), ("side", np.uint8),
    ("ord_type", np.uint8), ("tif", np.uint8), ("status", np.uint8), ("code", np.uint8), ("flags", np.uint8),
    ("reserved", np.uint8), ("text_a", "S64"), ("text_b", "S64"), ("text_c", "S48"),
])
assert EVENT_DTYPE.itemsize == EVENT_BYTES

# The numbers of a record without its texts: `array.view(NUMBERS_DTYPE).tolist()` makes no bytes
# objects, which is most of what turning a record into Python values costs.
_NUMBER_FIELDS = [name for name in EVENT_DTYPE.names if not name.startswith("text_")]
NUMBERS_DTYPE = np.dtype({"names": _NUMBER_FIELDS, "formats": [EVENT_DTYPE.fields[name][0] for name in _NUMBER_FIELDS],
                          "offsets": [EVENT_DTYPE.fields[name][1] for name in _NUMBER_FIELDS],
                          "itemsize": EVENT_BYTES})

# -- KINDS ------------------------------------------------------------------------------------------

ACCEPTED = int(EventKind.ACCEPTED)
REJECTED = int(EventKind.REJECTED)
ACKED = int(EventKind.ACKED)
FILLED = int(EventKind.FILLED)
CANCELED = int(EventKind.CANCELED)
REPLACE_ACCEPTED = int(EventKind.REPLACE_ACCEPTED)
REPLACED = int(EventKind.REPLACED)
REPLACE_REJECTED = int(EventKind.REPLACE_REJECTED)
VENUE_REJECTED = int(EventKind.VENUE_REJECTED)
EXPIRED = int(EventKind.EXPIRED)
CANCEL_REQUESTED = int(EventKind.CANCEL_REQUESTED)
CANCEL_REJECTED = int(EventKind.CANCEL_REJECTED)
DONE_FOR_DAY = int(EventKind.DONE_FOR_DAY)
TRADE_CORRECTED = int(EventKind.TRADE_CORRECTED)
RESTATED = int(EventKind.RESTATED)
SESSION_LOGON = 32
SESSION_LOGOUT = 33
ALARM = 34
RECONCILED = 35
VENUE_STATE = 36
LOGON_REFUSED = 37

ORDER_KINDS = frozenset({ACCEPTED, REJECTED, ACKED, FILLED, CANCELED, REPLACE_ACCEPTED, REPLACED, REPLACE_REJECTED,
                         VENUE_REJECTED, EXPIRED, CANCEL_REQUESTED, CANCEL_REJECTED, DONE_FOR_DAY, TRADE_CORRECTED,
                         RESTATED})
INTENT_KINDS = frozenset({ACCEPTED, CANCEL_REQUESTED, REPLACE_ACCEPTED})

KIND_NAMES = {int(kind): kind.name.lower() for kind in EventKind}
KIND_NAMES.update({SESSION_LOGON: "session_logon", SESSION_LOGOUT: "session_logout", ALARM: "alarm",
                   RECONCILED: "reconciled", VENUE_STATE: "venue_state", LOGON_REFUSED: "logon_refused"})

# -- FLAGS ------------------------------------------------------------------------------------------

FLAG_VENUE = 1
FLAG_GATEWAY = 2
FLAG_RECONCILED = 4
FLAG_DUPLICATE = 8
FLAG_OFF_GRID = 16

# -- ALARMS -----------------------------------------------------------------------------------------

ALARM_NAMES = {
    1: "internal_error", 2: "error_after_send", 3: "fill_off_lot", 4: "fill_price_off_tick", 5: "overfill",
    6: "venue_session_reject", 7: "venue_business_reject", 8: "reconciliation_refused", 9: "slow_consumer",
    10: "ring_overflow", 11: "unknown_venue_order", 12: "unknown_venue_report", 13: "error_before_send",
    14: "unknown_fill", 15: "trade_corrected",
    # raised on the state thread, not by the engine
    32: "journal_write_failed", 33: "state_thread_failed",
}
ALARM_INTERNAL_ERROR = 1
ALARM_ERROR_AFTER_SEND = 2
ALARM_FILL_OFF_LOT = 3
ALARM_UNKNOWN_FILL = 14
ALARM_JOURNAL_WRITE_FAILED = 32
ALARM_STATE_THREAD_FAILED = 33
# Alarms after which the gateway's state can no longer be trusted: the kill switch trips.
FATAL_ALARMS = frozenset({ALARM_INTERNAL_ERROR, ALARM_FILL_OFF_LOT, ALARM_UNKNOWN_FILL, ALARM_JOURNAL_WRITE_FAILED,
                          ALARM_STATE_THREAD_FAILED})

# -- VENUE STATES -----------------------------------------------------------------------------------

VENUE_DOWN = 0
VENUE_RECONCILING = 1
VENUE_READY = 2
VENUE_REFUSED = 3
VENUE_STATE_NAMES = {VENUE_DOWN: "down", VENUE_RECONCILING: "reconciling", VENUE_READY: "ready",
                     VENUE_REFUSED: "refused"}

# -- CANCEL REASONS (CANCEL_REQUESTED.code with FLAG_GATEWAY) ---------------------------------------

CANCEL_BY_OPERATOR = 1
CANCEL_ON_DISCONNECT = 2
CANCEL_KILL_SWITCH = 3
CANCEL_CIRCUIT_BREAKER = 4
CANCEL_SHUTDOWN = 5


class Event(NamedTuple):
    """One event as plain Python values (``array.tolist()`` gives these tuples, in field order)."""

    recv_ns: int
    sent_ns: int
    order_id: int
    qty_lots: int
    price_ticks: int
    cum_lots: int
    aux: int
    seq: int
    instrument_id: int
    session_id: int
    venue_id: int
    kind: int
    side: int
    ord_type: int
    tif: int
    status: int
    code: int
    flags: int
    reserved: int
    text_a: bytes
    text_b: bytes
    text_c: bytes


def text(value: bytes) -> str:
    """Return an event's text field as str (NUL-trimmed by NumPy already)."""
    return value.decode("utf-8", errors="replace")


def alarm_text(event: Event) -> str:
    """Return an alarm's text, which runs on from text_a into text_b and text_c when it is long."""
    raw = event.text_a
    if len(event.text_a) == 64:
        raw += event.text_b
        if len(event.text_b) == 64:
            raw += event.text_c
    return raw.decode("utf-8", errors="replace")


def event_bytes(event: Event) -> bytes:
    """Return the 256 bytes of `event` (as the journal stores them)."""
    return np.array([tuple(event)], dtype=EVENT_DTYPE).tobytes()


def events_of(records: np.ndarray) -> list[Event]:
    """Return the events of an EVENT_DTYPE array as Python values (a column at a time: fast)."""
    make = Event._make
    texts = zip(records["text_a"].tolist(), records["text_b"].tolist(), records["text_c"].tolist())
    return [make(numbers + text) for numbers, text in zip(records.view(NUMBERS_DTYPE).tolist(), texts)]


def events_from_bytes(data: bytes) -> list[Event]:
    """Return the events packed in `data` (a whole number of records; a torn tail is ignored)."""
    whole = len(data) - len(data) % EVENT_BYTES
    if not whole:
        return []
    return events_of(np.frombuffer(data[:whole], dtype=EVENT_DTYPE))


def make_event(kind: int, **fields) -> Event:
    """Build an event (tests and the state thread's own events): unnamed fields are zero."""
    values = {name: 0 for name in Event._fields}
    values.update(instrument_id=-1, session_id=-1, venue_id=-1, text_a=b"", text_b=b"", text_c=b"")
    values.update(fields, kind=kind)
    return Event(**values)
