"""The drop copy's reports from the stream's records: the same OMS logic as the gateway's."""

from fixgate.core import events as ev
from fixgate.core.events import event_bytes, make_event
from fixgate.core.messages import ExecType, OrdStatus
from fixgate.firm.feed import FirmOrders

CATALOGUE = {"instruments": [{"symbol": "AAPL", "venue": "sim", "lot_size": "1", "tick_size": "0.01"}],
             "sessions": ["client1"], "venues": ["sim"], "comp_ids": {"client1": "CLIENT1"}}


def records(*events) -> bytes:
    return b"".join(event_bytes(event) for event in events)


def accepted(seq=1, order_id=1, qty=10, price=19_000):
    return make_event(ev.ACCEPTED, seq=seq, recv_ns=1_000, order_id=order_id, instrument_id=0, session_id=0,
                      venue_id=0, side=1, ord_type=2, qty_lots=qty, price_ticks=price, text_a=b"c1", text_c=b"T1-1")


def test_reports_when_an_order_is_accepted_acked_and_filled_follow_its_state():
    orders = FirmOrders()
    orders.know("gw1", CATALOGUE)
    reports = orders.reports("gw1", "journal0001", records(
        accepted(), make_event(ev.ACKED, seq=2, order_id=1, text_c=b"V1"),
        make_event(ev.FILLED, seq=3, order_id=1, qty_lots=4, price_ticks=18_990),
        make_event(ev.ALARM, seq=4, code=9, text_a=b"not an order event")))
    assert [(report.exec_type, report.ord_status) for report in reports] == [
        (ExecType.PENDING_NEW, OrdStatus.PENDING_NEW), (ExecType.NEW, OrdStatus.NEW),
        (ExecType.TRADE, OrdStatus.PARTIALLY_FILLED)]
    fill = reports[-1]
    assert (fill.gateway, fill.client, fill.account, fill.symbol, fill.last_qty, fill.last_px, fill.cum_qty,
            fill.leaves_qty, fill.avg_px, fill.order_qty, fill.price) == (
        "gw1", "client1", "client1", "AAPL", "4", "189.9", "4", "6", "189.9", "10", "190")
    assert [report.exec_id for report in reports] == ["gw1-journal0-1", "gw1-journal0-2", "gw1-journal0-3"]
    assert fill.order_id == "gw1:T1-1"


def test_reports_when_the_gateway_refused_an_order_give_the_reason_by_code():
    orders = FirmOrders()
    orders.know("gw1", CATALOGUE)
    refused = make_event(ev.REJECTED, seq=1, instrument_id=-1, session_id=0, side=1, ord_type=2, qty_lots=1,
                         price_ticks=100, code=3, text_a=b"c9", text_c=b"NOPE")
    (report,) = orders.reports("gw1", "j", records(refused))
    assert (report.exec_type, report.symbol, report.text) == (ExecType.REJECTED, "NOPE",
                                                              "UNKNOWN_INSTRUMENT: unknown instrument")


def test_covers_when_records_name_an_instrument_beyond_the_catalogue_is_false_until_it_is_known_again():
    orders = FirmOrders()
    orders.know("gw1", CATALOGUE)
    later = make_event(ev.ACCEPTED, seq=5, order_id=2, instrument_id=1, session_id=0, side=1, ord_type=2,
                       qty_lots=1, price_ticks=100, text_a=b"c2", text_c=b"T1-2")
    assert orders.covers("gw1", records(accepted()))
    assert not orders.covers("gw1", records(later))
    assert not orders.covers("gw2", records(accepted()))
    wider = {**CATALOGUE, "instruments": CATALOGUE["instruments"] + [
        {"symbol": "MSFT", "venue": "sim", "lot_size": "1", "tick_size": "0.01"}]}
    orders.know("gw1", wider)
    assert orders.covers("gw1", records(later))
    (report,) = orders.reports("gw1", "j", records(later))
    assert report.symbol == "MSFT"
