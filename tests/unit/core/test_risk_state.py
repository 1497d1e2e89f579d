"""The graduated risk state: thresholds, hysteresis, sticky states, and who may move them."""

import pytest

from fixgate.core.risk_state import (
    AUTOMATIC,
    BREAKER,
    KILLED,
    NORMAL,
    WARNING,
    CommandRefused,
    RiskLimits,
    RiskStateMachine,
)
from fixgate.core.safety import RiskStateStore, StateFileError, restore

SECOND = 1_000_000_000


def machine(**limits):
    return RiskStateMachine(RiskLimits(**{"breaker_cooldown_ns": 60 * SECOND, "kill_order_rate": 1000.0, **limits}))


def states(transitions):
    return [transition.after for transition in transitions]


def test_drawdown_when_it_crosses_warning_and_recovers_below_hysteresis_moves_back():
    risk = machine()
    assert states(risk.evaluate(1, drawdown=0.05)) == []                     # at the threshold: not above
    assert states(risk.evaluate(2, drawdown=0.051)) == [WARNING]
    assert states(risk.evaluate(3, drawdown=0.031)) == []                    # inside the hysteresis band
    assert states(risk.evaluate(4, drawdown=0.029)) == [NORMAL]


def test_breaker_when_drawdown_or_throttle_breach_trips_and_stays_until_reset():
    risk = machine()
    assert states(risk.evaluate(1, drawdown=0.11)) == [BREAKER]
    assert states(risk.evaluate(2, drawdown=0.0)) == []                      # sticky
    with pytest.raises(CommandRefused, match="cooldown"):
        risk.reset_breaker("ops", 2, drawdown=0.0, throttle_breach=False)
    later = 1 + 60 * SECOND
    with pytest.raises(CommandRefused, match="still above"):
        risk.reset_breaker("ops", later, drawdown=0.2, throttle_breach=False)
    with pytest.raises(CommandRefused, match="throttle-breach flag"):
        risk.reset_breaker("ops", later, drawdown=0.0, throttle_breach=True)
    assert risk.reset_breaker("ops", later, drawdown=0.06, throttle_breach=False).after == WARNING
    assert states(risk.evaluate(later + 1, drawdown=0.0, throttle_breach=True)) == [BREAKER]
    assert risk.history[-1].reason == "repeated throttle breaches"


def test_kill_switch_when_a_rule_fires_trips_and_only_resume_releases_it():
    risk = machine()
    assert states(risk.evaluate(1, drawdown=0.0, order_rate=1000.5)) == [KILLED]
    assert risk.history[-1].actor == AUTOMATIC and "order rate" in risk.reason
    assert risk.evaluate(2, drawdown=0.0) == []                              # no automatic way out
    with pytest.raises(CommandRefused, match="already active"):
        risk.kill("ops", "again", 3)
    assert risk.resume("ops", 4, drawdown=0.07).after == WARNING
    with pytest.raises(CommandRefused, match="not active"):
        risk.resume("ops", 5, drawdown=0.0)


def test_kill_switch_when_daily_order_cap_reached_trips():
    assert states(machine().evaluate(1, drawdown=0.0, daily_orders_capped=True)) == [KILLED]


def test_kill_switch_when_breakers_trip_repeatedly_in_a_day_trips():
    risk = machine(kill_after_breaker_trips=2, breaker_cooldown_ns=0)
    assert states(risk.evaluate(1, drawdown=0.2)) == [BREAKER]
    risk.reset_breaker("ops", 2, drawdown=0.0, throttle_breach=False)
    assert states(risk.evaluate(3, drawdown=0.2)) == [BREAKER, KILLED]
    assert risk.reason == "2 circuit-breaker trips today"


def test_resume_when_drawdown_still_beyond_breaker_lands_in_breaker():
    risk = machine()
    risk.kill("ops", "test", 1)
    assert risk.resume("ops", 2, drawdown=0.5).after == BREAKER


def test_fatal_error_when_reported_trips_the_kill_switch_once():
    risk = machine()
    assert risk.fatal("journal unwritable", 1).after == KILLED
    assert risk.fatal("again", 2) is None


def test_store_when_killed_restores_a_killed_machine_after_restart(tmp_path):
    store = RiskStateStore(tmp_path / "risk_state.json")
    risk = machine()
    risk.kill("ops", "desk 3 runaway", 10)
    store.save(risk)
    fresh = machine()
    restore(fresh, store, 99)
    assert fresh.state == KILLED and fresh.reason == "restored: desk 3 runaway" and fresh.since_ns == 10


def test_store_when_file_unreadable_refuses_instead_of_starting_fresh(tmp_path):
    path = tmp_path / "risk_state.json"
    path.write_text("{not json")
    with pytest.raises(StateFileError, match="unreadable risk state"):
        RiskStateStore(path).load()
    path.write_text('{"state": "PANIC", "since_ns": 1}')
    with pytest.raises(StateFileError):
        RiskStateStore(path).load()


def test_state_thread_when_an_agent_raises_reports_it_and_keeps_running():
    import time

    from fixgate.core.agents import StateThread

    failures = []

    class Broken:
        name = "broken"
        calls = 0

        def do_work(self):
            Broken.calls += 1
            raise RuntimeError("books out of balance")

    thread = StateThread([Broken()], wait=lambda timeout_ms: time.sleep(timeout_ms / 1000),
                         on_error=lambda agent, error: failures.append((agent, str(error))))
    thread.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Broken.calls < 3:
        time.sleep(0.01)
    thread.stop()
    assert Broken.calls >= 3 and thread.errors >= 3
    assert failures[0] == ("broken", "books out of balance")


DAY = 86_400 * SECOND
TODAY = 1_796_083_200 * SECOND


class Book:
    """What the risk agent reads of the risk book."""

    def __init__(self):
        self.risk_state = 0
        self.live_orders = 0
        self.daily_orders = 0
        self.max_daily_orders = 1 << 62
        self.throttle = type("Throttle", (), {"breach_flag": 0, "clear_breach_flag": lambda self: None})()

    def set_risk_state(self, state):
        self.risk_state = state


class Positions:
    def __init__(self):
        self.days_started = 0

    def drawdown(self):
        return 0.0

    def start_day(self):
        self.days_started += 1


class Orders:
    def cancel_all(self, session=None, reason="", text=None):
        return 0

    def orders_received(self):
        return 0

    def close(self, reason):
        pass


class Venues:
    def log_out(self, reason):
        pass

    def log_on(self):
        pass


def agent(tmp_path, risk, clock):
    from fixgate.core.safety import AuditLog, RiskAgent

    positions = Positions()
    positions.engine_days = 0

    def forget_day():
        positions.engine_days += 1

    return RiskAgent(risk, Book(), positions, Orders(), Venues(), RiskStateStore(tmp_path / "risk_state.json"),
                     AuditLog(tmp_path / "audit.log"), clock=clock, day_start_ns=TODAY,
                     on_day_roll=forget_day), positions


def test_trading_day_when_it_rolls_counts_breaker_trips_and_drawdown_afresh_and_keeps_a_kill(tmp_path):
    now = [TODAY + DAY // 2]
    risk = machine()
    risk.breaker_trips_today = 2
    risk.kill("ops", "drill", now[0])
    running, positions = agent(tmp_path, risk, lambda: now[0])
    running.do_work()
    assert risk.breaker_trips_today == 2 and positions.days_started == 0
    now[0] = TODAY + DAY + 5 * SECOND                                   # just past the next day's start
    running.do_work()
    assert risk.breaker_trips_today == 0 and positions.days_started == 1 and running.day_rolls == 1
    assert positions.engine_days == 1                                   # the engine forgets yesterday's ids
    assert risk.state == KILLED                                         # a kill never clears by itself
    assert running.describe()["trading_day"] == "2026-12-02T00:00:00.000Z"
    rolled = [record for record in running.audit.records() if record["event"] == "trading_day_rolled"]
    assert rolled and rolled[0]["breaker_trips_yesterday"] == 2 and rolled[0]["risk_state"] == "KILL_SWITCH"
    running.do_work()
    assert running.day_rolls == 1                                       # once a day


def test_trading_day_when_a_restart_crosses_it_forgets_yesterdays_breaker_trips(tmp_path):
    store = RiskStateStore(tmp_path / "risk_state.json")
    risk = machine()
    risk.breaker_trips_today = 2
    store.save(risk, TODAY)
    same_day = machine()
    restore(same_day, store, TODAY + 10, day_start_ns=TODAY)
    assert same_day.breaker_trips_today == 2
    next_day = machine()
    restore(next_day, store, TODAY + DAY + 10, day_start_ns=TODAY + DAY)
    assert next_day.breaker_trips_today == 0
