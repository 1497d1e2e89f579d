"""The venue simulator as a FIX 4.4 acceptor: the matching engine and market maker behind QuickFIX.

It talks to the gateway only over FIX. Orders (D, F, G, H, AF) go to the matching engine; reports
go back to their owner's session. MarketDataRequest (V) gets a snapshot (W), then an incremental
refresh (X) whenever the top of book changes or a trade prints. A background thread steps the
market maker. Faults (reject ratio, ack delay, dropped connections, a stale or crossed feed, a price
shock) are set from the configuration and changed at run time through `apply_fault` or the small
HTTP control endpoint.
"""

from __future__ import annotations

import http.server
import json
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import quickfix as fix
import structlog

from fixgate.config import Config
from fixgate.core.messages import (
    CancelReject as FixCancelReject,
    Execution,
    MarketData,
    MarketDataEntry,
)
from fixgate.fix import codec
from fixgate.fix.engine import FIX_EXCEPTIONS, AcceptorSession, Engine, keep_thread_state, session_id
from fixgate.simulator.market_maker import MarketMaker
from fixgate.simulator.matching import (
    BookChanged,
    CancelReject,
    ExecutionReport,
    MatchingEngine,
    SimInstrument,
    Trade,
)

log = structlog.get_logger("fixgate.simulator")

MAKER = "MM"

SIDES_IN = {"1": "BUY", "2": "SELL", "5": "SELL_SHORT"}
SIDES_OUT = {"BUY": "1", "SELL": "2", "SELL_SHORT": "5"}
ORD_TYPES_IN = {"1": "MARKET", "2": "LIMIT"}
ORD_TYPES_OUT = {"MARKET": "1", "LIMIT": "2"}
TIME_IN_FORCE_IN = {"0": "DAY", "1": "GTC", "3": "IOC", "4": "FOK"}
TIME_IN_FORCE_OUT = {value: key for key, value in TIME_IN_FORCE_IN.items()}
EXEC_TYPES_OUT = {"NEW": "0", "TRADE": "F", "CANCELED": "4", "REPLACED": "5", "REJECTED": "8", "EXPIRED": "C",
                  "ORDER_STATUS": "I"}
ORD_STATUS_OUT = {"NEW": "0", "PARTIALLY_FILLED": "1", "FILLED": "2", "CANCELED": "4", "REJECTED": "8",
                  "EXPIRED": "C"}
CXL_REASONS_OUT = {"TOO_LATE": "0", "UNKNOWN_ORDER": "1", "DUPLICATE_CL_ORD_ID": "6", "OTHER": "99"}
RESPONSE_TO_OUT = {"CANCEL": "1", "REPLACE": "2"}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


@dataclass
class Faults:
    """What the simulator does wrong on purpose."""

    reject_ratio: float = 0.0
    ack_delay_ms: int = 0
    stale: set[str] = field(default_factory=set)
    crossed: set[str] = field(default_factory=set)


class SimulatorApplication(fix.Application):
    """QuickFIX callbacks of the simulator, handed to the `VenueSimulator`."""

    message_log = None      # set by the Engine when message logs are on

    def __init__(self, venue: "VenueSimulator") -> None:
        super().__init__()
        self.venue = venue
        self.callback_errors = 0
        self._parties: dict[str, str] = {}     # SessionID as text -> the party's CompID
        self._names = codec.SessionNames()

    def onCreate(self, sessionID):
        keep_thread_state()

    def onLogon(self, sessionID):
        keep_thread_state()
        log.info("session_logged_on", session=sessionID.getTargetCompID().getString(), side="simulator")

    def onLogout(self, sessionID):
        keep_thread_state()
        try:
            self.venue.unsubscribe(sessionID.getTargetCompID().getString())
            log.info("session_logged_out", session=sessionID.getTargetCompID().getString(), side="simulator")
        except Exception:
            self._failed("onLogout", sessionID)

    def toAdmin(self, message, sessionID):
        keep_thread_state()
        if self.message_log is not None:
            self.message_log.write(sessionID, message, "out")

    def fromAdmin(self, message, sessionID):
        keep_thread_state()
        if self.message_log is not None:
            self.message_log.write(sessionID, message, "in")

    def toApp(self, message, sessionID):
        keep_thread_state()
        if self.message_log is not None:
            self.message_log.write(sessionID, message, "out")

    def fromApp(self, message, sessionID):
        keep_thread_state()
        try:
            received = codec.Received(message)
            session = self._names(sessionID)
            if self.message_log is not None:
                self.message_log.write_text(session, received.text, "in")
            party = self._parties.get(session)
            if party is None:
                party = self._parties[session] = sessionID.getTargetCompID().getString()
            self.venue.on_message(party, received)
        except FIX_EXCEPTIONS:
            raise
        except Exception:
            self._failed("fromApp", sessionID)

    def _failed(self, callback: str, sessionID) -> None:
        self.callback_errors += 1
        log.exception("callback_failed", callback=callback, session=sessionID.toString())


class VenueSimulator:
    """A simulated exchange on QuickFIX.

    Parameters
    ----------
    config : Config
        Its ``simulator`` section, its instruments (the reference price is the starting mid) and the
        gateway's CompID (the counterparty).
    state_dir : Path
        QuickFIX stores and logs.
    counterparties : list[str], optional
        CompIDs allowed to connect; the gateway's CompID by default.
    control_port : int, optional
        Serve the HTTP control endpoint on 127.0.0.1 at this port (0: none).
    """

    def __init__(self, config: Config, state_dir: Path, *, counterparties: list[str] | None = None,
                 message_log: bool = True, control_port: int = 0) -> None:
        settings = config.simulator
        self.config = config
        self.comp_id = settings.comp_id
        self.counterparties = counterparties or [config.gateway.comp_id]
        self.engine = MatchingEngine(SimInstrument(instrument.symbol, instrument.tick_size, instrument.lot_size,
                                                   instrument.reference_price or instrument.tick_size * 1000)
                                     for instrument in config.instruments)
        self.symbols = [instrument.symbol for instrument in config.instruments]
        self.maker = MarketMaker(self.engine, self.symbols, seed=settings.seed, owner=MAKER, levels=settings.levels,
                                 quote_qty_lots=settings.quote_qty_lots, spread_ticks=settings.spread_ticks,
                                 volatility_ticks=settings.volatility_ticks)
        self.faults = Faults(reject_ratio=settings.faults.reject_ratio, ack_delay_ms=settings.faults.ack_delay_ms)
        self.random = random.Random(settings.seed + 1)
        self.quote_interval_s = settings.quote_interval_ms / 1000
        self.refresh_s = settings.refresh_ms / 1000
        self.lock = threading.RLock()
        self.subscriptions: dict[str, dict[str, str]] = {}      # session -> symbol -> MDReqID
        self.published: dict[str, tuple[str | None, str | None]] = {}
        self.pending_trades: dict[str, list[Trade]] = {}
        self.application = SimulatorApplication(self)
        self.fix_engine = Engine(self.application, Path(state_dir), "simulator",
                                 [AcceptorSession(self.comp_id, party, settings.port) for party in self.counterparties],
                                 message_log=message_log)
        self._stop = threading.Event()
        self._maker_thread = threading.Thread(target=self._run_maker, name="simulator-maker", daemon=True)
        self._delayed: queue.Queue = queue.Queue()
        self._delay_thread = threading.Thread(target=self._run_delayed, name="simulator-delay", daemon=True)
        self.control_port = control_port
        self._control: http.server.ThreadingHTTPServer | None = None
        self.orders_received = 0
        self.cl_ord_ids_seen: dict[str, int] = {}             # every ClOrdID of a new order, with its count
        self.positions: dict[tuple[str, str], Decimal] = {}   # (owner, symbol) -> net quantity traded

    # -- LIFE CYCLE -------------------------------------------------------------------------------

    def start(self) -> None:
        with self.lock:
            self._dispatch(self.maker.step(time.time_ns()))
        self.fix_engine.start()
        self._maker_thread.start()
        self._delay_thread.start()
        if self.control_port:
            self._control = _control_server(self, self.control_port)
        log.info("simulator_started", comp_id=self.comp_id, port=self.config.simulator.port,
                 symbols=self.symbols, control_port=self.control_port or None)

    def stop(self, logout_timeout: float = 2.0) -> None:
        self._stop.set()
        if self._control is not None:
            self._control.shutdown()
            self._control.server_close()
        self._delayed.put(None)
        self.fix_engine.stop(logout_timeout)
        self._maker_thread.join(2)
        self._delay_thread.join(2)
        log.info("simulator_stopped", comp_id=self.comp_id)

    def _run_maker(self) -> None:
        next_step = time.monotonic() + self.quote_interval_s
        next_refresh = time.monotonic() + self.refresh_s
        while not self._stop.wait(max(0.0, min(next_step, next_refresh) - time.monotonic())):
            now = time.monotonic()
            try:
                if now >= next_step:
                    next_step = now + self.quote_interval_s
                    with self.lock:
                        self._dispatch(self.maker.step(time.time_ns()))
                if now >= next_refresh:
                    next_refresh = now + self.refresh_s
                    with self.lock:
                        self._refresh()
            except Exception:
                log.exception("maker_step_failed")

    def _refresh(self) -> None:
        """Send every subscriber its symbols' top of book again (a snapshot), changed or not."""
        for party, subscriptions in list(self.subscriptions.items()):
            for symbol, md_req_id in list(subscriptions.items()):
                if symbol in self.faults.stale:
                    continue
                bid, ask = self._top(symbol)
                self.published[symbol] = (bid, ask)
                entries = [MarketDataEntry(entry_type, price, "1")
                           for entry_type, price in (("0", bid), ("1", ask)) if price is not None]
                if entries:
                    self._send(party, codec.write_market_data(MarketData(symbol=symbol, entries=entries,
                                                                         md_req_id=md_req_id)))

    def _run_delayed(self) -> None:
        while True:
            item = self._delayed.get()
            if item is None:
                return
            due, party, action = item
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                with self.lock:
                    self._dispatch(action())
            except Exception:
                log.exception("delayed_order_failed", session=party)

    # -- ORDERS -----------------------------------------------------------------------------------

    def on_message(self, party: str, message: codec.Incoming) -> None:
        """Handle one application message from `party` (called on QuickFIX's thread)."""
        msg_type = codec.message_type(message)
        now_ns = time.time_ns()
        if msg_type == codec.NEW_ORDER_SINGLE:
            order = codec.read_new_order(message)
            self.orders_received += 1
            key = f"{party}/{order.cl_ord_id}"
            self.cl_ord_ids_seen[key] = self.cl_ord_ids_seen.get(key, 0) + 1
            if self.faults.reject_ratio and self.random.random() < self.faults.reject_ratio:
                self._send_execution(party, self._reject_report(order, "simulated venue reject"))
                return
            action = lambda: self.engine.new_order(  # noqa: E731
                party, order.cl_ord_id, order.symbol, SIDES_IN.get(order.side, "BUY"),
                ORD_TYPES_IN.get(order.ord_type, "LIMIT"), Decimal(order.order_qty or "0"),
                Decimal(order.price) if order.price is not None else None,
                TIME_IN_FORCE_IN.get(order.time_in_force, "DAY"), time.time_ns())
            if self.faults.ack_delay_ms:
                self._delayed.put((time.monotonic() + self.faults.ack_delay_ms / 1000, party, action))
                return
            with self.lock:
                self._dispatch(action())
        elif msg_type == codec.ORDER_CANCEL_REQUEST:
            request = codec.read_cancel_request(message)
            with self.lock:
                self._dispatch(self.engine.cancel(party, request.cl_ord_id, request.orig_cl_ord_id, request.symbol,
                                                  SIDES_IN.get(request.side, "BUY"), now_ns))
        elif msg_type == codec.ORDER_CANCEL_REPLACE_REQUEST:
            request = codec.read_replace_request(message)
            with self.lock:
                self._dispatch(self.engine.replace(
                    party, request.cl_ord_id, request.orig_cl_ord_id, request.symbol,
                    SIDES_IN.get(request.side, "BUY"), Decimal(request.order_qty or "0"),
                    Decimal(request.price) if request.price is not None else None, now_ns))
        elif msg_type == codec.ORDER_STATUS_REQUEST:
            request = codec.read_status_request(message)
            with self.lock:
                report = self.engine.status(party, request.cl_ord_id)
            if report is None:
                self._send_execution(party, Execution(
                    order_id="NONE", cl_ord_id=request.cl_ord_id, exec_id=f"S{now_ns}", exec_type="I",
                    ord_status="8", symbol=request.symbol, side=request.side, leaves_qty="0", cum_qty="0",
                    avg_px="0", ord_rej_reason="5", text="unknown order"))
            else:
                self._send_execution(party, self._execution(report))
        elif msg_type == codec.ORDER_MASS_STATUS_REQUEST:
            request = codec.read_mass_status_request(message)
            with self.lock:
                reports = self.engine.open_orders(party)
            for report in reports:
                execution = self._execution(report)
                execution.mass_status_req_id = request.mass_status_req_id
                self._send_execution(party, execution)
        elif msg_type == codec.MARKET_DATA_REQUEST:
            self._on_market_data_request(party, codec.read_market_data_request(message))
        else:
            raise fix.UnsupportedMessageType()

    def _reject_report(self, order, text: str) -> Execution:
        return Execution(order_id="NONE", cl_ord_id=order.cl_ord_id, exec_id=f"R{time.time_ns()}",
                         exec_type="8", ord_status="8", symbol=order.symbol, side=order.side, leaves_qty="0",
                         cum_qty="0", avg_px="0", order_qty=order.order_qty, price=order.price,
                         ord_type=order.ord_type, text=text, ord_rej_reason="0")

    def _execution(self, report: ExecutionReport) -> Execution:
        return Execution(
            order_id=report.order_id, cl_ord_id=report.cl_ord_id, orig_cl_ord_id=report.orig_cl_ord_id,
            exec_id=report.exec_id, exec_type=EXEC_TYPES_OUT[report.exec_type.value],
            ord_status=ORD_STATUS_OUT[report.ord_status.value], symbol=report.symbol,
            side=SIDES_OUT[report.side.value], leaves_qty=_text(report.leaves_qty), cum_qty=_text(report.cum_qty),
            avg_px=_text(report.avg_px), order_qty=_text(report.order_qty), price=_text(report.price),
            ord_type=ORD_TYPES_OUT[report.ord_type.value],
            time_in_force=TIME_IN_FORCE_OUT[report.time_in_force.value],
            last_qty=_text(report.last_qty) if report.exec_type.value == "TRADE" else None,
            last_px=_text(report.last_px), text=report.text or None, transact_time_ns=report.transact_ns)

    def _send_execution(self, party: str, execution: Execution) -> None:
        self._send(party, codec.write_execution(execution))

    def _send(self, party: str, message: fix.Message) -> bool:
        try:
            return fix.Session.sendToTarget(message, session_id(self.comp_id, party))
        except fix.SessionNotFound:
            return False

    def _dispatch(self, events: list) -> None:
        """Send each report to its owner's session; publish market data for changed books."""
        changed: list[str] = []
        for event in events:
            if isinstance(event, ExecutionReport):
                if event.exec_type.value == "TRADE":
                    key = (event.owner, event.symbol)
                    signed = event.last_qty if event.side.value == "BUY" else -event.last_qty
                    self.positions[key] = self.positions.get(key, Decimal(0)) + signed
                if event.owner != MAKER:
                    self._send_execution(event.owner, self._execution(event))
            elif isinstance(event, CancelReject):
                if event.owner != MAKER:
                    self._send(event.owner, codec.write_cancel_reject(FixCancelReject(
                        order_id=event.order_id, cl_ord_id=event.cl_ord_id, orig_cl_ord_id=event.orig_cl_ord_id,
                        ord_status=ORD_STATUS_OUT.get(event.ord_status.value, "8"),
                        response_to=RESPONSE_TO_OUT[event.response_to.value],
                        reason=CXL_REASONS_OUT.get(event.reason.value, "99"), text=event.text or None)))
            elif isinstance(event, Trade):
                self.pending_trades.setdefault(event.symbol, []).append(event)
            elif isinstance(event, BookChanged):
                changed.append(event.symbol)
        for symbol in dict.fromkeys(changed + list(self.pending_trades)):
            self._publish(symbol)

    # -- MARKET DATA ------------------------------------------------------------------------------

    def _on_market_data_request(self, party: str, request) -> None:
        unknown = [symbol for symbol in request.symbols if symbol not in self.symbols]
        if unknown or not request.symbols:
            self._send(party, codec.write_market_data_reject(request.md_req_id, f"unknown symbols {unknown}"))
            return
        with self.lock:
            subscriptions = self.subscriptions.setdefault(party, {})
            for symbol in request.symbols:
                if request.subscribe:
                    subscriptions[symbol] = request.md_req_id
                    self._send(party, codec.write_market_data(self._snapshot(symbol, request.md_req_id)))
                else:
                    subscriptions.pop(symbol, None)

    def unsubscribe(self, party: str) -> None:
        """Stop publishing market data to `party`, soon, on the simulator's own thread.

        Called from QuickFIX's onLogout, which holds the session's lock: taking the simulator's lock
        there could deadlock with a thread that holds it and sends on that session.
        """
        def forget() -> list:
            self.subscriptions.pop(party, None)
            return []

        self._delayed.put((time.monotonic(), party, forget))

    def _top(self, symbol: str) -> tuple[str | None, str | None]:
        if symbol in self.faults.crossed:
            bid, ask = self.maker.indicated_quote(symbol)
            return _text(bid), _text(ask)
        best_bid, _, best_ask, _ = self.engine.top_of_book(symbol)
        return _text(best_bid), _text(best_ask)

    def _snapshot(self, symbol: str, md_req_id: str) -> MarketData:
        bid, ask = self._top(symbol)
        self.published[symbol] = (bid, ask)
        entries = []
        if bid is not None:
            entries.append(MarketDataEntry("0", bid, "1"))
        if ask is not None:
            entries.append(MarketDataEntry("1", ask, "1"))
        trade = self.engine.last_trade(symbol)
        if trade is not None:
            entries.append(MarketDataEntry("2", _text(trade.price), _text(trade.qty)))
        return MarketData(symbol=symbol, entries=entries, md_req_id=md_req_id)

    def _publish(self, symbol: str) -> None:
        trades = self.pending_trades.pop(symbol, [])
        if symbol in self.faults.stale:
            return
        top = self._top(symbol)
        entries = []
        if top != self.published.get(symbol):
            self.published[symbol] = top
            for entry_type, price in (("0", top[0]), ("1", top[1])):
                entries.append(MarketDataEntry(entry_type, price, "1", action="2" if price is None else "1"))
        entries += [MarketDataEntry("2", _text(trade.price), _text(trade.qty), action="0") for trade in trades]
        if not entries:
            return
        for party, subscriptions in list(self.subscriptions.items()):
            md_req_id = subscriptions.get(symbol)
            if md_req_id is not None:
                self._send(party, codec.write_market_data(MarketData(symbol=symbol, entries=entries,
                                                                     incremental=True, md_req_id=md_req_id)))

    # -- FAULTS -----------------------------------------------------------------------------------

    def apply_fault(self, command: dict[str, Any]) -> dict[str, Any]:
        """Apply a fault command; return the fault state.

        Commands: ``{"action": "set", "reject_ratio": 0.2, "ack_delay_ms": 50}``,
        ``{"action": "stale", "symbol": S, "on": true}``, ``{"action": "crossed", "symbol": S,
        "on": true}``, ``{"action": "shock", "symbol": S, "fraction": -0.2}``, ``{"action": "drop"}``
        (disconnect every session; the counterparty reconnects).

        Raises
        ------
        ValueError
            For an unknown action, symbol or value.
        """
        action = command.get("action")
        symbol = command.get("symbol")
        if action in ("stale", "crossed", "shock") and symbol not in self.symbols:
            raise ValueError(f"unknown symbol {symbol!r}; known: {', '.join(self.symbols)}")
        with self.lock:
            if action == "set":
                ratio = float(command.get("reject_ratio", self.faults.reject_ratio))
                delay = int(command.get("ack_delay_ms", self.faults.ack_delay_ms))
                if not 0.0 <= ratio <= 1.0 or delay < 0:
                    raise ValueError("reject_ratio must be in [0, 1] and ack_delay_ms >= 0")
                self.faults.reject_ratio, self.faults.ack_delay_ms = ratio, delay
            elif action == "stale":
                if command.get("on", True):
                    self.faults.stale.add(symbol)
                    self.maker.pause(symbol)
                else:
                    self.faults.stale.discard(symbol)
                    self.maker.resume(symbol)
            elif action == "crossed":
                flag = bool(command.get("on", True))
                self.maker.quotes_crossed(symbol, flag)
                (self.faults.crossed.add if flag else self.faults.crossed.discard)(symbol)
                self._publish(symbol)
            elif action == "shock":
                self._dispatch(self.maker.shock(symbol, Decimal(str(command["fraction"])), time.time_ns()))
            elif action == "drop":
                for party in self.counterparties:
                    session = fix.Session.lookupSession(session_id(self.comp_id, party))
                    if session is not None:
                        session.disconnect()
            else:
                raise ValueError(f"unknown fault action {action!r}")
        log.warning("fault_applied", **{key: value for key, value in command.items() if key != "event"})
        return self.fault_state()

    def ledger(self, owner: str) -> dict[str, Any]:
        """Return what the venue holds for `owner`: net positions, open orders, duplicate ClOrdIDs."""
        with self.lock:
            open_orders = self.engine.open_orders(owner)
            return {
                "positions": {symbol: format(quantity, "f") for (party, symbol), quantity in self.positions.items()
                              if party == owner},
                "open_orders": sorted(report.cl_ord_id for report in open_orders),
                "orders_received": sum(count for key, count in self.cl_ord_ids_seen.items()
                                       if key.startswith(owner + "/")),
                "duplicate_cl_ord_ids": sorted(key.split("/", 1)[1] for key, count in self.cl_ord_ids_seen.items()
                                               if count > 1 and key.startswith(owner + "/")),
            }

    def fault_state(self) -> dict[str, Any]:
        return {"reject_ratio": self.faults.reject_ratio, "ack_delay_ms": self.faults.ack_delay_ms,
                "stale": sorted(self.faults.stale), "crossed": sorted(self.faults.crossed)}


def _control_server(venue: VenueSimulator, port: int) -> http.server.ThreadingHTTPServer:
    """Serve POST /faults (a JSON fault command) and GET /faults on 127.0.0.1:`port`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path == "/faults":
                self._answer(200, venue.fault_state())
            elif self.path.startswith("/ledger/"):
                self._answer(200, venue.ledger(self.path.split("/", 2)[2]))
            else:
                self._answer(404, {"error": f"no such path {self.path}"})

        def do_POST(self):  # noqa: N802 - http.server's name
            if self.path != "/faults":
                self._answer(404, {"error": f"no such path {self.path}"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                command = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(command, dict):
                    raise ValueError("expected a JSON object")
                self._answer(200, venue.apply_fault(command))
            except (ValueError, KeyError, TypeError) as error:
                self._answer(400, {"error": str(error)})

        def log_message(self, format, *args):  # noqa: A002 - http.server's name
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="simulator-control", daemon=True).start()
    return server
