"""Session settings a user chooses per client and per venue, seen on the wire by peers that are not
the gateway's own: a raw-socket client (every byte it gets is checked), a scripted venue."""

from __future__ import annotations

import dataclasses
import re
import time
import xml.etree.ElementTree as ElementTree

from fixgate.config import FixSessionSettings
from fixgate.core.messages import ExecType
from fixgate.fix.engine import data_dictionary_path

from .conftest import Stack, stack_config
from .peers import RawFixClient, acknowledge
from .test_native_path import ScriptedStack, scripted_config

SOH = "\x01"


def messages(raw: bytes) -> list[dict[str, str]]:
    """The FIX messages in what a raw client received, each as {tag: value} (first value of a tag)."""
    found = []
    for text in raw.decode(errors="replace").split(f"8=FIX.4.4{SOH}")[1:]:
        fields = {}
        for pair in text.split(SOH):
            tag, _, value = pair.partition("=")
            if tag and tag not in fields:
                fields[tag] = value
        found.append(fields)
    return found


def raw_client(stack, sender="CLIENT1") -> RawFixClient:
    return RawFixClient("127.0.0.1", stack.config.acceptor.port, sender, stack.config.gateway.comp_id)


def logon(client: RawFixClient, *fields: tuple[int, str], timeout: float = 5.0) -> list[dict[str, str]]:
    client.send("A", [(98, "0"), (108, "30"), *fields])
    client.read_until(f"{SOH}35=A{SOH}".encode(), timeout)
    return messages(client.received)


def order_fields(cl_ord_id: str, *extra: tuple[int, str]) -> list[tuple[int, str]]:
    return [(11, cl_ord_id), (55, "AAPL"), (54, "1"), (60, time.strftime("%Y%m%d-%H:%M:%S")), (38, "1"),
            (40, "2"), (44, "189.00"), (59, "0"), *extra]


def wait_for_message(client: RawFixClient, predicate, timeout: float = 5.0) -> dict[str, str] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.read_until(b"\x00never", 0.1)
        for message in messages(client.received):
            if predicate(message):
                return message
    return None


# -- VALIDATION -------------------------------------------------------------------------------------

def test_order_when_it_carries_an_undefined_user_tag_is_refused_with_a_session_reject_373_0(stack):
    client = raw_client(stack)
    try:
        assert [m["35"] for m in logon(client, (553, "demo"), (554, "demo"))] == ["A"]
        client.send("D", order_fields("U1", (5000, "x")))
        reject = wait_for_message(client, lambda m: m["35"] == "3")
        assert reject is not None and reject["373"] == "0" and reject["371"] == "5000"
        assert reject["45"] == "2"                                  # RefSeqNum: the order's
        # Nothing reached the venue, and the session goes on: the next order is taken.
        client.send("D", order_fields("U2"))
        ack = wait_for_message(client, lambda m: m["35"] == "8" and m.get("11") == "U2")
        assert ack is not None and ack["150"] == ExecType.NEW
        assert not [m for m in messages(client.received) if m["35"] == "8" and m.get("11") == "U1"]
        assert stack.gateway.status()["orders"]["received"] == 1
    finally:
        client.close()


def test_order_when_that_client_is_not_validated_for_user_tags_trades_with_one(make_stack):
    stack = make_stack(client_overrides={"session": FixSessionSettings(validate_user_defined_fields=False)})
    client = raw_client(stack)
    try:
        logon(client, (553, "demo"), (554, "demo"))
        client.send("D", order_fields("U1", (5000, "x")))
        ack = wait_for_message(client, lambda m: m["35"] in ("8", "3"))
        assert ack is not None and ack["35"] == "8" and ack["150"] == ExecType.NEW
    finally:
        client.close()


# -- TIMESTAMPS -------------------------------------------------------------------------------------

SENDING_TIME = re.compile(r"^\d{8}-\d\d:\d\d:\d\d(?:\.(\d+))?$")


def test_sending_time_when_left_to_the_default_has_milliseconds_and_microseconds_when_asked(tmp_path):
    digits = []
    for precision in (None, 6):
        # One gateway at a time: QuickFIX keeps one registry of sessions per process.
        overrides = {} if precision is None else {"session": FixSessionSettings(timestamp_precision=precision)}
        stack = Stack(stack_config(client_overrides=overrides), tmp_path / f"p{precision}").start()
        client = raw_client(stack)
        try:
            (answer,) = logon(client, (553, "demo"), (554, "demo"))
            digits.append(len(SENDING_TIME.match(answer["52"]).group(1) or ""))
        finally:
            client.close()
            stack.stop()
    assert digits == [3, 6]


# -- WHO MAY LOG ON ---------------------------------------------------------------------------------

def test_logon_when_the_client_is_known_by_its_address_needs_no_credentials(make_stack):
    stack = make_stack(client_overrides={"username": "", "password": "", "source_addresses": ("127.0.0.1",)})
    client = raw_client(stack)
    try:
        assert [m["35"] for m in logon(client)] == ["A"]
        client.send("D", order_fields("A1"))
        assert wait_for_message(client, lambda m: m["35"] == "8" and m.get("11") == "A1") is not None
    finally:
        client.close()


def test_logon_when_from_an_address_the_client_may_not_use_is_refused_with_the_reason(make_stack):
    stack = make_stack(client_overrides={"source_addresses": ("127.0.0.2",)})
    client = raw_client(stack)
    try:
        answers = logon(client, (553, "demo"), (554, "demo"), timeout=3)
        assert [m["35"] for m in answers if m["35"] in ("A", "5")] == ["5"]
        (logout,) = [m for m in answers if m["35"] == "5"]
        assert logout["58"].endswith("a connection from 127.0.0.1 is not one of the client's source addresses")
    finally:
        client.close()
    # A reset from there is refused before QuickFIX resets anything.
    client = raw_client(stack)
    try:
        client.send("A", [(98, "0"), (108, "30"), (141, "Y"), (553, "demo"), (554, "demo")])
        client.read_until(f"{SOH}35=A{SOH}".encode(), 2)
        assert not [m for m in messages(client.received) if m["35"] == "A"]
    finally:
        client.close()


def test_logon_when_the_client_resets_on_logon_starts_again_at_1(make_stack):
    stack = make_stack(client_overrides={"session": FixSessionSettings(reset_on_logon=True)})
    for attempt in range(2):
        client = raw_client(stack)
        try:
            (answer,) = logon(client, (553, "demo"), (554, "demo"))
            assert answer["34"] == "1"                          # the gateway starts at 1 again too
            client.send("D", order_fields(f"R{attempt}"))
            assert wait_for_message(client, lambda m: m["35"] == "8" and m.get("11") == f"R{attempt}")
            client.send("5", [])
            client.read_until(f"{SOH}35=5{SOH}".encode(), 3)
        finally:
            client.close()
        time.sleep(0.3)


# -- DICTIONARIES -----------------------------------------------------------------------------------

def venue_dictionary(path, tag=5001, name="VenueTag"):
    """FIX44.xml with one custom field of the venue's on ExecutionReport."""
    tree = ElementTree.parse(data_dictionary_path())
    root = tree.getroot()
    ElementTree.SubElement(root.find("fields"), "field", number=str(tag), name=name, type="STRING")
    report = next(message for message in root.find("messages") if message.get("msgtype") == "8")
    ElementTree.SubElement(report, "field", name=name, required="N")
    tree.write(path)
    return path


def test_venue_report_when_it_has_a_custom_tag_of_its_own_dictionary_is_taken(tmp_path):
    def tagging(venue, message):
        if message.msg_type == "D":
            venue.send("8", [(37, "V1"), (11, message[11]), (17, venue.next_id("X")), (150, "0"), (39, "0"),
                             (55, message[55]), (54, message[54]), (38, message[38]), (44, message[44]),
                             (151, message[38]), (14, "0"), (6, "0"), (5001, "queue-7")])
        else:
            acknowledge(venue, message)

    results = {}
    for label, dictionary in (("own", str(venue_dictionary(tmp_path / "venue44.xml"))), ("default", "")):
        base = scripted_config()
        config = dataclasses.replace(base, venues=tuple(
            dataclasses.replace(venue, session=FixSessionSettings(data_dictionary=dictionary))
            for venue in base.venues))
        stack = ScriptedStack(config, tmp_path / label, tagging).start()
        try:
            client = stack.client()
            cl_ord_id = client.new_order("AAPL", "1", "1", "189.00")
            results[label] = client.wait_report(cl_ord_id, exec_type=ExecType.NEW, timeout=3) is not None
        finally:
            stack.stop()
    # With its own dictionary the venue's tag is known; with FIX44.xml the report is refused (373=0).
    assert results == {"own": True, "default": False}


# -- THE ADDRESS IT LISTENS ON ----------------------------------------------------------------------

def connects(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def test_acceptor_when_given_an_address_listens_there_only_and_on_every_interface_when_asked(tmp_path):
    from fixgate._engine.engine import listening_address

    results = []
    for host in ("127.0.0.1", "0.0.0.0"):
        config = stack_config()
        config = dataclasses.replace(config, acceptor=dataclasses.replace(config.acceptor, host=host))
        stack = Stack(config, tmp_path / host).start()
        try:
            port = config.acceptor.port
            results.append((listening_address(port), connects("127.0.0.1", port), connects("127.0.0.2", port)))
        finally:
            stack.stop()
    assert results == [("127.0.0.1", True, False), ("0.0.0.0", True, True)]


def test_run_when_the_acceptor_address_is_not_this_machines_refuses_to_start(tmp_path):
    import subprocess
    import sys

    from fixgate import config as configuration

    config = stack_config()
    config = dataclasses.replace(config, acceptor=dataclasses.replace(config.acceptor, host="192.0.2.1"))
    path = tmp_path / "gateway.toml"
    path.write_text(configuration.to_toml(config, mask_secrets=False))
    result = subprocess.run([sys.executable, "-m", "fixgate", "run", "-c", str(path), "--state-dir",
                             str(tmp_path / "state")], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "192.0.2.1" in result.stderr + result.stdout
    assert not connects("127.0.0.1", config.acceptor.port)


# -- FAILOVER ---------------------------------------------------------------------------------------

def test_venue_when_its_primary_dies_fails_over_to_the_backup_reconciles_and_trades(tmp_path):
    """The venue's standby takes over its session store on another port (as an exchange's backup
    site carries the session on): the gateway reconnects there by itself, asks what the venue holds,
    tells the client about the order the standby does not know, and trades on."""
    from fixgate.simulator.venue import VenueSimulator

    from .conftest import free_port

    backup_port = free_port()
    base = stack_config()
    config = dataclasses.replace(base, venues=tuple(
        dataclasses.replace(venue, backup_hosts=(f"127.0.0.1:{backup_port}",)) for venue in base.venues))
    stack = Stack(config, tmp_path).start()
    backup = None
    try:
        primary_address = stack.gateway.status()["venue_connections"]["simvenue"]
        assert primary_address == f"127.0.0.1:{config.simulator.port}"
        client = stack.client()
        resting = client.new_order("AAPL", "1", "10", "189.00")
        assert client.wait_report(resting, exec_type=ExecType.NEW)
        stack.venue.apply_fault({"action": "drop"})           # the primary dies: no Logout
        stack.venue.stop(0)
        standby = dataclasses.replace(config, simulator=dataclasses.replace(config.simulator, port=backup_port))
        backup = VenueSimulator(standby, tmp_path / "simulator", message_log=False)
        backup.start()
        assert stack.gateway.wait_for_venues(15, ready=True), "the gateway did not fail over to the backup"
        assert stack.gateway.status()["venue_connections"]["simvenue"] == f"127.0.0.1:{backup_port}"
        # The standby never had the resting order: the client is told it is gone.
        gone = client.wait_for(lambda: [report for report in client.reports_for(resting)
                                        if getattr(report, "exec_type", None) in (ExecType.CANCELED,
                                                                                  ExecType.REJECTED)],
                               timeout=10)
        assert gone, [(r.exec_type, getattr(r, "text", "")) for r in client.reports_for(resting)]
        after = client.new_order("AAPL", "1", "1", "189.00")
        assert client.wait_report(after, exec_type=ExecType.NEW, timeout=5) is not None
        assert stack.gateway.book.live_orders == 1
    finally:
        if backup is not None:
            stack.venue = backup
        stack.stop()


# -- SCHEDULES --------------------------------------------------------------------------------------

def test_venue_when_its_session_window_opens_and_closes_trades_only_inside_it(tmp_path):
    """A venue session that opens a few seconds into the test and closes a few seconds later: orders
    before and after are refused with the reason and the next open, orders inside it trade."""
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    opens, closes = now + dt.timedelta(seconds=4), now + dt.timedelta(seconds=12)
    schedule = FixSessionSettings(start_time=opens.strftime("%H:%M:%S"), end_time=closes.strftime("%H:%M:%S"))
    base = stack_config()
    config = dataclasses.replace(base, venues=tuple(dataclasses.replace(venue, session=schedule)
                                                    for venue in base.venues))
    stack = Stack(config, tmp_path)
    stack.venue.start()
    stack.gateway.start()
    try:
        client = stack.client()
        time.sleep(1.2)                                    # the schedule agent's first pass
        before = client.new_order("AAPL", "1", "1", "189.00")
        reject = client.wait_report(before, exec_type=ExecType.REJECTED)
        assert reject is not None and "outside its session" in reject.text, reject
        assert opens.strftime("%Y-%m-%dT%H:%M:%SZ") in reject.text
        status = stack.gateway.status()["session_schedules"]["venues"]["simvenue"]
        assert status["open"] is False and status["next_open"] == opens.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert stack.gateway.wait_for_venues(10, ready=True), "the venue's session did not open"
        inside = client.new_order("AAPL", "1", "1", "189.00")
        assert client.wait_report(inside, exec_type=ExecType.NEW) is not None
        assert stack.gateway.status()["session_schedules"]["venues"]["simvenue"]["open"] is True
        deadline = time.monotonic() + 15
        while stack.gateway.engine.venue_logged_on(0) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not stack.gateway.engine.venue_logged_on(0), "QuickFIX did not end the session at its end time"
        time.sleep(1.2)
        after = client.new_order("AAPL", "1", "1", "189.00")
        reject = client.wait_report(after, exec_type=ExecType.REJECTED)
        assert reject is not None and "outside its session" in reject.text, reject
    finally:
        stack.stop()


# -- RESENDS ----------------------------------------------------------------------------------------

def test_venue_resend_request_when_it_asks_for_everything_gets_a_gap_fill_and_never_an_order_again(tmp_path):
    from .peers import VenueBook

    stack = ScriptedStack(scripted_config(), tmp_path, VenueBook()).start()
    try:
        client = stack.client()
        ids = [client.new_order("AAPL", "1", "1", f"189.0{number}") for number in range(3)]
        assert client.wait_for(lambda: all(client.wait_report(i, exec_type=ExecType.NEW, timeout=0.01) for i in ids),
                               timeout=5)
        assert len(stack.venue.received("D")) == 3
        # The venue lost what it had received (a crash at its end): it expects 1 again, sees the gateway's
        # next message far ahead, and asks for everything from 1 (QuickFIX's own ResendRequest).
        import quickfix as fix

        fix.Session.lookupSession(stack.venue.session_id).setNextTargetMsgSeqNum(1)
        stack.venue.send("1", [(112, "ping")])
        gap_fill = stack.venue.wait_for(lambda: [m for m in stack.venue.admin_received("4") if m.get(123) == "Y"])
        assert gap_fill, [m.msg_type for m in stack.venue.admin_messages]
        # The gap fill spans the orders: they are skipped over, never sent again.
        order_seqs = [int(order[34]) for order in stack.venue.received("D")]
        assert int(gap_fill[0][34]) <= min(order_seqs) and int(gap_fill[-1][36]) > max(order_seqs), (
            [(m[34], m.get(36)) for m in gap_fill], order_seqs)
        time.sleep(0.5)
        assert len(stack.venue.received("D")) == 3                  # no order sent twice, PossDup or not
        assert not [m for m in stack.venue.messages if m.get(43) == "Y"]
        again = client.new_order("AAPL", "1", "1", "189.05")      # the session goes on
        assert client.wait_report(again, exec_type=ExecType.NEW) is not None
        assert len(stack.venue.received("D")) == 4
    finally:
        stack.stop()


def test_client_when_it_comes_back_after_missing_50000_reports_gets_every_one_while_others_trade(tmp_path):
    """A client that read nothing while 50,000 reports were stored for it logs on again and asks for
    them: QuickFIX resends every one from the store, in order, and another client's orders are
    answered all the while. The other client's report times before and during the resend are
    printed (run with -s); the test holds completeness, not speed."""
    import statistics

    base = stack_config()
    flood = dataclasses.replace(base.clients[0], max_order_rate=1_000_000.0, burst=1_000_000)
    config = dataclasses.replace(
        base, clients=(flood, base.clients[1]),
        gateway=dataclasses.replace(base.gateway, max_outbound_queue_bytes=64 * 1024 * 1024,
                                    slow_consumer_timeout_ms=120_000),
        risk=dataclasses.replace(base.risk, kill_order_rate=None, global_max_order_rate=None))
    stack = Stack(config, tmp_path).start()
    try:
        other = stack.client("CLIENT2")
        silent = raw_client(stack)
        logon(silent, (553, "demo"), (554, "demo"))
        orders = 50_000                                   # refused by the gateway itself: a report each
        for number in range(orders):
            silent.send("D", [(11, f"S{number}"), (55, "NOPE"), (54, "1"), (60, "20260101-00:00:00"), (38, "1"),
                              (40, "2"), (44, "1.00"), (59, "0")])
        assert stack.gateway.wait_for_venues(1)
        deadline = time.monotonic() + 120
        while ((stack.gateway.status()["orders"]["received"] < orders or stack.gateway.book.live_orders)
               and time.monotonic() < deadline):
            time.sleep(0.2)                               # every order answered by the venue, and stored
        stack.settle(30)
        next_seq = silent.seq
        silent.close()
        time.sleep(0.5)

        def probe(count):
            took = []
            for _ in range(count):
                started = time.perf_counter_ns()
                cl_ord_id = other.new_order("AAPL", "1", "1", "187.00", time_in_force="3")
                assert other.wait_report(cl_ord_id, timeout=10) is not None, "the other client was not answered"
                took.append((other.first_report_ns[cl_ord_id] - started) / 1000)
            return took

        before = probe(200)
        back = raw_client(stack)
        back.seq = next_seq
        (answer,) = logon(back, (553, "demo"), (554, "demo"))
        last = int(answer["34"]) - 1                       # the gateway's last stored report
        assert last >= orders, stack.gateway.status()["orders"]
        back.send("2", [(7, "2"), (16, "0")])
        during = []
        deadline = time.monotonic() + 120
        marker = f"{SOH}34={last}{SOH}".encode()
        while marker not in back.received and time.monotonic() < deadline:
            during += probe(5)
            back.read_until(marker, 0.05)
        back.read_until(marker, 5)
        # The gap fill over the Logon comes after the last report: a TestRequest, answered after the
        # whole resend, marks its end.
        back.send("1", [(112, "after-resend")])
        back.read_until(f"{SOH}112=after-resend{SOH}".encode(), 10)
        resent = [m for m in messages(back.received) if m.get("43") == "Y"]
        covered = []                                      # reports, and gap fills over admin messages
        for m in resent:
            covered += range(int(m["34"]), int(m["36"])) if m["35"] == "4" else [int(m["34"])]
        # Everything from 2 up to the Logon just answered (gap-filled, as an admin message), once each.
        assert covered == list(range(2, last + 2)), "the resend missed or repeated reports"
        assert sum(1 for m in resent if m["35"] == "8") >= orders
        print(f"\nresend of {sum(1 for m in resent if m['35'] == '8')} reports; the other client's first report, us: "
              f"before p50 {statistics.median(before):.0f} p99 {sorted(before)[int(len(before) * 0.99)]:.0f}; "
              f"during p50 {statistics.median(during):.0f} p99 {sorted(during)[int(len(during) * 0.99)]:.0f} "
              f"({len(during)} orders)")
        back.close()
    finally:
        stack.stop()


# -- A BACKUP SOURCE OF QUOTES ----------------------------------------------------------------------

def test_quotes_when_the_primary_goes_stale_come_from_the_backup_session_and_back_when_it_recovers(tmp_path):
    import prometheus_client

    from fixgate.simulator.venue import VenueSimulator

    from .conftest import free_port

    base = stack_config(simulator_overrides={"refresh_ms": 200})
    md_port = free_port()
    md_venue = dataclasses.replace(base.venues[0], name="simmd", comp_id="SIMMD", port=md_port)
    config = dataclasses.replace(
        base, venues=(base.venues[0], md_venue),
        instruments=tuple(dataclasses.replace(instrument, backup_quote_venue="simmd", stale_after_ms=1000,
                                              requires_live_quote=True)
                          if instrument.symbol == "AAPL" else instrument for instrument in base.instruments))
    md_config = dataclasses.replace(config, simulator=dataclasses.replace(config.simulator, port=md_port,
                                                                          comp_id="SIMMD"))
    backup = VenueSimulator(md_config, tmp_path / "md", message_log=False)
    backup.start()
    stack = Stack(config, tmp_path / "stack")
    try:
        stack.start()
        assert stack.gateway.status()["quote_sources"]["AAPL"] == "simvenue"
        client = stack.client()
        stack.venue.apply_fault({"action": "stale", "symbol": "AAPL", "on": True})   # the primary falls silent
        assert client.wait_for(lambda: stack.gateway.status()["quote_sources"]["AAPL"] == "simmd", timeout=10)
        cl_ord_id = client.new_order("AAPL", "1", "1", "189.00")
        report = client.wait_report(cl_ord_id)
        assert report.exec_type == ExecType.NEW, report.text             # a live quote, from the backup
        exposition = prometheus_client.generate_latest(stack.gateway.registry).decode()
        assert 'fixgate_quote_source{symbol="AAPL",venue="simmd"} 1.0' in exposition
        stack.venue.apply_fault({"action": "stale", "symbol": "AAPL", "on": False})
        assert client.wait_for(lambda: stack.gateway.status()["quote_sources"]["AAPL"] == "simvenue", timeout=10)
        assert stack.gateway.quote_sources.switches == 2
        assert stack.gateway.status()["quote_sources"]["ETH-USD"] == "simvenue"      # no backup: never moves
    finally:
        stack.stop()
        backup.stop(0.2)
