"""The state thread: agents that drain the event rings and keep the OMS, positions and figures.

An agent's ``do_work()`` returns how much it did; the runner idles with a backoff when nothing
happens. Nothing here is on the order path: the FIX threads never wait for this thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Callable, Protocol

import structlog

from fixgate._fast.codes import EventKind
from fixgate.core.events import Drainer, EventSink
from fixgate.core.latency import PATH_BUCKETS_NS, LatencyHistogram
from fixgate.core.orders import TERMINAL, OrderEvent, OrderManager, OrderRecord, OrderRegistry
from fixgate.core.positions import PositionTracker, exact_price

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
    """Drain the rings; apply each event to the OMS and each fill to the positions.

    Parameters
    ----------
    sink : EventSink
        The rings.
    registry : OrderRegistry
        Order records by id.
    positions : PositionTracker
        Receives every fill.
    on_event : callable, optional
        Called with each drained event row after it was applied (journal, metrics).
    """

    name = "order-state"

    def __init__(self, sink: EventSink, registry: OrderRegistry, positions: PositionTracker, *,
                 on_event: Callable | None = None, retention_ns: int = 60_000_000_000,
                 retention_orders: int = 100_000) -> None:
        self.drainer = Drainer(sink)
        self.registry = registry
        self.positions = positions
        self.on_event = on_event
        self.oms = OrderManager(registry, on_fill=self._on_fill, on_illegal=self._on_illegal)
        self.latency = LatencyWindow()
        self.internal_latency = LatencyHistogram(PATH_BUCKETS_NS)
        self.events = 0
        # Finished orders stay in memory for `retention_ns` (status requests, late reports), at most
        # `retention_orders` of them; then only their ClOrdIDs are kept. Memory stays bounded.
        self.retention_ns = retention_ns
        self.retention_orders = retention_orders
        self.finished: deque = deque()
        self.forgotten = 0

    def _on_fill(self, record: OrderRecord, quantity: Decimal, price: Fraction) -> None:
        self.positions.apply_fill(record.account, record.symbol, record.side == "1", quantity, price)

    def _on_illegal(self, record: OrderRecord | None, event: OrderEvent, reason: str) -> None:
        log.warning("illegal_transition", order_id=record.gateway_order_id if record else event.order_id,
                    cl_ord_id=record.cl_ord_id if record else None, event_kind=EventKind(event.kind).name,
                    reason=reason)

    def do_work(self) -> int:
        work = 0
        for row in self.drainer.drain():
            kind = int(row["kind"])
            if kind == EventKind.ACCEPTED and row["sent_ns"]:
                latency = int(row["sent_ns"]) - int(row["recv_ns"])
                self.latency.add(latency)
                self.internal_latency.record(latency)
            order_id = int(row["order_id"])
            self.oms.apply(OrderEvent(kind, order_id, int(row["qty_lots"]), float(row["price"])))
            if self.on_event is not None:
                self.on_event(row)
            record = self.registry.by_id.get(order_id)
            if record is not None and record.status in TERMINAL and not record.requests:
                self.finished.append((time.monotonic_ns(), record))
            work += 1
        self.events += work
        self._forget_finished()
        return work

    def _forget_finished(self) -> None:
        horizon = time.monotonic_ns() - self.retention_ns
        while self.finished and (self.finished[0][0] < horizon or len(self.finished) > self.retention_orders):
            _, record = self.finished.popleft()
            if record.status in TERMINAL and self.registry.by_id.get(record.order_id) is record:
                self.registry.forget(record)
                self.forgotten += 1


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

    def __init__(self, book, positions: PositionTracker, *, interval_ns: int = 100_000_000,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.book = book
        self.positions = positions
        self.interval_ns = interval_ns
        self.clock = clock
        self.next_ns = 0
        self.symbols = book.instruments.symbols
        self.snapshot: dict = positions.snapshot()

    def do_work(self) -> int:
        now_ns = self.clock()
        if now_ns < self.next_ns:
            return 0
        self.next_ns = now_ns + self.interval_ns
        for instrument_id, symbol in enumerate(self.symbols):
            price = self.book.quotes.reference_price(instrument_id)
            if price > 0.0:
                self.positions.mark(symbol, exact_price(price))
        self.book.set_equity(float(self.positions.update_peak()))
        self.snapshot = self.positions.snapshot()
        return 1


class StateThread:
    """Run agents on one thread until stopped, sleeping whenever a pass found no work.

    The idle strategy never spins: a Python thread that polls holds the GIL, and every QuickFIX
    callback thread would then wait for it (up to the interpreter's switch interval) on each call
    into QuickFIX. Sleeping `idle_sleep_s` between empty passes costs at most that much staleness in
    the OMS and positions, which the order path never waits for.

    The FIX threads go first: while `busy()` says one is handling a message, a pass waits another
    `idle_sleep_s`, up to `max_defer_s` in a row (so the state thread is never starved, and under
    load it works in larger batches). Otherwise each of the FIX thread's calls into QuickFIX, which
    let go of the GIL, could hand the GIL to a pass and wait for it to end.
    """

    def __init__(self, agents: list[Agent], *, idle_sleep_s: float = 0.0005, name: str = "fixgate-state",
                 on_error: Callable[[str, Exception], None] | None = None,
                 busy: Callable[[], bool] | None = None, max_defer_s: float = 0.002) -> None:
        self.agents = agents
        self.idle_sleep_s = idle_sleep_s
        self.on_error = on_error
        self.busy = busy
        self.max_defers = max(0, int(max_defer_s / idle_sleep_s))
        self.deferred = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.errors = 0
        self.last_beat_ns = 0

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        defers = 0
        while not self._stop.is_set():
            if self.busy is not None and defers < self.max_defers and self.busy():
                defers += 1
                self.deferred += 1
                time.sleep(self.idle_sleep_s)
                continue
            defers = 0
            work = 0
            for agent in self.agents:
                try:
                    work += agent.do_work()
                except Exception as error:
                    self.errors += 1
                    log.exception("agent_failed", agent=agent.name)
                    if self.on_error is not None:
                        try:
                            self.on_error(agent.name, error)
                        except Exception:
                            log.exception("agent_error_handler_failed", agent=agent.name)
            self.last_beat_ns = time.time_ns()
            if not work:
                time.sleep(self.idle_sleep_s)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after a last pass over every agent (so that nothing pushed before is left)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for agent in self.agents:
            try:
                while agent.do_work():
                    pass
            except Exception:
                log.exception("agent_failed", agent=agent.name)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
