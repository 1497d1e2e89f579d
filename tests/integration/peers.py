"""Peers for the tests that are not the gateway's own simulator and client.

- `ScriptedVenue`: a FIX 4.4 acceptor (the pip QuickFIX binding) that records every message it gets,
  raw, and answers as the test scripts it: an off-lot fill, a session Reject, a BusinessMessageReject,
  an answer to a status request that is a reject, whatever a misbehaving venue would send.
- `RawFixClient`: FIX 4.4 over a plain socket, hand-encoded: it can log on and then stop reading.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Callable

import quickfix as fix

from fixgate.fix.engine import AcceptorSession, Engine, keep_thread_state

SOH = "\x01"


def fields_of(text: str) -> list[tuple[str, str]]:
    return [tuple(item.split("=", 1)) for item in text.split(SOH) if "=" in item]


def build(msg_type: str, fields: list[tuple[int, str]]) -> fix.Message:
    """A QuickFIX message of `msg_type` with `fields` (header and trailer filled when sent)."""
    body = "".join(f"{tag}={value}{SOH}" for tag, value in fields)
    return fix.Message(f"8=FIX.4.4{SOH}9=0{SOH}35={msg_type}{SOH}{body}10=000{SOH}", False)


class Received:
    """One message the scripted venue got: its type, its fields (first value per tag), the raw text."""

    def __init__(self, text: str) -> None:
        self.text = text
        pairs = fields_of(text)
        self.fields: dict[str, str] = {}
        for tag, value in pairs:
            self.fields.setdefault(tag, value)
        self.msg_type = self.fields.get("35", "")

    def __getitem__(self, tag: int) -> str:
        return self.fields[str(tag)]

    def get(self, tag: int, default: str | None = None) -> str | None:
        return self.fields.get(str(tag), default)


class _VenueApplication(fix.Application):
    def __init__(self, venue: "ScriptedVenue") -> None:
        super().__init__()
        self.venue = venue

    def onCreate(self, sessionID):
        keep_thread_state()

    def onLogon(self, sessionID):
        keep_thread_state()
        self.venue.session_id = sessionID
        self.venue.logged_on.set()

    def onLogout(self, sessionID):
        keep_thread_state()
        self.venue.logged_on.clear()

    def toAdmin(self, message, sessionID):
        keep_thread_state()

    def toApp(self, message, sessionID):
        keep_thread_state()

    def fromAdmin(self, message, sessionID):
        keep_thread_state()
        self.venue._record(Received(message.toString()), admin=True)

    def fromApp(self, message, sessionID):
        keep_thread_state()
        received = Received(message.toString())
        self.venue._record(received, admin=False)
        try:
            self.venue.script(self.venue, received)
        except Exception as error:              # a broken script must not end the process
            self.venue.errors.append(repr(error))


def acknowledge(venue: "ScriptedVenue", message: Received) -> None:
    """The default script: acknowledge a new order, answer a status request, ignore the rest."""
    if message.msg_type == "D":
        venue.execution(message, exec_type="0", ord_status="0", leaves=message[38], cum="0", avg="0")
    elif message.msg_type == "H":
        venue.send("8", [(37, "NONE"), (11, message[11]), (17, venue.next_id("S")), (150, "I"), (39, "8"),
                         (55, message[55]), (54, message[54]), (151, "0"), (14, "0"), (6, "0")])


class ScriptedVenue:
    """A venue acceptor for one counterparty whose answers the test writes.

    Parameters
    ----------
    port : int
        Where it listens (QuickFIX acceptors bind every interface; the tests connect on 127.0.0.1).
    state_dir : Path
        Its QuickFIX store and settings.
    script : callable
        ``script(venue, message)`` for every application message received (`acknowledge` by default).
    """

    def __init__(self, port: int, state_dir: Path, *, comp_id: str = "SIMVENUE", counterparty: str = "FIXGATE",
                 script: Callable[["ScriptedVenue", Received], None] = acknowledge) -> None:
        self.script = script
        self.logged_on = threading.Event()
        self.session_id = None
        self.messages: list[Received] = []
        self.admin_messages: list[Received] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._ids = 0
        self.engine = Engine(_VenueApplication(self), Path(state_dir), "scripted-venue",
                             [AcceptorSession(comp_id, counterparty, port)], message_log=False)

    def start(self) -> "ScriptedVenue":
        self.engine.start()
        return self

    def stop(self) -> None:
        self.engine.stop(0.5)

    def _record(self, message: Received, admin: bool) -> None:
        with self._lock:
            (self.admin_messages if admin else self.messages).append(message)

    def received(self, msg_type: str) -> list[Received]:
        with self._lock:
            return [message for message in self.messages if message.msg_type == msg_type]

    def admin_received(self, msg_type: str) -> list[Received]:
        with self._lock:
            return [message for message in self.admin_messages if message.msg_type == msg_type]

    def next_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}{self._ids}"

    def send(self, msg_type: str, fields: list[tuple[int, str]]) -> bool:
        return fix.Session.sendToTarget(build(msg_type, fields), self.session_id)

    def execution(self, order: Received, *, exec_type: str, ord_status: str, leaves: str, cum: str, avg: str,
                  last_qty: str | None = None, last_px: str | None = None, cl_ord_id: str | None = None,
                  orig_cl_ord_id: str | None = None, text: str | None = None, order_id: str = "V1") -> bool:
        fields = [(37, order_id), (11, cl_ord_id or order[11])]
        if orig_cl_ord_id:
            fields.append((41, orig_cl_ord_id))
        fields += [(17, self.next_id("X")), (150, exec_type), (39, ord_status), (55, order[55]), (54, order[54]),
                   (38, order.get(38, "0"))]
        if order.get(44):
            fields.append((44, order[44]))
        if last_qty is not None:
            fields += [(32, last_qty), (31, last_px)]
        fields += [(151, leaves), (14, cum), (6, avg)]
        if text:
            fields.append((58, text))
        return self.send("8", fields)

    def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.01)
        return predicate()


# -- RAW FIX OVER A SOCKET ------------------------------------------------------------------------

def encode(msg_type: str, sender: str, target: str, seq: int, fields: list[tuple[int, str]]) -> bytes:
    """One FIX 4.4 message with its BodyLength and CheckSum."""
    stamp = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime()) + ".000"
    body = f"35={msg_type}{SOH}49={sender}{SOH}56={target}{SOH}34={seq}{SOH}52={stamp}{SOH}" + "".join(
        f"{tag}={value}{SOH}" for tag, value in fields)
    head = f"8=FIX.4.4{SOH}9={len(body.encode())}{SOH}"
    message = (head + body).encode()
    return message + f"10={sum(message) % 256:03d}{SOH}".encode()


class RawFixClient:
    """A client that speaks FIX through a plain socket, so that it can stop reading at will."""

    def __init__(self, host: str, port: int, sender: str, target: str, *, receive_buffer: int = 4096,
                 tls=None) -> None:
        self.sender = sender
        self.target = target
        self.seq = 0
        self.socket = socket.socket()
        # A small receive buffer, so that what the gateway sends piles up on its side quickly.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.socket.settimeout(5)
        self.socket.connect((host, port))
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:                               # an ssl.SSLContext: the handshake happens here
            self.socket = tls.wrap_socket(self.socket, server_hostname=host)
        self.received = b""
        self.closed = False

    def send(self, msg_type: str, fields: list[tuple[int, str]]) -> None:
        self.seq += 1
        self.socket.sendall(encode(msg_type, self.sender, self.target, self.seq, fields))

    def logon(self, username: str, password: str, timeout: float = 5.0) -> bool:
        self.send("A", [(98, "0"), (108, "30"), (141, "Y"), (553, username), (554, password)])
        return b"\x0135=A\x01" in self.read_until(b"\x0135=A\x01", timeout)

    def read_until(self, marker: bytes, timeout: float) -> bytes:
        self.socket.settimeout(0.2)
        deadline = time.monotonic() + timeout
        while marker not in self.received and time.monotonic() < deadline and not self.closed:
            try:
                chunk = self.socket.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionError, ssl.SSLError, OSError):
                chunk = b""                               # refused: reset, or a TLS alert
            if not chunk:
                self.closed = True
                break
            self.received += chunk
        return self.received

    def new_order(self, cl_ord_id: str, symbol: str, side: str, qty: str, price: str) -> None:
        self.send("D", [(11, cl_ord_id), (55, symbol), (54, side), (60, time.strftime("%Y%m%d-%H:%M:%S")),
                        (38, qty), (40, "2"), (44, price), (59, "0")])

    def close(self) -> None:
        try:
            self.socket.close()
        except OSError:
            pass


class VenueBook:
    """A venue's orders for a `ScriptedVenue` script: new, cancel, replace, status and mass status
    answered the way a plain exchange would, fills only when the test makes them."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, str]] = {}      # the order's current ClOrdID -> its state
        self._lock = threading.Lock()

    def __call__(self, venue: ScriptedVenue, message: Received) -> None:
        with self._lock:
            self._handle(venue, message)

    def _report(self, venue: ScriptedVenue, order: dict[str, str], exec_type: str, **extra) -> None:
        fields = [(37, order["order_id"]), (11, extra.pop("cl_ord_id", order["cl_ord_id"]))]
        if "orig" in extra:
            fields.append((41, extra.pop("orig")))
        fields += [(17, venue.next_id("X")), (150, exec_type), (39, order["status"]), (55, order["symbol"]),
                   (54, order["side"]), (38, order["qty"]), (40, "2"), (44, order["price"])]
        if "last_qty" in extra:
            fields += [(32, extra.pop("last_qty")), (31, extra.pop("last_px"))]
        leaves = "0" if order["status"] in ("2", "4", "8") else str(int(order["qty"]) - int(order["cum"]))
        fields += [(151, leaves), (14, order["cum"]), (6, order["avg"])]
        for tag, value in extra.items():
            fields.append((int(tag.lstrip("t")), value))
        venue.send("8", fields)

    def _handle(self, venue: ScriptedVenue, message: Received) -> None:
        kind = message.msg_type
        if kind == "D":
            order = {"cl_ord_id": message[11], "order_id": venue.next_id("V"), "symbol": message[55],
                     "side": message[54], "qty": message[38], "price": message.get(44, "0"), "cum": "0",
                     "avg": "0", "status": "0", "cost": "0"}
            self.orders[order["cl_ord_id"]] = order
            self._report(venue, order, "0")
        elif kind in ("F", "G"):
            order = self.orders.pop(message[41], None)
            if order is None or order["status"] in ("2", "4"):
                venue.send("9", [(37, "NONE"), (11, message[11]), (41, message[41]), (39, "8"),
                                 (434, "1" if kind == "F" else "2"), (102, "1"), (58, "unknown order")])
                return
            orig = order["cl_ord_id"]
            order["cl_ord_id"] = message[11]
            self.orders[order["cl_ord_id"]] = order
            if kind == "F":
                order["status"] = "4"
                self._report(venue, order, "4", orig=orig)
            else:
                order["qty"] = message[38]
                order["price"] = message.get(44, order["price"])
                self._report(venue, order, "5", orig=orig)
        elif kind == "H":
            order = self.orders.get(message[11])
            if order is None:
                venue.send("8", [(37, "NONE"), (11, message[11]), (17, venue.next_id("S")), (150, "I"), (39, "8"),
                                 (55, message[55]), (54, message[54]), (151, "0"), (14, "0"), (6, "0")])
            else:
                self._report(venue, order, "I")
        elif kind == "AF":
            live = [order for order in self.orders.values() if order["status"] in ("0", "1")]
            for index, order in enumerate(live):
                self._report(venue, order, "I", t584=message[584], t912="Y" if index == len(live) - 1 else "N")

    def fill(self, venue: ScriptedVenue, cl_ord_id: str, qty: int, price: str) -> None:
        """Fill `qty` of the order the venue knows as `cl_ord_id` at `price` and report it."""
        from decimal import Decimal

        with self._lock:
            order = self.orders[cl_ord_id]
            cost = Decimal(order["cost"]) + Decimal(qty) * Decimal(price)
            cum = int(order["cum"]) + qty
            order.update(cum=str(cum), cost=str(cost), avg=format((cost / cum).normalize(), "f"),
                         status="2" if cum >= int(order["qty"]) else "1")
            self._report(venue, order, "F", last_qty=str(qty), last_px=price)


# -- TLS IN FRONT OF A PLAIN PEER -----------------------------------------------------------------

class TlsTerminator:
    """Accept TLS on `port` (Python's ssl: OpenSSL, not QuickFIX) and relay each connection's bytes to
    a plain peer on `target_port`: a venue that speaks TLS, for the simulator, whose quickfix binding
    is built without SSL."""

    def __init__(self, port: int, target_port: int, context: ssl.SSLContext) -> None:
        self.target_port = target_port
        self.context = context
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(8)
        self.listener.settimeout(0.2)
        self.handshakes_failed = 0
        self.connections = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]

    def start(self) -> "TlsTerminator":
        self._threads[0].start()
        return self

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            raw.settimeout(5)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                secure = self.context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                self.handshakes_failed += 1
                raw.close()
                continue
            self.connections += 1
            plain = socket.create_connection(("127.0.0.1", self.target_port))
            plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for source, sink in ((secure, plain), (plain, secure)):
                thread = threading.Thread(target=self._pump, args=(source, sink), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _pump(self, source, sink) -> None:
        source.settimeout(0.2)
        while not self._stop.is_set():
            try:
                chunk = source.recv(65536)
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError):
                chunk = b""
            if not chunk:
                break
            try:
                sink.sendall(chunk)
            except OSError:
                break
        for end in (source, sink):
            try:
                end.close()
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self.listener.close()
        for thread in self._threads:
            thread.join(2)
