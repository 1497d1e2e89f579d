"""QuickFIX engine set-up: session settings generated from the configuration, stores, logs.

QuickFIX owns logon, heartbeats, sequence numbers, resend, gap fill and the message stores; this
module only writes its settings: one file for the sessions a process accepts and one for those it
initiates (QuickFIX's acceptor insists on a port for every session of its settings).

QuickFIX 1.16 acceptors listen on every interface (SocketAcceptPort has no address); a host in the
configuration is where peers are told to connect.
"""

from __future__ import annotations

import ctypes
import site
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import quickfix as fix

from fixgate.config import FixSessionSettings, TlsSettings
from fixgate.core.schedule import Schedule
from fixgate.fix.logs import MessageLog

BEGIN_STRING = "FIX.4.4"

# The QuickFIX exceptions a callback may raise on purpose: QuickFIX turns each into the right answer
# on the wire (session Reject, BusinessMessageReject, Logout). Any other exception escaping a
# callback of the quickfix binding ends the process, so callbacks catch everything else.
FIX_EXCEPTIONS = (fix.FieldNotFound, fix.IncorrectDataFormat, fix.IncorrectTagValue,
                  fix.UnsupportedMessageType, fix.RejectLogon, fix.DoNotSend, fix.FieldConvertError)


_thread_state = threading.local()


def keep_thread_state() -> None:
    """Keep the calling thread's Python thread state from one QuickFIX callback to the next.

    The binding enters Python with ``PyGILState_Ensure`` and leaves with ``PyGILState_Release``,
    so a QuickFIX thread that has no thread state of its own gets a new one for every callback
    and loses it afterwards: an allocation (with an mmap for the frame stack) and a release per
    message, and thread-locals that forget between messages. One extra ``Ensure``, never
    released, keeps the thread state for the life of the thread (a few kilobytes per QuickFIX
    connection thread). Every application callback calls this first; after the first call on a
    thread it costs one attribute lookup.
    """
    if not getattr(_thread_state, "kept", False):
        ctypes.pythonapi.PyGILState_Ensure()
        _thread_state.kept = True


def data_dictionary_path() -> Path:
    """Return the FIX 4.4 data dictionary that ships with the quickfix package.

    Raises
    ------
    FileNotFoundError
        When no installed copy can be found.
    """
    candidates = [Path(prefix) / "share" / "quickfix" / "FIX44.xml"
                  for prefix in (sys.prefix, sys.base_prefix, site.USER_BASE or "")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("FIX44.xml not found under " + ", ".join(str(path) for path in candidates))


@dataclass(frozen=True)
class AcceptorSession:
    """A session this process accepts: we are `sender`, the peer is `target`."""

    sender: str
    target: str
    port: int
    options: FixSessionSettings = FixSessionSettings()


@dataclass(frozen=True)
class InitiatorSession:
    """A session this process initiates towards host:port."""

    sender: str
    target: str
    host: str
    port: int
    heartbeat_seconds: int
    reconnect_seconds: int
    options: FixSessionSettings = FixSessionSettings()
    backups: tuple[tuple[str, int], ...] = ()          # (host, port) tried in turn after the primary


def _yes(value: bool) -> str:
    return "Y" if value else "N"


def session_lines(options: FixSessionSettings) -> list[str]:
    """The QuickFIX settings of one session's `options`."""
    return [
        f"DataDictionary={options.data_dictionary or data_dictionary_path()}",
        f"TimestampPrecision={options.timestamp_precision}",
        f"ResetOnLogon={_yes(options.reset_on_logon)}",
        f"ResetOnLogout={_yes(options.reset_on_logout)}",
        f"ResetOnDisconnect={_yes(options.reset_on_disconnect)}",
        f"ValidateUserDefinedFields={_yes(options.validate_user_defined_fields)}",
        f"ValidateFieldsOutOfOrder={_yes(options.validate_fields_out_of_order)}",
        f"CheckLatency={_yes(options.max_latency_seconds > 0)}",
        f"MaxLatency={max(options.max_latency_seconds, 1)}",
        f"LogonTimeout={options.logon_timeout_seconds}",
        f"LogoutTimeout={options.logout_timeout_seconds}",
    ]


PROTOCOLS = {"TLSv1.2": "all -SSLv2 -SSLv3 -TLSv1 -TLSv1_1", "TLSv1.3": "all -SSLv2 -SSLv3 -TLSv1 -TLSv1_1 -TLSv1_2"}


def tls_lines(tls: TlsSettings, *, acceptor: bool) -> list[str]:
    """QuickFIX's SSL settings (read from [DEFAULT]: one TLS context per acceptor or initiator)."""
    role = "Server" if acceptor else "Client"
    lines = [f"SSLProtocol={PROTOCOLS[tls.min_version]}"]
    if tls.certificate:
        lines.append(f"{role}CertificateFile={tls.certificate}")
        lines.append(f"{role}CertificateKeyFile={tls.key or tls.certificate}")
    if tls.ca:
        lines.append(f"CertificationAuthoritiesFile={tls.ca}")
    if acceptor:
        # 1: a client certificate signed by the CA is required; 2: checked when one is shown.
        lines.append(f"CertificateVerifyLevel={1 if tls.require_client_certificate else 2 if tls.ca else 0}")
    if tls.ciphers:
        lines.append(f"SSLCipherSuite={tls.ciphers}")
    return lines


def settings_text(state_dir: Path, sessions: list[AcceptorSession | InitiatorSession], *,
                  day_start_utc: str | None = None, tls: TlsSettings | None = None) -> str:
    """Return the QuickFIX settings for `sessions`, with stores and logs under `state_dir`.

    Without `day_start_utc` the sessions never end (QuickFIX 1.16's NonStopSession). QuickFIX C++ 1.15
    has no such setting: with `day_start_utc` ("HH:MM") a session lasts 24 hours from that time each
    day, and QuickFIX starts a new one (sequence numbers back to 1) when the trading day rolls.
    """
    schedule = (["NonStopSession=Y"] if day_start_utc is None
                else [f"StartTime={day_start_utc}:00", f"EndTime={day_start_utc}:00"])
    lines = [
        "# Generated by fixgate from its TOML configuration at start; edit that file, not this one.",
        "[DEFAULT]",
        f"FileStorePath={state_dir / 'store'}",
        *schedule,
        "UseDataDictionary=Y",
        "SocketNodelay=Y",
        "SocketReuseAddress=Y",
        "PersistMessages=Y",
    ]
    if tls is not None and tls.enabled:
        lines += tls_lines(tls, acceptor=any(isinstance(session, AcceptorSession) for session in sessions))
    initiators = [session for session in sessions if isinstance(session, InitiatorSession)]
    if initiators:
        # The threaded initiator reads its reconnect interval from [DEFAULT] only.
        lines.append(f"ReconnectInterval={min(session.reconnect_seconds for session in initiators)}")
    for session in sessions:
        lines += ["", "[SESSION]", f"BeginString={BEGIN_STRING}", f"SenderCompID={session.sender}",
                  f"TargetCompID={session.target}", *session_lines(session.options)]
        if session.options.start_time:
            lines += Schedule.from_settings(session.options, default_start=day_start_utc or "00:00").quickfix_lines()
        if isinstance(session, AcceptorSession):
            lines += ["ConnectionType=acceptor", f"SocketAcceptPort={session.port}"]
        else:
            # What an initiator sends are orders, cancels and replaces: after a reconnect, a peer's
            # ResendRequest is answered with a gap fill, never with a stale order (the gateway's
            # reconciliation asks the venue what it has instead). Not storing them also saves two
            # file writes per message.
            lines += ["ConnectionType=initiator", f"SocketConnectHost={session.host}",
                      f"SocketConnectPort={session.port}", f"HeartBtInt={session.heartbeat_seconds}",
                      f"ReconnectInterval={session.reconnect_seconds}", "PersistMessages=N"]
            for number, (host, port) in enumerate(session.backups, start=1):
                lines += [f"SocketConnectHost{number}={host}", f"SocketConnectPort{number}={port}"]
    return "\n".join(lines) + "\n"


class Engine:
    """The QuickFIX acceptor and/or initiator of one process, built from generated settings.

    Parameters
    ----------
    application : quickfix.Application
        Receives every callback of every session.
    state_dir : Path
        Settings, stores and logs go under it.
    name : str
        Names the settings files (``<state_dir>/sessions/<name>-acceptor.cfg`` and ``-initiator.cfg``).
    sessions : list
        `AcceptorSession` and `InitiatorSession` values.
    message_log : bool
        Keep a message log per session in ``<state_dir>/fixlog`` (passwords masked).
    """

    def __init__(self, application, state_dir: Path, name: str,
                 sessions: list[AcceptorSession | InitiatorSession], *, message_log: bool = True):
        self.state_dir = Path(state_dir)
        (self.state_dir / "sessions").mkdir(parents=True, exist_ok=True)
        (self.state_dir / "store").mkdir(parents=True, exist_ok=True)
        (self.state_dir / "fixlog").mkdir(parents=True, exist_ok=True)
        self.acceptor = None
        self.initiator = None
        # Messages are logged by the application's callbacks (passwords masked), not by QuickFIX.
        self.message_log = MessageLog(self.state_dir / "fixlog") if message_log else None
        application.message_log = self.message_log
        self.settings_paths: list[Path] = []
        self._factories = []
        for role, kind in (("acceptor", AcceptorSession), ("initiator", InitiatorSession)):
            chosen = [session for session in sessions if isinstance(session, kind)]
            if not chosen:
                continue
            path = self.state_dir / "sessions" / f"{name}-{role}.cfg"
            path.write_text(settings_text(self.state_dir, chosen))
            self.settings_paths.append(path)
            settings = fix.SessionSettings(str(path))
            store_factory = fix.FileStoreFactory(settings)
            log_factory = fix.ScreenLogFactory(False, False, False)
            self._factories.append((settings, store_factory, log_factory))
            # The threaded variants (a thread per connection): QuickFIX 1.16's single-threaded
            # SocketAcceptor frees its server on its own thread while stop() may still be closing it.
            if role == "acceptor":
                self.acceptor = fix.ThreadedSocketAcceptor(application, store_factory, settings, log_factory)
            else:
                self.initiator = fix.ThreadedSocketInitiator(application, store_factory, settings, log_factory)

    def start(self) -> None:
        """Start listening and connecting (QuickFIX's own threads do the work)."""
        if self.acceptor is not None:
            self.acceptor.start()
        if self.initiator is not None:
            self.initiator.start()

    def sessions(self) -> list[fix.Session]:
        """Return the QuickFIX sessions of this engine."""
        found = []
        for owner in (self.acceptor, self.initiator):
            if owner is None:
                continue
            for identifier in owner.getSessions():
                session = fix.Session.lookupSession(identifier)
                if session is not None:
                    found.append(session)
        return found

    def stop(self, timeout: float = 2.0) -> None:
        """Log out every session, stop QuickFIX's threads and release the sessions.

        Logouts are sent here and awaited for up to `timeout` seconds (QuickFIX's own stop waits in
        whole seconds, up to ten). QuickFIX keeps a process-wide registry of sessions by SessionID;
        dropping the acceptor and initiator destroys their sessions, so that a later engine in the
        same process may create sessions with the same ids.
        """
        sessions = self.sessions()
        for session in sessions:
            if session.isLoggedOn():
                session.logout()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(session.isLoggedOn() for session in sessions):
            time.sleep(0.01)
        if self.initiator is not None:
            self.initiator.stop(True)
        if self.acceptor is not None:
            self.acceptor.stop(True)
        self.initiator = None
        self.acceptor = None
        self._factories.clear()
        if self.message_log is not None:
            self.message_log.close()


def session_id(sender: str, target: str) -> fix.SessionID:
    """Return the QuickFIX SessionID of a FIX 4.4 session."""
    return fix.SessionID(BEGIN_STRING, sender, target)


def is_logged_on(identifier: fix.SessionID) -> bool:
    """Return True when the session exists and is logged on."""
    session = fix.Session.lookupSession(identifier)
    return session is not None and session.isLoggedOn()
