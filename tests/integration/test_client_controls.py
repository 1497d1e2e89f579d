"""Controls scoped to one client, the restricted list and each client's credit, end to end over FIX."""

import json
import time

from prometheus_client.parser import text_string_to_metric_families

from fixgate.core.messages import ExecType
from fixgate.gateway import Gateway

from .test_safety import admin, cli, wait_until

BUY, SELL = "1", "2"


def metric(stack, name, **labels):
    _, body = admin(stack, "/metrics")
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items()):
                return sample.value
    return None


def rejected(client, cl_ord_id):
    report = client.wait_report(cl_ord_id, exec_type=ExecType.REJECTED)
    assert report is not None, f"{cl_ord_id} was not rejected"
    return report


def accepted(client, cl_ord_id):
    report = client.wait_for(lambda: [r for r in client.reports_for(cl_ord_id)
                                      if getattr(r, "exec_type", None) in (ExecType.NEW, ExecType.REJECTED)])
    assert report and report[0].exec_type == ExecType.NEW, (cl_ord_id, report and report[0].text)
    return report[0]


def gateway_cancel(client, cl_ord_id):
    """The Canceled report the gateway sent on its own for `cl_ord_id`."""
    found = client.wait_for(lambda: [r for r in client.reports if getattr(r, "exec_type", None) == ExecType.CANCELED
                                     and r.orig_cl_ord_id == cl_ord_id])
    assert found, f"no cancel of {cl_ord_id}"
    return found[0]


def restart(stack):
    """Stop the gateway and start it again on the same state; the clients reconnect by themselves."""
    stack.gateway.stop(cancel_open_orders=False, logout_timeout=0.2)
    stack.gateway = Gateway(stack.config, state_dir=stack.directory / "gateway", message_log=False)
    stack.gateway.start()
    assert stack.gateway.wait_for_venues(10, ready=True)


def test_client_kill_when_commanded_stops_only_that_client_cancels_its_orders_and_survives_restart(stack):
    first, second = stack.client("CLIENT1"), stack.client("CLIENT2")
    mine = first.new_order("AAPL", BUY, "5", "189.00")
    theirs = second.new_order("AAPL", BUY, "5", "188.50")
    accepted(first, mine)
    accepted(second, theirs)

    result = cli(stack, "kill", "--client", "client1", "--reason", "desk 3 runaway")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True, "client": "client1", "killed": True, "cancels_sent": 1}

    cancel = gateway_cancel(first, mine)              # the client's own ClOrdID, and why
    assert cancel.cl_ord_id == mine
    assert cancel.text == "cancelled by the gateway: kill switch for client client1: desk 3 runaway"
    refused = first.new_order("AAPL", BUY, "1", "189.00")
    assert rejected(first, refused).text == "CLIENT_KILLED: kill switch active for client client1: desk 3 runaway"
    accepted(second, second.new_order("AAPL", BUY, "1", "188.00"))    # the other client trades on
    assert len(stack.venue.engine.open_orders("FIXGATE")) == 2                # client2's two
    _, status = admin(stack, "/status")
    assert status["client_controls"]["client1"]["killed"] is True
    assert status["client_controls"]["client2"]["killed"] is False
    assert status["risk"]["killed_clients"]["client1"]["reason"] == "desk 3 runaway"
    assert status["risk"]["risk_state"] == "NORMAL"
    summary = cli(stack, "status")
    assert summary.returncode == 0 and "KILLED     client client1 since 20" in summary.stdout
    assert "by admin: desk 3 runaway" in summary.stdout
    assert metric(stack, "fixgate_client_killed", client="client1") == 1
    assert metric(stack, "fixgate_client_killed", client="client2") == 0
    assert any(record.get("event") == "client_killed" and record["client"] == "client1" and record["actor"] == "admin"
               for record in stack.gateway.audit.records())

    # A restart comes back with the client killed.
    restart(stack)
    assert first.wait_logged_on(15)
    refused = first.new_order("AAPL", BUY, "1", "189.00", cl_ord_id="AFTER-1")
    assert rejected(first, refused).text == (
        "CLIENT_KILLED: kill switch active for client client1: restored: desk 3 runaway")

    result = cli(stack, "resume", "--client", "client1")
    assert result.returncode == 0, result.stderr
    accepted(first, first.new_order("AAPL", BUY, "1", "189.00", cl_ord_id="AFTER-2"))
    result = cli(stack, "resume", "--client", "client1")                # not killed any more: refused, says so
    assert result.returncode != 0 and "client client1 is not killed" in result.stdout + result.stderr
    result = cli(stack, "kill", "--client", "nobody", "--reason", "x")
    assert result.returncode != 0 and "no client session named 'nobody'" in result.stdout + result.stderr


def test_restricted_list_when_changed_at_run_time_refuses_the_symbol_for_its_scope_and_is_kept(stack):
    first, second = stack.client("CLIENT1"), stack.client("CLIENT2")
    status, result = admin(stack, "/restrict", {"symbol": "AAPL", "session": "client2", "reason": "insider list"})
    assert status == 200 and result["restricted_list"] == {"*": [], "client2": ["AAPL"]}
    assert rejected(second, second.new_order("AAPL", BUY, "1", "189.00")).text == (
        "RESTRICTED_INSTRUMENT: instrument on the restricted list")
    accepted(first, first.new_order("AAPL", BUY, "1", "189.00"))

    result = cli(stack, "restrict", "AAPL", "--reason", "corporate action")        # everyone
    assert result.returncode == 0, result.stderr
    assert rejected(first, first.new_order("AAPL", BUY, "1", "189.00")).ord_rej_reason == "99"
    assert metric(stack, "fixgate_restricted_symbols", client="*") == 1

    status, result = admin(stack, "/restrict", {"symbol": "NOPE"})
    assert status == 409 and "no instrument 'NOPE'" in result["error"]
    status, result = admin(stack, "/restrict", {"symbol": "AAPL", "restricted": "yes"})
    assert status == 400 and "restricted must be true or false" in result["error"]
    assert cli(stack, "restrict", "AAPL", "--remove").returncode == 0
    accepted(first, first.new_order("AAPL", BUY, "1", "189.00"))
    records = [record for record in stack.gateway.audit.records() if record.get("event") == "restricted_list_changed"]
    assert [(record["symbol"], record["client"], record["restricted"]) for record in records] == [
        ("AAPL", "client2", True), ("AAPL", None, True), ("AAPL", None, False)]

    # A restart keeps client2's restriction (and not the removed one).
    restart(stack)
    _, status = admin(stack, "/status")
    assert status["risk"]["restricted"] == {"*": [], "client2": ["AAPL"]}
    assert "restricted client2: AAPL" in cli(stack, "status").stdout
    assert second.wait_logged_on(15)
    after = second.new_order("AAPL", BUY, "1", "189.00", cl_ord_id="AFTER-1")
    assert second.wait_for(lambda: second.reports_for(after)), "no answer"
    assert second.reports_for(after)[0].text.startswith("RESTRICTED_INSTRUMENT"), second.reports_for(after)[0]


def test_restricted_list_when_configured_refuses_from_the_start(make_stack):
    stack = make_stack(restricted=("AAPL",))
    client = stack.client("CLIENT1")
    assert rejected(client, client.new_order("AAPL", BUY, "1", "189.00")).text.startswith("RESTRICTED_INSTRUMENT")


def test_duplicate_order_when_sent_again_within_the_window_is_refused(make_stack):
    stack = make_stack(client_overrides={"duplicate_window_ms": 500})
    client = stack.client("CLIENT1")
    accepted(client, client.new_order("AAPL", BUY, "3", "189.00"))
    twin = rejected(client, client.new_order("AAPL", BUY, "3", "189.00"))
    assert twin.text == ("DUPLICATE_ORDER: same side, quantity and price as an order of this client "
                         "within the duplicate window")
    assert twin.ord_rej_reason == "6"
    accepted(client, client.new_order("AAPL", BUY, "3", "189.01"))      # another price is another order
    accepted(client, client.new_order("AAPL", SELL, "3", "191.00"))     # and another side
    other = stack.client("CLIENT2")                                     # the check is per client
    accepted(other, other.new_order("AAPL", BUY, "3", "189.00"))
    time.sleep(0.6)
    accepted(client, client.new_order("AAPL", BUY, "3", "189.00"))      # the window has passed


def test_client_credit_when_exceeded_refuses_with_reason_and_frees_on_cancel(make_stack):
    stack = make_stack(client_overrides={"max_open_notional": 2000, "max_window_notional": 2500,
                                         "window_ms": 60_000})
    client = stack.client("CLIENT1")
    first = client.new_order("AAPL", BUY, "5", "189.00")                # 945
    accepted(client, first)
    over = rejected(client, client.new_order("AAPL", BUY, "6", "189.00"))   # 945 + 1134 > 2000 open
    assert over.text == "CLIENT_OPEN_NOTIONAL: the client's open notional would exceed its limit"
    assert over.ord_rej_reason == "3"
    _, status = admin(stack, "/status")
    assert status["client_controls"]["client1"]["open_notional"] == 945.0
    assert status["client_controls"]["client1"]["max_open_notional"] == 2000.0
    assert client.wait_report(client.cancel(first, "AAPL", BUY), exec_type=ExecType.CANCELED)
    stack.settle()
    accepted(client, client.new_order("AAPL", BUY, "6", "189.00"))      # 1134 open; 2079 in the window
    flood = rejected(client, client.new_order("AAPL", BUY, "4", "188.00"))  # 2079 + 752 > 2500 in 60 s
    assert flood.text == ("CLIENT_WINDOW_NOTIONAL: the client's notional within its short window would "
                          "exceed its limit")
    assert wait_until(lambda: metric(stack, "fixgate_client_open_notional", client="client1") == 1134.0)
    other = stack.client("CLIENT2")                                     # client2 has no limits of its own
    accepted(other, other.new_order("AAPL", BUY, "20", "189.00"))


def test_gateway_cancels_when_operator_cancels_all_tell_the_client_its_order_and_why(stack):
    client = stack.client("CLIENT1")
    resting = client.new_order("AAPL", BUY, "2", "189.00")
    accepted(client, resting)
    assert cli(stack, "cancel-all").returncode == 0
    cancel = gateway_cancel(client, resting)
    assert cancel.cl_ord_id == resting
    assert cancel.text == "cancelled by the gateway: cancel-all by admin"

    resting = client.new_order("AAPL", BUY, "2", "189.00")
    accepted(client, resting)
    assert cli(stack, "kill", "--reason", "end of test").returncode == 0
    assert gateway_cancel(client, resting).text == "cancelled by the gateway: kill switch: end of test"


def test_trading_day_when_it_rolls_lets_a_client_use_yesterdays_cl_ord_id_again(stack):
    from fixgate.core.clock import NANOSECONDS_PER_DAY

    client = stack.client("CLIENT1")
    yesterday = client.new_order("AAPL", BUY, "1", "189.00", cl_ord_id="DAY-1")
    accepted(client, yesterday)
    assert client.wait_report(client.cancel(yesterday, "AAPL", BUY), exec_type=ExecType.CANCELED)
    again = client.new_order("AAPL", BUY, "1", "189.00", cl_ord_id="DAY-1")
    assert rejected(client, again).text == "DUPLICATE_CL_ORD_ID: duplicate ClOrdID DAY-1"
    client.reports.clear()
    rolls = stack.gateway.risk_agent.day_rolls
    stack.gateway.risk_agent.day_start_ns -= NANOSECONDS_PER_DAY        # the day the gateway is in has ended
    assert wait_until(lambda: stack.gateway.risk_agent.day_rolls == rolls + 1)
    accepted(client, client.new_order("AAPL", BUY, "1", "189.00", cl_ord_id="DAY-1"))


def test_concentration_when_a_position_would_pass_its_share_of_equity_is_refused_and_reducing_passes(make_stack):
    stack = make_stack(max_concentration=0.02, max_sector_concentration=None)     # 2% of 1,000,000: 20,000
    client = stack.client("CLIENT1")
    accepted(client, client.new_order("AAPL", BUY, "100", "189.00"))           # 100 x 190 reference: 19,000
    over = rejected(client, client.new_order("AAPL", BUY, "10", "189.00"))     # 110 x 190 = 20,900
    assert over.text == ("CONCENTRATION: worst-case position value would exceed the instrument's share "
                         "of equity")
    assert over.ord_rej_reason == "3"
    accepted(client, client.new_order("AAPL", SELL, "50", "191.00"))           # towards flat: passes
    _, status = admin(stack, "/status")
    rows = {row["name"]: row for row in status["limits"]}
    assert rows["concentration AAPL (of equity)"]["limit"] == 0.02
    assert 0.0189 < rows["concentration AAPL (of equity)"]["used"] < 0.0191


def test_venue_message_rate_when_reached_refuses_new_orders_and_never_holds_back_a_cancel(make_stack):
    stack = make_stack(venue_overrides={"max_message_rate": 5.0, "message_burst": 3})
    client = stack.client("CLIENT1")
    time.sleep(1.0)                                    # the logon's status requests have drained out
    sent = [client.new_order("AAPL", BUY, "1", f"189.{index:02d}") for index in range(8)]
    answers = [client.wait_for(lambda cl=cl: [r for r in client.reports_for(cl)
                                              if r.exec_type in (ExecType.NEW, ExecType.REJECTED)]) for cl in sent]
    kinds = [answer[0].exec_type for answer in answers]
    assert kinds.count(ExecType.NEW) <= 4 and kinds.count(ExecType.REJECTED) >= 4, kinds
    refused = next(answer[0] for answer in answers if answer[0].exec_type == ExecType.REJECTED)
    assert refused.text.startswith("VENUE_RATE_LIMIT: venue simvenue takes no more messages this instant")
    live = [cl for cl, kind in zip(sent, kinds) if kind == ExecType.NEW]
    cancels = [client.cancel(cl, "AAPL", BUY) for cl in live]            # at once, beyond the limit
    for cancel in cancels:
        assert client.wait_report(cancel, exec_type=ExecType.CANCELED), "a cancel was held back"
    assert stack.gateway.book.throttle.counters()["venue_breaches"] >= 4
    assert metric(stack, "fixgate_throttle_breaches_total", scope="venue") >= 4
    time.sleep(1.0)
    accepted(client, client.new_order("AAPL", BUY, "1", "189.00"))       # the limit has room again


def test_self_match_when_an_order_would_cross_the_clients_own_resting_order_is_refused(make_stack):
    stack = make_stack(client_overrides={"self_match_prevention": True})
    client = stack.client("CLIENT1")
    resting = client.new_order("AAPL", SELL, "5", "191.00")
    accepted(client, resting)
    crossing = rejected(client, client.new_order("AAPL", BUY, "5", "191.00"))
    assert crossing.text == "SELF_MATCH: the order would trade against the client's own resting order"
    bid = client.new_order("AAPL", BUY, "5", "189.00")                 # below its own offer: fine
    accepted(client, bid)
    refused = client.wait_report(client.replace(bid, "AAPL", BUY, "5", "191.50"), cancel_reject=True)
    assert refused is not None and refused.text.startswith("SELF_MATCH")
    other = stack.client("CLIENT2")                                     # another client may trade with it
    taken = other.new_order("AAPL", BUY, "5", "191.00")
    assert other.wait_for(lambda: [r for r in other.reports_for(taken) if r.exec_type != ExecType.REJECTED])


def test_account_kill_when_commanded_stops_that_accounts_orders_from_any_client_and_survives_restart(stack):
    first, second = stack.client("CLIENT1"), stack.client("CLIENT2")
    mine = first.new_order("AAPL", BUY, "2", "189.00", account="DESK3")
    accepted(first, mine)
    other_account = first.new_order("AAPL", BUY, "2", "188.90", account="DESK4")
    accepted(first, other_account)

    result = cli(stack, "kill", "--account", "DESK3", "--reason", "desk 3 over its limit")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True, "account": "DESK3", "killed": True, "cancels_sent": 1}
    assert gateway_cancel(first, mine).text == ("cancelled by the gateway: kill switch for account DESK3: "
                                                "desk 3 over its limit")
    for client in (first, second):                                        # whichever session sends them
        refused = rejected(client, client.new_order("AAPL", BUY, "1", "188.00", account="DESK3"))
        assert refused.text == "CLIENT_KILLED: kill switch active for account DESK3: desk 3 over its limit"
    accepted(first, first.new_order("AAPL", BUY, "1", "188.00", account="DESK4"))
    assert len(stack.venue.engine.open_orders("FIXGATE")) == 2                # DESK4's two
    _, status = admin(stack, "/status")
    assert status["risk"]["killed_accounts"]["DESK3"]["reason"] == "desk 3 over its limit"

    restart(stack)
    assert first.wait_logged_on(15)
    again = rejected(first, first.new_order("AAPL", BUY, "1", "188.00", account="DESK3", cl_ord_id="AFTER-3"))
    assert again.text == "CLIENT_KILLED: kill switch active for account DESK3: restored: desk 3 over its limit"
    assert cli(stack, "resume", "--account", "DESK3").returncode == 0
    accepted(first, first.new_order("AAPL", BUY, "1", "188.00", account="DESK3", cl_ord_id="AFTER-4"))
    status, result = admin(stack, "/kill", {"reason": "x", "session": "client1", "account": "DESK3"})
    assert status == 409 and "not both" in result["error"]


def test_client_kill_when_its_venue_is_down_cancels_its_orders_once_the_venue_is_back(stack):
    client = stack.client("CLIENT1")
    resting = client.new_order("AAPL", BUY, "2", "189.00")
    accepted(client, resting)
    stack.venue.apply_fault({"action": "drop"})
    assert wait_until(lambda: not stack.gateway.venues_logged_on())
    result = cli(stack, "kill", "--client", "client1", "--reason", "while the venue was away")
    assert result.returncode == 0 and json.loads(result.stdout)["cancels_sent"] == 0
    assert stack.gateway.wait_for_venues(20)                      # logged on again (reconnects take a few s)
    cancel = client.wait_for(lambda: [r for r in client.reports if getattr(r, "exec_type", None) == ExecType.CANCELED
                                      and r.orig_cl_ord_id == resting], timeout=20)
    assert cancel, "the killed client's order was not cancelled once the venue was back"
    assert cancel[0].text == "cancelled by the gateway: kill switch for client client1: while the venue was away"
    assert wait_until(lambda: stack.venue.engine.open_orders("FIXGATE") == [], 10)
