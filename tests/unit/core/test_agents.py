"""The state thread: drain the engine's events, journal and apply them, mark, and wait when idle."""

import threading
import time
from decimal import Decimal

import numpy as np

from fixgate import config as configuration
from fixgate.core import events as ev
from fixgate.core.agents import MarkingAgent, OrderStateAgent, StateThread
from fixgate.core.events import EVENT_DTYPE, Event, make_event
from fixgate.core.journal import SqliteJournal
from fixgate.core.messages import OrdStatus as S
from fixgate.core.orders import Orders
from fixgate.core.positions import PositionTracker
from fixgate.core.recovery import DailyFigures, JournalAgent, Replayer, replay, snapshot_state
from fixgate.gateway import build_book, instruments_of

CONFIG = configuration.load()
INSTRUMENTS = instruments_of(CONFIG)
SESSIONS = ["client1"]
VENUES = ["simvenue"]
BTC, ETH, AAPL = 0, 1, 2
NOON = 1_796_126_400 * 10**9


class Engine:
    """The engine's drain side: prepared rows handed out in order, up to the buffer's length."""

    def __init__(self, events=()) -> None:
        self.rows = np.array([tuple(event) for event in events], dtype=EVENT_DTYPE)
        self.calls = 0

    def push(self, *events) -> None:
        self.rows = np.concatenate([self.rows, np.array([tuple(event) for event in events], dtype=EVENT_DTYPE)])

    def drain(self, buffer: np.ndarray) -> int:
        self.calls += 1
        count = min(len(self.rows), len(buffer))
        buffer[:count] = self.rows[:count]
        self.rows = self.rows[count:]
        return count


def order_events():
    return [
        make_event(ev.ACCEPTED, seq=1, recv_ns=NOON, sent_ns=NOON + 12_000, order_id=1, instrument_id=AAPL,
                   session_id=0, venue_id=0, side=1, ord_type=2, qty_lots=10, price_ticks=19_000, text_a=b"c1",
                   text_c=b"T1-1"),
        make_event(ev.SESSION_LOGON, seq=2, venue_id=0, flags=ev.FLAG_VENUE, text_a=b"simvenue"),
        make_event(ev.ACKED, seq=3, order_id=1, text_c=b"SIM-1"),
        make_event(ev.FILLED, seq=4, order_id=1, instrument_id=AAPL, session_id=0, side=1, qty_lots=4,
                   price_ticks=19_010, aux=4 * 19_010, text_a=b"E1"),
        make_event(ev.ALARM, seq=5, code=ev.ALARM_ERROR_AFTER_SEND, text_a=b"order T1-9 went to the venue"),
    ]


class State:
    """The OMS view, positions and journal agent the state thread runs."""

    def __init__(self, journal, *, snapshot_every=50_000) -> None:
        self.orders = Orders(INSTRUMENTS, SESSIONS, VENUES)
        self.positions = PositionTracker(CONFIG.risk.starting_equity, INSTRUMENTS)
        self.replayer = Replayer(self.orders, self.positions, DailyFigures(0))
        self.journal = JournalAgent(journal, self.snapshot, snapshot_every=snapshot_every, commit_interval_s=0.0)
        self.engine_events: list[Event] = []

    def snapshot(self):
        return snapshot_state(self.orders, self.positions, self.replayer.daily, self.replayer.next_order_id,
                              self.orders.next_reject_id, self.replayer.last_seq)

    def agent(self, engine, batch=4096) -> OrderStateAgent:
        return OrderStateAgent(engine.drain, self.replayer, self.journal, on_engine_event=self.engine_events.append,
                               batch=batch)


# -- ORDER STATE ------------------------------------------------------------------------------------

def test_order_state_agent_when_events_are_drained_applies_order_events_and_hands_on_the_rest(tmp_path):
    state = State(SqliteJournal(tmp_path / "journal.sqlite3"))
    agent = state.agent(Engine(order_events()))
    assert agent.do_work() == 5
    view = state.orders.by_id[1]
    assert view.status == S.PARTIALLY_FILLED and view.venue_order_id == "SIM-1" and view.avg_px == "190.1"
    assert state.positions.net_lots(AAPL) == 4
    assert [event.kind for event in state.engine_events] == [ev.SESSION_LOGON, ev.ALARM]
    assert ev.alarm_text(state.engine_events[1]) == "order T1-9 went to the venue"
    assert state.replayer.last_seq == 5 and agent.events == 5 and agent.illegal_transitions == 0
    assert agent.latency.percentile(0.5) == 12_000
    assert agent.do_work() == 0


def test_order_state_agent_when_more_events_wait_than_the_buffer_holds_drains_them_all_in_batches(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    state = State(journal)
    engine = Engine(order_events())
    agent = state.agent(engine, batch=2)
    counts = []
    while True:                                   # one buffer a pass, while `full` says more wait
        counts.append(agent.do_work())
        if not agent.full:
            break
    assert counts == [2, 2, 1] and agent.batches == 3 and engine.calls == 3
    assert state.journal.pending_events == 5
    state.journal.do_work(now=True)
    assert [batch.count for batch in journal.batches()] == [5]          # one transaction, one row
    assert [event for batch in journal.batches() for event in batch.events()] == order_events()


def test_order_state_agent_when_the_buffer_fills_exactly_asks_once_more(tmp_path):
    state = State(SqliteJournal(tmp_path / "journal.sqlite3"))
    engine = Engine(order_events()[:4])
    agent = state.agent(engine, batch=2)
    assert [agent.do_work(), agent.full, agent.do_work(), agent.full] == [2, True, 2, True]
    assert agent.do_work() == 0 and not agent.full and engine.calls == 3 and agent.batches == 2


def test_order_state_agent_when_an_event_is_illegal_counts_it_and_still_journals_it(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    state = State(journal)
    agent = state.agent(Engine([make_event(ev.ACKED, seq=1, order_id=42, text_c=b"SIM-42")]))
    assert agent.do_work() == 1 and agent.illegal_transitions == 1
    state.journal.do_work()
    assert journal.last_seq() == 1


def test_state_thread_when_agents_journal_and_snapshot_a_restart_recovers_the_same_state(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    state = State(journal, snapshot_every=3)
    engine = Engine()
    agent = state.agent(engine, batch=2)
    for event in order_events():
        engine.push(event)
        agent.do_work()
        state.journal.do_work()
    assert journal.latest_snapshot()[0] == 3                           # after the third event's batch
    recovered = replay(journal, None, INSTRUMENTS, SESSIONS, VENUES, CONFIG.risk.starting_equity)
    assert recovered.batches == 2                                      # the tail after the snapshot
    assert [view.state() for view in recovered.live_views()] == [state.orders.by_id[1].state()]
    assert recovered.positions.state() == state.positions.state() and recovered.last_event_seq == 5


# -- MARKING ----------------------------------------------------------------------------------------

class Clock:
    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


def test_marking_agent_when_due_marks_to_the_books_reference_prices_and_gives_it_the_equity():
    book = build_book(CONFIG)
    positions = PositionTracker(CONFIG.risk.starting_equity, INSTRUMENTS)
    positions.apply_fill("client1", AAPL, True, 10, 18_000)            # 10 at 180.00, referenced at 190.00
    clock = Clock(NOON)
    agent = MarkingAgent(book, positions, interval_ns=100_000_000, clock=clock)
    assert agent.do_work() == 1
    assert positions.marks == {BTC: 120_000, ETH: 60_000, AAPL: 19_000}
    assert positions.equity() == Decimal("1000100") and book.equity == 1_000_100.0
    assert agent.snapshot["equity"] == "1000100" and agent.snapshot["positions"][0]["mark"] == "190"
    clock.now_ns += 99_999_999
    assert agent.do_work() == 0                                        # not due yet
    assert book.quotes.on_quote(AAPL, 199.9, 200.1, clock.now_ns, clock.now_ns) == 0
    clock.now_ns += 1
    assert agent.do_work() == 1
    assert positions.marks[AAPL] == 20_000 and book.equity == 1_000_200.0
    assert positions.peak_equity == Decimal("1000200")


def test_marking_agent_when_the_mark_falls_keeps_the_peak_for_the_drawdown():
    book = build_book(CONFIG)
    positions = PositionTracker(CONFIG.risk.starting_equity, INSTRUMENTS)
    positions.apply_fill("client1", AAPL, True, 1_000, 19_000)
    clock = Clock(NOON)
    agent = MarkingAgent(book, positions, interval_ns=1, clock=clock)
    agent.do_work()
    assert book.quotes.on_quote(AAPL, 180.4, 180.6, clock.now_ns, clock.now_ns) == 0     # 190 -> 180.5
    clock.now_ns += 1
    agent.do_work()
    assert book.equity == 990_500.0 and positions.peak_equity == Decimal("1000000")
    assert agent.snapshot["drawdown"] == "0.009500"


# -- THE THREAD -------------------------------------------------------------------------------------

class Agent:
    """An agent with `work` items waiting; each pass takes up to `per_pass` of them."""

    name = "counting"

    def __init__(self, work: int = 0, per_pass: int = 1) -> None:
        self.work = work
        self.per_pass = per_pass
        self.calls = 0
        self._lock = threading.Lock()

    def add(self, work: int) -> None:
        with self._lock:
            self.work += work

    def do_work(self) -> int:
        with self._lock:
            self.calls += 1
            done = min(self.work, self.per_pass)
            self.work -= done
            return done


class Waits:
    """The engine's wait: blocks up to the timeout unless woken; records each call."""

    def __init__(self, agent: Agent | None = None) -> None:
        self.timeouts: list[int] = []
        self.calls_before: list[int] = []
        self.agent = agent
        self._woken = threading.Event()

    def wait(self, timeout_ms: int) -> None:
        self.timeouts.append(timeout_ms)
        if self.agent is not None:
            self.calls_before.append(self.agent.calls)
        self._woken.wait(timeout_ms / 1000)
        self._woken.clear()

    def wake(self) -> None:
        self._woken.set()


def wait_until(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.001)
    return condition()


def test_state_thread_when_nothing_piles_up_waits_after_every_pass():
    agent = Agent(work=3)
    waits = Waits(agent)
    thread = StateThread([agent], wait=waits.wait, wake=waits.wake, idle_ms=7)
    thread.start()
    assert wait_until(lambda: len(waits.timeouts) >= 3)
    thread.stop()
    assert set(waits.timeouts) == {7}
    assert waits.calls_before[0] == 1                          # batches: a wait after each pass, busy or not
    assert all(later - earlier == 1 for earlier, later in zip(waits.calls_before, waits.calls_before[1:]))


def test_state_thread_when_events_pile_up_goes_round_again_without_waiting():
    agent = Agent(work=3)
    waits = Waits(agent)
    thread = StateThread([agent], wait=waits.wait, wake=waits.wake, idle_ms=7, backlog=lambda: agent.calls < 4)
    thread.start()
    assert wait_until(lambda: len(waits.timeouts) >= 1)
    thread.stop()
    assert waits.calls_before[0] == 4                          # three passes back to back while `backlog` held


def test_state_thread_when_stopped_wakes_the_wait_and_ends_promptly():
    agent = Agent()
    waits = Waits(agent)
    thread = StateThread([agent], wait=waits.wait, wake=waits.wake, idle_ms=60_000)
    thread.start()
    assert wait_until(lambda: len(waits.timeouts) == 1)
    started = time.monotonic()
    thread.stop()
    assert time.monotonic() - started < 2.0 and not thread.alive
    assert thread.passes >= 1 and thread.beat_age_s() >= 0.0


def test_state_thread_when_stopped_makes_last_passes_until_nothing_is_left():
    agent = Agent(work=5, per_pass=2)
    waits = Waits()
    thread = StateThread([agent], wait=waits.wait)                     # never started: stop() alone drains
    thread.stop()
    assert agent.work == 0 and agent.calls == 4                         # 2 + 2 + 1, then a pass with nothing
    assert waits.timeouts == []


def test_state_thread_when_work_arrives_while_waiting_is_woken_and_does_it():
    agent = Agent()
    waits = Waits(agent)
    thread = StateThread([agent], wait=waits.wait, wake=waits.wake, idle_ms=60_000)
    thread.start()
    assert wait_until(lambda: len(waits.timeouts) == 1)
    agent.add(1)
    waits.wake()
    assert wait_until(lambda: agent.work == 0)
    thread.stop()


def test_state_thread_when_an_agent_raises_reports_it_and_keeps_running_the_others():
    failures = []

    class Broken:
        name = "broken"

        def do_work(self):
            raise RuntimeError("books out of balance")

    agent = Agent(work=2)
    waits = Waits()
    thread = StateThread([Broken(), agent], wait=waits.wait, wake=waits.wake, idle_ms=1,
                         on_error=lambda name, error: failures.append((name, str(error))))
    thread.start()
    assert wait_until(lambda: thread.errors >= 3)
    thread.stop()
    assert failures[0] == ("broken", "books out of balance") and agent.work == 0


def test_state_thread_when_the_error_handler_raises_still_keeps_running():
    class Broken:
        name = "broken"

        def do_work(self):
            raise ValueError("bad")

    def handler(name, error):
        raise RuntimeError("handler broke too")

    waits = Waits()
    thread = StateThread([Broken()], wait=waits.wait, wake=waits.wake, idle_ms=1, on_error=handler)
    thread.start()
    assert wait_until(lambda: thread.errors >= 2)
    thread.stop()
    assert not thread.alive
