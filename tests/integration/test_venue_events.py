"""What a venue does to orders on its own: trade busts and corrections, restatements, unsolicited
cancels, expiry and done-for-day. The book, the OMS, the positions and the client must all follow."""

from fixgate.core.messages import ExecType, OrdStatus
from fixgate.gateway import Gateway

from .test_native_path import acknowledged_order, scripted  # noqa: F401  (the fixture)

BUY = "1"


def aapl(stack):
    return stack.config.instruments.index(next(i for i in stack.config.instruments if i.symbol == "AAPL"))


def view_of(stack, cl_ord_id):
    stack.settle()
    return next(view for view in stack.gateway.orders.by_id.values() if view.cl_ord_id == cl_ord_id)


def venue_report(stack, order, exec_type, ord_status, *, exec_id, leaves, cum, avg, ref=None, last_qty=None,
                 last_px=None, qty=None, text=None):
    """An ExecutionReport from the venue about `order`, with the fields a bust, correction or
    restatement carries."""
    fields = [(37, "V1"), (11, order[11]), (17, exec_id), (150, exec_type), (39, ord_status), (55, order[55]),
              (54, order[54]), (38, qty or order[38]), (44, order[44])]
    if ref is not None:
        fields.append((19, ref))
    if last_qty is not None:
        fields += [(32, last_qty), (31, last_px)]
    fields += [(151, leaves), (14, cum), (6, avg)]
    if text:
        fields.append((58, text))
    assert stack.venue.send("8", fields)


def fill_of(stack, client, cl_ord_id, order, qty, cum, leaves, status="1"):
    """Fill `qty` at 189 and return the venue's ExecID of it (as the client's report names it)."""
    before = len([r for r in client.reports_for(cl_ord_id) if r.exec_type == ExecType.TRADE])
    stack.venue.execution(order, exec_type="F", ord_status=status, leaves=leaves, cum=cum, avg="189",
                          last_qty=qty, last_px="189")
    reports = client.wait_for(lambda: [r for r in client.reports_for(cl_ord_id)
                                       if r.exec_type == ExecType.TRADE][before:])
    assert reports, "the fill did not reach the client"
    return reports[0].exec_id


def test_trade_bust_when_the_venue_breaks_a_fill_undoes_position_and_fill_and_the_order_works_on(scripted):
    stack = scripted()
    client = stack.client()
    cl_ord_id, order = acknowledged_order(stack, client)                  # 10 AAPL at 189
    client_exec_id = fill_of(stack, client, cl_ord_id, order, "4", "4", "6")
    venue_exec_id = client_exec_id.split("-", 1)[1]
    stack.settle()
    assert stack.gateway.positions.net_lots(aapl(stack)) == 4

    for _ in range(2):                                                     # sent twice: followed once
        venue_report(stack, order, "H", "0", exec_id="BUST-1", ref=venue_exec_id, last_qty="4", last_px="189",
                     leaves="10", cum="0", avg="0", text="trade broken by the exchange")
    bust = client.wait_report(cl_ord_id, exec_type=ExecType.TRADE_CANCEL)
    assert bust is not None
    assert (bust.cum_qty, bust.leaves_qty, bust.last_qty, bust.last_px, bust.ord_status) == ("0", "10", "4", "189", "0")
    assert bust.text == "trade broken by the exchange"
    assert stack.venue.wait_for(lambda: stack.gateway.engine.counters()["duplicate_fills"] == 1)
    view = view_of(stack, cl_ord_id)
    assert (view.cum_lots, view.status) == (0, OrdStatus.NEW)
    assert stack.gateway.positions.net_lots(aapl(stack)) == 0
    exposure = stack.gateway.book.exposure(aapl(stack))
    assert (exposure["position_lots"], exposure["open_buy_lots"]) == (0, 10)     # all 10 reserved again
    assert stack.gateway.alarm_counts.get("trade_corrected") == 1
    assert stack.gateway.risk_agent.machine.state.name == "NORMAL"
    # The order works on: all 10 fill.
    fill_of(stack, client, cl_ord_id, order, "10", "10", "0", status="2")
    stack.settle()
    assert stack.gateway.positions.net_lots(aapl(stack)) == 10
    assert view_of(stack, cl_ord_id).status == OrdStatus.FILLED
    assert stack.gateway.order_state.illegal_transitions == 0
    # A restart replays the bust from the journal: 4 - 4 + 10, not 14.
    stack.gateway.stop(cancel_open_orders=False, logout_timeout=0.2)
    stack.gateway = Gateway(stack.config, state_dir=stack.directory / "gateway", message_log=False)
    assert stack.gateway.positions.net_lots(aapl(stack)) == 10
    assert stack.gateway.book.exposure(aapl(stack))["position_lots"] == 10
    assert stack.gateway.recovered.illegal == 0
    stack.gateway.start()


def test_trade_correction_when_the_venue_changes_a_fill_books_the_new_terms(scripted):
    stack = scripted()
    client = stack.client()
    cl_ord_id, order = acknowledged_order(stack, client)
    venue_exec_id = fill_of(stack, client, cl_ord_id, order, "4", "4", "6").split("-", 1)[1]
    venue_report(stack, order, "G", "1", exec_id="CORR-1", ref=venue_exec_id, last_qty="3", last_px="188.50",
                 leaves="7", cum="3", avg="188.5")
    corrected = client.wait_report(cl_ord_id, exec_type=ExecType.TRADE_CORRECT)
    assert corrected is not None
    assert (corrected.cum_qty, corrected.leaves_qty, corrected.avg_px, corrected.last_qty, corrected.last_px) == (
        "3", "7", "188.5", "3", "188.5")
    view = view_of(stack, cl_ord_id)
    assert (view.cum_lots, view.cost) == (3, 3 * 18850)
    assert stack.gateway.positions.net_lots(aapl(stack)) == 3
    assert stack.gateway.book.exposure(aapl(stack))["open_buy_lots"] == 7


def test_trade_bust_when_the_order_had_filled_moves_the_position_and_the_order_stays_finished(scripted):
    stack = scripted()
    client = stack.client()
    cl_ord_id, order = acknowledged_order(stack, client)
    venue_exec_id = fill_of(stack, client, cl_ord_id, order, "10", "10", "0", status="2").split("-", 1)[1]
    venue_report(stack, order, "H", "2", exec_id="BUST-2", ref=venue_exec_id, last_qty="10", last_px="189",
                 leaves="0", cum="0", avg="0")
    bust = client.wait_report(cl_ord_id, exec_type=ExecType.TRADE_CANCEL)
    assert bust is not None and (bust.cum_qty, bust.leaves_qty, bust.ord_status) == ("0", "0", "2")
    view = view_of(stack, cl_ord_id)
    assert (view.cum_lots, view.status) == (0, OrdStatus.FILLED)
    assert stack.gateway.positions.net_lots(aapl(stack)) == 0
    assert stack.gateway.book.exposure(aapl(stack)) ["open_buy_lots"] == 0     # nothing reopens at the gateway


def test_trade_bust_when_the_fill_cannot_be_known_trips_the_kill_switch(scripted):
    stack = scripted()
    client = stack.client()
    cl_ord_id, order = acknowledged_order(stack, client)
    venue_report(stack, order, "H", "0", exec_id="BUST-3", ref="NO-SUCH-FILL", leaves="10", cum="0", avg="0")
    assert stack.venue.wait_for(lambda: stack.gateway.risk_agent.machine.state.name == "KILL_SWITCH")
    assert "positions are off" in stack.gateway.risk_agent.machine.reason


def test_restatement_when_the_venue_cuts_the_quantity_is_followed_and_ends_the_order_at_its_fills(scripted):
    stack = scripted()
    client = stack.client()
    cl_ord_id, order = acknowledged_order(stack, client)
    venue_report(stack, order, "D", "0", exec_id="RST-1", qty="6", leaves="6", cum="0", avg="0",
                 text="quantity reduced by the exchange")
    restated = client.wait_report(cl_ord_id, exec_type=ExecType.RESTATED)
    assert restated is not None and (restated.order_qty, restated.leaves_qty) == ("6", "6")
    assert restated.text == "quantity reduced by the exchange"
    assert view_of(stack, cl_ord_id).qty_lots == 6
    assert stack.gateway.book.exposure(aapl(stack))["open_buy_lots"] == 6
    fill_of(stack, client, cl_ord_id, order, "2", "2", "4")
    venue_report(stack, order, "D", "2", exec_id="RST-2", qty="2", leaves="0", cum="2", avg="189")
    done = client.wait_for(lambda: [r for r in client.reports_for(cl_ord_id) if r.exec_type == ExecType.RESTATED][1:])
    assert done and (done[0].ord_status, done[0].leaves_qty) == ("2", "0")
    view = view_of(stack, cl_ord_id)
    assert (view.qty_lots, view.status) == (2, OrdStatus.FILLED)
    assert stack.gateway.book.live_orders == 0
    assert stack.gateway.order_state.illegal_transitions == 0


def test_venue_ending_orders_on_its_own_cancel_expire_done_for_day_releases_them_and_says_so(scripted):
    stack = scripted()
    client = stack.client()
    ends = [("4", "4", ExecType.CANCELED, OrdStatus.CANCELED, "self-match prevention"),
            ("C", "C", ExecType.EXPIRED, OrdStatus.EXPIRED, "expired at the close"),
            ("3", "3", ExecType.DONE_FOR_DAY, OrdStatus.DONE_FOR_DAY, "done for the day")]
    for exec_type, ord_status, client_exec_type, status, text in ends:
        cl_ord_id, order = acknowledged_order(stack, client)
        stack.venue.execution(order, exec_type=exec_type, ord_status=ord_status, leaves="0", cum="0", avg="0",
                              text=text)
        report = client.wait_report(cl_ord_id, exec_type=client_exec_type)
        assert report is not None and report.text == text and report.leaves_qty == "0"
        assert view_of(stack, cl_ord_id).status == status
    assert stack.gateway.book.live_orders == 0
    assert stack.gateway.book.exposure(aapl(stack))["open_buy_lots"] == 0
    assert stack.gateway.order_state.illegal_transitions == 0


def test_new_order_when_the_venue_answers_with_a_business_reject_ends_rejected_and_releases_it(scripted):
    def refuse(venue, message):
        if message.msg_type == "D":
            venue.send("j", [(45, message[34]), (372, "D"), (379, message[11]), (380, "4"),
                             (58, "application not available")])

    stack = scripted(refuse)
    client = stack.client()
    cl_ord_id = client.new_order("AAPL", BUY, "3", "189.00")
    reject = client.wait_report(cl_ord_id, exec_type=ExecType.REJECTED)
    assert reject is not None
    assert reject.text == "the venue refused the order (BusinessMessageReject): application not available"
    stack.settle()
    assert stack.gateway.book.live_orders == 0
    assert stack.gateway.book.exposure(aapl(stack))["open_buy_lots"] == 0
    assert view_of(stack, cl_ord_id).status == OrdStatus.REJECTED
    accepted = client.new_order("AAPL", BUY, "3", "189.00")            # nothing held back: the next is taken
    assert client.wait_for(lambda: client.reports_for(accepted))


def test_trade_bust_when_sent_again_under_another_exec_id_is_followed_once(scripted):
    stack = scripted()
    client = stack.client()
    cl_ord_id, order = acknowledged_order(stack, client)
    venue_exec_id = fill_of(stack, client, cl_ord_id, order, "4", "4", "6").split("-", 1)[1]
    venue_report(stack, order, "G", "1", exec_id="CORR-9", ref=venue_exec_id, last_qty="3", last_px="189",
                 leaves="7", cum="3", avg="189")
    assert client.wait_report(cl_ord_id, exec_type=ExecType.TRADE_CORRECT)
    venue_report(stack, order, "H", "0", exec_id="BUST-9", ref="CORR-9", last_qty="3", last_px="189",
                 leaves="10", cum="0", avg="0")                   # the bust names the correction
    assert client.wait_report(cl_ord_id, exec_type=ExecType.TRADE_CANCEL)
    venue_report(stack, order, "H", "0", exec_id="BUST-10", ref=venue_exec_id, last_qty="4", last_px="189",
                 leaves="10", cum="0", avg="0")                   # and again under the first ExecID
    assert stack.venue.wait_for(lambda: stack.gateway.engine.counters()["duplicate_fills"] == 1)
    stack.settle()
    assert stack.gateway.positions.net_lots(aapl(stack)) == 0 and view_of(stack, cl_ord_id).cum_lots == 0
    assert len([r for r in client.reports_for(cl_ord_id) if r.exec_type == ExecType.TRADE_CANCEL]) == 1
