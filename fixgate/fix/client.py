"""A FIX 4.4 client (QuickFIX initiator): for the demo, the tests and the benchmarks.

It logs on with a username and password, sends orders, cancels, replaces and status requests, and
keeps every report it receives, decoded, in arrival order, with a way to wait for one.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Callable

import quickfix as fix

from fixgate.core.messages import (
    CancelReject,
    CancelRequest,
    Execution,
    MarketData,
    MarketDataRequest,
    NewOrder,
    ReplaceRequest,
    StatusRequest,
)
from fixgate.fix import codec
from fixgate.fix.engine import FIX_EXCEPTIONS, Engine, InitiatorSession, keep_thread_state, session_id


class ClientApplication(fix.Application):
    message_log = None      # set by the Engine when message logs are on

    def __init__(self, client: "FixClient") -> None:
        super().__init__()
        self.client = client

    def onCreate(self, sessionID):
        keep_thread_state()

    def onLogon(self, sessionID):
        keep_thread_state()
        self.client._logged_on.set()

    def onLogout(self, sessionID):
        keep_thread_state()
        self.client._logged_on.clear()
        self.client.logouts += 1

    def toAdmin(self, message, sessionID):
        keep_thread_state()
        try:
            if codec.message_type(message) == codec.LOGON and self.client.username is not None:
                codec.write_logon_credentials(message, self.client.username, self.client.password)
        except Exception:
            self.client.errors += 1
        if self.message_log is not None:
            self.message_log.write(sessionID, message, "out")

    def fromAdmin(self, message, sessionID):
        keep_thread_state()
        if self.message_log is not None:
            self.message_log.write(sessionID, message, "in")
        try:
            msg_type = codec.message_type(message)
            if msg_type in ("3", "5"):
                text = message.getField(codec.TEXT) if message.isSetField(codec.TEXT) else ""
                self.client._admin(msg_type, text)
        except Exception:
            self.client.errors += 1

    def toApp(self, message, sessionID):
        keep_thread_state()
        if self.message_log is not None:
            self.message_log.write(sessionID, message, "out")

    def fromApp(self, message, sessionID):
        keep_thread_state()
        try:
            received = codec.Received(message)
            if self.message_log is not None:
                self.message_log.write(sessionID, received.text, "in")
            self.client._receive(received)
        except FIX_EXCEPTIONS:
            raise
        except Exception:
            self.client.errors += 1


class FixClient:
    """One FIX session to a gateway (or straight to a venue).

    Parameters
    ----------
    sender, target : str
        The client's CompID and the peer's.
    host, port : str, int
        Where the peer listens.
    state_dir : Path
        QuickFIX stores and logs of this client.
    username, password : str, optional
        Sent on Logon.
    """

    def __init__(self, sender: str, target: str, host: str, port: int, state_dir: Path, *,
                 username: str | None = None, password: str | None = None, heartbeat_seconds: int = 30,
                 message_log: bool = False) -> None:
        self.sender = sender
        self.target = target
        self.username = username
        self.password = password
        self.session_id = session_id(sender, target)
        self.reports: list[Execution | CancelReject] = []
        self.market_data: list[MarketData] = []
        self.admin_messages: list[tuple[str, str]] = []
        self.business_rejects: list[str] = []
        self.errors = 0
        self.logouts = 0
        self.first_report_ns: dict[str, int] = {}       # ClOrdID -> perf_counter_ns of its first report
        self._expected: dict[str, threading.Event] = {}
        self.on_first_report: Callable[[str], None] | None = None
        self._logged_on = threading.Event()
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        self.application = ClientApplication(self)
        self.engine = Engine(self.application, Path(state_dir), f"client-{sender}",
                             [InitiatorSession(sender, target, host, port, heartbeat_seconds, 1)],
                             message_log=message_log)

    # -- SESSION ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.engine.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Log out (waiting up to `timeout` seconds for the answer) and stop."""
        self.engine.stop(timeout)

    def wait_logged_on(self, timeout: float = 10.0) -> bool:
        return self._logged_on.wait(timeout)

    @property
    def logged_on(self) -> bool:
        return self._logged_on.is_set()

    def next_id(self, prefix: str = "C") -> str:
        return f"{prefix}{next(self._ids)}"

    # -- SENDING ----------------------------------------------------------------------------------

    def _send(self, message: fix.Message) -> bool:
        try:
            return fix.Session.sendToTarget(message, self.session_id)
        except fix.SessionNotFound:
            return False

    def send_message(self, message: fix.Message) -> bool:
        """Send a message built by hand (for tests of malformed or unsupported messages)."""
        return self._send(message)

    def new_order(self, symbol: str, side: str, qty: str, price: str | None = None, *, ord_type: str | None = None,
                  time_in_force: str = "0", cl_ord_id: str | None = None, account: str | None = None) -> str:
        """Send a NewOrderSingle; return its ClOrdID. Without `ord_type`: limit with a price, else market."""
        cl_ord_id = cl_ord_id or self.next_id()
        order = NewOrder(cl_ord_id=cl_ord_id, symbol=symbol, side=side,
                         ord_type=ord_type or ("2" if price is not None else "1"), order_qty=qty, price=price,
                         time_in_force=time_in_force, account=account)
        self._send(codec.write_new_order(order, time.time_ns()))
        return cl_ord_id

    def cancel(self, orig_cl_ord_id: str, symbol: str, side: str, *, cl_ord_id: str | None = None) -> str:
        cl_ord_id = cl_ord_id or self.next_id()
        self._send(codec.write_cancel_request(CancelRequest(cl_ord_id=cl_ord_id, orig_cl_ord_id=orig_cl_ord_id,
                                                            symbol=symbol, side=side), time.time_ns()))
        return cl_ord_id

    def replace(self, orig_cl_ord_id: str, symbol: str, side: str, qty: str, price: str | None, *,
                ord_type: str = "2", cl_ord_id: str | None = None) -> str:
        cl_ord_id = cl_ord_id or self.next_id()
        self._send(codec.write_replace_request(ReplaceRequest(
            cl_ord_id=cl_ord_id, orig_cl_ord_id=orig_cl_ord_id, symbol=symbol, side=side, ord_type=ord_type,
            order_qty=qty, price=price), time.time_ns()))
        return cl_ord_id

    def status(self, cl_ord_id: str, symbol: str, side: str) -> None:
        self._send(codec.write_status_request(StatusRequest(cl_ord_id=cl_ord_id, symbol=symbol, side=side)))

    def subscribe(self, symbols: list[str]) -> None:
        self._send(codec.write_market_data_request(MarketDataRequest(md_req_id=self.next_id("MD"),
                                                                     symbols=symbols)))

    # -- RECEIVING --------------------------------------------------------------------------------

    def _receive(self, message: codec.Received) -> None:
        arrived_ns = time.perf_counter_ns()
        msg_type = message.msg_type
        if msg_type == codec.EXECUTION_REPORT:
            cl_ord_id = message.fields.get(str(codec.CL_ORD_ID), "")
            if cl_ord_id not in self.first_report_ns:
                self.first_report_ns[cl_ord_id] = arrived_ns
                waiter = self._expected.pop(cl_ord_id, None)
                if waiter is not None:
                    waiter.set()
                if self.on_first_report is not None:
                    self.on_first_report(cl_ord_id)
        with self._changed:
            if msg_type == codec.EXECUTION_REPORT:
                self.reports.append(codec.read_execution(message))
            elif msg_type == codec.ORDER_CANCEL_REJECT:
                self.reports.append(codec.read_cancel_reject(message))
            elif msg_type in (codec.MARKET_DATA_SNAPSHOT, codec.MARKET_DATA_INCREMENTAL):
                self.market_data.extend(codec.read_market_data(message, msg_type == codec.MARKET_DATA_INCREMENTAL))
            elif msg_type == "j":
                self.business_rejects.append(message.fields.get(str(codec.TEXT), ""))
            self._changed.notify_all()

    def _admin(self, msg_type: str, text: str) -> None:
        with self._changed:
            self.admin_messages.append((msg_type, text))
            self._changed.notify_all()

    def expect(self, cl_ord_id: str) -> threading.Event:
        """Return an event set when the first report for `cl_ord_id` arrives (register before sending)."""
        event = threading.Event()
        self._expected[cl_ord_id] = event
        return event

    def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0):
        """Wait until `predicate()` returns something true; return it, or None on timeout.

        The predicate is checked on every report and every 20 ms (it may watch something other than
        this client, e.g. the gateway's state).
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(min(remaining, 0.02))

    def reports_for(self, cl_ord_id: str) -> list[Execution | CancelReject]:
        """Return every report whose ClOrdID is `cl_ord_id`, in arrival order."""
        with self._changed:
            return [report for report in self.reports if report.cl_ord_id == cl_ord_id]

    def wait_report(self, cl_ord_id: str, *, exec_type: str | None = None, ord_status: str | None = None,
                    cancel_reject: bool = False, timeout: float = 5.0):
        """Wait for a report of `cl_ord_id` matching what is given; return it or None."""

        def found():
            for report in self.reports:
                if report.cl_ord_id != cl_ord_id:
                    continue
                if cancel_reject != isinstance(report, CancelReject):
                    continue
                if exec_type is not None and getattr(report, "exec_type", None) != exec_type:
                    continue
                if ord_status is not None and report.ord_status != ord_status:
                    continue
                return report
            return None

        return self.wait_for(found, timeout)
