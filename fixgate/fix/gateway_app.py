"""The gateway's QuickFIX application: client sessions (acceptor) and venue sessions (initiator).

Every callback is guarded: QuickFIX's own exceptions (FieldNotFound, IncorrectTagValue,
UnsupportedMessageType, RejectLogon, DoNotSend, ...) pass through, because QuickFIX turns them into
the right answer on the wire; anything else is logged and answered with a reject, because an
exception escaping a callback of the quickfix binding ends the process.
"""

from __future__ import annotations

import threading
import time

import quickfix as fix
import structlog

from fixgate.core.messages import CancelReject, CancelRequest, Execution, MarketDataRequest, MassStatusRequest, NewOrder
from fixgate.core.messages import ExecType, OrdStatus, ReplaceRequest, StatusRequest
from fixgate.core.router import ClientContext, Router
from fixgate.fix import codec
from fixgate.fix.engine import FIX_EXCEPTIONS, keep_thread_state, session_id

log = structlog.get_logger("fixgate.fix")


class QuickFixVenueLink:
    """Send orders to one venue session."""

    def __init__(self, sender: str, target: str) -> None:
        self.session_id = session_id(sender, target)
        self.target = target
        self._session = None
        self._released = False
        # Kept by the application's onLogon and onLogout, so that no order asks QuickFIX (each call
        # into the binding is a GIL hand-off); sendToTarget still has the last word.
        self.logged_on = False

    def _lookup(self):
        if self._released:
            return None
        if self._session is None:
            self._session = fix.Session.lookupSession(self.session_id)
        return self._session

    def log_out(self, reason: str) -> None:
        """Log out and stay out (QuickFIX does not reconnect a disabled session)."""
        session = self._lookup()
        if session is not None:
            session.logout(reason)

    def log_on(self) -> None:
        """Enable the session again; QuickFIX reconnects and logs on."""
        session = self._lookup()
        if session is not None:
            session.logon()

    def release(self) -> None:
        """Forget the QuickFIX session before its engine destroys it; the link then reads as down."""
        self._released = True
        self._session = None

    def is_logged_on(self) -> bool:
        return self.logged_on and not self._released

    def _send(self, message: fix.Message) -> bool:
        if not self.is_logged_on():
            return False
        try:
            return fix.Session.sendToTarget(message, self.session_id)
        except fix.SessionNotFound:
            return False

    def send_new_order(self, order: NewOrder, transact_ns: int) -> bool:
        return self._send(codec.write_new_order(order, transact_ns))

    def send_cancel(self, request: CancelRequest, transact_ns: int) -> bool:
        return self._send(codec.write_cancel_request(request, transact_ns))

    def send_replace(self, request: ReplaceRequest, transact_ns: int) -> bool:
        return self._send(codec.write_replace_request(request, transact_ns))

    def send_status_request(self, request: StatusRequest) -> bool:
        return self._send(codec.write_status_request(request))

    def send_market_data_request(self, request: MarketDataRequest) -> bool:
        return self._send(codec.write_market_data_request(request))

    def send_mass_status_request(self, request: MassStatusRequest) -> bool:
        return self._send(codec.write_mass_status_request(request))


class QuickFixClientLink:
    """Send reports to client sessions (QuickFIX stores them for resend when a client is away)."""

    def __init__(self, gateway_comp_id: str) -> None:
        self.gateway_comp_id = gateway_comp_id
        self.session_ids: dict[str, fix.SessionID] = {}

    def _session_id(self, client: ClientContext) -> fix.SessionID:
        identifier = self.session_ids.get(client.name)
        if identifier is None:
            identifier = self.session_ids[client.name] = session_id(self.gateway_comp_id, client.settings.comp_id)
        return identifier

    def send_execution(self, client: ClientContext, report: Execution) -> bool:
        try:
            return fix.Session.sendToTarget(codec.write_execution(report), self._session_id(client))
        except fix.SessionNotFound:
            log.error("client_session_missing", session=client.name)
            return False

    def send_cancel_reject(self, client: ClientContext, reject: CancelReject) -> bool:
        try:
            return fix.Session.sendToTarget(codec.write_cancel_reject(reject), self._session_id(client))
        except fix.SessionNotFound:
            log.error("client_session_missing", session=client.name)
            return False


class GatewayApplication(fix.Application):
    """QuickFIX callbacks for every session of the gateway, handed to the router.

    Parameters
    ----------
    router : Router
        Decides and answers.
    venues : dict[str, str]
        Venue CompID -> venue name.
    """

    message_log = None      # set by the Engine when message logs are on

    def __init__(self, router: Router, venues: dict[str, str]) -> None:
        super().__init__()
        self.router = router
        self.venues = venues
        self.callback_errors = 0
        self._targets: dict[str, str] = {}
        self._names = codec.SessionNames()
        self._handling: set[int] = set()        # threads inside fromApp; the state thread lets them go first
        self._client_handlers = {
            codec.NEW_ORDER_SINGLE: self._on_new_order,
            codec.ORDER_CANCEL_REQUEST: self._on_cancel,
            codec.ORDER_CANCEL_REPLACE_REQUEST: self._on_replace,
            codec.ORDER_STATUS_REQUEST: self._on_status,
        }
        self._venue_handlers = {
            codec.EXECUTION_REPORT: self._on_execution,
            codec.ORDER_CANCEL_REJECT: self._on_cancel_reject,
            codec.MARKET_DATA_SNAPSHOT: self._on_snapshot,
            codec.MARKET_DATA_INCREMENTAL: self._on_incremental,
            codec.MARKET_DATA_REQUEST_REJECT: self._on_market_data_reject,
        }

    # -- SESSION CALLBACKS ------------------------------------------------------------------------

    def onCreate(self, sessionID):
        keep_thread_state()

    def onLogon(self, sessionID):
        keep_thread_state()
        try:
            target = sessionID.getTargetCompID().getString()
            client = self.router.clients.get(target)
            if client is not None:
                self.router.on_client_logon(client)
                return
            venue = self.venues.get(target)
            if venue is not None:
                self.router.venue_links[venue].logged_on = True
                log.info("session_logged_on", session=venue, side="venue")
                request = self.router.market_data_request(venue)
                if request is not None and self.router.config.venue(venue).market_data:
                    self.router.venue_links[venue].send_market_data_request(request)
                self.router.reconcile(venue)
        except Exception:
            self._failed("onLogon", sessionID)

    def onLogout(self, sessionID):
        keep_thread_state()
        try:
            target = sessionID.getTargetCompID().getString()
            client = self.router.clients.get(target)
            if client is not None:
                self.router.on_client_logout(client)
            elif target in self.venues:
                self.router.venue_links[self.venues[target]].logged_on = False
                log.warning("session_logged_out", session=self.venues[target], side="venue")
        except Exception:
            self._failed("onLogout", sessionID)

    def toAdmin(self, message, sessionID):
        keep_thread_state()
        try:
            if codec.message_type(message) == codec.LOGON:
                target = sessionID.getTargetCompID().getString()
                venue = self.venues.get(target)
                if venue is not None:
                    settings = self.router.config.venue(venue)
                    if settings.username:
                        codec.write_logon_credentials(message, settings.username, settings.password)
        except Exception:
            self._failed("toAdmin", sessionID)
        if self.message_log is not None:
            self.message_log.write(sessionID, message, "out")

    def fromAdmin(self, message, sessionID):
        keep_thread_state()
        try:
            received = codec.Received(message)
            session = self._names(sessionID)
            if self.message_log is not None:
                self.message_log.write_text(session, received.text, "in")
            if received.msg_type != codec.LOGON:
                return
            client = self.router.clients.get(self._target(session, sessionID))
            if client is None:
                return
            username, password = codec.read_logon_credentials(received)
            if username != client.settings.username or password != client.settings.password:
                log.warning("logon_refused", session=client.name, reason="wrong username or password")
                raise fix.RejectLogon("wrong username or password")
        except FIX_EXCEPTIONS:
            raise
        except Exception:
            self._failed("fromAdmin", sessionID)
            raise fix.RejectLogon("logon could not be checked")

    def toApp(self, message, sessionID):
        keep_thread_state()
        if self.message_log is not None:
            self.message_log.write(sessionID, message, "out")

    # -- APPLICATION MESSAGES ---------------------------------------------------------------------

    def busy(self) -> bool:
        """Whether a QuickFIX thread is handling an application message right now."""
        return bool(self._handling)

    def fromApp(self, message, sessionID):
        keep_thread_state()
        ident = threading.get_ident()
        self._handling.add(ident)
        try:
            self._from_app(message, sessionID)
        finally:
            self._handling.discard(ident)

    def _from_app(self, message, sessionID):
        recv_ns = time.time_ns()
        try:
            received = codec.Received(message)
            session = self._names(sessionID)
            if self.message_log is not None:
                self.message_log.write_text(session, received.text, "in")
            target = self._target(session, sessionID)
            client = self.router.clients.get(target)
            if client is not None:
                handler = self._client_handlers.get(received.msg_type)
                if handler is None:
                    raise fix.UnsupportedMessageType()
                handler(client, received, recv_ns)
                return
            venue = self.venues.get(target)
            if venue is not None:
                handler = self._venue_handlers.get(received.msg_type)
                if handler is None:
                    raise fix.UnsupportedMessageType()
                handler(venue, received, recv_ns)
        except FIX_EXCEPTIONS:
            raise
        except Exception:
            self._failed("fromApp", sessionID)
            self._answer_failure(message, sessionID)

    def _target(self, session: str, sessionID) -> str:
        """Return the TargetCompID of a session, asking QuickFIX once per session."""
        target = self._targets.get(session)
        if target is None:
            target = self._targets[session] = sessionID.getTargetCompID().getString()
        return target

    def _on_new_order(self, client: ClientContext, message: codec.Received, recv_ns: int) -> None:
        started = time.perf_counter_ns()
        order = codec.read_new_order(message)
        self.router.stages.record("decode", message.read_ns + time.perf_counter_ns() - started)
        self.router.on_new_order(client, order, recv_ns)

    def _on_cancel(self, client: ClientContext, message: codec.Received, recv_ns: int) -> None:
        self.router.on_cancel(client, codec.read_cancel_request(message), recv_ns)

    def _on_replace(self, client: ClientContext, message: codec.Received, recv_ns: int) -> None:
        self.router.on_replace(client, codec.read_replace_request(message), recv_ns)

    def _on_status(self, client: ClientContext, message: codec.Received, recv_ns: int) -> None:
        self.router.on_status(client, codec.read_status_request(message))

    def _on_execution(self, venue: str, message: codec.Received, recv_ns: int) -> None:
        self.router.on_venue_execution(venue, codec.read_execution(message), recv_ns)
        self.router.stages.record("relay", time.time_ns() - recv_ns)

    def _on_cancel_reject(self, venue: str, message: codec.Received, recv_ns: int) -> None:
        self.router.on_venue_cancel_reject(venue, codec.read_cancel_reject(message), recv_ns)

    def _on_snapshot(self, venue: str, message: codec.Received, recv_ns: int) -> None:
        for data in codec.read_market_data(message, incremental=False):
            self.router.on_market_data(venue, data, recv_ns)

    def _on_incremental(self, venue: str, message: codec.Received, recv_ns: int) -> None:
        for data in codec.read_market_data(message, incremental=True):
            self.router.on_market_data(venue, data, recv_ns)

    def _on_market_data_reject(self, venue: str, message: codec.Received, recv_ns: int) -> None:
        log.error("market_data_refused", venue=venue, text=message.fields.get(str(codec.TEXT)))

    # -- FAILURES ---------------------------------------------------------------------------------

    def _failed(self, callback: str, sessionID) -> None:
        self.callback_errors += 1
        log.exception("callback_failed", callback=callback, session=sessionID.toString())

    def _answer_failure(self, message, sessionID) -> None:
        """Answer a client message that failed inside the gateway with a reject that says so."""
        try:
            target = sessionID.getTargetCompID().getString()
            client = self.router.clients.get(target)
            if client is None or codec.message_type(message) != codec.NEW_ORDER_SINGLE:
                return
            cl_ord_id = message.getField(codec.CL_ORD_ID) if message.isSetField(codec.CL_ORD_ID) else "NONE"
            symbol = message.getField(codec.SYMBOL) if message.isSetField(codec.SYMBOL) else "NONE"
            side = message.getField(codec.SIDE) if message.isSetField(codec.SIDE) else "1"
            self.router.client_link.send_execution(client, Execution(
                order_id="NONE", cl_ord_id=cl_ord_id, exec_id=f"{self.router.run_token}-F{self.callback_errors}",
                exec_type=ExecType.REJECTED, ord_status=OrdStatus.REJECTED, symbol=symbol, side=side,
                leaves_qty="0", cum_qty="0", avg_px="0", ord_rej_reason="99",
                text="INTERNAL_ERROR: the gateway could not process this order; nothing was sent"))
        except Exception:
            log.exception("failure_answer_failed", session=sessionID.toString())


class QuickFixVenueControl:
    """Log every venue session out (kill switch) or back in (resume)."""

    def __init__(self, links: dict[str, QuickFixVenueLink]) -> None:
        self.links = links

    def log_out(self, reason: str) -> None:
        for link in self.links.values():
            link.log_out(reason)

    def log_on(self) -> None:
        for link in self.links.values():
            link.log_on()
