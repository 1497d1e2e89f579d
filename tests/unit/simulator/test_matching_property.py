"""Random new/cancel/replace sequences: the engine agrees with a naive model and keeps its invariants.

The model keeps every live order in a plain list and sorts it on each match, the slowest possible
statement of price-time priority; the engine must produce the same fills, rejects and book.
"""

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixgate.simulator.matching import (
    CancelReject,
    ExecType,
    ExecutionReport,
    MatchingEngine,
    OrdStatus,
    SimInstrument,
    Trade,
)

TICK = Decimal("0.01")
OWNERS = ("A", "B")
LIVE_STATUSES = (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED)


class NaiveBook:
    """Price-time priority stated as plainly as possible, for one symbol."""

    def __init__(self):
        self.orders = {}        # order_id -> dict
        self.live = {}          # (owner, cl_ord_id) -> order_id
        self.finished = {}      # (owner, cl_ord_id) -> order_id
        self.order_count = 0
        self.sequence = 0

    def _resting(self, side):
        orders = [self.orders[order_id] for order_id in self.live.values() if self.orders[order_id]["side"] == side]
        if side == "BUY":
            return sorted(orders, key=lambda order: (-order["price"], order["sequence"]))
        return sorted(orders, key=lambda order: (order["price"], order["sequence"]))

    @staticmethod
    def _crosses(aggressor, price):
        if aggressor["price"] is None:
            return True
        return price <= aggressor["price"] if aggressor["side"] == "BUY" else price >= aggressor["price"]

    def _finish(self, order):
        self.live.pop((order["owner"], order["cl_ord_id"]), None)
        self.finished[(order["owner"], order["cl_ord_id"])] = order["order_id"]

    def _match(self, aggressor):
        fills = []
        for resting in self._resting("SELL" if aggressor["side"] == "BUY" else "BUY"):
            leaves = aggressor["qty"] - aggressor["cum"]
            if leaves == 0 or not self._crosses(aggressor, resting["price"]):
                break
            lots = min(leaves, resting["qty"] - resting["cum"])
            aggressor["cum"] += lots
            resting["cum"] += lots
            fills.append((aggressor["order_id"], resting["order_id"], resting["price"], lots))
            if resting["cum"] == resting["qty"]:
                self._finish(resting)
        return fills

    def new(self, owner, cl_ord_id, side, ord_type, lots, ticks, off_tick, tif):
        if (owner, cl_ord_id) in self.live or lots <= 0 or (ord_type == "LIMIT" and off_tick):
            return "REJECTED", []
        self.order_count += 1
        order = {"order_id": f"O{self.order_count}", "owner": owner, "cl_ord_id": cl_ord_id, "side": side,
                 "price": ticks if ord_type == "LIMIT" else None, "qty": lots, "cum": 0, "sequence": 0}
        self.orders[order["order_id"]] = order
        if tif == "FOK":
            opposite = self._resting("SELL" if side == "BUY" else "BUY")
            available = sum(o["qty"] - o["cum"] for o in opposite if self._crosses(order, o["price"]))
            if available < lots:
                self._finish(order)
                return "CANCELED", []
        fills = self._match(order)
        if order["cum"] == lots:
            self._finish(order)
            return "FILLED", fills
        if ord_type == "MARKET" or tif in ("IOC", "FOK"):
            self._finish(order)
            return "CANCELED", fills
        self.sequence += 1
        order["sequence"] = self.sequence
        self.live[(owner, cl_ord_id)] = order["order_id"]
        return "RESTING", fills

    def _find(self, owner, cl_ord_id, orig_cl_ord_id, side):
        order_id = self.live.get((owner, orig_cl_ord_id))
        if order_id is None:
            return None, "TOO_LATE" if (owner, orig_cl_ord_id) in self.finished else "UNKNOWN_ORDER"
        if self.orders[order_id]["side"] != side:
            return None, "UNKNOWN_ORDER"
        if cl_ord_id != orig_cl_ord_id and (owner, cl_ord_id) in self.live:
            return None, "DUPLICATE_CL_ORD_ID"
        return self.orders[order_id], ""

    def cancel(self, owner, cl_ord_id, orig_cl_ord_id, side):
        order, reason = self._find(owner, cl_ord_id, orig_cl_ord_id, side)
        if order is None:
            return reason, []
        del self.live[(owner, orig_cl_ord_id)]
        self.finished[(owner, orig_cl_ord_id)] = order["order_id"]
        order["cl_ord_id"] = cl_ord_id
        self._finish(order)
        return "CANCELED", []

    def replace(self, owner, cl_ord_id, orig_cl_ord_id, side, lots, ticks, off_tick):
        order, reason = self._find(owner, cl_ord_id, orig_cl_ord_id, side)
        if order is None:
            return reason, []
        price = order["price"] if ticks is None else ticks
        if lots <= 0 or (ticks is not None and off_tick) or lots <= order["cum"]:
            return "OTHER", []
        keeps_priority = price == order["price"] and lots <= order["qty"]
        order["qty"], order["price"] = lots, price
        del self.live[(owner, orig_cl_ord_id)]
        order["cl_ord_id"] = cl_ord_id
        self.live[(owner, cl_ord_id)] = order["order_id"]
        fills = []
        if not keeps_priority:
            self.sequence += 1
            order["sequence"] = self.sequence
            fills = self._match(order)
            if order["cum"] == order["qty"]:
                self._finish(order)
        return "REPLACED", fills

    def depth(self, side):
        levels = {}
        for order in self._resting(side):
            levels[order["price"]] = levels.get(order["price"], 0) + order["qty"] - order["cum"]
        return list(levels.items())


def price_of(ticks, off_tick):
    return Decimal(ticks) * TICK + (Decimal("0.005") if off_tick else 0)


cl_ord_ids = st.sampled_from([f"c{number}" for number in range(5)])
sides = st.sampled_from(["BUY", "SELL"])
ticks = st.integers(9_995, 10_005)
off_tick = st.integers(0, 19).map(lambda number: number == 0)
lots = st.integers(0, 8).map(lambda number: number if number < 8 else 1)   # 0 (invalid) now and then
operations = st.one_of(
    st.tuples(st.just("new"), st.sampled_from(OWNERS), cl_ord_ids, sides,
              st.sampled_from(["LIMIT"] * 5 + ["MARKET"]), lots, ticks, off_tick,
              st.sampled_from(["DAY", "GTC", "GTC", "IOC", "FOK"])),
    st.tuples(st.just("cancel"), st.sampled_from(OWNERS), cl_ord_ids, cl_ord_ids, sides),
    st.tuples(st.just("replace"), st.sampled_from(OWNERS), cl_ord_ids, cl_ord_ids, sides, lots,
              st.one_of(st.none(), ticks), off_tick),
)


def engine_fills(events):
    pairs = [event for event in events if isinstance(event, ExecutionReport) and event.exec_type is ExecType.TRADE]
    return [(aggressor.order_id, resting.order_id, int(resting.last_px / TICK), int(resting.last_qty))
            for aggressor, resting in zip(pairs[0::2], pairs[1::2])]


def engine_outcome(kind, events):
    first = events[0]
    if isinstance(first, CancelReject):
        return first.reason.value
    if kind == "new":
        if first.exec_type is ExecType.REJECTED:
            return "REJECTED"
        final = [event for event in events
                 if isinstance(event, ExecutionReport) and event.order_id == first.order_id][-1]
        return {OrdStatus.FILLED: "FILLED", OrdStatus.CANCELED: "CANCELED"}.get(final.ord_status, "RESTING")
    return first.exec_type.value


def check_reports(events):
    for event in events:
        if not isinstance(event, ExecutionReport):
            continue
        assert event.leaves_qty >= 0 and event.cum_qty >= 0
        if event.ord_status in LIVE_STATUSES:
            assert event.cum_qty + event.leaves_qty == event.order_qty
            assert event.leaves_qty > 0
        elif event.ord_status is OrdStatus.FILLED:
            assert event.cum_qty == event.order_qty and event.leaves_qty == 0
        else:
            assert event.leaves_qty == 0
        if event.exec_type is ExecType.TRADE:
            assert event.last_qty > 0 and event.cum_qty > 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, max_size=60))
def test_engine_when_driven_by_random_requests_matches_the_naive_model_and_keeps_invariants(requests):
    engine = MatchingEngine([SimInstrument("XYZ", TICK, Decimal(1), Decimal(100))])
    model = NaiveBook()
    bought = sold = printed = Decimal(0)
    for now_ns, request in enumerate(requests):
        kind, owner = request[0], request[1]
        if kind == "new":
            _, _, cl_ord_id, side, ord_type, quantity, price_ticks, is_off_tick, tif = request
            events = engine.new_order(owner, cl_ord_id, "XYZ", side, ord_type, Decimal(quantity),
                                      price_of(price_ticks, is_off_tick), tif, now_ns)
            expected = model.new(owner, cl_ord_id, side, ord_type, quantity, price_ticks, is_off_tick, tif)
        elif kind == "cancel":
            _, _, cl_ord_id, orig_cl_ord_id, side = request
            events = engine.cancel(owner, cl_ord_id, orig_cl_ord_id, "XYZ", side, now_ns)
            expected = model.cancel(owner, cl_ord_id, orig_cl_ord_id, side)
        else:
            _, _, cl_ord_id, orig_cl_ord_id, side, quantity, price_ticks, is_off_tick = request
            price = None if price_ticks is None else price_of(price_ticks, is_off_tick)
            events = engine.replace(owner, cl_ord_id, orig_cl_ord_id, "XYZ", side, Decimal(quantity), price, now_ns)
            expected = model.replace(owner, cl_ord_id, orig_cl_ord_id, side, quantity, price_ticks, is_off_tick)

        assert (engine_outcome(kind, events), engine_fills(events)) == expected
        check_reports(events)
        for event in events:
            if isinstance(event, ExecutionReport) and event.exec_type is ExecType.TRADE:
                if event.side.is_buy:
                    bought += event.last_qty
                else:
                    sold += event.last_qty
            elif isinstance(event, Trade):
                printed += event.qty
        assert bought == sold == printed

        best_bid, _, best_ask, _ = engine.top_of_book("XYZ")
        assert best_bid is None or best_ask is None or best_bid < best_ask
        bids, asks = engine.depth("XYZ", levels=100)
        assert [(int(price / TICK), int(qty)) for price, qty in bids] == model.depth("BUY")
        assert [(int(price / TICK), int(qty)) for price, qty in asks] == model.depth("SELL")
        for who in OWNERS:
            open_orders = engine.open_orders(who)
            check_reports(open_orders)
            assert sorted((r.order_id, r.cl_ord_id) for r in open_orders) == sorted(
                (model.orders[order_id]["order_id"], cl) for (owner_key, cl), order_id in model.live.items()
                if owner_key == who)
