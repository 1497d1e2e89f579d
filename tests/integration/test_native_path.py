"""The native order path against peers that are not the gateway's own: a scripted venue that answers
as the test says (odd fills, session rejects, business rejects), a raw-socket client that stops
reading, two clients at once, a stalled state thread, a journal that cannot be written."""

from __future__ import annotations

import dataclasses
import threading
import time
import urllib.error
import urllib.request

import pytest

from fixgate.core.journal import JournalError
from fixgate.core.messages import CancelReject, ExecType, OrdStatus
from fixgate.gateway import Gateway

from .conftest import Stack, free_port, stack_config
from .peers import RawFixClient, ScriptedVenue, VenueBook

BUY, SELL = "1", "2"


def scripted_config(**gateway_overrides):
    """The test configuration for a scripted venue: no market data (the script sends none)."""
    base = stack_config()
    return dataclasses.replace(
        base,
        gateway=dataclasses.replace(base.gateway, **gateway_overrides),
        venues=tuple(dataclasses.replace(venue, market_data=False) for venue in base.venues),
        instruments=tuple(dataclasses.replace(instrument, requires_live_quote=False)
                          for instrument in base.instruments),
    )


class ScriptedStack(Stack):
    """A gateway in this process, a scripted venue in place of the simulator."""

    def __init__(self, config, directory, script) -> None:
        self.config = config
        self.directory = directory
        self.venue = ScriptedVenue(config.simulator.port, directory / "venue", script=script)
        self.gateway = Gateway(config, state_dir=directory / "gateway", message_log=False)
        self.clients = []
        import itertools
        self._ids = itertools.count(1)

    def start(self) -> "ScriptedStack":
        self.venue.start()
        self.gateway.start()
        assert self.gateway.wait_for_venues(10, ready=True), "the gateway did not log on to the scripted venue"
        return self

    def stop(self) -> None:
        for client in self.clients:
            client.stop(0.2)
        self.gateway.stop(cancel_open_orders=False, logout_timeout=0.2)
        self.venue.stop()


@pytest.fixture
def scripted(tmp_path):
    stacks = []

    def build(script=None, **gateway_overrides):
        stack = ScriptedStack(scripted_config(**gateway_overrides), tmp_path / f"s{len(stacks)}",
                              script or VenueBook()).start()
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        stack.stop()


# -- ONE WRITER -------------------------------------------------------------------------------------

def test_orders_when_two_clients_send_at_once_get_distinct_ids_and_the_book_equals_the_oms(stack):
    clients = [stack.client("CLIENT1"), stack.client("CLIENT2")]
    sent = {0: [], 1: []}

    def trade(index):
        client = clients[index]
        for number in range(90):
            sent[index].append(client.new_order("AAPL", BUY, str(1 + number % 3), f"189.{10 + number % 80:02d}"))
            time.sleep(0.006)

    threads = [threading.Thread(target=trade, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, client in enumerate(clients):
        assert client.wait_for(lambda: all(client.reports_for(cl_ord_id) for cl_ord_id in sent[index]), timeout=10)
    order_ids = [client.reports_for(cl_ord_id)[0].order_id for index, client in enumerate(clients)
                 for cl_ord_id in sent[index]]
    assert all(report.exec_type == ExecType.NEW for index, client in enumerate(clients)
               for report in (client.reports_for(cl_ord_id)[0] for cl_ord_id in sent[index]))
    assert len(set(order_ids)) == 180                                  # no id shared by two orders
    assert all(count == 1 for count in stack.venue.cl_ord_ids_seen.values())
    assert len(stack.venue.cl_ord_ids_seen) == 180                     # no venue ClOrdID twice
    stack.settle()
    book = stack.gateway.book
    views = stack.gateway.orders.open_orders()
    assert book.live_orders == len(views) == 180
    for view in views:
        slot = book.order(view.order_id)
        assert slot is not None and (slot["qty_lots"], slot["price_ticks"]) == (view.qty_lots, view.price_ticks)
        assert slot["session_id"] == view.session_index
    assert stack.gateway.order_state.illegal_transitions == 0


# -- NUMBERS ONCE -----------------------------------------------------------------------------------

def test_replace_when_to_100_lots_then_cancel_puts_38_100_on_the_wire(scripted):
    stack = scripted()
    client = stack.client()
    cl_ord_id = client.new_order("AAPL", BUY, "5", "189.50")
    assert client.wait_report(cl_ord_id, exec_type=ExecType.NEW)
    replace_id = client.replace(cl_ord_id, "AAPL", BUY, "100", "189.40")
    replaced = client.wait_report(replace_id, exec_type=ExecType.REPLACED)
    assert replaced is not None and replaced.order_qty == "100" and replaced.price == "189.4"
    cancel_id = client.cancel(replace_id, "AAPL", BUY)
    canceled = client.wait_report(cancel_id, exec_type=ExecType.CANCELED)
    assert canceled is not None and canceled.orig_cl_ord_id == replace_id
    (replace,), (cancel,) = stack.venue.received("G"), stack.venue.received("F")
    assert (replace[38], replace[44]) == ("100", "189.4")
    assert cancel[38] == "100" and cancel[41] == replace[11]


def test_average_price_when_two_fills_at_150_is_reported_as_6_150(scripted):
    book = VenueBook()
    stack = scripted(book)
    client = stack.client()
    cl_ord_id = client.new_order("AAPL", BUY, "300", "150.00")
    reject = client.wait_report(cl_ord_id)
    assert reject.exec_type == ExecType.REJECTED and reject.text.startswith("PRICE_COLLAR")
    cl_ord_id = client.new_order("AAPL", BUY, "300", "189.00")
    assert client.wait_report(cl_ord_id, exec_type=ExecType.NEW)
    venue_id = stack.venue.received("D")[-1][11]
    book.fill(stack.venue, venue_id, 150, "150")
    book.fill(stack.venue, venue_id, 150, "150")
    assert client.wait_for(lambda: len(client.reports_for(cl_ord_id)) == 3)
    fills = [report for report in client.reports_for(cl_ord_id) if report.exec_type == ExecType.TRADE]
    assert [(fill.last_px, fill.cum_qty, fill.avg_px) for fill in fills] == [("150", "150", "150"),
                                                                           ("150", "300", "150")]
    client.status(cl_ord_id, "AAPL", BUY)
    status = client.wait_report(cl_ord_id, exec_type=ExecType.ORDER_STATUS)
    assert status.avg_px == "150" and status.ord_status == OrdStatus.FILLED
    stack.settle()
    assert stack.gateway.orders.find_client("client1", cl_ord_id).avg_px == "150"


def acknowledged_order(stack, client):
    """Send 10 AAPL at 189.00 and wait for the New; return its ClOrdID and the order as the venue got it."""
    cl_ord_id = client.new_order("AAPL", BUY, "10", "189.00")
    assert client.wait_report(cl_ord_id, exec_type=ExecType.NEW)
    return cl_ord_id, stack.venue.received("D")[-1]


def test_fill_when_off_the_lot_grid_is_booked_nowhere_and_trips_the_kill_switch(scripted):
    stack = scripted()
    client = stack.client()
    cl_ord_id, order = acknowledged_order(stack, client)
    stack.venue.execution(order, exec_type="F", ord_status="1", leaves="9.5", cum="0.5", avg="189", last_qty="0.5",
                          last_px="189")
    report = client.wait_report(cl_ord_id, exec_type=ExecType.TRADE)
    assert report is not None and "off the lot grid: not booked" in report.text
    stack.settle()
    instrument = stack.gateway.book.instruments.id_of("AAPL")
    assert stack.gateway.book.exposure(instrument)["position_lots"] == 0         # the book
    assert stack.gateway.orders.find_client("client1", cl_ord_id).cum_lots == 0   # the OMS
    assert ("client1", "AAPL") not in stack.gateway.positions.positions          # the positions
    assert stack.gateway.alarm_counts.get("fill_off_lot") == 1
    assert client.wait_for(lambda: stack.gateway.book.risk_state == 3, timeout=3)


def test_fill_when_on_a_cl_ord_id_the_gateway_does_not_hold_trips_the_kill_switch(scripted):
    stack = scripted()
    client = stack.client()
    stack.venue.send("8", [(37, "V-ELSEWHERE"), (11, "NOT-OURS.1"), (17, "X-ELSEWHERE"), (150, "F"), (39, "2"),
                           (55, "AAPL"), (54, "1"), (38, "5"), (32, "5"), (31, "190"), (151, "0"), (14, "5"),
                           (6, "190")])
    assert client.wait_for(lambda: stack.gateway.book.risk_state == 3, timeout=5)   # positions cannot be trusted
    assert stack.gateway.alarm_counts.get("unknown_fill") == 1
    assert "filled 5 AAPL at 190 on unknown ClOrdID NOT-OURS.1" in stack.gateway.alarms[-1]["text"]
    stack.settle()
    assert not stack.gateway.positions.positions                    # booked nowhere


def test_cancel_report_when_the_venue_sends_it_twice_reaches_the_client_once(scripted):
    stack = scripted()
    client = stack.client()
    cl_ord_id, order = acknowledged_order(stack, client)
    for _ in range(2):                                   # two ExecIDs, one cancellation
        stack.venue.execution(order, exec_type="4", ord_status="4", leaves="0", cum="0", avg="0")
    assert client.wait_report(cl_ord_id, exec_type=ExecType.CANCELED)
    assert stack.venue.wait_for(lambda: stack.gateway.engine.counters()["late_venue_reports"] == 1)
    client.status(cl_ord_id, "AAPL", BUY)                # the last message the client gets for it
    assert client.wait_report(cl_ord_id, exec_type=ExecType.ORDER_STATUS)
    assert [report.exec_type for report in client.reports_for(cl_ord_id)] == [ExecType.NEW, ExecType.CANCELED,
                                                                              ExecType.ORDER_STATUS]
    stack.settle()
    assert stack.gateway.order_state.illegal_transitions == 0


# -- A VENUE THAT REFUSES ---------------------------------------------------------------------------

def test_new_order_when_the_venue_answers_with_a_session_reject_is_rejected_to_the_client(scripted):
    def refuse(venue, message):
        if message.msg_type == "D":
            venue.send("3", [(45, message[34]), (372, "D"), (373, "5"), (58, "Value is incorrect for tag 44")])

    stack = scripted(refuse)
    client = stack.client()
    cl_ord_id = client.new_order("AAPL", BUY, "1", "189.00")
    reject = client.wait_report(cl_ord_id, exec_type=ExecType.REJECTED)
    assert reject is not None
    assert reject.text == "the venue refused the order (session Reject): Value is incorrect for tag 44"
    stack.settle()
    assert stack.gateway.book.live_orders == 0
    assert stack.gateway.orders.find_client("client1", cl_ord_id).status == OrdStatus.REJECTED
    assert stack.gateway.alarm_counts.get("venue_session_reject") == 1


def test_cancel_when_the_venue_answers_with_a_business_reject_is_refused_and_the_order_stays(scripted):
    book = VenueBook()

    def no_cancels(venue, message):
        if message.msg_type == "F":
            venue.send("j", [(45, message[34]), (372, "F"), (379, message[11]), (380, "3"),
                             (58, "cancels are not supported")])
        else:
            book(venue, message)

    stack = scripted(no_cancels)
    client = stack.client()
    cl_ord_id = client.new_order("AAPL", BUY, "1", "189.00")
    assert client.wait_report(cl_ord_id, exec_type=ExecType.NEW)
    cancel_id = client.cancel(cl_ord_id, "AAPL", BUY)
    reject = client.wait_report(cancel_id, cancel_reject=True)
    assert isinstance(reject, CancelReject) and reject.response_to == "1"
    assert reject.text == "the venue refused the cancel (BusinessMessageReject): cancels are not supported"
    stack.settle()
    assert stack.gateway.book.live_orders == 1
    assert stack.gateway.orders.find_client("client1", cl_ord_id).status == OrdStatus.NEW
    assert stack.gateway.alarm_counts.get("venue_business_reject") == 1
    again = client.cancel(cl_ord_id, "AAPL", BUY)               # not stuck as "already pending"
    assert "cancels are not supported" in client.wait_report(again, cancel_reject=True).text


def test_reconciliation_when_the_venue_refuses_it_marks_the_venue_not_ready_without_a_reject_loop(tmp_path):
    def no_status(venue, message):
        if message.msg_type in ("H", "AF"):
            venue.send("j", [(45, message[34]), (372, message.msg_type), (380, "3"), (58, "unsupported")])
        elif message.msg_type == "D":
            VenueBook()(venue, message)

    config = scripted_config()
    stack = ScriptedStack(config, tmp_path, no_status)
    stack.venue.start()
    stack.gateway.start()
    try:
        assert stack.gateway.wait_for_venues(10)
        assert stack.venue.wait_for(lambda: stack.gateway.readiness()["venue_states"]["simvenue"] == "refused")
        ready = stack.gateway.readiness()
        assert not ready["ready"] and "refused reconciliation" in ready["venue_reasons"]["simvenue"]
        time.sleep(1.0)
        # No loop: the venue's one reject got no reject back, and nothing more was exchanged.
        assert [message.msg_type for message in stack.venue.messages].count("AF") == 1
        assert not stack.venue.received("j") and not stack.venue.admin_received("3")
        assert stack.gateway.alarm_counts.get("reconciliation_refused") == 1
        client = stack.client()
        cl_ord_id = client.new_order("AAPL", BUY, "1", "189.00")
        reject = client.wait_report(cl_ord_id, exec_type=ExecType.REJECTED)
        assert reject.text.startswith("VENUE_UNAVAILABLE: venue simvenue is not ready: refused reconciliation")
    finally:
        stack.stop()


# -- A CLIENT THAT STOPS READING -------------------------------------------------------------------

def test_slow_client_when_it_stops_reading_is_disconnected_and_others_keep_trading(tmp_path):
    base = stack_config()
    fast_client = dataclasses.replace(base.clients[1], max_order_rate=100000.0, burst=100000)
    config = dataclasses.replace(
        base, clients=(base.clients[0], fast_client),
        gateway=dataclasses.replace(base.gateway, max_outbound_queue_bytes=65536, slow_consumer_timeout_ms=1000),
        risk=dataclasses.replace(base.risk, kill_order_rate=None, global_max_order_rate=None))
    stack = Stack(config, tmp_path).start()
    try:
        other = stack.client("CLIENT1")
        slow = RawFixClient("127.0.0.1", config.acceptor.port, "CLIENT2", "FIXGATE")
        assert slow.logon("demo", "demo")
        # IOC orders away from the market: two reports each (new, cancelled), none of them read.
        sent = 0
        try:
            for number in range(3000):
                slow.send("D", [(11, f"S{number}"), (55, "AAPL"), (54, "1"), (60, "20260101-00:00:00"),
                                (38, "1"), (40, "2"), (44, "187.00"), (59, "3")])
                sent += 1
        except OSError:
            pass                                 # disconnected while still sending: what a slow consumer gets
        assert sent > 100
        deadline = time.monotonic() + 15
        while not stack.gateway.alarm_counts.get("slow_consumer") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stack.gateway.alarm_counts.get("slow_consumer") == 1
        deadline = time.monotonic() + 5                  # the logout is seen once its socket thread wakes
        while stack.gateway.engine.client_logged_on(1) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not stack.gateway.engine.client_logged_on(1)
        # The other client's orders are answered all along.
        ids = [other.new_order("AAPL", BUY, "1", "189.00") for _ in range(20)]
        assert other.wait_for(lambda: all(other.reports_for(cl_ord_id) for cl_ord_id in ids), timeout=5)
        assert stack.gateway.watchdog()["ok"]
        slow.close()
    finally:
        started = time.monotonic()
        stack.stop()
        assert time.monotonic() - started < 10


# -- BACKPRESSURE AND FAILURES ON THE STATE SIDE ----------------------------------------------------

def test_ring_when_full_refuses_orders_as_busy_and_loses_no_event(tmp_path):
    base = stack_config()
    config = dataclasses.replace(base, gateway=dataclasses.replace(base.gateway, ring_capacity=64))
    stack = Stack(config, tmp_path).start()
    gateway = stack.gateway
    try:
        client = stack.client()
        drain = gateway.order_state.drain
        gateway.order_state.drain = lambda buffer: 0             # the state thread applies nothing
        try:
            resting, busy = [], None
            for _ in range(60):
                cl_ord_id = client.new_order("AAPL", BUY, "1", "189.00")
                report = client.wait_report(cl_ord_id)
                if report.exec_type == ExecType.REJECTED:
                    busy = report
                    break
                resting.append(cl_ord_id)
            assert busy is not None and busy.text == "BUSY: gateway busy: the event queue to the state thread is full"
            # The market falls through the resting bids while the ring is full: the fills wait in the
            # overflow queue, and their reports reach the client at once all the same.
            stack.venue.apply_fault({"action": "shock", "symbol": "AAPL", "fraction": -0.01})
            assert client.wait_for(lambda: all(client.reports_for(cl_ord_id)[-1].exec_type == ExecType.TRADE
                                               for cl_ord_id in resting), timeout=10)
            assert gateway.engine.ring()["overflow"] > 0
        finally:
            gateway.order_state.drain = drain
        stack.settle()
        assert gateway.engine.ring()["overflow"] == 0
        assert gateway.alarm_counts.get("ring_overflow") == 1
        instrument = gateway.book.instruments.id_of("AAPL")
        assert gateway.positions.net_lots(instrument) == gateway.book.exposure(instrument)["position_lots"] \
            == len(resting)
        assert all(gateway.orders.find_client("client1", cl_ord_id).status == OrdStatus.FILLED
                   for cl_ord_id in resting)
        assert gateway.book.live_orders == len(gateway.orders.open_orders()) == 0
        assert gateway.order_state.illegal_transitions == 0
    finally:
        stack.stop()


def test_journal_when_it_cannot_be_written_trips_the_kill_switch_and_catches_up_after(stack):
    client = stack.client()
    gateway = stack.gateway
    # The client's logon is an event too: it must be journaled before the journal breaks, so that the
    # first write to fail is the order's.
    assert client.wait_for(lambda: gateway.clients_logged_on["client1"], timeout=3)
    stack.settle()
    assert client.wait_for(lambda: gateway.journal_agent.pending_events == 0, timeout=3)
    write = gateway.journal.write

    def failing(batches, notes):
        raise JournalError("disk full")

    gateway.journal.write = failing
    try:
        first = client.new_order("AAPL", BUY, "1", "189.00")
        assert client.wait_report(first, exec_type=ExecType.NEW)
        assert client.wait_for(lambda: gateway.book.risk_state == 3, timeout=3)
        refused = client.new_order("AAPL", BUY, "1", "189.00")
        assert client.wait_report(refused, exec_type=ExecType.REJECTED).text.startswith("KILL_SWITCH")
        assert gateway.alarm_counts.get("journal_write_failed") == 1 and gateway.journal_agent.failing
    finally:
        gateway.journal.write = write
    stack.settle()
    deadline = time.monotonic() + 3
    while gateway.journal_agent.pending_events and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gateway.journal_agent.pending_events == 0 and not gateway.journal_agent.failing
    assert gateway.journal_agent.written == gateway.order_state.events


def test_finished_orders_beyond_the_retention_are_forgotten_in_memory_but_their_ids_stay_used(tmp_path):
    base = stack_config(client_overrides={"max_order_rate": 100000.0, "burst": 100000})
    config = dataclasses.replace(base, gateway=dataclasses.replace(base.gateway, retained_orders=1000),
                                 risk=dataclasses.replace(base.risk, kill_order_rate=None, global_max_order_rate=None))
    stack = Stack(config, tmp_path).start()
    try:
        client = stack.client()
        ids = []
        for _ in range(11):                             # IOC orders away from the market, 100 at a time
            batch = [client.new_order("AAPL", BUY, "1", "187.00", time_in_force="3") for _ in range(100)]
            assert client.wait_for(lambda: all(any(report.ord_status == OrdStatus.CANCELED
                                                   for report in client.reports_for(cl_ord_id))
                                               for cl_ord_id in batch), timeout=20), \
                [report.text for cl_ord_id in batch for report in client.reports_for(cl_ord_id)][:3]
            ids += batch
        stack.settle()
        assert stack.gateway.engine.order_count() == 1000
        assert len(stack.gateway.orders.by_id) == 1000
        client.status(ids[0], "AAPL", BUY)                          # forgotten: not known any more
        assert client.wait_for(lambda: [report for report in client.reports_for(ids[0])
                                        if report.exec_type == "I" and report.ord_status == OrdStatus.REJECTED])
        client.status(ids[-1], "AAPL", BUY)                         # retained: its last status
        assert client.wait_for(lambda: [report for report in client.reports_for(ids[-1])
                                        if report.exec_type == "I" and report.ord_status == OrdStatus.CANCELED])
        again = client.new_order("AAPL", BUY, "1", "187.00", time_in_force="3", cl_ord_id=ids[0])
        reject = client.wait_report(again, exec_type=ExecType.REJECTED)
        assert reject is not None and reject.text.startswith("DUPLICATE_CL_ORD_ID")
    finally:
        stack.stop()


# -- EXACTLY ONCE TO THE CLIENT ACROSS A CRASH ------------------------------------------------------

class GatewayProcess:
    """`fixgate run` in a process of its own, against a scripted venue with a book (VenueBook), read
    through its admin API; killed with SIGKILL or stopped with SIGTERM."""

    def __init__(self, tmp_path, config=None):
        from fixgate import config as configuration

        self.tmp_path = tmp_path
        self.config = config or scripted_config()
        self.config_path = tmp_path / "config.toml"
        self.config_path.write_text(configuration.to_toml(self.config, mask_secrets=False))
        self.book = VenueBook()
        self.venue = ScriptedVenue(self.config.simulator.port, tmp_path / "venue", script=self.book).start()
        self.process = None

    def status(self, path="/status"):
        import json

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.config.admin.port}{path}", timeout=2) as response:
                return response.status, json.loads(response.read())
        except OSError:
            return None, None

    def start(self) -> None:
        import subprocess
        import sys

        self.process = subprocess.Popen(
            [sys.executable, "-m", "fixgate", "run", "-c", str(self.config_path), "--state-dir",
             str(self.tmp_path / "gateway")], stdout=subprocess.DEVNULL,
            stderr=open(self.tmp_path / f"gateway-{time.monotonic_ns()}.log", "w"))
        assert self.venue.wait_for(lambda: self.status("/ready")[0] == 200, timeout=30), \
            "the gateway did not become ready"

    def kill(self) -> None:
        import os
        import signal

        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def client(self):
        """A FIX client of this gateway, started (its stores under the test's folder, kept across runs)."""
        from fixgate.fix.client import FixClient

        client = FixClient("CLIENT1", "FIXGATE", "127.0.0.1", self.config.acceptor.port, self.tmp_path / "client",
                           username="demo", password="demo")
        client.start()
        return client

    def stop(self) -> None:
        import signal
        import subprocess

        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.venue.stop()


@pytest.mark.parametrize("delay_s", [0.0, 0.0005, 0.002, 0.02])
def test_fill_when_the_gateway_is_killed_just_after_it_left_the_venue_reaches_the_client_once(tmp_path, delay_s):
    run = GatewayProcess(tmp_path)
    run.start()
    client = run.client()
    try:
        assert client.wait_logged_on(15)
        cl_ord_id = client.new_order("AAPL", BUY, "10", "189.00")
        assert client.wait_report(cl_ord_id, exec_type=ExecType.NEW)
        venue_id = run.venue.received("D")[-1][11]
        run.book.fill(run.venue, venue_id, 10, "189")
        if delay_s:
            time.sleep(delay_s)
        run.kill()
        run.start()
        assert client.wait_logged_on(20)
        fills = lambda: {report.exec_id: report for report in client.reports_for(cl_ord_id)
                         if getattr(report, "exec_type", None) == ExecType.TRADE}
        assert client.wait_for(lambda: fills(), timeout=10), "the client never got the fill"
        time.sleep(1.0)                           # anything sent twice would have arrived by now
        assert [(report.last_qty, report.cum_qty) for report in fills().values()] == [("10", "10")]
        code, document = run.status()
        assert code == 200
        assert [(row["symbol"], row["quantity"]) for row in document["positions"]["positions"]] == [("AAPL", "10")]
        assert document["orders"]["open"] == 0
    finally:
        client.stop(0.5)
        run.stop()


def _stored_messages(path):
    """(offset of the record, MsgSeqNum, message) for each message in a gateway's mapped store."""
    import struct

    data = path.read_bytes()
    end = struct.unpack_from("<q", data, 48)[0]
    at, found = 4096, []
    while at + 8 <= end:
        seq, length = struct.unpack_from("<ii", data, at)
        found.append((at, seq, data[at + 8:at + 8 + length].decode()))
        at += (8 + length + 7) & ~7
    return found


def _set_store_header(path, **values):
    """Set next_sender / next_target in a gateway's mapped store (the file's header)."""
    import struct

    offsets = {"next_sender": 16, "next_target": 24}
    with open(path, "r+b") as store:
        for name, value in values.items():
            store.seek(offsets[name])
            store.write(struct.pack("<q", value))


def _venue_seq_of(venue_store, exec_id):
    """The MsgSeqNum under which a venue's FileStore keeps the report with `exec_id`."""
    body = next(venue_store.glob("*.body")).read_bytes().decode()
    for message in body.split("\x018=FIX")[::-1]:
        if f"\x0117={exec_id}\x01" in message:
            return int(message.split("\x0134=")[1].split("\x01")[0])
    raise AssertionError(f"the venue's store has no report {exec_id}")


@pytest.mark.parametrize("last_report", ["fill", "cancel", "replace"])
def test_report_when_written_ahead_but_never_sent_before_a_crash_reaches_the_client_after_restart(
        tmp_path, last_report):
    """The window between the engine writing a venue's report ahead and QuickFIX counting that
    message (and storing the client's report) is microseconds wide; kill -9 lands in it now and
    then. The state such a crash leaves is rebuilt exactly here: the gateway is killed after the
    report went through, then its stores are put back to where they stood inside the window (the
    venue's message not counted, the client's report never stored, the client never told), while
    the journal keeps the event. After the restart the venue resends its report: the client must
    hear of it once, and nothing may be booked twice."""
    run = GatewayProcess(tmp_path)
    venue = run.venue

    def new_client():
        client = run.client()
        assert client.wait_logged_on(15)
        return client

    run.start()
    client = new_client()
    try:
        cl_ord_id = client.new_order("AAPL", BUY, "10", "189.00")
        assert client.wait_report(cl_ord_id, exec_type=ExecType.NEW)
        venue_id = venue.received("D")[-1][11]
        if last_report == "fill":
            run.book.fill(venue, venue_id, 10, "189")
            watched, exec_type = cl_ord_id, ExecType.TRADE
        elif last_report == "cancel":
            watched, exec_type = client.cancel(cl_ord_id, "AAPL", BUY), ExecType.CANCELED
        else:
            watched, exec_type = client.replace(cl_ord_id, "AAPL", BUY, "12", "188.50"), ExecType.REPLACED
        report = client.wait_report(watched, exec_type=exec_type)
        assert report is not None
        time.sleep(0.5)                                   # journaled: the event survives anything now
        run.kill()
        client.stop(0.5)
        # Back into the window: the venue's report not yet counted, the client's never stored or sent.
        venue_exec_id = report.exec_id.split("-", 1)[1]
        store = tmp_path / "gateway" / "store"
        _set_store_header(store / "FIX.4.4-FIXGATE-SIMVENUE.store",
                          next_target=_venue_seq_of(tmp_path / "venue" / "store", venue_exec_id))
        (client_seq,) = [seq for _, seq, message in _stored_messages(store / "FIX.4.4-FIXGATE-CLIENT1.store")
                         if f"\x0117={report.exec_id}\x01" in message]
        _set_store_header(store / "FIX.4.4-FIXGATE-CLIENT1.store", next_sender=client_seq)
        seqnums = next((tmp_path / "client" / "store").glob("*.seqnums"))
        sender, _ = seqnums.read_text().split(" : ")
        seqnums.write_text(f"{sender} : {client_seq:020d}")
        orders_at_venue = len(venue.received("D")) + len(venue.received("G"))

        run.start()
        client = new_client()                             # a client that never got the report
        told = lambda: [r for r in list(client.reports) if getattr(r, "exec_id", None) == report.exec_id]
        assert client.wait_for(told, timeout=10), f"the client never got the {last_report} the gateway wrote ahead"
        time.sleep(1.0)                                   # anything sent twice would have arrived by now
        (again,) = told()
        assert again.exec_type == exec_type and again.ord_status == report.ord_status
        # The order's end told as the gateway tells its own: OrigClOrdID is the client's order.
        assert (again.cl_ord_id, again.orig_cl_ord_id) == {"fill": (cl_ord_id, None), "cancel": (cl_ord_id, cl_ord_id),
                                                           "replace": (watched, cl_ord_id)}[last_report]
        resent = [message for _, _, message in _stored_messages(store / "FIX.4.4-FIXGATE-CLIENT1.store")
                  if f"\x0117={report.exec_id}\x01" in message]
        assert "\x0197=Y\x01" in resent[-1]                # PossResend: the client may have had it
        code, document = run.status()
        assert code == 200
        positions = [(row["symbol"], row["quantity"]) for row in document["positions"]["positions"]]
        assert positions == ([("AAPL", "10")] if last_report == "fill" else [])      # booked once
        assert document["orders"]["open"] == (1 if last_report == "replace" else 0)
        assert len(venue.received("D")) + len(venue.received("G")) == orders_at_venue   # nothing sent again
    finally:
        client.stop(0.5)
        run.stop()


# -- WATCHDOG AND STOP ------------------------------------------------------------------------------

def test_health_when_an_engine_thread_hangs_in_a_callback_says_so_and_recovers(make_stack):
    stack = make_stack()
    gateway = stack.gateway
    client = stack.client()
    assert gateway.health()["status"] == "ok"
    gateway.engine.inject_stall(3000)                            # the next message's callback hangs 3 s
    cl_ord_id = client.new_order("AAPL", BUY, "1", "189.00")
    deadline = time.monotonic() + 3
    while gateway.health()["status"] == "ok" and time.monotonic() < deadline:
        time.sleep(0.05)
    health = gateway.health()
    assert health["status"] == "stalled" and "inside one callback" in health["watchdog"]["problems"][0]
    assert not gateway.readiness()["ready"]
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{stack.config.admin.port}/health", timeout=2)
        code = 200
    except urllib.error.HTTPError as error:
        code = error.code
    assert code == 503                                           # never 200 through a freeze
    assert client.wait_report(cl_ord_id, exec_type=ExecType.NEW, timeout=5) is not None
    assert gateway.health()["status"] == "ok"


def test_sigterm_when_a_client_stops_reading_still_stops_the_gateway_in_time(tmp_path):
    import json
    import signal
    import subprocess
    import sys
    import urllib.request

    from fixgate import config as configuration
    from fixgate.simulator.venue import VenueSimulator

    base = stack_config()
    fast_client = dataclasses.replace(base.clients[1], max_order_rate=100000.0, burst=100000)
    config = dataclasses.replace(base, clients=(base.clients[0], fast_client),
                                 risk=dataclasses.replace(base.risk, kill_order_rate=None, global_max_order_rate=None))
    config_path = tmp_path / "config.toml"
    config_path.write_text(configuration.to_toml(config, mask_secrets=False))
    venue = VenueSimulator(config, tmp_path / "venue", message_log=False)
    venue.start()
    gateway = subprocess.Popen([sys.executable, "-m", "fixgate", "run", "-c", str(config_path), "--state-dir",
                                str(tmp_path / "gateway")], stdout=subprocess.DEVNULL,
                               stderr=open(tmp_path / "gateway.log", "w"))

    def ready():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{config.admin.port}/ready", timeout=1) as response:
                return json.loads(response.read())["ready"]
        except OSError:
            return False

    try:
        deadline = time.monotonic() + 30
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.1)
        slow = RawFixClient("127.0.0.1", config.acceptor.port, "CLIENT2", "FIXGATE")
        assert slow.logon("demo", "demo")
        try:
            for number in range(2000):                             # reports pile up, unread
                slow.send("D", [(11, f"S{number}"), (55, "AAPL"), (54, "1"), (60, "20260101-00:00:00"),
                                (38, "1"), (40, "2"), (44, "187.00"), (59, "3")])
        except OSError:
            pass
        started = time.monotonic()
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(20) == 0                               # a graceful stop, whatever the peer does
        assert time.monotonic() - started < 15
        slow.close()
    finally:
        if gateway.poll() is None:
            gateway.kill()
        venue.stop(0.2)
