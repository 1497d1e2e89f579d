"""The order router: what the gateway does with each client request and each venue report.

It decides with the hot path (``fixgate._fast``), keeps the ids that connect a client's orders to
the venue's, pushes one event per decision on the ring of the calling thread, and answers through
links: a `ClientLink` to send reports to clients and one `VenueLink` per venue. It imports no
QuickFIX; ``fixgate.fix.gateway_app`` calls it from QuickFIX's threads and implements the links.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Callable, Protocol

import structlog

from fixgate._fast.codes import EventKind, RejectCode as R, reject_name
from fixgate.config import ClientSettings, Config
from fixgate.core.events import REQUESTS, VENUE, EventSink
from fixgate.core.latency import CHECK_BUCKETS_NS, LatencyHistogram, StageTimes
from fixgate.core.messages import (
    ORD_TYPE_LIMIT,
    ORD_TYPE_MARKET,
    SIDE_BUY,
    SIDE_SELL,
    SIDE_SELL_SHORT,
    TIME_IN_FORCE_NAMES,
    CancelReject,
    CancelRequest,
    CxlRejReason,
    CxlRejResponseTo,
    Execution,
    ExecType,
    MarketData,
    MarketDataRequest,
    MassStatusRequest,
    NewOrder,
    OrdRejReason,
    OrdStatus,
    ReplaceRequest,
    StatusRequest,
)
from fixgate.core.orders import TERMINAL, OrderRecord, OrderRegistry, VenueRequest
from fixgate.core.rejects import describe_reject

log = structlog.get_logger("fixgate.router")

SIDES = {SIDE_BUY: 1, SIDE_SELL: 2, SIDE_SELL_SHORT: 5}
KILLED_STATE = 3
ORD_TYPES = {ORD_TYPE_MARKET: 1, ORD_TYPE_LIMIT: 2}

# Reject codes -> OrdRejReason(103).
ORD_REJ_REASONS = {
    R.UNKNOWN_INSTRUMENT: OrdRejReason.UNKNOWN_SYMBOL,
    R.INSTRUMENT_NOT_PERMITTED: OrdRejReason.UNKNOWN_SYMBOL,
    R.INSTRUMENT_HALTED: OrdRejReason.EXCHANGE_CLOSED,
    R.VENUE_UNAVAILABLE: OrdRejReason.EXCHANGE_CLOSED,
    R.DUPLICATE_CL_ORD_ID: OrdRejReason.DUPLICATE_ORDER,
    R.INVALID_QUANTITY: OrdRejReason.INCORRECT_QUANTITY,
    R.QUANTITY_NOT_LOT_MULTIPLE: OrdRejReason.INCORRECT_QUANTITY,
    R.INVALID_FIELD: OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC,
    R.INVALID_SIDE: OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC,
    R.INVALID_ORDER_TYPE: OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC,
}
LIMIT_REJECTS = frozenset({
    R.MAX_ORDER_QUANTITY, R.WARNING_MAX_ORDER_QUANTITY, R.MAX_ORDER_NOTIONAL, R.MAX_ACCOUNT_ORDER_NOTIONAL,
    R.ADV_PARTICIPATION, R.POSITION_LIMIT, R.GROSS_EXPOSURE, R.LEVERAGE, R.DAILY_ORDER_COUNT,
    R.DAILY_NOTIONAL, R.MAX_OPEN_ORDERS, R.PRICE_COLLAR, R.WARNING_PRICE_COLLAR,
})

# Venue ExecType -> ring event kind.
VENUE_EVENTS = {
    ExecType.NEW: EventKind.ACKED,
    ExecType.TRADE: EventKind.FILLED,
    ExecType.CANCELED: EventKind.CANCELED,
    ExecType.EXPIRED: EventKind.EXPIRED,
    ExecType.DONE_FOR_DAY: EventKind.DONE_FOR_DAY,
    ExecType.REPLACED: EventKind.REPLACED,
    ExecType.REJECTED: EventKind.VENUE_REJECTED,
}


class ClientLink(Protocol):
    def send_execution(self, client: "ClientContext", report: Execution) -> bool: ...
    def send_cancel_reject(self, client: "ClientContext", reject: CancelReject) -> bool: ...


class VenueLink(Protocol):
    def is_logged_on(self) -> bool: ...
    def send_new_order(self, order: NewOrder, transact_ns: int) -> bool: ...
    def send_cancel(self, request: CancelRequest, transact_ns: int) -> bool: ...
    def send_replace(self, request: ReplaceRequest, transact_ns: int) -> bool: ...
    def send_status_request(self, request: StatusRequest) -> bool: ...
    def send_market_data_request(self, request: MarketDataRequest) -> bool: ...
    def send_mass_status_request(self, request: MassStatusRequest) -> bool: ...


@dataclass
class ClientContext:
    """A configured client: its throttle index, permissions and session state."""

    settings: ClientSettings
    index: int
    logged_on: bool = False
    permitted: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.settings.name

    def may_trade(self, symbol: str) -> bool:
        return "*" in self.permitted or symbol in self.permitted


@dataclass
class TopOfBook:
    """The venue's best bid and offer for one instrument, from W and X messages."""

    bid: float | None = None
    ask: float | None = None


@dataclass
class RouterCounters:
    received: int = 0
    received_by_session: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    fills: int = 0
    cancels: int = 0
    replaces: int = 0
    unknown_venue_reports: int = 0
    ring_full: int = 0
    overfills: int = 0
    duplicate_fills: int = 0
    reconciled: int = 0
    unknown_venue_orders: int = 0


def _number(text: str | None) -> float:
    """Return `text` as a float; NaN when missing or not a number (the checks reject NaN)."""
    if text is None:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


class Router:
    """Client requests in, venue messages out; venue reports in, client reports out.

    Parameters
    ----------
    config : Config
        Clients, venues and instruments.
    book : fixgate._fast.risk.RiskBook
        The risk book; its instruments and quote book are used too.
    sink : EventSink
        Where each thread pushes its events.
    client_link : ClientLink
        Sends reports to clients.
    venue_links : dict[str, VenueLink]
        One link per venue name.
    run_token : str
        Makes gateway order ids and venue ClOrdIDs unique across restarts.
    clock : callable
        Returns the time in nanoseconds since the epoch.
    """

    def __init__(self, config: Config, book, sink: EventSink, client_link: ClientLink,
                 venue_links: dict[str, VenueLink], *, run_token: str,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self.book = book
        self.instruments = book.instruments
        self.quotes = book.quotes
        self.sink = sink
        self.client_link = client_link
        self.venue_links = venue_links
        self.run_token = run_token
        self.clock = clock
        self.registry = OrderRegistry()
        self.counters = RouterCounters()
        self.clients = {client.comp_id: ClientContext(client, index, permitted=frozenset(client.instruments))
                        for index, client in enumerate(config.clients)}
        self.clients_by_name = {context.name: context for context in self.clients.values()}
        self.venue_of: dict[int, str] = {}
        self.lot_sizes: dict[int, Decimal] = {}
        for instrument in config.instruments:
            instrument_id = self.instruments.id_of(instrument.symbol)
            self.venue_of[instrument_id] = instrument.venue
            self.lot_sizes[instrument_id] = instrument.lot_size
        self.tops: dict[int, TopOfBook] = {}
        self.check_latency = LatencyHistogram(CHECK_BUCKETS_NS)
        self.stages = StageTimes()
        self._exec_ids = itertools.count(1)
        self._request_numbers = itertools.count(1)
        self._md_requests = itertools.count(1)
        self._reconciliations = itertools.count(1)
        self.accepting = True
        self.journal = None             # set by the gateway: intents are journaled before they are sent
        self.risk_reason = ""           # why the risk state is what it is (set by the risk agent)

    # -- IDS --------------------------------------------------------------------------------------

    def _exec_id(self) -> str:
        return f"{self.run_token}-E{next(self._exec_ids)}"

    def _venue_request_id(self, record: OrderRecord) -> str:
        return f"{record.gateway_order_id}.{next(self._request_numbers)}"

    # -- NEW ORDERS -------------------------------------------------------------------------------

    def on_new_order(self, client: ClientContext, order: NewOrder, recv_ns: int) -> None:
        """Check a NewOrderSingle and route it, or reject it with a reason."""
        self.counters.received += 1
        self.counters.received_by_session[client.name] = self.counters.received_by_session.get(client.name, 0) + 1
        if self.registry.known_cl_ord_id(client.name, order.cl_ord_id):
            self._reject_new(client, order, R.DUPLICATE_CL_ORD_ID, f"duplicate ClOrdID {order.cl_ord_id}",
                             recv_ns, register=False)
            return
        instrument_id = self.instruments.id_of(order.symbol)
        side = SIDES.get(order.side, 0)
        ord_type = ORD_TYPES.get(order.ord_type, 0)
        qty = _number(order.order_qty)
        price = _number(order.price) if ord_type == 2 else 0.0
        code, text = self._precheck(client, order, instrument_id)
        now_ns = self.clock()
        if code == R.OK:
            started = time.perf_counter_ns()
            code = self.book.check_new_order(client.index, instrument_id, side, ord_type, qty, price, now_ns)
            checked = time.perf_counter_ns() - started
            self.check_latency.record(checked)
            self.stages.record("checks", checked)
            if code == R.KILL_SWITCH:
                text = f"kill switch active: {self.risk_reason or 'no reason given'}"
            elif code != R.OK:
                text = describe_reject(code, self.book, instrument_id=instrument_id, side=side,
                                       ord_type=ord_type, qty=qty, price=price)
        if code != R.OK:
            self._reject_new(client, order, code, text, recv_ns, instrument_id=instrument_id)
            return
        order_id = self.book.last_order_id
        venue_name = self.venue_of[instrument_id]
        gateway_order_id = f"{self.run_token}-{order_id}"
        record = OrderRecord(
            order_id=order_id, gateway_order_id=gateway_order_id, session=client.name,
            account=order.account or client.name, cl_ord_id=order.cl_ord_id, symbol=order.symbol,
            instrument_id=instrument_id, side=order.side, ord_type=order.ord_type,
            time_in_force=order.time_in_force, order_qty=order.order_qty, price=order.price,
            lot_size=self.lot_sizes[instrument_id], session_index=client.index, venue=venue_name,
            venue_cl_ord_id=gateway_order_id)
        self.registry.add(record)
        qty_lots = self._lots(record, order.order_qty)
        started = time.perf_counter_ns()
        self._write_ahead(EventKind.ACCEPTED, record, qty_lots=qty_lots, price=price)
        journaled = time.perf_counter_ns()
        sent = self.venue_links[venue_name].send_new_order(
            NewOrder(cl_ord_id=gateway_order_id, symbol=order.symbol, side=order.side, ord_type=order.ord_type,
                     order_qty=order.order_qty, price=order.price, time_in_force=order.time_in_force,
                     account=order.account), now_ns)
        sent_ns = self.clock()
        self.stages.record("journal", journaled - started)
        self.stages.record("encode_send", time.perf_counter_ns() - journaled)
        self.stages.record("internal", sent_ns - recv_ns)
        if not sent:
            self.book.on_venue_rejected(order_id)
            record.reject_text = "venue not logged on"
            self._push(REQUESTS, EventKind.ACCEPTED, record, recv_ns=recv_ns, sent_ns=sent_ns)
            self._push(REQUESTS, EventKind.VENUE_REJECTED, record, reject_code=R.VENUE_UNAVAILABLE)
            self._count_reject(R.VENUE_UNAVAILABLE)
            self._send_reject(client, order, record.gateway_order_id, R.VENUE_UNAVAILABLE,
                              f"venue {venue_name} not logged on")
            return
        self.counters.accepted += 1
        if not self._push(REQUESTS, EventKind.ACCEPTED, record, recv_ns=recv_ns, sent_ns=sent_ns,
                          qty_lots=qty_lots, price=price):
            log.error("event_ring_full", event="accepted", order_id=gateway_order_id)
        log.debug("order_accepted", session=client.name, cl_ord_id=order.cl_ord_id, symbol=order.symbol,
                  order_id=gateway_order_id, latency_ns=sent_ns - recv_ns)

    def _precheck(self, client: ClientContext, order: NewOrder, instrument_id: int) -> tuple[int, str | None]:
        """The checks that need strings or sessions; the hot path does the rest."""
        if self.book.risk_state == KILLED_STATE:
            return R.KILL_SWITCH, f"kill switch active: {self.risk_reason or 'no reason given'}"
        if not self.accepting:
            return R.KILL_SWITCH, "gateway is shutting down"
        if not self.sink.has_room(REQUESTS, 4):
            return R.BUSY, "gateway busy: the event queue to the state thread is full"
        if order.order_qty is None:
            return R.INVALID_FIELD, "OrderQty(38) is required"
        if order.ord_type == ORD_TYPE_LIMIT and order.price is None:
            return R.INVALID_PRICE, "a limit order needs Price(44)"
        if order.time_in_force not in TIME_IN_FORCE_NAMES:
            return R.INVALID_FIELD, f"TimeInForce(59) {order.time_in_force!r} is not supported (0, 1, 3 or 4)"
        if instrument_id >= 0 and not client.may_trade(order.symbol):
            return R.INSTRUMENT_NOT_PERMITTED, f"instrument {order.symbol} is not permitted for {client.name}"
        if instrument_id >= 0 and not self.venue_links[self.venue_of[instrument_id]].is_logged_on():
            return R.VENUE_UNAVAILABLE, f"venue {self.venue_of[instrument_id]} not logged on"
        if instrument_id < 0:
            return R.UNKNOWN_INSTRUMENT, f"unknown instrument {order.symbol}"
        return R.OK, None

    def _reject_new(self, client: ClientContext, order: NewOrder, code: int, text: str | None, recv_ns: int,
                    *, register: bool = True, instrument_id: int = -1) -> None:
        self._count_reject(code)
        text = text or describe_reject(code, self.book, instrument_id=instrument_id,
                                       side=SIDES.get(order.side, 0), ord_type=ORD_TYPES.get(order.ord_type, 0),
                                       qty=_number(order.order_qty), price=_number(order.price))
        order_id = self.registry.next_reject_id()
        if register:
            record = OrderRecord(
                order_id=order_id, gateway_order_id="NONE", session=client.name,
                account=order.account or client.name, cl_ord_id=order.cl_ord_id, symbol=order.symbol,
                instrument_id=instrument_id, side=order.side, ord_type=order.ord_type,
                time_in_force=order.time_in_force, order_qty=order.order_qty or "0", price=order.price,
                lot_size=self.lot_sizes.get(instrument_id, Decimal(1)), session_index=client.index,
                reject_text=text)
            self.registry.add(record)
            self._push(REQUESTS, EventKind.REJECTED, record, reject_code=code, recv_ns=recv_ns,
                       sent_ns=self.clock())
        self._send_reject(client, order, "NONE", code, text)
        log.debug("order_rejected", session=client.name, cl_ord_id=order.cl_ord_id, symbol=order.symbol,
                 reason=reject_name(code), text=text)

    def _send_reject(self, client: ClientContext, order: NewOrder, order_id: str, code: int, text: str) -> None:
        reason = ORD_REJ_REASONS.get(code, OrdRejReason.ORDER_EXCEEDS_LIMIT if code in LIMIT_REJECTS
                                     else OrdRejReason.OTHER)
        self.client_link.send_execution(client, Execution(
            order_id=order_id, cl_ord_id=order.cl_ord_id, exec_id=self._exec_id(), exec_type=ExecType.REJECTED,
            ord_status=OrdStatus.REJECTED, symbol=order.symbol, side=order.side, leaves_qty="0", cum_qty="0",
            avg_px="0", order_qty=order.order_qty, price=order.price, ord_type=order.ord_type,
            text=f"{reject_name(code)}: {text}", ord_rej_reason=reason, transact_time_ns=self.clock()))

    def _count_reject(self, code: int) -> None:
        name = reject_name(code)
        self.counters.rejected[name] = self.counters.rejected.get(name, 0) + 1

    # -- CANCEL, REPLACE, STATUS ------------------------------------------------------------------

    def _cancel_reject(self, client: ClientContext, request: CancelRequest | ReplaceRequest,
                       record: OrderRecord | None, response_to: str, reason: str, text: str) -> None:
        self.client_link.send_cancel_reject(client, CancelReject(
            order_id=record.gateway_order_id if record else "NONE", cl_ord_id=request.cl_ord_id,
            orig_cl_ord_id=request.orig_cl_ord_id,
            ord_status=record.status_of(request.orig_cl_ord_id) if record else OrdStatus.REJECTED,
            response_to=response_to, reason=reason, text=text))
        log.debug("cancel_rejected" if response_to == CxlRejResponseTo.CANCEL else "replace_rejected",
                 session=client.name, cl_ord_id=request.cl_ord_id, orig_cl_ord_id=request.orig_cl_ord_id,
                 text=text)

    def _find_live(self, client: ClientContext, request: CancelRequest | ReplaceRequest,
                   response_to: str) -> OrderRecord | None:
        """Return the live order a cancel or replace refers to, or answer with a CancelReject."""
        if self.registry.known_cl_ord_id(client.name, request.cl_ord_id):
            self._cancel_reject(client, request, self.registry.find_client(client.name, request.orig_cl_ord_id),
                                response_to, CxlRejReason.DUPLICATE_CL_ORD_ID,
                                f"duplicate ClOrdID {request.cl_ord_id}")
            return None
        record = self.registry.find_client(client.name, request.orig_cl_ord_id)
        if record is None or record.order_id < 0:
            self._cancel_reject(client, request, None, response_to, CxlRejReason.UNKNOWN_ORDER,
                                f"unknown order {request.orig_cl_ord_id}")
            return None
        if self.book.order(record.order_id) is None or record.status in TERMINAL:
            self._cancel_reject(client, request, record, response_to, CxlRejReason.TOO_LATE,
                                f"order {request.orig_cl_ord_id} is no longer open")
            return None
        if any(pending.kind in ("cancel", "replace") for pending in record.requests.values()):
            self._cancel_reject(client, request, record, response_to, CxlRejReason.ALREADY_PENDING,
                                f"a cancel or replace of {request.orig_cl_ord_id} is already pending")
            return None
        if not self.venue_links[record.venue].is_logged_on():
            self._cancel_reject(client, request, record, response_to, CxlRejReason.OTHER,
                                f"venue {record.venue} not logged on")
            return None
        return record

    def on_cancel(self, client: ClientContext, request: CancelRequest, recv_ns: int) -> None:
        """Forward an OrderCancelRequest to the venue, or reject it."""
        record = self._find_live(client, request, CxlRejResponseTo.CANCEL)
        if record is None:
            return
        self._send_cancel(record, client_cl_ord_id=request.cl_ord_id, orig_client_cl_ord_id=record.cl_ord_id,
                          recv_ns=recv_ns, client=client, request=request)

    def _send_cancel(self, record: OrderRecord, *, client_cl_ord_id: str, orig_client_cl_ord_id: str,
                     recv_ns: int, client: ClientContext | None = None,
                     request: CancelRequest | None = None) -> bool:
        venue_request = VenueRequest("cancel", self._venue_request_id(record), client_cl_ord_id,
                                     orig_client_cl_ord_id)
        self.registry.add_request(record, venue_request)
        self._write_ahead(EventKind.CANCEL_REQUESTED, record)
        self._push(REQUESTS, EventKind.CANCEL_REQUESTED, record, recv_ns=recv_ns)
        sent = self.venue_links[record.venue].send_cancel(CancelRequest(
            cl_ord_id=venue_request.venue_cl_ord_id, orig_cl_ord_id=record.venue_cl_ord_id,
            symbol=record.symbol, side=record.side, order_qty=record.order_qty,
            order_id=record.venue_order_id or None), self.clock())
        if not sent:
            record.requests.pop(venue_request.venue_cl_ord_id, None)
            self._push(REQUESTS, EventKind.CANCEL_REJECTED, record)
            if client is not None and request is not None:
                self._cancel_reject(client, request, record, CxlRejResponseTo.CANCEL, CxlRejReason.OTHER,
                                    f"venue {record.venue} not logged on")
            return False
        self.counters.cancels += 1
        return True

    def on_replace(self, client: ClientContext, request: ReplaceRequest, recv_ns: int) -> None:
        """Check an OrderCancelReplaceRequest and forward it, or reject it."""
        record = self._find_live(client, request, CxlRejResponseTo.REPLACE)
        if record is None:
            return
        if request.ord_type != record.ord_type or request.side != record.side or request.symbol != record.symbol:
            self._cancel_reject(client, request, record, CxlRejResponseTo.REPLACE, CxlRejReason.OTHER,
                                "a replace may change quantity and price only, not side, symbol or order type")
            return
        qty = _number(request.order_qty)
        price = _number(request.price) if request.ord_type == ORD_TYPE_LIMIT else 0.0
        code = self.book.check_replace(record.order_id, qty, price, self.clock())
        if code != R.OK:
            text = describe_reject(code, self.book, instrument_id=record.instrument_id,
                                   side=SIDES[record.side], ord_type=ORD_TYPES[record.ord_type], qty=qty, price=price)
            self._count_reject(code)
            self._cancel_reject(client, request, record, CxlRejResponseTo.REPLACE, CxlRejReason.OTHER,
                                f"{reject_name(code)}: {text}")
            return
        venue_request = VenueRequest("replace", self._venue_request_id(record), request.cl_ord_id,
                                     record.cl_ord_id, order_qty=request.order_qty,
                                     price=request.price if request.ord_type == ORD_TYPE_LIMIT else None)
        self.registry.add_request(record, venue_request)
        self._write_ahead(EventKind.REPLACE_ACCEPTED, record, qty_lots=self._lots(record, request.order_qty), price=price)
        self._push(REQUESTS, EventKind.REPLACE_ACCEPTED, record, recv_ns=recv_ns,
                   qty_lots=self._lots(record, request.order_qty), price=price)
        sent = self.venue_links[record.venue].send_replace(ReplaceRequest(
            cl_ord_id=venue_request.venue_cl_ord_id, orig_cl_ord_id=record.venue_cl_ord_id,
            symbol=record.symbol, side=record.side, ord_type=record.ord_type, order_qty=request.order_qty,
            price=venue_request.price, time_in_force=record.time_in_force,
            order_id=record.venue_order_id or None), self.clock())
        if not sent:
            record.requests.pop(venue_request.venue_cl_ord_id, None)
            self.book.on_replace_rejected(record.order_id)
            self._push(REQUESTS, EventKind.REPLACE_REJECTED, record)
            self._cancel_reject(client, request, record, CxlRejResponseTo.REPLACE, CxlRejReason.OTHER,
                                f"venue {record.venue} not logged on")
            return
        self.counters.replaces += 1

    def on_status(self, client: ClientContext, request: StatusRequest) -> None:
        """Answer an OrderStatusRequest from the gateway's own order state."""
        record = self.registry.find_client(client.name, request.cl_ord_id)
        if record is None:
            self.client_link.send_execution(client, Execution(
                order_id=request.order_id or "NONE", cl_ord_id=request.cl_ord_id, exec_id=self._exec_id(),
                exec_type=ExecType.ORDER_STATUS, ord_status=OrdStatus.REJECTED, symbol=request.symbol,
                side=request.side, leaves_qty="0", cum_qty="0", avg_px="0", ord_rej_reason="5",
                text=f"unknown order {request.cl_ord_id}"))
            return
        self.client_link.send_execution(client, self._status_report(record, request.cl_ord_id))

    def _status_report(self, record: OrderRecord, cl_ord_id: str) -> Execution:
        return Execution(
            order_id=record.gateway_order_id, cl_ord_id=cl_ord_id, exec_id=self._exec_id(),
            exec_type=ExecType.ORDER_STATUS, ord_status=record.status_of(cl_ord_id), symbol=record.symbol,
            side=record.side, leaves_qty=str(record.leaves_qty), cum_qty=str(record.cum_qty),
            avg_px=str(record.avg_px), order_qty=record.order_qty, price=record.price, ord_type=record.ord_type,
            text=record.reject_text)

    # -- VENUE REPORTS ----------------------------------------------------------------------------

    def on_venue_execution(self, venue: str, report: Execution, recv_ns: int) -> None:
        """Apply a venue ExecutionReport to the book and relay it to the client at once."""
        if report.exec_type == ExecType.ORDER_STATUS:
            self._on_venue_status(venue, report, recv_ns)
            return
        found = self.registry.find_venue(report.cl_ord_id)
        if found is None and report.orig_cl_ord_id:
            found = self.registry.find_venue(report.orig_cl_ord_id)
        if found is None:
            self.counters.unknown_venue_reports += 1
            log.warning("venue_report_unknown", venue=venue, cl_ord_id=report.cl_ord_id,
                        exec_type=report.exec_type)
            return
        record, request = found
        if report.order_id and report.order_id != "NONE":
            record.venue_order_id = report.order_id
        kind = VENUE_EVENTS.get(report.exec_type)
        cl_ord_id, orig_cl_ord_id = record.cl_ord_id, None
        qty_lots, price = 0, 0.0
        if kind == EventKind.ACKED:
            self.book.on_acked(record.order_id)
        elif kind == EventKind.FILLED:
            if report.exec_id in self.registry.seen_exec_ids:
                # A fill the venue sent again (resend after a restart): booked once already.
                kind = None
                self.counters.duplicate_fills += 1
                log.info("fill_duplicate_ignored", venue=venue, order_id=record.gateway_order_id,
                         exec_id=report.exec_id)
            else:
                self.registry.seen_exec_ids.add(report.exec_id)
                record.fill_exec_ids.append(report.exec_id)
                price = _number(report.last_px)
                code = self.book.on_filled(record.order_id, _number(report.last_qty), price)
                if code != R.OK:
                    self.counters.overfills += code == R.OVERFILL
                    log.error("fill_anomaly", venue=venue, order_id=record.gateway_order_id,
                              reason=reject_name(code), last_qty=report.last_qty, cum_qty=report.cum_qty)
                qty_lots = self._lots(record, report.last_qty)
                self.counters.fills += 1
        elif kind in (EventKind.CANCELED, EventKind.EXPIRED, EventKind.DONE_FOR_DAY):
            self.book.on_canceled(record.order_id)
            if request is not None and request.kind == "cancel":
                cl_ord_id, orig_cl_ord_id = request.client_cl_ord_id, request.orig_client_cl_ord_id
                record.requests.pop(request.venue_cl_ord_id, None)
        elif kind == EventKind.REPLACED:
            self.book.on_replaced(record.order_id)
            if request is not None:
                orig_cl_ord_id = record.cl_ord_id
                record.replaced_cl_ord_ids.add(record.cl_ord_id)
                record.cl_ord_id = cl_ord_id = request.client_cl_ord_id
                record.cl_ord_ids.append(cl_ord_id)
                record.venue_cl_ord_id = request.venue_cl_ord_id
                record.requests.pop(request.venue_cl_ord_id, None)
                qty_lots = self._lots(record, request.order_qty)
                price = _number(request.price) if request.price is not None else 0.0
        elif kind == EventKind.VENUE_REJECTED:
            self.book.on_venue_rejected(record.order_id)
            record.reject_text = report.text
        elif request is not None and report.exec_type in (ExecType.PENDING_CANCEL, ExecType.PENDING_REPLACE):
            cl_ord_id, orig_cl_ord_id = request.client_cl_ord_id, request.orig_client_cl_ord_id
        if kind is not None:
            self._push(VENUE, kind, record, qty_lots=qty_lots, price=price, recv_ns=recv_ns,
                       cum_lots=self._lots(record, report.cum_qty), leaves_lots=self._lots(record, report.leaves_qty),
                       status=ord(report.ord_status[0]) if report.ord_status else 0)
        client = self.clients_by_name.get(record.session)
        if client is None:
            return
        self.client_link.send_execution(client, Execution(
            order_id=record.gateway_order_id, cl_ord_id=cl_ord_id, orig_cl_ord_id=orig_cl_ord_id,
            # Derived from the venue's ExecID: a report relayed again after a restart keeps its ExecID.
            exec_id=f"{venue}-{report.exec_id}", exec_type=report.exec_type, ord_status=report.ord_status,
            symbol=record.symbol, side=record.side, leaves_qty=report.leaves_qty, cum_qty=report.cum_qty,
            avg_px=report.avg_px, order_qty=report.order_qty or record.order_qty,
            price=report.price if report.price is not None else record.price, ord_type=record.ord_type,
            time_in_force=record.time_in_force, last_qty=report.last_qty, last_px=report.last_px,
            text=report.text, ord_rej_reason=report.ord_rej_reason, transact_time_ns=self.clock()))

    def on_venue_cancel_reject(self, venue: str, reject: CancelReject, recv_ns: int) -> None:
        """Undo a refused cancel or replace and relay the OrderCancelReject to the client."""
        found = self.registry.find_venue(reject.cl_ord_id)
        if found is None or found[1] is None:
            self.counters.unknown_venue_reports += 1
            log.warning("venue_cancel_reject_unknown", venue=venue, cl_ord_id=reject.cl_ord_id)
            return
        record, request = found
        record.requests.pop(request.venue_cl_ord_id, None)
        if request.kind == "replace":
            self.book.on_replace_rejected(record.order_id)
            self._push(VENUE, EventKind.REPLACE_REJECTED, record, recv_ns=recv_ns)
        else:
            self._push(VENUE, EventKind.CANCEL_REJECTED, record, recv_ns=recv_ns)
        client = self.clients_by_name.get(record.session)
        if client is None or request.client_cl_ord_id is None:
            return
        self.client_link.send_cancel_reject(client, CancelReject(
            order_id=record.gateway_order_id, cl_ord_id=request.client_cl_ord_id,
            orig_cl_ord_id=request.orig_client_cl_ord_id, ord_status=reject.ord_status,
            response_to=reject.response_to, reason=reject.reason, text=reject.text))

    # -- RECONCILIATION ---------------------------------------------------------------------------

    def reconcile(self, venue: str) -> int:
        """After a logon: ask the venue for the status of every order open here, and for every order
        it holds for us (mass status); `_on_venue_status` applies what it missed."""
        link = self.venue_links[venue]
        records = [record for record in self.registry.open_orders() if record.venue == venue and record.order_id > 0]
        for record in records:
            # The current id, and the new id of a replace that may or may not have happened.
            ids = [record.venue_cl_ord_id] + [request.venue_cl_ord_id for request in list(record.requests.values())
                                              if request.kind == "replace"]
            for venue_cl_ord_id in ids:
                link.send_status_request(StatusRequest(cl_ord_id=venue_cl_ord_id, symbol=record.symbol,
                                                       side=record.side))
        link.send_mass_status_request(MassStatusRequest(f"{self.run_token}-MS{next(self._reconciliations)}"))
        if records:
            log.info("reconciliation_started", venue=venue, open_orders=len(records))
        return len(records)

    def _on_venue_status(self, venue: str, report: Execution, recv_ns: int) -> None:
        found = self.registry.find_venue(report.cl_ord_id)
        if found is None:
            if report.ord_status in (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED, OrdStatus.PENDING_NEW) \
                    and report.order_id not in ("", "NONE"):
                # Live at the venue, unknown here (accepted just before a crash, never journaled): an
                # order nobody accounts for is cancelled.
                self.counters.unknown_venue_orders += 1
                self.venue_links[venue].send_cancel(CancelRequest(
                    cl_ord_id=f"{self.run_token}-UX{next(self._request_numbers)}", orig_cl_ord_id=report.cl_ord_id,
                    symbol=report.symbol, side=report.side, order_id=report.order_id), self.clock())
                log.error("venue_order_unknown_cancelled", venue=venue, venue_cl_ord_id=report.cl_ord_id,
                          symbol=report.symbol, leaves_qty=report.leaves_qty)
            return
        record, request = found
        if self.book.order(record.order_id) is None:
            return
        unknown = report.ord_status == OrdStatus.REJECTED and report.order_id in ("", "NONE")
        if request is not None and request.kind == "replace":
            if unknown:
                # The replace never reached the venue: the order keeps its terms.
                record.requests.pop(request.venue_cl_ord_id, None)
                self.book.on_replace_rejected(record.order_id)
                self._push(VENUE, EventKind.REPLACE_REJECTED, record, recv_ns=recv_ns)
                self._reconciled(venue, record, "replace never received by the venue")
                return
            # The venue knows the new id: the replace happened while the gateway was away.
            self.book.on_replaced(record.order_id)
            record.replaced_cl_ord_ids.add(record.cl_ord_id)
            record.cl_ord_id = request.client_cl_ord_id
            record.cl_ord_ids.append(request.client_cl_ord_id)
            record.venue_cl_ord_id = request.venue_cl_ord_id
            record.requests.pop(request.venue_cl_ord_id, None)
            self._push(VENUE, EventKind.REPLACED, record, qty_lots=self._lots(record, request.order_qty),
                       price=_number(request.price) if request.price is not None else 0.0, recv_ns=recv_ns)
            self._reconciled(venue, record, "replace applied at the venue")
        elif unknown:
            if any(pending.kind == "replace" for pending in record.requests.values()):
                return                       # known to the venue by the replace's id: that answer decides
            # The venue never received it: release it and tell the client.
            self.book.on_venue_rejected(record.order_id)
            record.reject_text = "the venue never received the order (found at reconciliation)"
            self._push(VENUE, EventKind.VENUE_REJECTED, record, recv_ns=recv_ns)
            self._reconciled(venue, record, "never received by the venue")
            client = self.clients_by_name.get(record.session)
            if client is not None:
                self.client_link.send_execution(client, Execution(
                    order_id=record.gateway_order_id, cl_ord_id=record.cl_ord_id, exec_id=self._exec_id(),
                    exec_type=ExecType.REJECTED, ord_status=OrdStatus.REJECTED, symbol=record.symbol,
                    side=record.side, leaves_qty="0", cum_qty=str(record.cum_qty), avg_px=str(record.avg_px),
                    order_qty=record.order_qty, price=record.price, ord_type=record.ord_type,
                    text=f"VENUE_UNAVAILABLE: {record.reject_text}", transact_time_ns=self.clock()))
            return
        slot = self.book.order(record.order_id)
        if slot is None:
            return
        venue_cum_lots = self._lots(record, report.cum_qty)
        if venue_cum_lots > slot["cum_lots"]:
            missing_lots = venue_cum_lots - slot["cum_lots"]
            missing = record.lot_size * missing_lots
            ours = record.lot_size * slot["cum_lots"]
            try:
                price = (Decimal(report.avg_px) * Decimal(report.cum_qty) - record.avg_px * ours) / missing
            except (ArithmeticError, ValueError):
                price = Decimal(report.avg_px or "0")
            exec_id = f"RECONCILED-{venue}-{report.exec_id}"
            self.registry.seen_exec_ids.add(exec_id)
            record.fill_exec_ids.append(exec_id)
            self.book.on_filled(record.order_id, float(missing), float(price))
            self._push(VENUE, EventKind.FILLED, record, qty_lots=missing_lots, price=float(price), recv_ns=recv_ns)
            self.counters.fills += 1
            self._reconciled(venue, record, f"missed fill of {missing} at {price:.10g}")
        terminal = {OrdStatus.FILLED: EventKind.CANCELED, OrdStatus.CANCELED: EventKind.CANCELED,
                    OrdStatus.EXPIRED: EventKind.EXPIRED, OrdStatus.DONE_FOR_DAY: EventKind.DONE_FOR_DAY}
        kind = terminal.get(report.ord_status)
        if kind is not None and self.book.order(record.order_id) is not None:
            self.book.on_canceled(record.order_id)
            self._push(VENUE, kind, record, recv_ns=recv_ns)
            self._reconciled(venue, record, f"closed at the venue ({report.ord_status})")
        elif record.status == OrdStatus.PENDING_NEW and report.ord_status in (OrdStatus.NEW,
                                                                              OrdStatus.PARTIALLY_FILLED):
            self.book.on_acked(record.order_id)
            self._push(VENUE, EventKind.ACKED, record, recv_ns=recv_ns)

    def _reconciled(self, venue: str, record: OrderRecord, difference: str) -> None:
        self.counters.reconciled += 1
        log.warning("order_reconciled", venue=venue, order_id=record.gateway_order_id, cl_ord_id=record.cl_ord_id,
                    difference=difference)

    # -- MARKET DATA ------------------------------------------------------------------------------

    def on_market_data(self, venue: str, data: MarketData, recv_ns: int) -> None:
        """Feed a venue's top of book and trades into the quote book."""
        instrument_id = self.instruments.id_of(data.symbol)
        if instrument_id < 0:
            return
        top = self.tops.get(instrument_id)
        if top is None or not data.incremental:
            top = self.tops[instrument_id] = TopOfBook()
        venue_ns = data.sending_time_ns or recv_ns
        for entry in data.entries:
            if entry.entry_type == "2":
                if entry.price is not None:
                    self.quotes.on_trade(instrument_id, _number(entry.price), venue_ns, recv_ns)
                continue
            if entry.position != 1 or entry.entry_type not in ("0", "1"):
                continue
            value = None if entry.action == "2" or entry.price is None else _number(entry.price)
            if entry.entry_type == "0":
                top.bid = value
            else:
                top.ask = value
        if top.bid is not None and top.ask is not None:
            self.quotes.on_quote(instrument_id, top.bid, top.ask, venue_ns, recv_ns)

    def market_data_request(self, venue: str) -> MarketDataRequest | None:
        """Return the subscription for `venue`'s instruments, or None when it has none."""
        symbols = [instrument.symbol for instrument in self.config.instruments if instrument.venue == venue]
        if not symbols:
            return None
        return MarketDataRequest(md_req_id=f"{self.run_token}-MD{next(self._md_requests)}", symbols=symbols)

    # -- SESSIONS ---------------------------------------------------------------------------------

    def on_client_logon(self, client: ClientContext) -> None:
        client.logged_on = True
        log.info("session_logged_on", session=client.name, side="client")

    def on_client_logout(self, client: ClientContext) -> None:
        """Mark the client gone; cancel its open orders when so configured."""
        was_logged_on, client.logged_on = client.logged_on, False
        log.info("session_logged_out", session=client.name, side="client")
        if was_logged_on and client.settings.cancel_on_disconnect:
            cancelled = self.cancel_all(session=client.name, reason="cancel on disconnect")
            if cancelled:
                log.info("orders_cancelled_on_disconnect", session=client.name, count=cancelled)

    def cancel_all(self, session: str | None = None, reason: str = "cancel all") -> int:
        """Send a cancel for every live order (of `session` when given); return how many were sent."""
        sent = 0
        for record in self.registry.open_orders(session):
            if self.book.order(record.order_id) is None or record.order_id < 0:
                continue
            if any(pending.kind == "cancel" for pending in record.requests.values()):
                continue
            if not self.venue_links[record.venue].is_logged_on():
                continue
            if self._send_cancel(record, client_cl_ord_id=f"{record.gateway_order_id}-X",
                                 orig_client_cl_ord_id=record.cl_ord_id, recv_ns=self.clock()):
                sent += 1
        if sent:
            log.info("cancel_all_sent", session=session, count=sent, reason=reason)
        return sent

    # -- EVENTS -----------------------------------------------------------------------------------

    def _write_ahead(self, kind: int, record: OrderRecord, *, qty_lots: int = 0, price: float = 0.0) -> None:
        """Journal an intent (an order, a cancel, a replace) before it goes to the venue, so that after
        a crash the gateway knows what it may have sent and asks the venue rather than resend."""
        if self.journal is not None:
            self.journal.write_ahead(kind, record, qty_lots=qty_lots, price=price if math.isfinite(price) else 0.0)

    def _lots(self, record: OrderRecord, quantity: str | None) -> int:
        if quantity is None:
            return 0
        if record.lot_size == 1 and quantity.isascii() and quantity.isdigit():
            return int(quantity)
        try:
            return int((Decimal(quantity) / record.lot_size).to_integral_value())
        except (InvalidOperation, ValueError):
            return 0

    def _push(self, role: str, kind: int, record: OrderRecord, *, qty_lots: int = 0, cum_lots: int = 0,
              leaves_lots: int = 0, price: float = 0.0, status: int = 0, reject_code: int = 0,
              recv_ns: int = 0, sent_ns: int = 0) -> bool:
        pushed = self.sink.push(role, kind, record.order_id, instrument_id=max(record.instrument_id, 0),
                                session_id=record.session_index, side=SIDES.get(record.side, 0), status=status,
                                reject_code=reject_code, qty_lots=qty_lots, cum_lots=cum_lots,
                                leaves_lots=leaves_lots, price=price if math.isfinite(price) else 0.0,
                                recv_ns=recv_ns, sent_ns=sent_ns)
        if not pushed:
            self.counters.ring_full += 1
        return pushed
