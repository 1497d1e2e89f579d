"""Firm-wide limits as budgets, over a real NATS JetStream server on 127.0.0.1: three gateways, each
with its own venue simulator and client, share one firm limit; a flood through all three at once
never gets more than the limit to the venues, and a gateway that asks for more gets what another
does not use."""

from __future__ import annotations

import dataclasses
import itertools
import signal
import threading
import time
from decimal import Decimal

import orjson
import pytest

from fixgate.config import FirmLimitSettings, FirmSettings
from fixgate.cli import firm_status_text
from fixgate.firm import budget as b
from fixgate.firm import control
from fixgate.firm import names as n

from .conftest import Stack, stack_config, wait_until
from .natsserver import kv_get

FIRM = "acme"
NAMES = n.FirmNames(FIRM)
GATEWAYS = ("gw1", "gw2", "gw3")
ORDER_IDS = itertools.count(1)          # ClOrdIDs unique across restarts of a client



def budget_config(url: str, gateway: str, *, client_overrides=None, **limits):
    base = stack_config(client_overrides={"max_order_rate": 100_000.0, "burst": 100_000, **(client_overrides or {})})
    # One process holds the three stacks, and QuickFIX's sessions are one table per process: each
    # gateway gets CompIDs of its own.
    return dataclasses.replace(
        base, gateway=dataclasses.replace(base.gateway, name=gateway, comp_id=f"FIXGATE-{gateway.upper()}"),
        firm=FirmSettings(name=FIRM, servers=(url,), lease_seconds=2.0, limits=FirmLimitSettings(**limits)))




def ledger(url: str, name: str) -> b.Ledger | None:
    value = kv_get(url, NAMES.bucket, b.budget_key(name))
    return b.Ledger.from_value(value) if value is not None else None


def flood(client, count: int) -> list[str]:
    """`count` resting buys, as fast as the client sends them; returns their ClOrdIDs once each has its answer."""
    ids = [client.new_order("AAPL", "1", "1", "189.00", cl_ord_id=f"F{next(ORDER_IDS)}") for _ in range(count)]
    for cl_ord_id in ids:
        assert client.wait_report(cl_ord_id, timeout=30) is not None, cl_ord_id
    return ids


def flood_pairs(client, count: int) -> list[str]:
    """`count` resting buys of 2 AAPL at 189 (378 of notional each)."""
    ids = [client.new_order("AAPL", "1", "2", "189.00", cl_ord_id=f"F{next(ORDER_IDS)}") for _ in range(count)]
    for cl_ord_id in ids:
        assert client.wait_report(cl_ord_id, timeout=10) is not None, cl_ord_id
    return ids


def answers(client, ids: list[str]) -> tuple[int, int, list[str]]:
    """(accepted, rejected, reject texts) among the first report of each order."""
    accepted = rejected = 0
    texts = []
    for cl_ord_id in ids:
        first = client.reports_for(cl_ord_id)[0]
        if first.exec_type == "8":
            rejected += 1
            texts.append(first.text or "")
        else:
            accepted += 1
    return accepted, rejected, texts


def test_budgets_when_three_gateways_are_flooded_at_once_never_send_more_than_the_firm_limit(tmp_path, nats_server):
    limit = 300
    stacks = [Stack(budget_config(nats_server.url, name, max_daily_orders=limit, chunk=0.05), tmp_path / name).start()
              for name in GATEWAYS]
    try:
        assert wait_until(lambda: all(stack.gateway.firm.connected for stack in stacks))
        assert wait_until(lambda: (ledger(nats_server.url, "daily_orders") or b.Ledger(0)).allocated > 0)
        clients = [stack.client() for stack in stacks]
        results: dict[int, list[str]] = {}

        def run(index: int) -> None:              # 250 orders in waves of 25, as fast as each is answered
            results[index] = [cl_ord_id for _ in range(10) for cl_ord_id in flood(clients[index], 25)]

        threads = [threading.Thread(target=run, args=(index,)) for index in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(results) == [0, 1, 2]
        for stack in stacks:
            stack.settle()
        received = [stack.venue.orders_received for stack in stacks]
        counted = [answers(clients[index], results[index]) for index in range(3)]
        # Every order has an answer; what reached the venues is what the gateways accepted, and no
        # more than the firm's limit, however the three raced for it.
        assert [accepted for accepted, _, _ in counted] == received
        assert sum(received) <= limit
        # The budgets moved to where the orders were: a gateway ends with at most a chunk and a half
        # unused (15 orders a chunk).
        assert sum(received) >= limit - 3 * 23, received
        assert all(count > 0 for count in received), received
        texts = {text for _, _, gateway_texts in counted for text in gateway_texts}
        # Each refusal says where the firm stands: units still free (more is being taken), or every
        # unit allocated.
        base = "FIRM_DAILY_ORDERS: this gateway's budget of the firm's daily order limit is used up: "
        assert texts and all(text.startswith(base) for text in texts), texts
        assert any(text.startswith(base + f"the firm's {limit:,} are allocated in full") for text in texts), texts
        final = ledger(nats_server.url, "daily_orders")
        assert final.limit == limit and final.allocated <= limit
        for index, stack in enumerate(stacks):
            budget, usage = stack.gateway.engine.firm_budget("daily_orders")
            assert usage == received[index] <= budget <= final.allocations.get(GATEWAYS[index], 0)
        # The firm view: the limit, its split, what each gateway uses (from their announcements).
        assert wait_until(lambda: control.run(control.firm_status(stacks[0].config.firm, from_stream=False))
                          ["limits"]["daily_orders"]["used"] == sum(received), 5)
        row = control.run(control.firm_status(stacks[0].config.firm, from_stream=False))["limits"]["daily_orders"]
        assert row["limit"] == limit and row["allocated"] == final.allocated
        assert row["usage"] == {name: float(count) for name, count in zip(GATEWAYS, received)}
        text = firm_status_text(control.run(control.firm_status(stacks[0].config.firm, from_stream=False)))
        line = next(line for line in text.splitlines() if line.startswith("daily_orders "))
        assert line.split()[:4] == ["daily_orders", f"{limit:,}", f"{final.allocated:,}", f"{sum(received):,}.00"]
        metrics = stacks[0].gateway.metrics_text().decode()
        assert f'fixgate_firm_limit{{limit="daily_orders"}} {float(limit)}' in metrics
        assert f'fixgate_firm_budget_usage{{limit="daily_orders"}} {float(received[0])}' in metrics
    finally:
        for stack in stacks:
            stack.stop()


def test_budgets_when_one_gateway_holds_what_another_asks_for_give_it_back(tmp_path, nats_server):
    limit = 100
    first = Stack(budget_config(nats_server.url, "gw1", max_daily_orders=limit, chunk=0.5), tmp_path / "gw1").start()
    second = None
    try:
        assert wait_until(lambda: first.gateway.engine.firm_budget("daily_orders")[0] == 50)
        client = first.client()
        accepted, _, _ = answers(client, flood(client, 30))
        # 20 left of 50, less than half a chunk: it takes the other 50, the whole limit.
        assert wait_until(lambda: first.gateway.engine.firm_budget("daily_orders")[0] == 100)
        accepted += answers(client, flood(client, 30))[0]
        assert accepted == 60
        assert ledger(nats_server.url, "daily_orders").allocations == {"gw1": 100}
        second = Stack(budget_config(nats_server.url, "gw2", max_daily_orders=limit, chunk=0.5), tmp_path / "gw2")
        second.start()
        # gw2 asks for 50 and nothing is free: gw1 gives back its 40 unused less the half chunk it
        # keeps, and gw2 takes those 15.
        assert wait_until(lambda: second.gateway.engine.firm_budget("daily_orders")[0] == 15, 10)
        # gw2 still asks for a chunk; gw1, at half a chunk to spare, gives no more.
        assert wait_until(lambda: ledger(nats_server.url, "daily_orders").wants == {"gw2": 50})
        held = ledger(nats_server.url, "daily_orders")
        assert held.allocations == {"gw1": 85, "gw2": 15}
        status = second.gateway.firm.describe()["budgets"]
        assert status["rebalances"] == 1 and status["rebalance_ms"]["p50"] > 0
        other = second.client()
        accepted_second, rejected, _ = answers(other, flood(other, 30))
        assert (accepted_second, rejected) == (15, 15)
        assert first.venue.orders_received + second.venue.orders_received == 75 <= limit
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_budgets_when_the_gateway_stops_give_back_what_it_did_not_use_and_a_restart_trusts_only_a_recent_file(
        tmp_path, nats_server):
    config = budget_config(nats_server.url, "gw1", max_daily_orders=40, chunk=0.5)
    config = dataclasses.replace(config, firm=dataclasses.replace(config.firm, lease_seconds=30.0))
    stack = Stack(config, tmp_path / "gw1").start()
    try:
        assert wait_until(lambda: stack.gateway.engine.firm_budget("daily_orders")[0] == 20)
        client = stack.client()
        assert answers(client, flood(client, 5))[0] == 5
    finally:
        stack.stop()
    # A graceful stop gave back all it did not use: the 5 it sent stay its own today.
    assert ledger(nats_server.url, "daily_orders").allocations == {"gw1": 5}
    budget_file = tmp_path / "gw1" / "gateway" / "firm-budgets.json"
    assert orjson.loads(budget_file.read_bytes())["budgets"] == {"daily_orders": 5}
    nats_server.stop()
    again = Stack(config, tmp_path / "gw1").start()
    try:
        assert again.gateway.engine.firm_budget("daily_orders") == (5.0, 5.0)   # the file's, the journal's count
        client = again.client()
        accepted, rejected, texts = answers(client, flood(client, 3))
        assert (accepted, rejected) == (0, 3)
        assert set(texts) == {"FIRM_DAILY_ORDERS: this gateway's budget of the firm's daily order limit is used up"}
    finally:
        again.stop()
    # A file the ledger last confirmed longer ago than a lease is not trusted: the gateway may have
    # been released meanwhile; it holds nothing until it reaches the firm.
    budget_file.write_bytes(orjson.dumps({"budgets": {"daily_orders": 20},
                                          "confirmed_ns": time.time_ns() - 31 * 1_000_000_000}))
    late = Stack(config, tmp_path / "gw1").start()
    try:
        assert late.gateway.engine.firm_budget("daily_orders") == (0.0, 5.0)
    finally:
        late.stop()


def test_budgets_when_a_client_has_a_firm_credit_hold_its_open_notional_to_its_share(tmp_path, nats_server):
    config = budget_config(nats_server.url, "gw1", client_overrides={"firm_credit": Decimal("1000")}, chunk=0.5)
    stack = Stack(config, tmp_path / "gw1").start()
    try:
        name = config.clients[0].name
        assert wait_until(lambda: stack.gateway.engine.firm_budget("client_credit", session=0)[0] == 500)
        client = stack.client()
        ids = flood_pairs(client, 1)                                              # 378 of its 500
        # Less than half a chunk left: it takes the other 500, the whole credit.
        assert wait_until(lambda: stack.gateway.engine.firm_budget("client_credit", session=0)[0] == 1000)
        ids += flood_pairs(client, 3)
        accepted, rejected, texts = answers(client, ids)
        assert (accepted, rejected) == (2, 2)                                     # 756 open; 1134 would pass 1000
        assert set(texts) == {"FIRM_CLIENT_CREDIT: the client's open notional would exceed this gateway's budget of its firm-wide "
                         "credit"}
        held = ledger(nats_server.url, f"credit.{name}")
        assert held.limit == 1000 and held.allocated <= 1000
    finally:
        stack.stop()


def test_operator_when_a_limit_is_lowered_or_a_stopped_gateway_released_the_firm_takes_its_share_back(
        tmp_path, nats_server, capsys):
    from fixgate.cli import main as cli_main

    config = budget_config(nats_server.url, "gw1", max_daily_orders=100, chunk=0.5)
    config = dataclasses.replace(config, firm=dataclasses.replace(config.firm, lease_seconds=0.5))
    stack = Stack(config, tmp_path / "gw1").start()
    try:
        assert wait_until(lambda: stack.gateway.engine.firm_budget("daily_orders")[0] == 50)
        client = stack.client()
        assert answers(client, flood(client, 10))[0] == 10
        # Lowered to 30 under the 50 it holds: it gives back all it does not use, then takes a chunk
        # of the new limit (15) above its 10, or all that is free (20) when it took a moment before.
        result = control.run(control.set_limit(config.firm, "daily_orders", 30, "risk-officer"))
        assert result["allocated"] == 50
        assert wait_until(lambda: ledger(nats_server.url, "daily_orders").allocations.get("gw1") in (25, 30))
        held = ledger(nats_server.url, "daily_orders").allocations["gw1"]
        assert wait_until(lambda: stack.gateway.engine.firm_budget("daily_orders") == (float(held), 10.0))
        refused = control.FirmUnreachable
        with pytest.raises(refused, match="is alive"):
            control.run(control.release_budget(config.firm, "gw1", "risk-officer"))
    finally:
        stack.stop()
    # Its graceful stop gave back the 15 it did not use; its 10 orders of the day stay its own.
    assert ledger(nats_server.url, "daily_orders").allocations == {"gw1": 10}
    time.sleep(1.2)                                         # two leases without an announcement: stopped
    path = tmp_path / "firm.toml"
    path.write_text(f'[firm]\nname = "{FIRM}"\nservers = ["{nats_server.url}"]\n')
    assert cli_main(["firm", "-c", str(path), "release-budget", "gw1"]) == 0
    printed = capsys.readouterr().out
    assert '"released": {\n    "daily_orders": 0' in printed and '"kept_as_used": {\n    "daily_orders": 10' in printed
    assert ledger(nats_server.url, "daily_orders").allocations == {"gw1": 10}
    assert cli_main(["firm", "-c", str(path), "set-limit", "positions", "5"]) == 1
    assert "the firm has no limit 'positions'" in capsys.readouterr().err


def test_budgets_when_the_gateway_is_killed_mid_flow_never_hold_more_than_the_ledger_after_its_restart(
        tmp_path, nats_server):
    from .test_native_path import GatewayProcess, scripted_config

    config = scripted_config(name="gw1")
    config = dataclasses.replace(
        config, clients=tuple(dataclasses.replace(client, max_order_rate=100_000.0, burst=100_000)
                              for client in config.clients),
        firm=FirmSettings(name=FIRM, servers=(nats_server.url,), lease_seconds=30.0,
                          limits=FirmLimitSettings(max_daily_orders=40, chunk=0.25)))
    run = GatewayProcess(tmp_path, config=config)
    run.start()
    client = run.client()

    def budget_status():
        _, status = run.status("/status")
        return ((((status or {}).get("firm") or {}).get("budgets") or {}).get("meters") or {}).get("daily_orders")

    try:
        assert client.wait_logged_on(15)
        assert run.venue.wait_for(lambda: (budget_status() or {}).get("budget"), 30)     # its first chunk
        first = [client.new_order("AAPL", "1", "1", "189.00", cl_ord_id=f"K{next(ORDER_IDS)}") for _ in range(30)]
        assert client.wait_report(first[12], timeout=30) is not None
        run.kill()                                  # kill -9 while it takes chunk after chunk
        nats_server.stop()                          # the restart finds no NATS: it trades on its file
        run.start()
        assert client.wait_logged_on(30)
        restarted = budget_status()["budget"]
        more = [client.new_order("AAPL", "1", "1", "189.00", cl_ord_id=f"K{next(ORDER_IDS)}") for _ in range(40)]
        for cl_ord_id in more:
            assert client.wait_report(cl_ord_id, timeout=30) is not None, cl_ord_id
        sent = len(run.book.orders)                 # what the venue got, before the kill and after
        run.process.send_signal(signal.SIGTERM)     # stopped while NATS is away: nothing given back
        run.process.wait(20)
        nats_server.start()
        held = ledger(nats_server.url, "daily_orders").allocations.get("gw1", 0)
        # The book it restarted with, and what the venue got in all, within what the ledger gave it.
        assert 0 < restarted <= held <= 40, (restarted, held)
        assert sent <= held, (sent, held)
    finally:
        client.stop(0.2)
        run.stop()
