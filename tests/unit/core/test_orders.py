"""The OMS view: the FIX 4.4 order state machine over the engine's events; illegal ones are counted."""

from decimal import Decimal

import orjson
import pytest

from fixgate.core import events as ev
from fixgate.core.events import make_event
from fixgate.core.messages import OrdStatus as S
from fixgate.core.orders import Instrument, OrderManager, Orders, engine_restore, view_from_state

INSTRUMENTS = [Instrument("BTC-USD", "simvenue", Decimal("0.001"), Decimal("0.5")),
               Instrument("ETH-USD", "simvenue", Decimal("0.01"), Decimal("0.05")),
               Instrument("AAPL", "simvenue", Decimal("1"), Decimal("0.01"))]
BTC, ETH, AAPL = 0, 1, 2
SESSIONS = ["client1", "client2"]


class Oms:
    """An OrderManager over fresh Orders, recording what its callbacks were told."""

    def __init__(self, retention_orders: int = 100_000) -> None:
        self.orders = Orders(INSTRUMENTS, SESSIONS, ["simvenue"], retention_orders=retention_orders)
        self.fills: list[tuple[int, int, int]] = []
        self.illegal: list[tuple[int | None, str]] = []
        self.manager = OrderManager(
            self.orders, on_fill=lambda view, lots, ticks: self.fills.append((view.order_id, lots, ticks)),
            on_illegal=lambda view, event, reason: self.illegal.append((view.order_id if view else None, reason)))

    def apply(self, *events):
        return [self.manager.apply(event) for event in events]


def accepted(order_id, cl_ord_id, qty_lots, price_ticks, *, instrument_id=AAPL, session_id=0, side=1, ord_type=2,
             account=b""):
    return make_event(ev.ACCEPTED, order_id=order_id, instrument_id=instrument_id, session_id=session_id,
                      venue_id=0, side=side, ord_type=ord_type, tif=0, qty_lots=qty_lots, price_ticks=price_ticks,
                      text_a=cl_ord_id.encode(), text_b=account, text_c=f"T1-{order_id}".encode())


def acked(order_id, venue_order_id=b"V-1"):
    return make_event(ev.ACKED, order_id=order_id, text_c=venue_order_id)


def filled(order_id, lots, ticks, exec_id=b"E"):
    return make_event(ev.FILLED, order_id=order_id, qty_lots=lots, price_ticks=ticks, aux=lots * ticks,
                      text_a=exec_id)


def cancel_requested(order_id, number, cl_ord_id, orig_cl_ord_id, *, reason=0):
    return make_event(ev.CANCEL_REQUESTED, order_id=order_id, aux=number, code=reason,
                      flags=ev.FLAG_GATEWAY if reason else 0, text_a=cl_ord_id.encode(), text_b=orig_cl_ord_id.encode())


def replace_accepted(order_id, number, cl_ord_id, orig_cl_ord_id, qty_lots, price_ticks):
    return make_event(ev.REPLACE_ACCEPTED, order_id=order_id, aux=number, qty_lots=qty_lots,
                      price_ticks=price_ticks, text_a=cl_ord_id.encode(), text_b=orig_cl_ord_id.encode())


def answer(kind, order_id, number=0, **fields):
    return make_event(kind, order_id=order_id, aux=number, **fields)


# -- FILLS ------------------------------------------------------------------------------------------

def test_order_when_acked_and_filled_in_parts_ends_filled_with_the_exact_average():
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 3, 15_000), acked(1), filled(1, 1, 15_000), filled(1, 2, 15_000))
    assert view.status == S.FILLED and view.cum_lots == 3 and view.leaves_lots == 0 and not view.live
    assert view.avg_px == "150"                                    # never "150.00000000" nor "1.5E+2"
    assert oms.fills == [(1, 1, 15_000), (1, 2, 15_000)]
    summary = view.summary()
    assert (summary["status"], summary["order_qty"], summary["price"], summary["cum_qty"], summary["leaves_qty"],
            summary["avg_px"]) == ("Filled", "3", "150", "3", "0", "150")


def test_order_when_filled_at_different_prices_shows_the_average_from_the_integers():
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10_000, 60_000, instrument_id=ETH), acked(1),
                         filled(1, 1, 60_000), filled(1, 2, 60_001))
    assert view.status == S.PARTIALLY_FILLED and view.cum_lots == 3 and view.leaves_lots == 9_997
    assert view.cost == 60_000 + 2 * 60_001
    assert view.avg_px == "3000.03333333"                          # (3000 + 2 x 3000.05) / 3, 8 decimals
    assert view.cum_qty == Decimal("0.03") and view.summary()["leaves_qty"] == "99.97"


def test_order_when_acked_moves_to_new_and_keeps_the_venue_order_id():
    oms = Oms()
    view, _ = oms.apply(accepted(1, "c1", 5, 100), acked(1, b"SIM-77"))
    assert view.status == S.NEW and view.acked and view.venue_order_id == "SIM-77" and view.live


def test_order_when_filled_before_its_ack_is_partially_filled():
    oms = Oms()
    view, _ = oms.apply(accepted(1, "c1", 5, 100), filled(1, 2, 100))
    assert view.status == S.PARTIALLY_FILLED and not view.acked


# -- CANCEL -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("before, status", [
    ([], S.PENDING_NEW),
    ([acked(1)], S.NEW),
    ([acked(1), filled(1, 4, 100)], S.PARTIALLY_FILLED),
])
def test_order_when_cancel_requested_then_rejected_returns_to_the_previous_status(before, status):
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10, 100), *before)
    assert view.status == status
    oms.apply(cancel_requested(1, 1, "c2", "c1"))
    assert view.status == S.PENDING_CANCEL and view.cancel.number == 1 and view.live
    oms.apply(answer(ev.CANCEL_REJECTED, 1, 1))
    assert view.status == status and view.cancel is None
    assert oms.manager.illegal_transitions == 0


def test_order_when_filled_while_cancel_pending_stays_pending_then_rejected_is_partially_filled():
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10, 100), acked(1), cancel_requested(1, 1, "c2", "c1"),
                         filled(1, 3, 100))
    assert view.status == S.PENDING_CANCEL and view.cum_lots == 3
    oms.apply(answer(ev.CANCEL_REJECTED, 1, 1))
    assert view.status == S.PARTIALLY_FILLED


def test_order_when_cancel_confirmed_is_canceled_and_finished():
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10, 100), acked(1), cancel_requested(1, 1, "c2", "c1"),
                         answer(ev.CANCELED, 1, 1))
    assert view.status == S.CANCELED and view.leaves_lots == 0 and not view.live and view.cancel is None
    assert oms.orders.open_orders() == []
    assert oms.orders.find_client("client1", "c2") is view              # the cancel's ClOrdID names it too


def test_order_when_a_cancel_reject_answers_an_older_request_stays_pending():
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10, 100), acked(1), cancel_requested(1, 2, "c3", "c1"),
                         answer(ev.CANCEL_REJECTED, 1, 1))
    assert view.status == S.PENDING_CANCEL and view.cancel.number == 2


def test_order_when_the_gateway_cancels_keeps_the_reason_and_no_client_id():
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10, 100), acked(1),
                         cancel_requested(1, 1, "", "c1", reason=ev.CANCEL_KILL_SWITCH))
    assert view.status == S.PENDING_CANCEL and view.cancel.reason == ev.CANCEL_KILL_SWITCH
    assert view.cl_ord_ids == ["c1"]


# -- REPLACE ----------------------------------------------------------------------------------------

def test_order_when_replace_accepted_then_replaced_moves_the_ids_and_the_terms():
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 5_000, 60_000, instrument_id=ETH), acked(1),
                         replace_accepted(1, 1, "c2", "c1", 10_000, 60_100))
    assert view.status == S.PENDING_REPLACE and view.order_qty == "50"          # old terms until replaced
    assert oms.orders.find_client("client1", "c2") is view
    oms.apply(answer(ev.REPLACED, 1, 1, qty_lots=10_000, price_ticks=60_100))
    assert view.status == S.NEW and view.replace is None
    assert view.order_qty == "100" and view.price == "3005"                     # never "1E+2"
    assert view.cl_ord_id == "c2" and view.venue_cl_ord_id == "T1-1.1"
    assert view.status_of("c1") == S.REPLACED and view.status_of("c2") == S.NEW
    assert oms.orders.find_client("client1", "c1") is view
    assert view.cl_ord_ids == ["c1", "c2"] and view.replaced_cl_ord_ids == ["c1"]


def test_order_when_replaced_twice_names_the_venue_id_after_the_latest_request():
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10, 100), acked(1),
                         replace_accepted(1, 1, "c2", "c1", 12, 100),
                         answer(ev.REPLACED, 1, 1, qty_lots=12, price_ticks=100),
                         replace_accepted(1, 2, "c3", "c2", 15, 101),
                         answer(ev.REPLACED, 1, 2, qty_lots=15, price_ticks=101))
    assert view.venue_cl_ord_id == "T1-1.2" and view.cl_ord_id == "c3" and view.next_request == 2
    assert [view.status_of(cl_ord_id) for cl_ord_id in ("c1", "c2", "c3")] == [S.REPLACED, S.REPLACED, S.NEW]


def test_order_when_replace_rejected_keeps_its_terms_and_returns_to_the_previous_status():
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10, 100), acked(1), filled(1, 2, 100),
                         replace_accepted(1, 1, "c2", "c1", 15, 101), answer(ev.REPLACE_REJECTED, 1, 1))
    assert view.status == S.PARTIALLY_FILLED and view.order_qty == "10" and view.price == "1"
    assert view.cl_ord_id == "c1" and view.replace is None


def test_order_when_a_market_order_is_replaced_keeps_no_price():
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10, 0, ord_type=1), acked(1), replace_accepted(1, 1, "c2", "c1", 20, 0),
                         answer(ev.REPLACED, 1, 1, qty_lots=20, price_ticks=0))
    assert view.order_qty == "20" and view.price is None and view.summary()["price"] is None


def test_order_when_cancel_requested_while_replace_pending_is_pending_cancel_once_replaced():
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10, 100), acked(1), replace_accepted(1, 1, "c2", "c1", 15, 100),
                         cancel_requested(1, 2, "c3", "c2"))
    assert view.status == S.PENDING_REPLACE
    oms.apply(answer(ev.REPLACED, 1, 1, qty_lots=15, price_ticks=100))
    assert view.status == S.PENDING_CANCEL and view.qty_lots == 15
    oms.apply(answer(ev.CANCELED, 1, 2))
    assert view.status == S.CANCELED and oms.manager.illegal_transitions == 0


def test_order_when_replace_accepted_while_cancel_pending_is_back_to_new_after_both_are_refused():
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10, 100), acked(1), cancel_requested(1, 1, "c2", "c1"),
                         replace_accepted(1, 2, "c3", "c1", 15, 100))
    assert view.status == S.PENDING_CANCEL
    oms.apply(answer(ev.CANCEL_REJECTED, 1, 1))
    assert view.status == S.PENDING_REPLACE
    oms.apply(answer(ev.REPLACE_REJECTED, 1, 2))
    assert view.status == S.NEW and oms.manager.illegal_transitions == 0


# -- REJECTS ----------------------------------------------------------------------------------------

def test_order_when_the_venue_rejects_it_while_pending_new_is_rejected_with_the_venues_text():
    oms = Oms()
    view, _ = oms.apply(accepted(1, "c1", 10, 100),
                        answer(ev.VENUE_REJECTED, 1, code=30, text_a=b"instrument closed"))
    assert view.status == S.REJECTED and not view.live and view.leaves_lots == 0
    assert view.reject_code == 30 and view.reject_text == "instrument closed"


def test_order_when_the_gateway_refused_it_is_a_rejected_view_with_a_negative_id():
    oms = Oms()
    first, second = oms.apply(
        make_event(ev.REJECTED, instrument_id=AAPL, session_id=1, side=2, ord_type=2, qty_lots=5,
                   price_ticks=-1, code=10, text_a=b"r1"),
        make_event(ev.REJECTED, instrument_id=-1, session_id=0, qty_lots=-1, price_ticks=0, code=3,
                   text_a=b"r2", text_c=b"DOGE-USD"))
    assert (first.order_id, second.order_id) == (-1, -2)
    assert first.status == S.REJECTED and first.gateway_order_id == "NONE" and first.reject_code == 10
    assert first.session == "client2" and first.symbol == "AAPL" and first.price_ticks == 0 and not first.live
    assert second.symbol == "DOGE-USD" and second.venue == "" and second.qty_lots == 0
    assert oms.orders.find_client("client2", "r1") is first
    assert oms.orders.open_orders() == []


# -- ILLEGAL AND LATE EVENTS ------------------------------------------------------------------------

@pytest.mark.parametrize("path, last", [
    ([acked(1), filled(1, 10, 100)], S.FILLED),
    ([acked(1), answer(ev.CANCELED, 1)], S.CANCELED),
    ([acked(1), answer(ev.EXPIRED, 1)], S.EXPIRED),
    ([acked(1), answer(ev.DONE_FOR_DAY, 1)], S.DONE_FOR_DAY),
    ([answer(ev.VENUE_REJECTED, 1)], S.REJECTED),
])
def test_order_when_finished_counts_later_events_as_illegal_and_keeps_its_status(path, last):
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10, 100), *path)
    assert view.status == last
    assert oms.apply(acked(1), answer(ev.REPLACED, 1, 1, qty_lots=5, price_ticks=100)) == [None] * 2
    assert oms.manager.illegal_transitions == 2 and view.status == last
    assert oms.illegal[0] == (1, f"acked in {view.summary()['status']}")
    # A fill after the end is the venue's word: booked (the engine raised the overfill alarm), not illegal.
    cum = view.cum_lots
    assert oms.apply(filled(1, 1, 100)) == [view] and view.cum_lots == cum + 1 and view.status == last


def test_order_when_replaced_without_a_pending_replace_counts_an_illegal_transition():
    oms = Oms()
    view, _ = oms.apply(accepted(1, "c1", 10, 100), acked(1))
    assert oms.manager.apply(answer(ev.REPLACED, 1, 1, qty_lots=20, price_ticks=100)) is None
    assert oms.illegal == [(1, "replaced in New")] and view.qty_lots == 10


def test_order_when_the_event_names_an_unknown_order_counts_it_and_returns_none():
    oms = Oms()
    assert oms.manager.apply(filled(99, 1, 100)) is None
    assert oms.illegal == [(None, "unknown order")] and oms.manager.illegal_transitions == 1
    assert oms.fills == []


def test_order_when_cancel_rejected_arrives_after_it_filled_is_not_illegal():
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10, 100), acked(1), cancel_requested(1, 1, "c2", "c1"),
                         filled(1, 10, 100))
    assert view.status == S.FILLED and view.cancel is None
    assert oms.manager.apply(answer(ev.CANCEL_REJECTED, 1, 1)) is view
    assert oms.manager.apply(answer(ev.REPLACE_REJECTED, 1, 2)) is view
    assert oms.manager.illegal_transitions == 0 and view.status == S.FILLED


# -- RETENTION AND LOOKUPS --------------------------------------------------------------------------

def test_orders_when_more_finished_than_retained_forget_the_oldest_finished_but_never_a_live_one():
    oms = Oms(retention_orders=2)
    oms.apply(accepted(1, "live", 10, 100), acked(1))
    for order_id in (2, 3, 4):
        oms.apply(accepted(order_id, f"c{order_id}", 10, 100), answer(ev.CANCELED, order_id))
    assert sorted(oms.orders.by_id) == [1, 3, 4] and oms.orders.forgotten == 1
    assert oms.orders.find_client("client1", "c2") is None
    assert oms.orders.find_client("client1", "live").order_id == 1
    for order_id in range(5, 20):
        oms.apply(accepted(order_id, f"c{order_id}", 10, 100), filled(order_id, 10, 100))
    assert 1 in oms.orders.by_id and oms.orders.by_id[1].live
    assert len(oms.orders.by_id) == 3 and oms.orders.forgotten == 16


def test_orders_when_many_are_refused_still_retain_the_accepted_finished_ones():
    oms = Oms(retention_orders=2)
    oms.apply(accepted(1, "c1", 10, 100), answer(ev.CANCELED, 1))
    for number in range(5):
        oms.apply(make_event(ev.REJECTED, instrument_id=AAPL, session_id=0, code=3, text_a=f"r{number}".encode()))
    assert 1 in oms.orders.by_id                             # refused ones push out only refused ones
    assert sum(1 for order_id in oms.orders.by_id if order_id < 0) == 2


def test_orders_when_a_duplicate_cl_ord_id_is_refused_still_find_the_live_order_by_it():
    oms = Oms(retention_orders=0)                            # the refused one is forgotten at once
    live, refused = oms.apply(accepted(1, "c1", 10, 100),
                              make_event(ev.REJECTED, instrument_id=AAPL, session_id=0, code=32, text_a=b"c1"))
    assert live.live and not refused.live
    assert oms.orders.find_client("client1", "c1") is live


def test_orders_when_asked_for_open_orders_lists_only_live_ones_of_the_session():
    oms = Oms()
    oms.apply(accepted(1, "a", 10, 100, session_id=0), accepted(2, "b", 10, 100, session_id=1),
              accepted(3, "c", 10, 100, session_id=0), answer(ev.CANCELED, 3))
    assert [view.order_id for view in oms.orders.open_orders()] == [1, 2]
    assert [view.order_id for view in oms.orders.open_orders("client2")] == [2]


def test_order_when_account_is_missing_books_to_the_session():
    oms = Oms()
    mine, theirs = oms.apply(accepted(1, "a", 10, 100), accepted(2, "b", 10, 100, account=b"ACCT-9"))
    assert mine.account == "client1" and theirs.account == "ACCT-9"


# -- STATE ------------------------------------------------------------------------------------------

def busy_order():
    """An order partially filled, replaced once, with a cancel and a replace pending."""
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10_000, 60_000, instrument_id=ETH, side=2, account=b"ACCT"),
                         acked(1, b"SIM-1"), filled(1, 300, 60_000, b"E1"),
                         replace_accepted(1, 1, "c2", "c1", 8_000, 60_020),
                         answer(ev.REPLACED, 1, 1, qty_lots=8_000, price_ticks=60_020),
                         replace_accepted(1, 2, "c3", "c2", 9_000, 60_040), cancel_requested(1, 3, "c4", "c2"))
    assert oms.manager.illegal_transitions == 0
    return view


def test_view_when_rebuilt_from_its_state_is_the_same_order():
    view = busy_order()
    state = orjson.loads(orjson.dumps(view.state()))                 # as a snapshot stores it
    again = view_from_state(state, INSTRUMENTS[ETH])
    assert again.state() == view.state()
    assert again.summary() == view.summary()
    assert again.status_of("c1") == S.REPLACED and again.leaves_lots == view.leaves_lots == 7_700
    assert (again.cancel.kind, again.replace.kind) == ("cancel", "replace")
    assert again.replace.qty_lots == 9_000 and again.cancel.client_cl_ord_id == "c4"


def test_view_when_rebuilt_from_its_state_goes_on_through_the_state_machine():
    view = busy_order()
    orders = Orders(INSTRUMENTS, SESSIONS, ["simvenue"])
    orders.add(view_from_state(view.state(), INSTRUMENTS[ETH]))
    assert orders.find_client("client1", "c4") is orders.by_id[1]
    manager = OrderManager(orders)
    again = manager.apply(answer(ev.REPLACED, 1, 2, qty_lots=9_000, price_ticks=60_040))
    assert again.status == S.PENDING_CANCEL and again.cl_ord_id == "c3" and again.venue_cl_ord_id == "T1-1.2"
    manager.apply(answer(ev.CANCELED, 1, 3))
    assert again.status == S.CANCELED and manager.illegal_transitions == 0


def test_engine_restore_when_given_a_live_order_hands_over_its_ids_terms_and_requests():
    view = busy_order()
    order = engine_restore(view)
    assert order == {
        "in_book": True, "order_id": 1, "session": 0, "instrument": ETH, "venue": 0, "side": "2", "ord_type": "2", "tif": "0",
        "qty_lots": 8_000, "price_ticks": 60_020, "cum_lots": 300, "cost": 300 * 60_000,
        "status": S.PARTIALLY_FILLED, "acked": True, "cl_ord_id": "c2", "account": "ACCT",
        "venue_cl_ord_id": "T1-1.1", "venue_order_id": "SIM-1", "next_request": 3,
        "client_ids": ["c1", "c2", "c3", "c4"], "replaced_ids": ["c1"],
        "cancel": {"number": 3, "client_cl_ord_id": "c4", "orig_client_cl_ord_id": "c2", "qty_lots": 0,
                   "price_ticks": 0, "reason": 0, "text": ""},
        "replace": {"number": 2, "client_cl_ord_id": "c3", "orig_client_cl_ord_id": "c2", "qty_lots": 9_000,
                    "price_ticks": 60_040, "reason": 0, "text": ""},
    }


@pytest.mark.parametrize("events, status", [
    ([acked(1), cancel_requested(1, 1, "c2", "c1")], S.NEW),
    ([acked(1), cancel_requested(1, 1, "c2", "c1"), filled(1, 3, 100)], S.PARTIALLY_FILLED),
    ([cancel_requested(1, 1, "c2", "c1"), acked(1)], S.NEW),
    ([acked(1), replace_accepted(1, 1, "c2", "c1", 20, 100), filled(1, 3, 100)], S.PARTIALLY_FILLED),
])
def test_engine_restore_when_a_request_is_pending_gives_the_status_without_it(events, status):
    # The engine keeps the settled status and derives PendingCancel/PendingReplace from its requests.
    oms = Oms()
    view, *_ = oms.apply(accepted(1, "c1", 10, 100), *events)
    assert view.status in (S.PENDING_CANCEL, S.PENDING_REPLACE)
    assert engine_restore(view)["status"] == status
