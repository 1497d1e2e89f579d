"""The sessions' message store (a memory-mapped file by default): what a client missed comes back by
QuickFIX's resend, sequence numbers survive a restart, and a state directory kept by QuickFIX's own
FileStore carries over."""

import dataclasses

from fixgate.core.messages import ExecType
from fixgate.fix.client import FixClient
from fixgate.gateway import Gateway

from .conftest import Stack, stack_config


def client_of(stack, directory):
    client = FixClient("CLIENT1", "FIXGATE", "127.0.0.1", stack.config.acceptor.port, directory,
                       username="demo", password="demo")
    client.start()
    assert client.wait_logged_on(10)
    return client


def test_reports_when_the_client_is_away_reach_it_by_resend_when_it_logs_on_again(tmp_path):
    config = stack_config(client_overrides={"cancel_on_disconnect": False})
    stack = Stack(config, tmp_path).start()
    try:
        client = client_of(stack, tmp_path / "client")
        resting = client.new_order("AAPL", "1", "10", "189.00")
        assert client.wait_report(resting, exec_type=ExecType.NEW)
        client.stop(0.5)
        # While the client is away the market falls through its bid: the fill is stored for it.
        stack.venue.apply_fault({"action": "shock", "symbol": "AAPL", "fraction": -0.01})
        stack.settle()
        assert stack.gateway.book.live_orders == 0
        again = client_of(stack, tmp_path / "client")           # the same store: it knows what it had
        fill = again.wait_report(resting, exec_type=ExecType.TRADE, timeout=10)
        assert fill is not None and (fill.last_qty, fill.cum_qty) == ("10", "10")
        again.stop(0.5)
    finally:
        stack.stop()


def test_store_when_the_state_directory_was_kept_by_filestore_carries_its_sequence_numbers_over(tmp_path):
    base = stack_config()
    file_config = dataclasses.replace(base, gateway=dataclasses.replace(base.gateway, message_store="file"))
    stack = Stack(file_config, tmp_path).start()
    try:
        client = client_of(stack, tmp_path / "client")
        for _ in range(3):
            assert client.wait_report(client.new_order("AAPL", "1", "1", "189.00"), exec_type=ExecType.NEW)
        stack.gateway.stop(cancel_open_orders=False, logout_timeout=0.5)
        store = tmp_path / "gateway" / "store"
        assert list(store.glob("*CLIENT1.seqnums")) and not list(store.glob("*.store"))
        # The same state directory, now with the mapped store: it starts from FileStore's files.
        stack.gateway = Gateway(base, state_dir=tmp_path / "gateway", message_log=False)
        stack.gateway.start()
        assert stack.gateway.wait_for_venues(15, ready=True) and client.wait_logged_on(15)
        assert list(store.glob("*CLIENT1.store"))
        report = client.wait_report(client.new_order("AAPL", "1", "1", "189.00"), exec_type=ExecType.NEW)
        assert report is not None and client.logged_on and client.logouts == 1     # no sequence trouble
        client.stop(0.5)
    finally:
        stack.stop()
