"""The FIX 4.4 order state machine: legal paths move the order, illegal ones are counted."""

from decimal import Decimal

import pytest

from fixgate._fast.codes import EventKind as K
from fixgate.core.messages import OrdStatus as S
from fixgate.core.orders import OrderEvent, OrderManager, OrderRecord, OrderRegistry


def make(qty="10", lot="1"):
    registry = OrderRegistry()
    record = OrderRecord(order_id=1, gateway_order_id="T-1", session="s", account="s", cl_ord_id="c1",
                         symbol="XYZ", instrument_id=0, side="1", ord_type="2", time_in_force="0",
                         order_qty=qty, price="100", lot_size=Decimal(lot))
    registry.add(record)
    fills = []
    illegal = []
    manager = OrderManager(registry, on_fill=lambda *args: fills.append(args),
                           on_illegal=lambda *args: illegal.append(args[2]))
    return record, manager, fills, illegal


def apply(manager, *events):
    return [manager.apply(OrderEvent(kind, 1, qty, price)) for kind, qty, price in events]


def test_order_when_acked_and_filled_in_parts_ends_filled_with_exact_average():
    record, manager, fills, _ = make()
    assert apply(manager, (K.ACCEPTED, 10, 100.0), (K.ACKED, 0, 0.0), (K.FILLED, 4, 100.1),
                 (K.FILLED, 6, 100.2)) == [True] * 4
    assert record.status == S.FILLED and record.cum_qty == 10 and record.leaves_qty == 0
    assert record.avg_px == Decimal("100.16")
    assert [fill[1] for fill in fills] == [Decimal(4), Decimal(6)]


def test_order_when_cancel_requested_then_rejected_returns_to_previous_status():
    record, manager, _, _ = make()
    apply(manager, (K.ACKED, 0, 0.0), (K.FILLED, 3, 100.0), (K.CANCEL_REQUESTED, 0, 0.0))
    assert record.status == S.PENDING_CANCEL
    apply(manager, (K.FILLED, 2, 100.0))
    assert record.status == S.PENDING_CANCEL and record.cum_qty == 5
    apply(manager, (K.CANCEL_REJECTED, 0, 0.0))
    assert record.status == S.PARTIALLY_FILLED


def test_order_when_replaced_takes_the_new_quantity_and_price():
    record, manager, _, _ = make()
    apply(manager, (K.ACKED, 0, 0.0), (K.REPLACE_ACCEPTED, 15, 101.5))
    assert record.status == S.PENDING_REPLACE
    apply(manager, (K.REPLACED, 15, 101.5))
    assert record.status == S.NEW and record.order_qty == "15" and record.price == "101.5"


def test_order_when_replace_rejected_keeps_its_terms():
    record, manager, _, _ = make()
    apply(manager, (K.ACKED, 0, 0.0), (K.REPLACE_ACCEPTED, 15, 101.5), (K.REPLACE_REJECTED, 0, 0.0))
    assert record.status == S.NEW and record.order_qty == "10"


@pytest.mark.parametrize("path, last", [
    ([(K.VENUE_REJECTED, 0, 0.0)], S.REJECTED),
    ([(K.ACKED, 0, 0.0), (K.CANCELED, 0, 0.0)], S.CANCELED),
    ([(K.ACKED, 0, 0.0), (K.EXPIRED, 0, 0.0)], S.EXPIRED),
    ([(K.ACKED, 0, 0.0), (K.DONE_FOR_DAY, 0, 0.0)], S.DONE_FOR_DAY),
    ([(K.FILLED, 10, 100.0)], S.FILLED),
])
def test_order_when_it_reaches_a_terminal_state_accepts_nothing_more(path, last):
    record, manager, _, illegal = make()
    assert all(apply(manager, *path))
    assert record.status == last
    assert apply(manager, (K.FILLED, 1, 100.0), (K.ACKED, 0, 0.0), (K.CANCEL_REQUESTED, 0, 0.0)) == [False] * 3
    assert manager.illegal_transitions == 3 and record.status == last
    assert illegal[0].startswith("FILLED in ")


def test_event_when_order_unknown_is_counted_not_raised():
    _, manager, _, illegal = make()
    assert manager.apply(OrderEvent(K.FILLED, 99, 1, 1.0)) is False
    assert illegal == ["unknown order"]


def test_rejected_order_when_gateway_refused_it_is_rejected():
    record, manager, _, _ = make()
    assert apply(manager, (K.REJECTED, 0, 0.0)) == [True]
    assert record.status == S.REJECTED and record.leaves_qty == 0


def test_registry_when_a_finished_order_is_forgotten_still_refuses_its_cl_ord_id():
    record, manager, _, _ = make()
    registry = manager.registry
    registry.by_venue["V1"] = (record, None)
    record.venue_cl_ord_id = "V1"
    assert manager.apply(OrderEvent(K.FILLED, 1, 10, 100.0))
    registry.forget(record)
    assert 1 not in registry.by_id and registry.find_client("s", "c1") is None and registry.find_venue("V1") is None
    assert registry.known_cl_ord_id("s", "c1")
