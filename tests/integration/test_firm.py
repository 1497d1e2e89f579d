"""The firm over a real NATS JetStream server (`nats-server -js` on 127.0.0.1): each gateway's events
on the stream, complete and in order, across outages and restarts; the firm-wide kill switch; the
lease; the fleet's build."""

from __future__ import annotations

import dataclasses
import time

import pytest

from fixgate.config import FirmSettings
from fixgate.core.events import events_from_bytes
from fixgate.core.journal import SqliteJournal
from fixgate.core.messages import ExecType
from fixgate.firm import control
from fixgate.firm import names as n
from fixgate.gateway import Gateway

from .conftest import Stack, stack_config, wait_until
from .natsserver import NatsServer, kv_get, stream_messages

FIRM = "acme"
NAMES = n.FirmNames(FIRM)



def firm_config(url: str, gateway: str = "gw1", **firm):
    base = stack_config()
    return dataclasses.replace(base, gateway=dataclasses.replace(base.gateway, name=gateway),
                               firm=FirmSettings(name=FIRM, servers=(url,), **{"lease_seconds": 1.0, **firm}))




def caught_up(gateway: Gateway) -> bool:
    firm = gateway.firm.describe()
    return (firm["connected"] and firm["backlog"]["batches"] == 0 and firm["backlog"]["notes"] == 0
            and gateway.firm.cursors[n.ORDERS] == gateway.journal.last_seq())


def journal_batches(path) -> list[tuple[int, bytes]]:
    """The journal's batches, read on a read-only connection (the gateway may be writing)."""
    from fixgate.core.journal import JournalReader

    reader = JournalReader(path)
    try:
        return [(batch.seq, batch.data) for batch in reader.batches_after(0, 1_000_000)]
    finally:
        reader.close()


def stream_batches(url: str, gateway: str = "gw1") -> list[tuple[int, bytes]]:
    """The journal batches on the stream, a batch sent in parts joined again."""
    batches: list[tuple[int, bytes]] = []
    for _, headers, data in stream_messages(url, NAMES.stream, NAMES.subject(gateway, n.ORDERS)):
        seq = int(headers[n.SEQUENCE])
        part = headers.get(n.PART, "1/1").split("/")[0]
        if part != "1" and batches and batches[-1][0] == seq:
            batches[-1] = (seq, batches[-1][1] + data)
        else:
            batches.append((seq, data))
    return batches


def stream_matches_journal(url: str, gateway: Gateway, timeout: float = 10.0) -> list[tuple[int, bytes]]:
    """Wait until the stream holds exactly the journal's batches (new ones may come meanwhile);
    return them, or fail with both sequences."""
    path = gateway.state_dir / "journal.sqlite3"
    published = journal = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        journal = journal_batches(path)
        published = stream_batches(url, gateway.config.gateway.name)
        if published == journal and journal:
            return published
        time.sleep(0.1)
    raise AssertionError(f"stream {[seq for seq, _ in published]} != journal {[seq for seq, _ in journal]}")


def trade(client, count: int) -> list[str]:
    """`count` orders: resting buys, a buy that fills, and orders refused by the hot path."""
    ids = []
    for number in range(count):
        if number % 3 == 0:
            ids.append(client.new_order("AAPL", "1", "1", "190.01"))             # fills against the offer
        elif number % 3 == 1:
            ids.append(client.new_order("AAPL", "1", "1", "189.00"))             # rests
        else:
            ids.append(client.new_order("NOPE", "1", "1", "1.00"))               # unknown instrument
    for cl_ord_id in ids:
        assert client.wait_report(cl_ord_id, timeout=10) is not None, cl_ord_id
    return ids


# -- THE EVENT STREAM -------------------------------------------------------------------------------

def test_stream_when_a_gateway_trades_holds_every_journal_batch_once_in_order(tmp_path, nats_server):
    stack = Stack(firm_config(nats_server.url), tmp_path).start()
    try:
        client = stack.client()
        trade(client, 30)
        stack.settle()
        published = stream_matches_journal(nats_server.url, stack.gateway)   # the same records, byte for byte
        assert [seq for seq, _ in published] == list(range(1, len(published) + 1))
        kinds = [event.kind for _, data in published for event in events_from_bytes(data)]
        assert kinds.count(n_kind("ACCEPTED")) == 20 and kinds.count(n_kind("REJECTED")) == 10
        headers = [headers for _, headers, _ in stream_messages(nats_server.url, NAMES.stream,
                                                                NAMES.subject("gw1", n.ORDERS))]
        assert {header[n.GATEWAY] for header in headers} == {"gw1"}
        assert {header[n.FORMAT] for header in headers} == {n.EVENTS_FORMAT}
    finally:
        stack.stop()


def n_kind(name: str) -> int:
    from fixgate.core import events

    return getattr(events, name)


def test_stream_when_nats_is_down_keeps_trading_and_catches_up_complete_and_in_order(tmp_path, nats_server):
    stack = Stack(firm_config(nats_server.url, lease_seconds=30.0), tmp_path).start()
    try:
        client = stack.client()
        trade(client, 9)
        stack.settle()
        assert wait_until(lambda: caught_up(stack.gateway))
        nats_server.stop()
        assert wait_until(lambda: not stack.gateway.firm.connected, 5)
        trade(client, 30)                                              # trading goes on
        stack.settle()
        assert wait_until(lambda: stack.gateway.status()["firm"]["backlog"]["events"] > 0, 5)
        backlog = stack.gateway.status()["firm"]["backlog"]
        assert backlog["batches"] >= 1 and backlog["oldest_age_s"] >= 0
        nats_server.start()                                            # the same port and store
        assert wait_until(lambda: caught_up(stack.gateway), 15), stack.gateway.firm.describe()
        published = stream_matches_journal(nats_server.url, stack.gateway)
        assert [seq for seq, _ in published] == list(range(1, len(published) + 1))
        assert stack.gateway.firm.connects >= 2
    finally:
        stack.stop()


def test_stream_when_the_gateway_restarts_publishes_nothing_twice_and_goes_on_after_the_last(tmp_path, nats_server):
    config = firm_config(nats_server.url)
    stack = Stack(config, tmp_path).start()
    try:
        client = stack.client()
        trade(client, 6)
        stack.settle()
        assert wait_until(lambda: caught_up(stack.gateway))
        stack.gateway.stop(cancel_open_orders=False, logout_timeout=0.2)
        assert wait_until(lambda: not client.logged_on, 5)
        before = stream_batches(nats_server.url)
        stack.gateway = Gateway(config, state_dir=tmp_path / "gateway", message_log=False)   # the same journal
        stack.gateway.start()
        assert stack.gateway.wait_for_venues(10, ready=True)
        assert wait_until(lambda: stack.gateway.firm.connected)
        assert client.wait_logged_on(15)                                # the same client logs on again
        trade(client, 3)
        stack.settle()
        assert wait_until(lambda: caught_up(stack.gateway))
        assert stack.gateway.firm.published["duplicates"] == 0          # it started after the last one
        after = stream_matches_journal(nats_server.url, stack.gateway)
        assert after[:len(before)] == before and len(after) > len(before)
        assert [seq for seq, _ in after] == list(range(1, len(after) + 1))
    finally:
        stack.stop()


def test_stream_when_an_operator_acts_carries_the_risk_change_and_the_admin_action(tmp_path, nats_server):
    stack = Stack(firm_config(nats_server.url), tmp_path).start()
    try:
        from fixgate.core.safety import Command

        stack.gateway.risk_agent.submit(Command("kill", "alice", reason="test"))
        stack.gateway.risk_agent.submit(Command("resume", "alice"))
        stack.gateway.risk_agent.submit(Command("cancel-all", "bob"))
        import orjson

        def on_stream(kind):
            return [orjson.loads(data) for _, _, data in stream_messages(nats_server.url, NAMES.stream,
                                                                         NAMES.subject("gw1", kind))]

        assert wait_until(lambda: any(entry["kind"] == "cancel_all" and entry["actor"] == "bob"
                                      for entry in on_stream(n.ADMIN)), 10), on_stream(n.ADMIN)
        assert [(entry["from"], entry["to"], entry["actor"]) for entry in on_stream(n.RISK)] == [
            ("NORMAL", "KILL_SWITCH", "alice"), ("KILL_SWITCH", "NORMAL", "alice")]
    finally:
        stack.stop()


def test_stream_when_nats_is_there_only_after_the_start_gets_everything_from_the_first_event(tmp_path):
    server = NatsServer(tmp_path / "nats")                              # not started yet
    stack = Stack(firm_config(server.url, lease_seconds=30.0), tmp_path).start()
    try:
        trade(stack.client(), 6)
        stack.settle()
        assert not stack.gateway.firm.connected
        server.start()
        assert wait_until(lambda: caught_up(stack.gateway), 15)
        stream_matches_journal(server.url, stack.gateway)
    finally:
        stack.stop()
        server.stop()


def test_stream_when_a_node_of_a_three_node_cluster_stops_mid_flow_loses_no_event(tmp_path):
    import threading

    from .conftest import free_port

    routes = [free_port() for _ in range(3)]
    servers = [NatsServer(tmp_path / f"nats{number}", name=f"n{number}", cluster=("fixgate", routes[number], routes))
               for number in range(3)]
    for server in servers:
        server.start()
    stack = None
    try:
        config = firm_config(servers[0].url, lease_seconds=30.0, replicas=3)
        config = dataclasses.replace(config, firm=dataclasses.replace(
            config.firm, servers=tuple(server.url for server in servers)))
        stack = Stack(config, tmp_path / "stack").start()
        assert wait_until(lambda: stack.gateway.firm.connected, 30), stack.gateway.firm.describe()
        client = stack.client()
        trade(client, 9)
        flowing = threading.Event()
        done = threading.Event()

        def flow():
            while not done.is_set():
                trade(client, 3)
                flowing.set()

        worker = threading.Thread(target=flow, daemon=True)
        worker.start()
        assert flowing.wait(10)
        connected = stack.gateway.firm.server
        victim = next(server for server in servers if connected.endswith(f":{server.port}"))
        victim.stop()                                                  # the node the gateway publishes to
        time.sleep(2.0)                                                # orders go on meanwhile
        done.set()
        worker.join(20)
        stack.settle()
        survivor = next(server for server in servers if server is not victim)
        assert wait_until(lambda: caught_up(stack.gateway), 30), stack.gateway.firm.describe()
        assert stack.gateway.firm.server and not stack.gateway.firm.server.endswith(f":{victim.port}")
        published = stream_matches_journal(survivor.url, stack.gateway, timeout=20)
        assert [seq for seq, _ in published] == list(range(1, len(published) + 1))
        assert sum(len(data) for _, data in published) // 256 > 30
    finally:
        if stack is not None:
            stack.stop()
        for server in servers:
            server.stop()


def test_stream_when_the_gateway_is_killed_mid_flow_holds_every_journal_event_after_its_restart(tmp_path,
                                                                                                 nats_server):
    from .test_native_path import GatewayProcess, scripted_config

    config = scripted_config(name="gw1")
    config = dataclasses.replace(config, firm=FirmSettings(name=FIRM, servers=(nats_server.url,), lease_seconds=30.0))
    run = GatewayProcess(tmp_path, config=config)
    run.start()
    client = run.client()
    try:
        assert client.wait_logged_on(15)
        first = [client.new_order("AAPL", "1", "1", "189.00") for _ in range(20)]
        assert client.wait_report(first[5], timeout=30) is not None
        run.kill()                                                     # kill -9 while orders are in flight
        run.start()
        assert client.wait_logged_on(30)
        more = [client.new_order("AAPL", "1", "1", "189.00") for _ in range(10)]
        for cl_ord_id in more:
            assert client.wait_report(cl_ord_id, timeout=30) is not None, cl_ord_id
        path = tmp_path / "gateway" / "journal.sqlite3"

        def accepted(batches) -> int:
            return sum(1 for _, data in batches for event in events_from_bytes(data) if event.kind == n_kind("ACCEPTED"))

        # The reports reach the client before the state thread journals their events: wait for the
        # journal to hold the orders after the restart (and one at least from before), then for the
        # stream to hold exactly the journal.
        assert wait_until(lambda: accepted(journal_batches(path)) >= 11, 30), accepted(journal_batches(path))
        assert wait_until(lambda: stream_batches(nats_server.url) == journal_batches(path), 30), (
            [seq for seq, _ in stream_batches(nats_server.url)], [seq for seq, _ in journal_batches(path)])
    finally:
        client.stop(0.2)
        run.stop()


class GatewaySide:
    """What a link asks of its gateway, for a link tested without one: nothing to kill here."""

    def __init__(self):
        self.reduce_only: dict[str, str] = {}

    def firm_kill(self, actor, reason):
        return "KILL_SWITCH"

    def firm_resume(self, actor):
        return "NORMAL"

    def set_reduce_only(self, key, reason):
        if reason is None:
            self.reduce_only.pop(key, None)
        else:
            self.reduce_only[key] = reason

    def firm_announcement(self):
        return {"risk_state": "NORMAL"}


def test_link_when_a_journal_batch_exceeds_one_message_sends_it_in_parts_that_join_to_the_batch(tmp_path,
                                                                                               nats_server):
    from fixgate.firm.link import PART_BYTES, FirmLink

    path = tmp_path / "journal.sqlite3"
    journal = SqliteJournal(path)
    big = bytes(range(256)) * (PART_BYTES // 256 * 4 + 7)               # four parts and a bit
    journal.write([(time.time_ns(), big)], [])
    journal.write([(time.time_ns(), bytes(256) * 3)], [])
    link = FirmLink(FirmSettings(name=FIRM, servers=(nats_server.url,)), "solo", path, GatewaySide(),
                    build={"version": "0", "commit": "x", "config_sha256": ""})
    link.start()
    try:
        assert wait_until(lambda: link.cursors[n.ORDERS] == 2, 10), link.describe()
    finally:
        link.stop()
        journal.close()
    messages = stream_messages(nats_server.url, NAMES.stream, NAMES.subject("solo", n.ORDERS))
    assert [(headers[n.SEQUENCE], headers[n.PART]) for _, headers, _ in messages] == [
        ("1", "1/5"), ("1", "2/5"), ("1", "3/5"), ("1", "4/5"), ("1", "5/5"), ("2", "1/1")]
    assert max(len(data) for _, _, data in messages) <= PART_BYTES
    assert stream_batches(nats_server.url, "solo") == [(1, big), (2, bytes(256) * 3)]
    assert link.published["events"] == len(big) // 256 + 3


def test_link_when_it_publishes_a_journal_again_from_the_start_jetstream_drops_every_duplicate(tmp_path,
                                                                                              nats_server):
    from fixgate.firm.link import FirmLink

    class ForgetfulLink(FirmLink):
        async def _resume_cursors(self, js):             # as if where it stood were lost
            self.cursors = {n.ORDERS: 0, "notes": 0}

    path = tmp_path / "journal.sqlite3"
    journal = SqliteJournal(path)
    for number in range(20):
        journal.write([(time.time_ns(), bytes([number]) * 256 * (number + 1))], [(time.time_ns(), "cancel_all", {})])
    journal.close()
    settings = FirmSettings(name=FIRM, servers=(nats_server.url,))
    build = {"version": "0", "commit": "x", "config_sha256": ""}
    for link_class in (FirmLink, ForgetfulLink):
        link = link_class(settings, "solo", path, GatewaySide(), build=build)
        link.start()
        try:
            assert wait_until(lambda: link.cursors[n.ORDERS] == 20 and link.cursors["notes"] == 20, 10), link.describe()
        finally:
            link.stop()
    assert link.published == {"batches": 20, "events": 210, "notes": 20, "duplicates": 40}
    assert [seq for seq, _ in stream_batches(nats_server.url, "solo")] == list(range(1, 21))
    assert len(stream_messages(nats_server.url, NAMES.stream, NAMES.subject("solo", n.ADMIN))) == 20


# -- THE FIRM-WIDE KILL SWITCH ----------------------------------------------------------------------

def test_firm_kill_when_tripped_kills_the_gateway_which_confirms_and_a_release_resumes_it(tmp_path, nats_server):
    config = firm_config(nats_server.url)
    stack = Stack(config, tmp_path).start()
    try:
        client = stack.client()
        resting = client.new_order("AAPL", "1", "1", "189.00")
        assert client.wait_report(resting, exec_type=ExecType.NEW) is not None
        assert wait_until(lambda: kv_get(nats_server.url, NAMES.bucket, NAMES.gateway_key("gw1")))
        result = control.run(control.set_kill(config.firm, True, "ops", "runaway router"))
        confirm = result["confirms"]["gw1"]
        assert confirm is not None and confirm["state"] == "KILL_SWITCH", result
        assert stack.gateway.risk_agent.machine.state.name == "KILL_SWITCH"
        assert client.wait_report(resting, exec_type=ExecType.CANCELED) is not None     # open orders go
        refused = client.new_order("AAPL", "1", "1", "189.00")
        report = client.wait_report(refused, exec_type=ExecType.REJECTED)
        assert "firm-wide kill by ops: runaway router" in report.text
        result = control.run(control.set_kill(config.firm, False, "ops"))
        assert result["confirms"]["gw1"]["state"] == "NORMAL"
        assert kv_get(nats_server.url, NAMES.bucket, NAMES.confirm_key("gw1"))["on"] is False
        assert stack.gateway.wait_for_venues(10, ready=True)
        again = client.new_order("AAPL", "1", "1", "189.00")
        assert client.wait_report(again, exec_type=ExecType.NEW) is not None
    finally:
        stack.stop()


def test_firm_release_when_the_gateway_was_killed_here_leaves_its_own_kill_on(tmp_path, nats_server):
    from fixgate.core.safety import Command

    config = firm_config(nats_server.url)
    stack = Stack(config, tmp_path).start()
    try:
        assert wait_until(lambda: kv_get(nats_server.url, NAMES.bucket, NAMES.gateway_key("gw1")))
        stack.gateway.risk_agent.submit(Command("kill", "local-operator", reason="local reason"))
        control.run(control.set_kill(config.firm, True, "ops", "firm reason"))
        result = control.run(control.set_kill(config.firm, False, "ops"))
        assert result["confirms"]["gw1"]["state"] == "KILL_SWITCH"
        assert stack.gateway.risk_agent.machine.actor == "local-operator"
    finally:
        stack.stop()


def test_firm_kill_when_tripped_while_the_gateway_was_down_holds_it_at_start(tmp_path, nats_server):
    config = firm_config(nats_server.url)
    control.run(control.set_kill(config.firm, True, "ops", "before the start", wait_s=0.1))
    stack = Stack(config, tmp_path)
    stack.venue.start()
    stack.gateway.start()
    try:
        assert wait_until(lambda: stack.gateway.risk_agent.machine.state.name == "KILL_SWITCH", 10)
        assert wait_until(lambda: (kv_get(nats_server.url, NAMES.bucket, NAMES.confirm_key("gw1")) or {}).get("on"))
    finally:
        stack.stop()


# -- THE LEASE --------------------------------------------------------------------------------------

def test_lease_when_nats_is_lost_longer_makes_the_gateway_reduce_only_until_it_is_back(tmp_path, nats_server):
    stack = Stack(firm_config(nats_server.url, lease_seconds=1.0), tmp_path).start()
    try:
        client = stack.client()
        assert wait_until(lambda: stack.gateway.firm.connected)
        nats_server.stop()
        assert wait_until(lambda: stack.gateway.book.reduce_only, 5)
        refused = client.new_order("AAPL", "1", "1", "189.00")
        report = client.wait_report(refused, exec_type=ExecType.REJECTED)
        assert report.text.startswith("REDUCE_ONLY: the gateway is reduce-only: only orders that reduce the position in AAPL")
        assert "the firm link (NATS) is down since" in report.text
        assert stack.gateway.status()["reduce_only"]["lease"]
        nats_server.start()
        assert wait_until(lambda: not stack.gateway.book.reduce_only, 15)
        accepted = client.new_order("AAPL", "1", "1", "189.00")
        assert client.wait_report(accepted, exec_type=ExecType.NEW) is not None
    finally:
        stack.stop()


def test_lease_when_configured_so_goes_reduce_only_as_soon_as_nats_is_lost(tmp_path, nats_server):
    stack = Stack(firm_config(nats_server.url, lease_seconds=60.0, reduce_only_when_unreachable=True),
                  tmp_path).start()
    try:
        assert wait_until(lambda: stack.gateway.firm.connected)
        nats_server.stop()
        assert wait_until(lambda: stack.gateway.book.reduce_only, 5)
    finally:
        stack.stop()


# -- ONE FLEET, ONE BUILD ---------------------------------------------------------------------------

def test_build_when_the_fleet_expects_another_is_reduce_only_until_an_operator_confirms(tmp_path, nats_server):
    config = firm_config(nats_server.url)
    control.run(control.set_expected_build(config.firm, "9.9.9", "another-commit", "release-manager"))
    stack = Stack(config, tmp_path).start()
    try:
        assert wait_until(lambda: stack.gateway.book.reduce_only, 10)
        client = stack.client()
        refused = client.new_order("AAPL", "1", "1", "189.00")
        report = client.wait_report(refused, exec_type=ExecType.REJECTED)
        assert "the fleet expects 9.9.9 another-commit" in report.text
        status = control.run(control.firm_status(config.firm))
        assert status["gateways"]["gw1"]["build_differs"] is True
        control.run(control.confirm_build(config.firm, "gw1", "release-manager"))
        assert wait_until(lambda: not stack.gateway.book.reduce_only, 10)
        accepted = client.new_order("AAPL", "1", "1", "189.00")
        assert client.wait_report(accepted, exec_type=ExecType.NEW) is not None
    finally:
        stack.stop()


def test_build_when_the_fleet_expects_this_one_trades_fully(tmp_path, nats_server):
    config = firm_config(nats_server.url)
    stack = Stack(config, tmp_path).start()
    try:
        build = stack.gateway.firm.build
        control.run(control.set_expected_build(config.firm, build["version"], build["commit"], "release-manager"))
        assert wait_until(lambda: stack.gateway.firm.expected_build is not None, 10)
        time.sleep(0.3)
        assert not stack.gateway.book.reduce_only
        status = control.run(control.firm_status(config.firm))
        assert status["gateways"]["gw1"]["build_differs"] is False and status["gateways"]["gw1"]["alive"]
    finally:
        stack.stop()


# -- THE FIRM VIEW ---------------------------------------------------------------------------------

def test_firm_view_when_two_gateways_trade_replays_each_ones_orders_and_positions_from_the_stream(tmp_path,
                                                                                                 nats_server):
    stacks = []
    try:
        for name in ("gw1", "gw2"):
            config = firm_config(nats_server.url, name)
            # One process, one table of QuickFIX sessions: each gateway has CompIDs of its own.
            config = dataclasses.replace(config, gateway=dataclasses.replace(config.gateway,
                                                                             comp_id=f"FIXGATE-{name.upper()}"))
            stacks.append(Stack(config, tmp_path / name).start())
        for count, stack in zip((9, 6), stacks):
            trade(stack.client(), count)                # fills, resting orders and rejects
            stack.settle()
        assert wait_until(lambda: all(caught_up(stack.gateway) for stack in stacks), 15)
        status = control.run(control.firm_status(stacks[0].config.firm))
        for stack in stacks:
            name = stack.config.gateway.name
            view = status["stream"][name]

            def own_positions(stack=stack):             # as the state thread publishes them, a moment behind
                return [(row["symbol"], row["quantity"]) for row in stack.gateway.positions_snapshot()["positions"]
                        if row["quantity"] not in ("0", "0.0")]
            # What the stream says each gateway holds is what the gateway itself holds.
            assert view["open_orders"] == stack.gateway.book.live_orders == len(stack.gateway.open_orders())
            expected = [(row["symbol"], row["quantity"]) for row in view["positions"]]
            assert wait_until(lambda: own_positions() == expected, 5), (own_positions(), expected)
            assert view["last_seq"] == stack.gateway.replayer.last_seq
        assert status["totals"]["stream_positions"] == {"AAPL": "5"}            # 3 + 2 fills of 1
        assert status["totals"]["stream_open_orders"] == 5
        from fixgate.cli import firm_status_text

        text = firm_status_text(status)
        assert "from the stream" in text and "firm: 5 open orders" in text and "net AAPL 5" in text
    finally:
        for stack in stacks:
            stack.stop()


# -- THE OPERATOR'S COMMANDS ------------------------------------------------------------------------

def test_cli_when_an_operator_kills_the_firm_prints_each_confirmation_and_the_firm_view(tmp_path, nats_server,
                                                                                         capsys):
    import orjson

    from fixgate import cli

    config = firm_config(nats_server.url)
    path = tmp_path / "firm.toml"
    path.write_text(f'[firm]\nname = "{FIRM}"\nservers = ["{nats_server.url}"]\n')
    stack = Stack(config, tmp_path).start()
    try:
        assert wait_until(lambda: kv_get(nats_server.url, NAMES.bucket, NAMES.gateway_key("gw1")))
        capsys.readouterr()
        assert cli.main(["kill", "--firm", "-c", str(path), "--reason", "drill"]) == 0
        document = orjson.loads(capsys.readouterr().out)
        assert document["kill"]["actor"].startswith("cli:") and document["confirms"]["gw1"]["state"] == "KILL_SWITCH"
        assert document["confirms"]["gw1"]["delay_ms"] >= 0
        assert cli.main(["firm", "-c", str(path), "status"]) == 0
        view = capsys.readouterr().out
        assert "kill switch ON" in view and "gw1" in view and "KILL_SWITCH" in view
        assert cli.main(["resume", "--firm", "-c", str(path)]) == 0
        assert orjson.loads(capsys.readouterr().out)["confirms"]["gw1"]["state"] == "NORMAL"
    finally:
        stack.stop()


def test_cli_when_nats_is_out_of_reach_says_so_and_exits_1(tmp_path, capsys):
    from fixgate import cli

    from .conftest import free_port

    path = tmp_path / "firm.toml"
    path.write_text(f'[firm]\nname = "{FIRM}"\nservers = ["nats://127.0.0.1:{free_port()}"]\nconnect_timeout_seconds = 0.5\n')
    assert cli.main(["kill", "--firm", "-c", str(path), "--reason", "drill"]) == 1
    assert "cannot reach NATS at nats://127.0.0.1:" in capsys.readouterr().err


def test_admin_api_when_asked_for_the_firm_kill_trips_it_for_every_gateway_and_audits_it(tmp_path, nats_server):
    import json
    import urllib.request

    config = firm_config(nats_server.url)
    stack = Stack(config, tmp_path).start()
    try:
        assert stack.gateway.admin is not None
        assert wait_until(lambda: kv_get(nats_server.url, NAMES.bucket, NAMES.gateway_key("gw1")))

        def post(path, body):
            request = urllib.request.Request(f"http://127.0.0.1:{config.admin.port}{path}", data=json.dumps(body).encode(),
                                             headers={"Authorization": f"Bearer {config.admin.token}",
                                                      "Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())

        status, document = post("/kill", {"firm": True, "reason": "from the status page"})
        assert status == 200 and document["confirms"]["gw1"]["state"] == "KILL_SWITCH", document
        assert document["kill"]["actor"] == f"gw1:{config.admin.token_name}"
        assert post("/kill", {"firm": True, "session": "client2"})[0] == 400
        status, document = post("/resume", {"firm": True})
        assert status == 200 and document["confirms"]["gw1"]["state"] == "NORMAL"
        audit = [record for record in stack.gateway.audit.records() if record.get("event") == "admin_command"]
        assert [(record["command"], record.get("firm")) for record in audit] == [("kill", True), ("resume", True)]
    finally:
        stack.stop()
