"""TLS on the client acceptor and on a venue's connection, with certificates made for each test
(trustme, RSA keys): clients that are not the gateway's own (Python's ssl over a raw socket), and a
venue behind a TLS terminator of Python's ssl (the quickfix binding is built without SSL)."""

from __future__ import annotations

import dataclasses
import ssl
import time

import pytest
import trustme

from fixgate.config import TlsSettings
from fixgate.core.messages import ExecType

from .conftest import Stack, stack_config
from .peers import RawFixClient, TlsTerminator
from .test_sessions import logon, messages, order_fields, wait_for_message

SOH = "\x01"
RSA = trustme.KeyType.RSA


class Certificates:
    """A CA for the gateway, one for its clients, one nobody trusts; files under `directory`."""

    def __init__(self, directory):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        # QuickFIX C++ 1.15.1 loads RSA (or DSA) keys only.
        self.server_ca, self.client_ca, self.rogue_ca = (trustme.CA(key_type=RSA) for _ in range(3))
        self.server_ca.cert_pem.write_to_path(str(directory / "server-ca.pem"))
        self.client_ca.cert_pem.write_to_path(str(directory / "client-ca.pem"))
        self.gateway = self._write("gateway", self.server_ca.issue_cert("127.0.0.1", "localhost", key_type=RSA))

    def _write(self, name, issued):
        certificate, key = self.directory / f"{name}.pem", self.directory / f"{name}.key"
        for index, blob in enumerate(issued.cert_chain_pems):
            blob.write_to_path(str(certificate), append=index > 0)
        issued.private_key_pem.write_to_path(str(key))
        return certificate, key

    def acceptor_tls(self, **overrides) -> TlsSettings:
        certificate, key = self.gateway
        return TlsSettings(**{"enabled": True, "certificate": str(certificate), "key": str(key),
                              "ca": str(self.directory / "client-ca.pem"), "require_client_certificate": True,
                              **overrides})

    def client_context(self, common_name: str | None = "CLIENT1", *, ca=None, maximum=None) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.server_ca.configure_trust(context)
        if maximum is not None:
            context.maximum_version = maximum
        if common_name is not None:
            (ca or self.client_ca).issue_cert(f"{common_name.lower()}.example", common_name=common_name,
                                              key_type=RSA).configure_cert(context)
        return context


@pytest.fixture
def certificates(tmp_path):
    return Certificates(tmp_path / "certs")


def tls_stack(tmp_path, certificates, *, client_overrides=None, **tls):
    config = stack_config(client_overrides=client_overrides)
    config = dataclasses.replace(config, acceptor=dataclasses.replace(config.acceptor,
                                                                      tls=certificates.acceptor_tls(**tls)))
    return Stack(config, tmp_path / "stack").start()


def tls_client(stack, context) -> RawFixClient:
    return RawFixClient("127.0.0.1", stack.config.acceptor.port, "CLIENT1", stack.config.gateway.comp_id, tls=context)


def refused(stack, context, *fields) -> bool:
    """True when a TLS client with `context` cannot log on (handshake refused, or closed before a Logon)."""
    try:
        client = tls_client(stack, context)
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    try:
        return not [m for m in logon(client, *fields, timeout=3) if m["35"] == "A"]
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    finally:
        client.close()


def test_tls_client_with_a_trusted_certificate_logs_on_and_trades(tmp_path, certificates):
    stack = tls_stack(tmp_path, certificates)
    try:
        client = tls_client(stack, certificates.client_context())
        try:
            assert [m["35"] for m in logon(client, (553, "demo"), (554, "demo"))] == ["A"]
            assert client.socket.version() in ("TLSv1.2", "TLSv1.3")
            client.send("D", order_fields("T1"))
            ack = wait_for_message(client, lambda m: m["35"] == "8" and m.get("11") == "T1")
            assert ack is not None and ack["150"] == ExecType.NEW
        finally:
            client.close()
    finally:
        stack.stop()


def test_tls_client_without_a_certificate_or_with_an_untrusted_one_or_in_plain_tcp_is_refused(tmp_path,
                                                                                                certificates):
    stack = tls_stack(tmp_path, certificates)
    try:
        credentials = ((553, "demo"), (554, "demo"))
        assert refused(stack, certificates.client_context(None), *credentials)
        assert refused(stack, certificates.client_context(ca=certificates.rogue_ca), *credentials)
        # A plain-TCP client on the TLS port gets nothing that reads as FIX.
        plain = RawFixClient("127.0.0.1", stack.config.acceptor.port, "CLIENT1", "FIXGATE")
        try:
            plain.logon("demo", "demo", timeout=2)
            assert b"8=FIX" not in plain.received
        finally:
            plain.close()
        assert not stack.gateway.engine.client_logged_on(0)
        # And a trusted client still logs on afterwards.
        assert not refused(stack, certificates.client_context(), *credentials)
    finally:
        stack.stop()


def test_tls_client_known_by_its_certificate_needs_no_password_and_another_name_is_refused(tmp_path,
                                                                                            certificates):
    stack = tls_stack(tmp_path, certificates,
                      client_overrides={"username": "", "password": "", "certificate_name": "CLIENT1"})
    try:
        client = tls_client(stack, certificates.client_context("SOMEONE"))
        try:
            answers = logon(client, timeout=3)
            (logout,) = [m for m in answers if m["35"] == "5"]
            assert logout["58"].endswith("the TLS client certificate is SOMEONE's, not the client's")
        finally:
            client.close()
        # Its own certificate, no Username or Password: logged on (from 1 again, so with a reset).
        assert not refused(stack, certificates.client_context("CLIENT1"), (141, "Y"))
    finally:
        stack.stop()


def test_tls_when_the_oldest_version_is_1_3_a_1_2_client_is_refused(tmp_path, certificates):
    stack = tls_stack(tmp_path, certificates, min_version="TLSv1.3")
    try:
        credentials = ((553, "demo"), (554, "demo"))
        assert refused(stack, certificates.client_context(maximum=ssl.TLSVersion.TLSv1_2), *credentials)
        assert not refused(stack, certificates.client_context(), *credentials)
    finally:
        stack.stop()


# -- TOWARDS A VENUE --------------------------------------------------------------------------------

def venue_over_tls(tmp_path, certificates, *, trusted=True):
    """A stack whose venue connection goes through TLS (a terminator in front of the simulator); the
    gateway trusts the venue's CA or not."""
    from .conftest import free_port

    config = stack_config()
    ca = certificates.directory / ("server-ca.pem" if trusted else "client-ca.pem")
    tls_port = free_port()
    gateway_side = dataclasses.replace(config, venues=tuple(
        dataclasses.replace(venue, port=tls_port, tls=TlsSettings(enabled=True, ca=str(ca)))
        for venue in config.venues))
    stack = Stack(gateway_side, tmp_path, venue_config=config)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate, key = certificates.gateway
    context.load_cert_chain(str(certificate), str(key))
    terminator = TlsTerminator(tls_port, config.simulator.port, context)
    return stack, terminator


def test_venue_over_tls_logs_on_and_trades_and_an_untrusted_venue_is_never_logged_on(tmp_path, certificates):
    stack, terminator = venue_over_tls(tmp_path / "trusted", certificates)
    terminator.start()
    try:
        stack.start()
        client = stack.client()
        cl_ord_id = client.new_order("AAPL", "1", "1", "189.00")
        assert client.wait_report(cl_ord_id, exec_type=ExecType.NEW) is not None, \
            [(r.exec_type, getattr(r, "text", "")) for r in client.reports]
        assert terminator.connections >= 1 and terminator.handshakes_failed == 0
    finally:
        stack.stop()
        terminator.stop()
    untrusted, terminator = venue_over_tls(tmp_path / "untrusted", certificates, trusted=False)
    terminator.start()
    untrusted.venue.start()
    untrusted.gateway.start()
    try:
        assert not untrusted.gateway.wait_for_venues(3)
        assert terminator.connections == 0
    finally:
        untrusted.stop()
        terminator.stop()


def test_tls_client_when_it_stops_reading_is_cut_after_the_stall_limit_and_others_keep_trading(tmp_path,
                                                                                                certificates):
    base = stack_config()
    fast_client = dataclasses.replace(base.clients[1], max_order_rate=100000.0, burst=100000)
    config = dataclasses.replace(
        base, clients=(base.clients[0], fast_client),
        acceptor=dataclasses.replace(base.acceptor, tls=certificates.acceptor_tls()),
        gateway=dataclasses.replace(base.gateway, slow_consumer_timeout_ms=1000),
        risk=dataclasses.replace(base.risk, kill_order_rate=None, global_max_order_rate=None))
    stack = Stack(config, tmp_path / "stack").start()
    try:
        other = tls_client(stack, certificates.client_context("CLIENT1"))
        assert [m["35"] for m in logon(other, (553, "demo"), (554, "demo"))] == ["A"]
        slow = RawFixClient("127.0.0.1", config.acceptor.port, "CLIENT2", "FIXGATE",
                            tls=certificates.client_context("CLIENT2"))
        assert slow.logon("demo", "demo")
        sent = 0
        try:
            for number in range(5000):
                slow.send("D", order_fields(f"S{number}")[:7] + [(59, "3")])     # IOC: two reports each
                sent += 1
        except (OSError, ssl.SSLError):
            pass                                          # cut while still sending
        assert sent > 100
        deadline = time.monotonic() + 15
        while not stack.gateway.alarm_counts.get("slow_consumer") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stack.gateway.alarm_counts.get("slow_consumer") == 1
        deadline = time.monotonic() + 5
        while stack.gateway.engine.client_logged_on(1) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not stack.gateway.engine.client_logged_on(1)
        for number in range(20):
            other.send("D", order_fields(f"O{number}"))
        assert wait_for_message(other, lambda m: m["35"] == "8" and m.get("11") == "O19", timeout=5)
        assert stack.gateway.watchdog()["ok"]
        slow.close()
        other.close()
    finally:
        started = time.monotonic()
        stack.stop()
        assert time.monotonic() - started < 10
