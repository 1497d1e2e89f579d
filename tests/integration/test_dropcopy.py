"""`fixgate dropcopy` over a real NATS JetStream server: a compliance client on a raw socket (not our
FIX client) gets an ExecutionReport for every order event of the gateway, tagged with the gateway
and the client, and resumes where it left off after it or the drop copy restarts."""

from __future__ import annotations

import dataclasses
import time

import pytest

from fixgate.config import DropCopyClientSettings, DropCopySettings
from fixgate.core.events import events_from_bytes
from fixgate.firm.feed import EXEC_TYPES
from fixgate.fix.dropcopy import DropCopy

from .conftest import Stack, free_port, wait_until
from .peers import RawFixClient
from .test_firm import firm_config, journal_batches, trade

SOH = "\x01"



def reports(raw: bytes) -> list[list[tuple[str, str]]]:
    """The ExecutionReports in what a raw client read, each as its (tag, value) pairs in order."""
    found = []
    for text in raw.decode(errors="replace").split(f"8=FIX.4.4{SOH}")[1:]:
        pairs = [tuple(pair.partition("=")[::2]) for pair in text.split(SOH) if pair]
        if ("35", "8") in pairs:
            found.append(pairs)
    return found


def value(pairs, tag: str) -> str | None:
    return next((found for key, found in pairs if key == tag), None)


def compliance(port: int, seq: int = 0) -> RawFixClient:
    client = RawFixClient("127.0.0.1", port, "COMPLIANCE", "FIXGATE-DC")
    client.seq = seq
    client.send("A", [(98, "0"), (108, "30")])
    client.read_until(f"{SOH}35=A{SOH}".encode(), 5)
    return client


def expected_exec_ids(gateway) -> set[str]:
    """One ExecID per order event of the journal that a drop copy reports."""
    journal_id = gateway.journal.journal_id
    return {f"gw1-{journal_id[:8]}-{event.seq}" for _, data in journal_batches(gateway.state_dir / "journal.sqlite3")
            for event in events_from_bytes(data) if event.kind in EXEC_TYPES}


def received_exec_ids(raw: bytes) -> list[str]:
    return [value(pairs, "17") for pairs in reports(raw)]


def test_dropcopy_when_gateways_trade_sends_compliance_each_report_once_across_restarts_of_either(tmp_path,
                                                                                                 nats_server):
    config = firm_config(nats_server.url)
    port = free_port()
    config = dataclasses.replace(config, dropcopy=DropCopySettings(
        port=port, state_dir=str(tmp_path / "dropcopy"), clients=(DropCopyClientSettings(comp_id="COMPLIANCE"),)))
    stack = Stack(config, tmp_path).start()
    dropcopy = DropCopy(config, message_log=False)
    dropcopy.start()
    readers = []
    try:
        client = stack.client()
        ids = trade(client, 6)                                       # fills, resting orders, refusals
        stack.settle()
        reader = compliance(port)
        readers.append(reader)
        assert wait_until(lambda: reports(reader.read_until(b"\x00", 0.2))
                          and set(received_exec_ids(reader.received)) == expected_exec_ids(stack.gateway), 15), (
            len(reports(reader.received)), len(expected_exec_ids(stack.gateway)))
        fill = next(pairs for pairs in reports(reader.received)
                    if value(pairs, "11") == ids[0] and value(pairs, "150") == "F")
        assert [(key, found) for key, found in fill if key in ("453", "448", "447", "452")] == [
            ("453", "2"), ("448", "gw1"), ("447", "D"), ("452", "1"), ("448", "client1"), ("447", "D"), ("452", "3")]
        assert (value(fill, "55"), value(fill, "32"), value(fill, "31"), value(fill, "39")) == ("AAPL", "1", "190.01", "2")
        refused = next(pairs for pairs in reports(reader.received) if value(pairs, "11") == ids[2])
        assert (value(refused, "150"), value(refused, "58")) == ("8", "UNKNOWN_INSTRUMENT: unknown instrument")

        # The compliance client goes away; the gateway trades on; it comes back and gets the rest.
        seq = reader.seq
        reader.socket.close()
        assert wait_until(lambda: not dropcopy.application.logged_on, 5)
        trade(client, 3)
        stack.settle()
        again = compliance(port, seq)
        readers.append(again)
        assert wait_until(lambda: set(received_exec_ids(reader.received + again.read_until(b"\x00", 0.2)))
                          == expected_exec_ids(stack.gateway), 15)

        # The drop copy restarts while the gateway trades; the client logs on to the new one.
        seq = again.seq
        again.socket.close()
        dropcopy.stop()
        trade(client, 3)
        stack.settle()
        dropcopy = DropCopy(config, message_log=False)
        dropcopy.start()
        third = compliance(port, seq)
        readers.append(third)
        assert wait_until(lambda: set(received_exec_ids(reader.received + again.received
                                                        + third.read_until(b"\x00", 0.2)))
                          == expected_exec_ids(stack.gateway), 15)
        everything = received_exec_ids(reader.received + again.received + third.received)
        assert len(everything) == len(set(everything)), "a report was sent twice"
    finally:
        for reader in readers:
            reader.socket.close()
        dropcopy.stop()
        stack.stop()


def test_dropcopy_when_the_client_sends_an_order_refuses_it_and_keeps_the_session(tmp_path, nats_server):
    config = firm_config(nats_server.url)
    port = free_port()
    config = dataclasses.replace(config, dropcopy=DropCopySettings(
        port=port, state_dir=str(tmp_path / "dropcopy"),
        clients=(DropCopyClientSettings(comp_id="COMPLIANCE", username="audit", password="secret"),)))
    stack = Stack(config, tmp_path).start()
    dropcopy = DropCopy(config, message_log=False)
    dropcopy.start()
    try:
        wrong = RawFixClient("127.0.0.1", port, "COMPLIANCE", "FIXGATE-DC")
        wrong.send("A", [(98, "0"), (108, "30"), (553, "audit"), (554, "guess")])
        wrong.read_until(f"{SOH}35=5{SOH}".encode(), 5)
        assert f"{SOH}35=5{SOH}".encode() in wrong.received              # refused with a Logout
        wrong.socket.close()
        time.sleep(0.3)
        reader = RawFixClient("127.0.0.1", port, "COMPLIANCE", "FIXGATE-DC")
        reader.seq = 0                                                  # the refused Logon never counted
        reader.send("A", [(98, "0"), (108, "30"), (553, "audit"), (554, "secret")])
        reader.read_until(f"{SOH}35=A{SOH}".encode(), 5)
        assert f"{SOH}35=A{SOH}".encode() in reader.received
        reader.send("D", [(11, "X1"), (55, "AAPL"), (54, "1"), (60, "20260101-00:00:00"), (38, "1"), (40, "2"),
                          (44, "1"), (59, "0")])
        reader.read_until(f"{SOH}35=3{SOH}".encode(), 5)                # a session Reject, not a trade
        assert f"{SOH}35=3{SOH}".encode() in reader.received or f"{SOH}35=j{SOH}".encode() in reader.received
        assert dropcopy.application.logged_on == {"COMPLIANCE"}
        reader.socket.close()
    finally:
        dropcopy.stop()
        stack.stop()
