"""Market maker: deterministic random walk, a two-sided ladder, shocks, stale and crossed-quote faults."""

import random
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixgate.simulator.market_maker import MarketMaker
from fixgate.simulator.matching import (
    ExecType,
    ExecutionReport,
    MatchingEngine,
    OrdStatus,
    Side,
    SimInstrument,
    Trade,
)

D = Decimal
TICK = D("0.01")
SECOND = 1_000_000_000


def make_market(seed=7, **options):
    engine = MatchingEngine([SimInstrument("XYZ", TICK, D(1), D(100)), SimInstrument("ABC", D("0.5"), D("0.1"), D(20))])
    return engine, MarketMaker(engine, ["XYZ", "ABC"], seed=seed, **options)


def trade_reports(events):
    return [event for event in events if isinstance(event, ExecutionReport) and event.exec_type is ExecType.TRADE]


def maker_traded_with_itself(events):
    reports = trade_reports(events)
    return any(aggressor.owner == resting.owner == "MM" for aggressor, resting in zip(reports[0::2], reports[1::2]))


def scripted_session(seed):
    """Return every event of a fixed script of maker steps, faults and client orders."""
    engine, maker = make_market(seed, volatility_ticks=2.0)
    client = random.Random(99)
    events = []
    for number in range(60):
        now_ns = number * SECOND
        events += maker.step(now_ns)
        side = client.choice(("BUY", "SELL"))
        price = maker.mid("XYZ") + client.randint(-3, 3) * TICK
        events += engine.new_order("FIXGATE", f"c{number}", "XYZ", side, "LIMIT", D(client.randint(1, 15)), price,
                                   client.choice(("DAY", "IOC")), now_ns)
        if number == 20:
            events += maker.shock("XYZ", -0.2, now_ns)
        if number == 30:
            maker.pause("ABC")
        if number == 40:
            maker.resume("ABC")
            maker.quotes_crossed("XYZ", True)
        if number == 50:
            maker.quotes_crossed("XYZ", False)
    return events, maker.mid("XYZ"), maker.mid("ABC")


def test_maker_when_run_twice_with_one_seed_produces_identical_events():
    first, second = scripted_session(seed=11), scripted_session(seed=11)
    assert first == second
    assert sum(isinstance(event, Trade) for event in first[0]) > 5


def test_maker_when_seeds_differ_walks_differently():
    assert scripted_session(seed=11)[1:] != scripted_session(seed=12)[1:]


def test_step_when_repeated_keeps_a_two_sided_ladder_around_the_mid():
    engine, maker = make_market(volatility_ticks=1.5)
    mids = set()
    for number in range(200):
        maker.step(number * SECOND)
        mid = maker.mid("XYZ")
        mids.add(mid)
        bids, asks = engine.depth("XYZ")
        assert bids == [(mid - TICK, D(10)), (mid - 2 * TICK, D(10)), (mid - 3 * TICK, D(10))]
        assert asks == [(mid + TICK, D(10)), (mid + 2 * TICK, D(10)), (mid + 3 * TICK, D(10))]
        assert len(engine.open_orders("MM")) == 12
    assert len(mids) > 10
    assert engine.last_trade("XYZ") is None


def test_step_when_spread_is_odd_rounds_the_bid_down_and_keeps_the_spread():
    engine, maker = make_market(spread_ticks=3, levels=1, volatility_ticks=0)
    maker.step(0)
    assert engine.top_of_book("XYZ") == (D("99.98"), D(10), D("100.01"), D(10))
    assert engine.top_of_book("ABC") == (D("19.0"), D("1.0"), D("20.5"), D("1.0"))


def test_step_when_mid_has_not_moved_sends_nothing():
    engine, maker = make_market(volatility_ticks=0)
    assert len(maker.step(0)) > 0
    assert maker.step(SECOND) == []


def test_step_when_a_quote_was_partly_filled_tops_it_up():
    engine, maker = make_market(volatility_ticks=0)
    maker.step(0)
    engine.new_order("FIXGATE", "c1", "XYZ", "BUY", "LIMIT", D(4), D("100.01"), "IOC", 1)
    assert engine.top_of_book("XYZ")[2:] == (D("100.01"), D(6))
    maker.step(2)
    assert engine.top_of_book("XYZ")[2:] == (D("100.01"), D(10))


def test_maker_when_volatility_is_large_never_takes_the_mid_below_one_tick():
    engine = MatchingEngine([SimInstrument("PENNY", TICK, D(1), D("0.03"))])
    maker = MarketMaker(engine, ["PENNY"], seed=3, volatility_ticks=5.0)
    lowest = D(1)
    for number in range(300):
        maker.step(number)
        lowest = min(lowest, maker.mid("PENNY"))
        bids, asks = engine.depth("PENNY")
        assert all(price > 0 for price, _ in bids + asks)
    assert lowest == TICK


def test_shock_when_negative_moves_the_mid_and_the_quotes_at_once():
    engine, maker = make_market(volatility_ticks=0)
    maker.step(0)
    events = maker.shock("XYZ", -0.2, SECOND)
    assert maker.mid("XYZ") == D("80.00")
    assert engine.top_of_book("XYZ") == (D("79.99"), D(10), D("80.01"), D(10))
    assert events[-1].symbol == "XYZ" and not any(isinstance(event, Trade) for event in events)
    maker.shock("XYZ", D("0.1"), 2 * SECOND)
    assert maker.mid("XYZ") == D("88.00")


def test_shock_when_quotes_cross_a_resting_client_order_trades_at_its_price():
    engine, maker = make_market(volatility_ticks=0)
    maker.step(0)
    engine.new_order("FIXGATE", "c1", "XYZ", "BUY", "LIMIT", D(5), D("99.00"), "DAY", 1)
    events = maker.shock("XYZ", -0.2, 2)
    client = [report for report in trade_reports(events) if report.owner == "FIXGATE"]
    assert [(report.last_qty, report.last_px, report.ord_status) for report in client] == [
        (D(5), D("99.00"), OrdStatus.FILLED)]
    assert [(trade.price, trade.aggressor_side) for trade in events if isinstance(trade, Trade)] == [
        (D("99.00"), Side.SELL)]
    assert engine.top_of_book("XYZ") == (D("79.99"), D(10), D("80.01"), D(5))


def test_pause_when_steps_continue_freezes_the_quotes_until_resume():
    engine, maker = make_market(volatility_ticks=3.0)
    maker.step(0)
    frozen = engine.depth("XYZ")
    maker.pause("XYZ")
    for number in range(1, 20):
        assert all(getattr(event, "symbol", "ABC") == "ABC" for event in maker.step(number))
    assert engine.depth("XYZ") == frozen
    assert maker.mid("XYZ") != frozen[0][0][0] + TICK
    maker.resume("XYZ")
    maker.step(20)
    assert engine.top_of_book("XYZ")[0] == maker.mid("XYZ") - TICK


def test_quotes_crossed_when_on_indicates_bid_above_ask_without_crossing_the_book():
    engine, maker = make_market(volatility_ticks=0)
    maker.step(0)
    maker.quotes_crossed("XYZ", True)
    events = maker.step(1)
    bid, ask = maker.indicated_quote("XYZ")
    assert bid >= ask and (bid, ask) == (D("100.01"), D("99.99"))
    assert engine.top_of_book("XYZ") == (D("100.01"), D(10), None, None)
    assert not any(isinstance(event, Trade) for event in events)
    maker.quotes_crossed("XYZ", False)
    events = maker.step(2)
    assert not maker_traded_with_itself(events)
    assert engine.top_of_book("XYZ") == (D("99.99"), D(10), D("100.01"), D(10))
    assert maker.indicated_quote("XYZ") == (D("99.99"), D("100.01"))


def test_quotes_crossed_when_a_client_ask_rests_below_the_crossed_bid_lifts_it():
    engine, maker = make_market(volatility_ticks=0)
    engine.new_order("FIXGATE", "s1", "XYZ", "SELL", "LIMIT", D(3), D("100.01"), "DAY", 0)
    maker.quotes_crossed("XYZ", True)
    events = maker.step(1)
    assert [(trade.price, trade.qty, trade.aggressor_side) for trade in events if isinstance(trade, Trade)] == [
        (D("100.01"), D(3), Side.BUY)]
    best_bid, _, best_ask, _ = engine.top_of_book("XYZ")
    assert best_ask is None and best_bid == D("100.01")


@pytest.mark.parametrize("options, words", [
    ({"levels": 0}, "levels"),
    ({"quote_qty_lots": 0}, "quote_qty_lots"),
    ({"spread_ticks": 0}, "spread_ticks"),
    ({"volatility_ticks": -1.0}, "volatility_ticks"),
])
def test_maker_when_sizes_out_of_range_raises_value_error(options, words):
    engine = MatchingEngine([SimInstrument("XYZ", TICK, D(1), D(100))])
    with pytest.raises(ValueError, match=words):
        MarketMaker(engine, ["XYZ"], seed=1, **options)


def test_maker_when_symbol_unknown_raises_value_error():
    engine = MatchingEngine([SimInstrument("XYZ", TICK, D(1), D(100))])
    with pytest.raises(ValueError, match="unknown symbol"):
        MarketMaker(engine, ["NOPE"], seed=1)
    maker = MarketMaker(engine, ["XYZ"], seed=1)
    with pytest.raises(ValueError, match="does not quote"):
        maker.shock("NOPE", 0.1, 0)


actions = st.one_of(
    st.tuples(st.just("step")),
    st.tuples(st.just("shock"), st.integers(-30, 30).map(lambda percent: D(percent) / 100)),
    st.tuples(st.just("crossed"), st.booleans()),
    st.tuples(st.just("pause"), st.booleans()),
    st.tuples(st.just("client"), st.sampled_from(["BUY", "SELL"]), st.integers(-6, 6), st.integers(1, 25),
              st.sampled_from(["DAY", "GTC", "IOC", "FOK"])),
    st.tuples(st.just("cancel"), st.integers(0, 40), st.sampled_from(["BUY", "SELL"])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 1_000), st.lists(actions, max_size=40))
def test_maker_when_mixed_with_clients_and_faults_never_crosses_the_book_or_trades_with_itself(seed, script):
    engine = MatchingEngine([SimInstrument("XYZ", TICK, D(1), D(100))])
    maker = MarketMaker(engine, ["XYZ"], seed=seed, volatility_ticks=2.0)
    bought = sold = D(0)
    for now_ns, action in enumerate(script):
        if action[0] == "step":
            events = maker.step(now_ns)
        elif action[0] == "shock":
            events = maker.shock("XYZ", action[1], now_ns)
        elif action[0] == "crossed":
            maker.quotes_crossed("XYZ", action[1])
            events = []
        elif action[0] == "pause":
            (maker.pause if action[1] else maker.resume)("XYZ")
            events = []
        elif action[0] == "client":
            _, side, offset, quantity, tif = action
            events = engine.new_order("FIXGATE", f"c{now_ns}", "XYZ", side, "LIMIT", D(quantity),
                                      maker.mid("XYZ") + offset * TICK, tif, now_ns)
        else:
            _, number, side = action
            events = engine.cancel("FIXGATE", f"x{now_ns}", f"c{number}", "XYZ", side, now_ns)
        assert not maker_traded_with_itself(events)
        for report in trade_reports(events):
            if report.side is Side.BUY:
                bought += report.last_qty
            else:
                sold += report.last_qty
        assert bought == sold
        best_bid, _, best_ask, _ = engine.top_of_book("XYZ")
        assert best_bid is None or best_ask is None or best_bid < best_ask
        assert len(engine.open_orders("MM")) <= 6
        assert all(report.leaves_qty > 0 for report in engine.open_orders("MM"))
