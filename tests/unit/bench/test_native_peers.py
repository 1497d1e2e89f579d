"""The native benchmark peers on real sessions over free 127.0.0.1 ports.

Each echo venue runs in its own process (``python -m fixgate.bench.native_peers venue``), one per
mode, shared by the tests of a module and stopped with SIGTERM at the end (which checks that it
logs out and writes its counts). The load client runs in this process or as a command; the pip
binding's `FixClient` asks the venue everything else. Nothing here asserts on speed.
"""

from __future__ import annotations

import ast
import itertools
import json
import signal
import socket
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from fixgate.bench import _peers
from fixgate.bench.native_peers import latency_summary
from fixgate.core.messages import MassStatusRequest
from fixgate.fix import codec
from fixgate.fix.client import FixClient
from fixgate.fix.engine import data_dictionary_path

VENUE = "SIMVENUE"
NATIVE_CLIENT = "NATIVE"
QUOTED = {"AAPL": ("186.99", "187.01")}
START_TIMEOUT_SECONDS = 20
STOP_TIMEOUT_SECONDS = 20

_used_ports: set[int] = set()
_comp_ids = itertools.count(1)


def free_port() -> int:
    """Return a port nothing listens on (on every interface, as QuickFIX binds them all)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("", 0))
            port = probe.getsockname()[1]
        if port not in _used_ports:
            _used_ports.add(port)
            return port


def pip_comp_ids(count: int) -> list[str]:
    """Return CompIDs for pip clients: each FixClient keeps its own sequence numbers, so none is reused."""
    return [f"PIP{next(_comp_ids)}" for _ in range(count)]


class VenueProcess:
    """An echo venue in a child process, with a session for the native client and for each pip client."""

    def __init__(self, directory: Path, mode: str, pip_clients: list[str]) -> None:
        self.directory = directory
        self.mode = mode
        self.port = free_port()
        self.pip_clients = list(pip_clients)
        self.ready_file = directory / "venue.ready"
        self.output = directory / "venue.json"
        arguments = [sys.executable, "-m", "fixgate.bench.native_peers", "venue", "--port", str(self.port),
                     "--sender", VENUE, "--target", NATIVE_CLIENT, "--mode", mode,
                     "--data-dictionary", str(data_dictionary_path()), "--state-dir", str(directory / "state"),
                     "--ready-file", str(self.ready_file), "--output", str(self.output)]
        for comp_id in self.pip_clients:
            arguments += ["--target", comp_id]
        for symbol, (bid, offer) in QUOTED.items():
            arguments += ["--quote", f"{symbol}={bid}/{offer}"]
        self.log = open(directory / "venue.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(arguments, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.ready_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"the echo venue did not start; see {directory / 'venue.log'}")
            time.sleep(0.02)

    def stop(self) -> dict:
        """Stop with SIGTERM; return the counts the venue wrote."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self.log.close()
        assert self.process.returncode == 0, (self.directory / "venue.log").read_text()
        return json.loads(self.output.read_text())


def start_venue(tmp_path_factory, mode: str, pip_clients: int) -> tuple[VenueProcess, list[str]]:
    comp_ids = pip_comp_ids(pip_clients)
    return VenueProcess(tmp_path_factory.mktemp(f"venue-{mode}"), mode, comp_ids), comp_ids


@pytest.fixture(scope="module")
def ioc_venue(tmp_path_factory):
    """An echo venue in `ioc` mode; at the end, its stop by SIGTERM is checked."""
    venue, comp_ids = start_venue(tmp_path_factory, "ioc", 2)
    venue.free_comp_ids = comp_ids
    yield venue
    counts = venue.stop()
    assert counts["stopped_by"] == "signal" and counts["callback_errors"] == 0


@pytest.fixture(scope="module")
def ack_venue(tmp_path_factory):
    venue, comp_ids = start_venue(tmp_path_factory, "ack", 10)
    venue.free_comp_ids = comp_ids
    yield venue
    counts = venue.stop()
    assert counts["stopped_by"] == "signal" and counts["callback_errors"] == 0


@pytest.fixture(scope="module")
def fill_venue(tmp_path_factory):
    venue, comp_ids = start_venue(tmp_path_factory, "fill", 1)
    venue.free_comp_ids = comp_ids
    yield venue
    counts = venue.stop()
    assert counts["stopped_by"] == "signal" and counts["callback_errors"] == 0


class RecordingClient(FixClient):
    """A FixClient that also keeps every incoming application message's raw fields."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.raw_fields: list[dict[str, str]] = []

    def _receive(self, message: codec.Received) -> None:
        self.raw_fields.append(message.fields)
        super()._receive(message)


@pytest.fixture
def pip_client(tmp_path):
    """Return a function that logs a pip FixClient on to a venue with one of its free CompIDs."""
    clients = []

    def connect(venue: VenueProcess) -> RecordingClient:
        comp_id = venue.free_comp_ids.pop()
        client = RecordingClient(comp_id, VENUE, "127.0.0.1", venue.port, tmp_path / comp_id, message_log=False)
        client.start()
        clients.append(client)
        assert client.wait_logged_on(10), f"{comp_id} could not log on to the echo venue"
        return client

    yield connect
    for client in clients:
        client.stop(0.2)


def client_settings(venue: VenueProcess, state_dir: Path, **overrides) -> dict:
    return {"port": venue.port, "sender": NATIVE_CLIENT, "target": VENUE,
            "data_dictionary": str(data_dictionary_path()), "state_dir": str(state_dir), **overrides}


# -- LOAD CLIENT AGAINST THE ECHO VENUE -----------------------------------------------------------------

def test_load_client_when_latency_mode_against_ioc_venue_answers_every_order(ioc_venue, tmp_path):
    result = _peers.run_load_client(client_settings(ioc_venue, tmp_path), "latency", orders=500, warmup_orders=50,
                                    time_in_force="3", answer_timeout_seconds=5, logon_timeout_seconds=10)

    assert result["stopped_by"] == "done"
    assert (result["orders_sent"], result["warmup_orders_sent"], result["measured_orders_sent"]) == (550, 50, 500)
    assert result["orders_answered"] == result["orders_completed"] == 550
    assert result["orders_lost"] == result["orders_incomplete"] == result["rejects"] == 0
    assert result["execution_reports_received"] == 2 * 550      # New, then Canceled
    assert result["unmatched_reports"] == result["callback_errors"] == result["send_failures"] == 0
    assert result["latency_ns"].dtype == np.int64 and len(result["latency_ns"]) == 500
    assert (result["latency_ns"] > 0).all() and result["completed"].all()
    assert latency_summary(result["latency_ns"])["count"] == 500
    assert (result["logons"], result["logouts"]) == (1, 1)


def test_load_client_when_throughput_mode_with_64_outstanding_completes_every_order(ioc_venue, tmp_path):
    output = tmp_path / "result.json"
    completed = subprocess.run(
        [sys.executable, "-m", "fixgate.bench.native_peers", "client", "--host", "127.0.0.1",
         "--port", str(ioc_venue.port), "--sender", NATIVE_CLIENT, "--target", VENUE,
         "--data-dictionary", str(data_dictionary_path()), "--state-dir", str(tmp_path / "state"),
         "--mode", "throughput", "--outstanding", "64", "--orders", "3000", "--warmup", "100",
         "--symbol", "AAPL", "--side", "1", "--qty", "1", "--price", "187.00", "--tif", "3",
         "--output", str(output)],
        capture_output=True, text=True, timeout=60)

    assert completed.returncode == 0, completed.stderr
    result = json.loads(output.read_text())
    assert result["stopped_by"] == "done"
    assert (result["orders_sent"], result["measured_orders_sent"]) == (3100, 3000)
    assert result["orders_completed"] == 3100 and result["orders_lost"] == 0
    assert result["latency_us"]["count"] == 3000
    samples = np.load(tmp_path / result["samples_file"])
    assert len(samples["latency_ns"]) == 3000 and (samples["latency_ns"] > 0).all() and samples["completed"].all()


def test_load_client_when_orders_never_complete_keeps_exactly_the_window_outstanding(ack_venue, tmp_path):
    # The ack venue lets every order rest; completing on the final status, none completes.
    result = _peers.run_load_client(client_settings(ack_venue, tmp_path), "throughput", orders=1000,
                                    warmup_orders=0, outstanding=64, complete_on="final", time_in_force="0",
                                    answer_timeout_seconds=1.0)

    assert result["stopped_by"] == "stalled"
    assert result["orders_sent"] == result["orders_answered"] == result["orders_incomplete"] == 64
    assert result["orders_completed"] == result["orders_lost"] == 0
    assert not result["completed"].any() and (result["latency_ns"] > 0).all()


def test_load_client_when_complete_on_first_against_ack_venue_completes_on_the_acknowledgement(ack_venue, tmp_path):
    result = _peers.run_load_client(client_settings(ack_venue, tmp_path), "throughput", orders=500,
                                    warmup_orders=10, outstanding=16, complete_on="first", time_in_force="0")

    assert result["stopped_by"] == "done"
    assert result["orders_completed"] == result["orders_answered"] == 510
    assert result["execution_reports_received"] == 510


def test_load_client_when_venue_rejects_counts_rejects_and_keeps_the_first_texts(ack_venue, tmp_path):
    settings = client_settings(ack_venue, tmp_path)
    first = _peers.run_load_client(settings, "latency", orders=20, warmup_orders=0, complete_on="first",
                                   time_in_force="0", cl_ord_id_prefix="DUP-")
    # The same ClOrdIDs again: the ack venue still holds those orders and rejects each as a duplicate.
    second = _peers.run_load_client(settings, "latency", orders=20, warmup_orders=0, complete_on="final",
                                    time_in_force="0", cl_ord_id_prefix="DUP-")

    assert first["rejects"] == 0 and first["orders_completed"] == 20
    assert second["rejects"] == second["orders_completed"] == 20
    assert second["reject_texts"] == [f"duplicate ClOrdID DUP-{index}" for index in range(5)]


def test_load_client_when_rate_mode_sends_on_a_schedule_and_records_every_order(ioc_venue, tmp_path):
    result = _peers.run_load_client(client_settings(ioc_venue, tmp_path), "rate", orders=None, warmup_orders=10,
                                    rate_per_second=1000, duration_seconds=0.5)

    assert result["stopped_by"] == "done"
    assert 1 <= result["measured_orders_sent"] <= 500
    assert len(result["latency_ns"]) == len(result["completed"]) == result["measured_orders_sent"]
    assert result["orders_lost"] == 0 and result["completed"].all()


def test_load_client_when_sigint_arrives_stops_and_still_writes_its_result(ioc_venue, tmp_path):
    output = tmp_path / "result.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "fixgate.bench.native_peers", "client", "--port", str(ioc_venue.port),
         "--sender", NATIVE_CLIENT, "--target", VENUE, "--data-dictionary", str(data_dictionary_path()),
         "--state-dir", str(tmp_path / "state"), "--mode", "rate", "--rate", "200", "--duration", "60",
         "--warmup", "0", "--output", str(output)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not (tmp_path / "state" / "load-client.cfg").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)                     # logged on and sending
    process.send_signal(signal.SIGINT)
    try:
        _, errors = process.communicate(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        raise

    assert process.returncode == 0, errors
    result = json.loads(output.read_text())
    assert result["stopped_by"] == "signal" and result["signal_number"] == signal.SIGINT
    assert result["measured_orders_sent"] > 0 and result["logouts"] == 1


# -- ECHO VENUE AGAINST THE PIP CLIENT -------------------------------------------------------------------

def test_echo_venue_when_order_arrives_in_ack_mode_acknowledges_and_rests(ack_venue, pip_client):
    client = pip_client(ack_venue)
    cl_ord_id = client.new_order("AAPL", "1", "10", "187.00")

    new = client.wait_report(cl_ord_id, exec_type="0")
    assert new is not None and new.ord_status == "0"
    assert (new.symbol, new.side, new.order_qty, new.price) == ("AAPL", "1", "10", "187.00")
    assert (new.leaves_qty, new.cum_qty, new.avg_px) == ("10", "0", "0")
    assert new.order_id and new.exec_id
    assert client.raw_fields[-1].get("60")              # TransactTime
    time.sleep(0.2)
    assert len(client.reports_for(cl_ord_id)) == 1


def test_echo_venue_when_orders_arrive_gives_unique_exec_ids(ack_venue, pip_client):
    client = pip_client(ack_venue)
    ids = [client.new_order("AAPL", "2", "1", "190.00") for _ in range(5)]

    reports = [client.wait_report(cl_ord_id, exec_type="0") for cl_ord_id in ids]
    assert all(reports)
    assert len({report.exec_id for report in reports}) == 5
    assert len({report.order_id for report in reports}) == 5


def test_echo_venue_when_cancel_arrives_cancels_a_resting_order(ack_venue, pip_client):
    client = pip_client(ack_venue)
    order = client.new_order("AAPL", "1", "5", "186.00")
    assert client.wait_report(order, exec_type="0")

    cancel = client.cancel(order, "AAPL", "1")
    canceled = client.wait_report(cancel, exec_type="4")
    assert canceled is not None and canceled.ord_status == "4"
    assert (canceled.orig_cl_ord_id, canceled.leaves_qty, canceled.cum_qty) == (order, "0", "0")

    again = client.cancel(order, "AAPL", "1")
    reject = client.wait_report(again, cancel_reject=True)
    assert reject is not None and (reject.response_to, reject.reason) == ("1", "1")
    assert reject.orig_cl_ord_id == order


def test_echo_venue_when_replace_arrives_replaces_or_rejects(ack_venue, pip_client):
    client = pip_client(ack_venue)
    order = client.new_order("AAPL", "1", "5", "186.00")
    assert client.wait_report(order, exec_type="0")

    replace = client.replace(order, "AAPL", "1", "20", "186.50")
    replaced = client.wait_report(replace, exec_type="5")
    assert replaced is not None and replaced.ord_status == "0"
    assert (replaced.orig_cl_ord_id, replaced.order_qty, replaced.price, replaced.leaves_qty) == (
        order, "20", "186.50", "20")

    stale = client.replace(order, "AAPL", "1", "30", "186.60")     # the old ClOrdID is gone
    reject = client.wait_report(stale, cancel_reject=True)
    assert reject is not None and (reject.response_to, reject.reason) == ("2", "1")

    status_id = replace
    client.status(status_id, "AAPL", "1")
    status = client.wait_for(lambda: [report for report in client.reports_for(status_id)
                                      if getattr(report, "exec_type", None) == "I"])
    assert status and (status[0].ord_status, status[0].order_qty, status[0].price) == ("0", "20", "186.50")


def test_echo_venue_when_status_of_unknown_order_asked_answers_ord_status_8(ack_venue, pip_client):
    client = pip_client(ack_venue)
    client.status("NO-SUCH-ORDER", "AAPL", "2")

    report = client.wait_report("NO-SUCH-ORDER", exec_type="I")
    assert report is not None and report.ord_status == "8" and report.order_id == "NONE"
    assert (report.symbol, report.side, report.leaves_qty) == ("AAPL", "2", "0")


def test_echo_venue_when_mass_status_asked_reports_each_resting_order_last_one_flagged(ack_venue, pip_client):
    client = pip_client(ack_venue)
    orders = [client.new_order("AAPL", "1", str(quantity), "185.00") for quantity in (1, 2, 3)]
    assert all(client.wait_report(order, exec_type="0") for order in orders)
    client.send_message(codec.write_mass_status_request(MassStatusRequest(mass_status_req_id="MS1")))

    answers = client.wait_for(lambda: [fields for fields in client.raw_fields if fields.get("584") == "MS1"
                                       and fields.get("912") == "Y"])
    assert answers
    reports = [fields for fields in client.raw_fields if fields.get("584") == "MS1"]
    assert sorted(fields["11"] for fields in reports) == sorted(orders)
    assert all(fields["150"] == "I" and fields["39"] == "0" and fields["911"] == "3" for fields in reports)
    assert [fields.get("912") for fields in reports] == [None, None, "Y"]


def test_echo_venue_when_mass_status_asked_with_nothing_resting_sends_one_ord_status_8(ack_venue, pip_client):
    client = pip_client(ack_venue)
    client.send_message(codec.write_mass_status_request(MassStatusRequest(mass_status_req_id="MS2")))

    assert client.wait_for(lambda: [fields for fields in client.raw_fields if fields.get("584") == "MS2"])
    time.sleep(0.2)                     # nothing more follows
    answers = [fields for fields in client.raw_fields if fields.get("584") == "MS2"]
    assert len(answers) == 1
    assert (answers[0]["150"], answers[0]["39"], answers[0]["912"]) == ("I", "8", "Y")


def test_echo_venue_when_market_data_requested_sends_a_snapshot_per_symbol(ack_venue, pip_client):
    client = pip_client(ack_venue)
    client.subscribe(["AAPL", "MSFT"])

    assert client.wait_for(lambda: len(client.market_data) >= 2)
    books = {data.symbol: {entry.entry_type: entry.price for entry in data.entries} for data in client.market_data}
    assert books["AAPL"] == {"0": "186.99", "1": "187.01"}
    assert books["MSFT"] == {"0": "99.99", "1": "100.01"}


def test_echo_venue_when_order_arrives_in_fill_mode_fills_it_whole(fill_venue, pip_client):
    client = pip_client(fill_venue)
    limit = client.new_order("AAPL", "2", "7", "188.25")
    market = client.new_order("AAPL", "1", "3")

    fill = client.wait_report(limit, exec_type="F")
    assert fill is not None and fill.ord_status == "2"
    assert (fill.last_qty, fill.last_px, fill.cum_qty, fill.leaves_qty, fill.avg_px) == (
        "7", "188.25", "7", "0", "188.25")
    assert [report.exec_type for report in client.reports_for(limit)] == ["0", "F"]
    market_fill = client.wait_report(market, exec_type="F")
    assert market_fill is not None and (market_fill.last_px, market_fill.avg_px) == ("100", "100")


def test_echo_venue_when_ioc_mode_cancels_ioc_orders_and_rests_day_orders(ioc_venue, pip_client):
    client = pip_client(ioc_venue)
    immediate = client.new_order("AAPL", "1", "4", "187.00", time_in_force="3")
    day = client.new_order("AAPL", "1", "4", "187.00", time_in_force="0")

    canceled = client.wait_report(immediate, exec_type="4")
    assert canceled is not None and (canceled.ord_status, canceled.leaves_qty, canceled.cum_qty) == ("4", "0", "0")
    assert client.wait_report(day, exec_type="0")
    cancel = client.cancel(day, "AAPL", "1")
    assert client.wait_report(cancel, exec_type="4")


# -- IN-PROCESS API -----------------------------------------------------------------------------------

def test_run_echo_venue_when_duration_passes_stops_by_itself_and_keeps_its_settings_file(tmp_path):
    port = free_port()
    settings = {"port": port, "sessions": [(VENUE, "A"), (VENUE, "B")], "data_dictionary": data_dictionary_path(),
                "state_dir": tmp_path, "store": "file"}

    result = _peers.run_echo_venue(settings, "ack", 0.3, tmp_path / "ready")

    assert result["stopped_by"] == "duration" and result["signal_number"] == 0
    assert json.loads((tmp_path / "ready").read_text())["port"] == port
    text = Path(result["settings_file"]).read_text()
    for line in (f"SocketAcceptPort={port}", "SocketNodelay=Y", "UseDataDictionary=Y",
                 f"DataDictionary={data_dictionary_path()}", f"FileStorePath={tmp_path}/store",
                 "SenderCompID=SIMVENUE", "TargetCompID=A", "TargetCompID=B"):
        assert line in text


def test_run_load_client_when_nobody_listens_raises_after_the_logon_timeout(tmp_path):
    settings = {"port": free_port(), "sender": "C", "target": "V", "data_dictionary": data_dictionary_path(),
                "state_dir": tmp_path}

    with pytest.raises(RuntimeError, match="no logon"):
        _peers.run_load_client(settings, "latency", orders=1, warmup_orders=0, logon_timeout_seconds=0.5)
    assert "ResetOnLogon=Y" in (tmp_path / "load-client.cfg").read_text()


@pytest.mark.parametrize(("overrides", "message"), [
    ({"colour": "blue"}, "unknown keys"),
    ({"port": "9000"}, r"settings\['port'\]"),
    ({"store": "disk"}, r"settings\['store'\]"),
    ({"host": "10.0.0.1"}, "127.0.0.1 only"),
])
def test_run_load_client_when_settings_are_wrong_raises_value_error_naming_them(tmp_path, overrides, message):
    settings = {"port": 9, "sender": "C", "target": "V", "data_dictionary": data_dictionary_path(),
                "state_dir": tmp_path, **overrides}

    with pytest.raises(ValueError, match=message):
        _peers.run_load_client(settings, "latency", orders=1)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"mode": "burst"}, "mode"),
    ({"complete_on": "never"}, "complete_on"),
    ({"mode": "rate"}, "rate_per_second"),
    ({"orders": None}, "orders, duration_seconds"),
])
def test_run_load_client_when_arguments_are_wrong_raises_value_error_naming_them(tmp_path, arguments, message):
    settings = {"port": 9, "sender": "C", "target": "V", "data_dictionary": data_dictionary_path(),
                "state_dir": tmp_path}

    with pytest.raises(ValueError, match=message):
        _peers.run_load_client(settings, **arguments)


def test_run_echo_venue_when_mode_is_unknown_raises_value_error(tmp_path):
    settings = {"port": 9, "sessions": [(VENUE, "A")], "data_dictionary": data_dictionary_path(),
                "state_dir": tmp_path}

    with pytest.raises(ValueError, match="mode"):
        _peers.run_echo_venue(settings, "echo")


def test_stub_when_compared_to_extension_lists_only_real_names():
    tree = ast.parse(resources.files("fixgate.bench").joinpath("_peers.pyi").read_text())
    names = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    names += [node.target.id for node in tree.body if isinstance(node, ast.AnnAssign)]
    assert names and all(hasattr(_peers, name) for name in names)
