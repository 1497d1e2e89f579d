"""The state thread: agents that drain the engine's events and keep the OMS view, positions and figures.

An agent's ``do_work()`` returns how much it did; the runner waits on the engine (woken when events
pile up, or after its idle timeout) whenever a pass found nothing. Nothing here is on the order
path: the engine's threads never wait for this thread, and this thread never holds the GIL while it
waits for the engine.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import structlog

from fixgate.core import events as ev
from fixgate.core.events import EVENT_DTYPE, events_of
from fixgate.core.latency import PATH_BUCKETS_NS, LatencyHistogram
from fixgate.core.recovery import JournalAgent, Replayer

log = structlog.get_logger("fixgate.state")


class Agent(Protocol):
    name: str

    def do_work(self) -> int: ...


@dataclass
class LatencyWindow:
    """The most recent internal latencies (client message received -> venue message handed on)."""

    size: int = 10_000
    samples: deque = field(default_factory=deque)

    def add(self, nanoseconds: int) -> None:
        self.samples.append(nanoseconds)
        if len(self.samples) > self.size:
            self.samples.popleft()

    def percentile(self, fraction: float) -> int | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class OrderStateAgent:
    """Drain the engine's events; apply order events to the OMS view and positions; hand the
    engine's own events (sessions, alarms, venue states) to `on_engine_event`; journal every batch.

    Parameters
    ----------
    drain : callable
        ``drain(buffer) -> count``: moves events from the engine into an EVENT_DTYPE array.
    replayer : Replayer
        The OMS view, positions and daily figures (the same code recovery runs).
    journal : JournalAgent
        Receives each batch after it was applied.
    on_engine_event : callable
        Called with each event that is not an order event.
    observe : callable, optional
        Called with each order event after it was applied (the tracer).
    """

    name = "order-state"

    def __init__(self, drain: Callable[[np.ndarray], int], replayer: Replayer, journal: JournalAgent, *,
                 on_engine_event: Callable[[ev.Event], None] | None = None, batch: int = 4096,
                 observe: Callable[[ev.Event], None] | None = None) -> None:
        self.drain = drain
        self.observe = observe
        self.replayer = replayer
        self.journal = journal
        self.on_engine_event = on_engine_event
        self.buffer = np.zeros(batch, dtype=EVENT_DTYPE)
        self.latency = LatencyWindow()
        self.internal_latency = LatencyHistogram(PATH_BUCKETS_NS)
        self.events = 0
        self.batches = 0
        self.next_roll_check_ns = 0
        self.observe_errors = 0
        self.full = False             # the last drain filled the buffer: more is waiting

    @property
    def illegal_transitions(self) -> int:
        return self.replayer.manager.illegal_transitions

    def do_work(self) -> int:
        """Drain and apply at most one buffer of events (a pass stays short); `full` says more wait."""
        count = self.drain(self.buffer)
        self.full = count == len(self.buffer)
        if not count:
            now_ns = time.time_ns()
            if now_ns >= self.next_roll_check_ns:         # a quiet night still rolls at the day's start
                self.next_roll_check_ns = now_ns + 1_000_000_000
                if self.replayer.daily.roll(now_ns):
                    log.info("trading_day_rolled", day_start=self.replayer.daily.day_start_ns)
            return 0
        records = self.buffer[:count]
        # Journaled as drained, applied in order; a record's bytes are what recovery replays.
        self.journal.add_batch(time.time_ns(), records.tobytes())
        apply = self.replayer.apply
        for event in events_of(records):
            kind = event.kind
            if kind == ev.ACCEPTED and event.sent_ns:
                latency = event.sent_ns - event.recv_ns
                self.latency.add(latency)
                self.internal_latency.record(latency)
            apply(event)
            if kind not in ev.ORDER_KINDS:
                if self.on_engine_event is not None:
                    self.on_engine_event(event)
            elif self.observe is not None:
                try:
                    self.observe(event)
                except Exception:                     # an observer (the tracer) never stops the OMS
                    self.observe_errors += 1
                    if self.observe_errors == 1:
                        log.exception("order_observer_failed")
        self.batches += 1
        self.events += count
        return count


class RejectLog:
    """Log the gateway's refusals without flooding the log: the first reject of each reason for each
    client is an `order_rejected` event; more of the same within `interval_ns` are counted and said in
    one `orders_rejected` event when the next window opens (state thread, from the order events).

    Parameters
    ----------
    sessions : list[str]
        Client session names by index.
    reason_name : callable
        RejectCode number -> its stable name.
    logger : structlog logger, optional
        Where the events go (the state thread's log).
    """

    def __init__(self, sessions: list[str], reason_name: Callable[[int], str], *,
                 interval_ns: int = 10_000_000_000, logger=None) -> None:
        self.log = logger if logger is not None else log
        self.sessions = sessions
        self.reason_name = reason_name
        self.interval_ns = interval_ns
        self.windows: dict[tuple[int, int], list[int]] = {}      # (code, session) -> [start_ns, more]

    def observe(self, event: ev.Event) -> None:
        if event.kind != ev.REJECTED:
            return
        key = (event.code, event.session_id)
        window = self.windows.get(key)
        if window is not None and event.recv_ns - window[0] < self.interval_ns:
            window[1] += 1
            return
        client = self.sessions[event.session_id] if 0 <= event.session_id < len(self.sessions) else None
        if window is not None and window[1]:
            self.log.info("orders_rejected", reason=self.reason_name(event.code), client=client,
                             count=window[1], seconds=round((event.recv_ns - window[0]) / 1e9, 1))
        self.windows[key] = [event.recv_ns, 0]
        self.log.info("order_rejected", reason=self.reason_name(event.code), client=client,
                 cl_ord_id=ev.text(event.text_a), instrument_id=event.instrument_id)


def observers(*callbacks: Callable[[ev.Event], None] | None) -> Callable[[ev.Event], None] | None:
    """One observer that calls each of `callbacks` given (None when none is)."""
    chosen = [callback for callback in callbacks if callback is not None]
    if not chosen:
        return None
    if len(chosen) == 1:
        return chosen[0]

    def observe(event: ev.Event) -> None:
        for callback in chosen:
            callback(event)

    return observe


class MarkingAgent:
    """Mark positions to the quote book's reference prices and give the risk book the equity.

    Parameters
    ----------
    book : fixgate._fast.risk.RiskBook
        Reads reference prices from its quote book; receives the equity for the leverage limit.
    positions : PositionTracker
        Marked.
    interval_ns : int
        How often to mark.
    """

    name = "marking"

    def __init__(self, book, positions, *, interval_ns: int = 100_000_000,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.book = book
        self.positions = positions
        self.interval_ns = interval_ns
        self.clock = clock
        self.next_ns = 0
        self.count = book.instruments.count
        self.snapshot: dict = positions.snapshot()
        # Equity and drawdown once a second, for the status page's chart (the last hour).
        self.history: deque[tuple[int, float, float]] = deque(maxlen=3600)
        self.next_sample_ns = 0

    def do_work(self) -> int:
        now_ns = self.clock()
        if now_ns < self.next_ns:
            return 0
        self.next_ns = now_ns + self.interval_ns
        for instrument_id in range(self.count):
            self.positions.mark_price(instrument_id, self.book.quotes.reference_price(instrument_id))
        self.book.set_equity(float(self.positions.update_peak()))
        self.snapshot = self.positions.snapshot()
        if now_ns >= self.next_sample_ns:
            self.next_sample_ns = now_ns + 1_000_000_000
            self.history.append((now_ns // 1_000_000, float(self.snapshot["equity"]), float(self.snapshot["drawdown"])))
        return 1


class StateThread:
    """Run agents on one thread until stopped; wait on the engine whenever a pass found no work.

    After each pass, `wait(timeout_ms)` blocks without the GIL until the engine has many events (it
    wakes the thread when its ring fills past a threshold, or for an urgent event) or the timeout
    passes, unless `backlog()` says events are piling up; the timeout also paces the agents that
    run on the clock (marking, the risk state). The thread never spins.
    """

    def __init__(self, agents: list[Agent], *, wait: Callable[[int], None], wake: Callable[[], None] | None = None,
                 idle_ms: int = 5, name: str = "fixgate-state",
                 on_error: Callable[[str, Exception], None] | None = None,
                 backlog: Callable[[], bool] | None = None, nice: int = 0) -> None:
        self.agents = agents
        self.nice = nice
        self.wait = wait
        self.backlog = backlog or (lambda: False)
        self.wake = wake
        self.idle_ms = idle_ms
        self.on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.errors = 0
        self._failures: dict[str, int] = {}
        self.last_beat_ns = 0
        self.passes = 0

    def start(self) -> None:
        self._thread.start()

    def _pass(self) -> int:
        work = 0
        for agent in self.agents:
            try:
                work += agent.do_work()
            except Exception as error:
                self.errors += 1
                count = self._failures[agent.name] = self._failures.get(agent.name, 0) + 1
                if count & (count - 1) == 0:            # the 1st, 2nd, 4th, 8th...: said, never a flood
                    log.exception("agent_failed", agent=agent.name, failures=count)
                if self.on_error is not None:
                    try:
                        self.on_error(agent.name, error)
                    except Exception:
                        log.exception("agent_error_handler_failed", agent=agent.name)
        return work

    def _run(self) -> None:
        if self.nice:
            # Behind the engine's threads: on a machine with few cores, a pass of this thread must not
            # delay a message in flight; it takes the CPU when the engine leaves it.
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
            except OSError as error:
                log.warning("state_thread_priority_not_set", nice=self.nice, error=str(error))
        while not self._stop.is_set():
            work = self._pass()
            self.passes += 1
            self.last_beat_ns = time.time_ns()
            # Work in batches: a pass costs the same for one event as for hundreds, and on a machine
            # with few cores every pass is taken from the engine's threads. Go round again at once
            # only while a drain comes back full (events are piling up).
            if not self.backlog():
                self.wait(self.idle_ms)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after a last pass over every agent (so that nothing pushed before is left)."""
        self._stop.set()
        if self.wake is not None:
            self.wake()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for _ in range(1000):
            if not self._pass():
                break

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def beat_age_s(self) -> float:
        return (time.time_ns() - self.last_beat_ns) / 1e9 if self.last_beat_ns else 0.0
