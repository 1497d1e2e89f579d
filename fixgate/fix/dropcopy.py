"""`fixgate dropcopy`: a FIX acceptor that serves every gateway's execution reports to compliance.

Each compliance client ([[dropcopy.clients]]) logs on to the drop copy's acceptor (pip QuickFIX,
its own stores, so QuickFIX's resend covers a reconnect) and is sent an ExecutionReport for each
order event of every gateway of the firm, read from the firm's JetStream stream
(`fixgate.firm.feed`): Parties(453) names the gateway (PartyRole 1, executing firm) and the client
session (PartyRole 3, client ID), Account(1) the account, OrderID(37) ``<gateway>:<order id>``,
ExecID(17) ``<gateway>-<journal>-<event sequence>`` (the same event, the same id, however often it is
sent), and PossResend(97)=Y when a report may have gone out before (after a restart mid-message).
Where each client left off is its durable consumer's acknowledgement: after either side restarts
the reports go on from there. The drop copy takes no application messages: what a compliance client
sends is refused (Reject, unsupported message type).
"""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path

import quickfix as fix
import structlog

from fixgate.core.messages import Execution
from fixgate.firm.feed import DropCopyFeed, DropReport
from fixgate.fix import codec
from fixgate.fix.engine import AcceptorSession, Engine, keep_thread_state, session_id

log = structlog.get_logger("fixgate.dropcopy")

PARTY_EXECUTING_FIRM = "1"
PARTY_CLIENT_ID = "3"


def consumer_name(comp_id: str) -> str:
    """The durable consumer of a compliance client (JetStream names take no '.', '*', '>')."""
    return "dropcopy_" + re.sub(r"[^A-Za-z0-9_-]", "_", comp_id)


def report_message(report: DropReport, again: bool) -> fix.Message:
    """The ExecutionReport of one drop-copy report."""
    message = codec.write_execution(Execution(
        order_id=report.order_id, cl_ord_id=report.cl_ord_id, exec_id=report.exec_id, exec_type=report.exec_type,
        ord_status=report.ord_status, symbol=report.symbol, side=report.side, leaves_qty=report.leaves_qty,
        cum_qty=report.cum_qty, avg_px=report.avg_px, order_qty=report.order_qty, price=report.price,
        ord_type=report.ord_type, last_qty=report.last_qty, last_px=report.last_px, text=report.text,
        transact_time_ns=report.transact_time_ns))
    message.setField(1, report.account)
    for party, role in ((report.gateway, PARTY_EXECUTING_FIRM), (report.client, PARTY_CLIENT_ID)):
        group = fix.Group(453, 448)
        group.setField(448, party)
        group.setField(447, "D")                     # PartyIDSource: proprietary
        group.setField(452, role)
        message.addGroup(group)
    if again:
        message.getHeader().setField(97, "Y")
    return message


class DropCopyApplication(fix.Application):
    """QuickFIX callbacks of the drop copy's acceptor."""

    message_log = None

    def __init__(self, credentials: dict[str, tuple[str, str]]) -> None:
        super().__init__()
        self.credentials = credentials              # CompID -> (username, password); empty: none asked
        self.logged_on: set[str] = set()

    def onCreate(self, sessionID):
        keep_thread_state()

    def onLogon(self, sessionID):
        keep_thread_state()
        self.logged_on.add(sessionID.getTargetCompID().getString())
        log.info("session_logged_on", session=sessionID.getTargetCompID().getString(), side="dropcopy")

    def onLogout(self, sessionID):
        keep_thread_state()
        self.logged_on.discard(sessionID.getTargetCompID().getString())
        log.info("session_logged_out", session=sessionID.getTargetCompID().getString(), side="dropcopy")

    def toAdmin(self, message, sessionID):
        keep_thread_state()
        if self.message_log is not None:
            self.message_log.write(sessionID, message, "out")

    def fromAdmin(self, message, sessionID):
        keep_thread_state()
        if self.message_log is not None:
            self.message_log.write(sessionID, message, "in")
        if codec.message_type(message) != "A":
            return
        username, password = self.credentials.get(sessionID.getTargetCompID().getString(), ("", ""))
        if username and codec.read_logon_credentials(message) != (username, password):
            log.warning("logon_refused", session=sessionID.getTargetCompID().getString(), side="dropcopy",
                        reason="wrong username or password")
            raise fix.RejectLogon("wrong username or password")

    def toApp(self, message, sessionID):
        keep_thread_state()
        if self.message_log is not None:
            self.message_log.write(sessionID, message, "out")

    def fromApp(self, message, sessionID):
        keep_thread_state()
        if self.message_log is not None:
            self.message_log.write(sessionID, message, "in")
        raise fix.UnsupportedMessageType()


class DropCopy:
    """The drop-copy process: the acceptor and one feed per compliance client.

    Parameters
    ----------
    config : fixgate.config.Config
        Its [firm] and [dropcopy] sections.
    """

    def __init__(self, config, *, state_dir: Path | None = None, message_log: bool = True) -> None:
        settings = config.dropcopy
        if not config.firm.name:
            raise ValueError("the drop copy needs a [firm] section (firm.name, firm.servers)")
        if not settings.clients:
            raise ValueError("the drop copy needs at least one [[dropcopy.clients]]")
        self.settings = settings
        self.application = DropCopyApplication({client.comp_id: (client.username, client.password)
                                                for client in settings.clients})
        self.engine = Engine(self.application, Path(state_dir or settings.state_dir), "dropcopy",
                             [AcceptorSession(settings.comp_id, client.comp_id, settings.port)
                              for client in settings.clients], message_log=message_log)
        self.feeds = {client.comp_id: DropCopyFeed(
            config.firm, consumer_name(client.comp_id),
            send=lambda report, again, comp_id=client.comp_id: self._send(comp_id, report, again),
            ready=lambda comp_id=client.comp_id: comp_id in self.application.logged_on)
            for client in settings.clients}
        self._thread = threading.Thread(target=self._run, name="fixgate-dropcopy", daemon=True)

    def start(self) -> None:
        self.engine.start()
        self._thread.start()
        log.info("dropcopy_started", port=self.settings.port, clients=list(self.feeds))

    def stop(self, timeout: float = 5.0) -> None:
        for feed in self.feeds.values():
            feed.stop()
        self._thread.join(timeout)
        self.engine.stop(1.0)
        log.info("dropcopy_stopped", sent={comp_id: feed.sent for comp_id, feed in self.feeds.items()})

    def _run(self) -> None:
        async def all_feeds() -> None:
            await asyncio.gather(*(feed.run() for feed in self.feeds.values()))

        asyncio.run(all_feeds())

    def _send(self, comp_id: str, report: DropReport, again: bool) -> bool:
        if comp_id not in self.application.logged_on:
            return False
        try:
            return bool(fix.Session.sendToTarget(report_message(report, again),
                                                 session_id(self.settings.comp_id, comp_id)))
        except fix.SessionNotFound:
            return False

    def describe(self) -> dict:
        return {comp_id: {"logged_on": comp_id in self.application.logged_on, "sent": feed.sent,
                          "messages": feed.messages, "connected": feed.connected, "last_error": feed.last_error}
                for comp_id, feed in self.feeds.items()}
