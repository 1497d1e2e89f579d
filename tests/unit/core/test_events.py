"""The engine's complete events as Python reads them: one 256-byte record per state change."""

import re
from pathlib import Path

import numpy as np

import fixgate
from fixgate.core import events as ev
from fixgate.core.events import (EVENT_BYTES, EVENT_DTYPE, Event, alarm_text, event_bytes, events_from_bytes,
                                 make_event)

EVENT_H = Path(fixgate.__file__).parent / "_engine" / "native" / "event.h"
C_TYPES = {"int64_t": np.int64, "int32_t": np.int32, "int16_t": np.int16, "uint8_t": np.uint8}


def header_defines(prefix: str) -> dict[str, int]:
    return {name: int(value) for name, value in
            re.findall(rf"^#define {prefix}(\w+) (\d+)", EVENT_H.read_text(), re.M)}


def struct_fields() -> list[tuple[str, np.dtype]]:
    body = re.search(r"typedef struct fg_event \{(.*?)\} fg_event;", EVENT_H.read_text(), re.S).group(1)
    sizes = header_defines("FG_")
    fields = []
    for ctype, name, size in re.findall(r"^\s*(\w+) (\w+)(?:\[(\w+)\])?;", body, re.M):
        fields.append((name, np.dtype(f"S{sizes[size[3:]]}") if ctype == "char" else np.dtype(C_TYPES[ctype])))
    return fields


def test_event_dtype_when_compared_to_the_c_struct_has_its_fields_types_and_offsets():
    fields = struct_fields()
    assert [name for name, _ in fields] == list(EVENT_DTYPE.names)
    offset = 0
    for name, dtype in fields:
        assert EVENT_DTYPE.fields[name][0] == dtype, name
        assert EVENT_DTYPE.fields[name][1] == offset, name             # no padding in the C layout either
        offset += dtype.itemsize
    assert offset == EVENT_DTYPE.itemsize == EVENT_BYTES == 256
    assert list(Event._fields) == list(EVENT_DTYPE.names)


def test_event_numbers_when_compared_to_the_c_header_are_the_same():
    kinds = {name.lower(): number for name, number in header_defines("FG_EVENT_").items() if name != "BYTES"}
    assert kinds == {name: number for number, name in ev.KIND_NAMES.items()}
    assert header_defines("FG_FLAG_") == {name[5:]: getattr(ev, name) for name in dir(ev) if name.startswith("FLAG_")}
    engine_alarms = {name.lower(): number for name, number in header_defines("FG_ALARM_").items()}
    assert engine_alarms == {name: number for number, name in ev.ALARM_NAMES.items() if number < 32}
    assert {name.lower(): number for name, number in header_defines("FG_VENUE_").items()} == {
        name: number for number, name in ev.VENUE_STATE_NAMES.items()}


def test_make_event_when_fields_are_left_out_fills_zeros_and_no_ids():
    event = make_event(ev.FILLED, order_id=7, qty_lots=3)
    assert event.kind == ev.FILLED and event.order_id == 7 and event.qty_lots == 3
    assert event.price_ticks == 0 and event.seq == 0 and event.flags == 0
    assert (event.instrument_id, event.session_id, event.venue_id) == (-1, -1, -1)
    assert (event.text_a, event.text_b, event.text_c) == (b"", b"", b"")


def test_event_bytes_when_read_back_gives_the_same_event():
    event = make_event(ev.ACCEPTED, recv_ns=1_700_000_000_123_456_789, sent_ns=1_700_000_000_123_460_000,
                       order_id=2**40, qty_lots=150, price_ticks=-1, cum_lots=0, aux=9, seq=12, instrument_id=2,
                       session_id=0, venue_id=0, side=5, ord_type=2, tif=3, status=ord("A"), code=0,
                       flags=ev.FLAG_GATEWAY,
                       text_a=b"ORDER-1", text_b=b"ACCT", text_c=b"T1-" + b"9" * 45)
    data = event_bytes(event)
    assert len(data) == EVENT_BYTES
    assert events_from_bytes(data) == [event]


def test_event_bytes_when_laid_out_puts_each_field_where_the_c_struct_has_it():
    data = event_bytes(make_event(ev.CANCEL_REQUESTED, order_id=5, seq=300, session_id=-1, text_b=b"c1"))
    assert int.from_bytes(data[16:24], "little") == 5                     # order_id
    assert int.from_bytes(data[56:64], "little") == 300                   # seq
    assert int.from_bytes(data[68:70], "little", signed=True) == -1       # session_id
    assert data[72] == ev.CANCEL_REQUESTED                                # kind
    assert data[144:147] == b"c1\0"                                       # text_b, NUL-terminated


def test_events_from_bytes_when_several_records_are_packed_returns_them_in_order():
    events = [make_event(ev.ACKED, order_id=number, seq=number) for number in range(1, 6)]
    data = b"".join(event_bytes(event) for event in events)
    assert events_from_bytes(data) == events


def test_events_from_bytes_when_the_tail_is_torn_ignores_the_partial_record():
    events = [make_event(ev.FILLED, order_id=1, seq=1), make_event(ev.FILLED, order_id=1, seq=2)]
    data = b"".join(event_bytes(event) for event in events)
    assert events_from_bytes(data + event_bytes(events[0])[:100]) == events
    assert events_from_bytes(data[:255]) == []
    assert events_from_bytes(b"") == []


def test_events_from_numpy_rows_when_converted_with_tolist_are_events():
    rows = np.zeros(2, dtype=EVENT_DTYPE)
    rows[1]["kind"] = ev.ALARM
    rows[1]["text_a"] = b"ring"
    events = [Event(*row) for row in rows.tolist()]
    assert events[1].kind == ev.ALARM and events[1].text_a == b"ring"
    assert events_from_bytes(rows.tobytes()) == events


def test_alarm_text_when_longer_than_text_a_runs_on_into_text_b_and_text_c():
    words = ("venue simvenue filled 0.0005 of order T1-17, not a whole number of lots of 0.001 for BTC-USD: "
             "not booked; the position is no longer what the venue says").encode()
    assert 128 < len(words) <= 176
    alarm = make_event(ev.ALARM, code=ev.ALARM_FILL_OFF_LOT, text_a=words[:64], text_b=words[64:128],
                       text_c=words[128:])
    assert alarm_text(events_from_bytes(event_bytes(alarm))[0]) == words.decode()


def test_alarm_text_when_it_fits_in_text_a_ignores_the_other_fields():
    alarm = make_event(ev.ALARM, text_a=b"slow consumer disconnected", text_b=b"not part of it")
    assert alarm_text(alarm) == "slow consumer disconnected"


def test_alarm_text_when_a_character_straddles_two_fields_decodes_it_whole():
    words = ("x" * 63 + "\u00e9 done").encode()                       # the two bytes of the accent at 63 and 64
    alarm = make_event(ev.ALARM, text_a=words[:64], text_b=words[64:])
    assert alarm_text(alarm) == "x" * 63 + "\u00e9 done"


def test_kinds_when_grouped_keep_order_events_apart_from_engine_events():
    assert ev.INTENT_KINDS <= ev.ORDER_KINDS
    assert not {ev.SESSION_LOGON, ev.SESSION_LOGOUT, ev.ALARM, ev.RECONCILED, ev.VENUE_STATE,
                ev.LOGON_REFUSED} & ev.ORDER_KINDS
    assert ev.ALARM_JOURNAL_WRITE_FAILED in ev.FATAL_ALARMS and ev.ALARM_ERROR_AFTER_SEND not in ev.FATAL_ALARMS
