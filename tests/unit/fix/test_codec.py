"""The codec: a message read once, timestamps, session names."""

import time

import pytest
import quickfix as fix

from fixgate.core.messages import NewOrder
from fixgate.fix import codec
from fixgate.fix.engine import session_id

ORDER = NewOrder(cl_ord_id="C-1", symbol="AAPL", side="1", ord_type="2", order_qty="5", price="189.5",
                 time_in_force="0", account="acct")


def _parsed(order: NewOrder) -> fix.Message:
    """An order as QuickFIX would hand it to a callback: built, serialized, parsed back."""
    return fix.Message(codec.write_new_order(order, 1_764_000_000_123_456_000).toString(), False)


def _reference_timestamp(now_ns: int) -> str:
    seconds, rest = divmod(now_ns, 1_000_000_000)
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1000:06d}"


@pytest.mark.parametrize("values", [
    [1_764_000_000_999_999_999, 1_764_000_001_000_000_000, 1_764_000_001_000_001_000],  # across a second
    [1_764_000_005_000_000_000, 1_764_000_004_500_000_000, 1_764_000_005_000_000_000],  # a clock step back
    [0, 59_999_999_999, 86_399_000_000_001, 86_400_000_000_000],                        # epoch, day end
])
def test_format_utc_timestamp_when_seconds_change_or_repeat_matches_strftime(values):
    for value in values:
        assert codec.format_utc_timestamp(value) == _reference_timestamp(value)


def test_received_when_read_once_gives_what_reading_quickfix_gives():
    message = _parsed(ORDER)
    received = codec.Received(message)
    assert received.msg_type == codec.NEW_ORDER_SINGLE == codec.message_type(message)
    assert codec.read_new_order(received) == codec.read_new_order(message) == ORDER
    assert codec.fields_of(received) == codec.fields_of(message)
    assert codec.sending_time_ns(received) == codec.sending_time_ns(message)
    assert received.read_ns > 0


def test_received_when_a_required_field_is_missing_raises_field_not_found():
    message = _parsed(ORDER)
    message.removeField(codec.SYMBOL)
    with pytest.raises(fix.FieldNotFound):
        codec.read_new_order(codec.Received(message))


def test_session_names_when_asked_twice_for_one_session_id_give_its_text():
    names = codec.SessionNames()
    identifier = session_id("FIXGATE", "CLIENT1")
    assert names(identifier) == identifier.toString() == "FIX.4.4:FIXGATE->CLIENT1"
    assert names(identifier) is names(identifier)
    other = session_id("FIXGATE", "SIMVENUE")
    assert names(other) == "FIX.4.4:FIXGATE->SIMVENUE"
