"""Order events from the FIX threads to the state thread: one SPSC ring per producing thread.

Each thread that produces events gets its own ring on first use, keyed by the OS thread's id (not a
``threading.local``: QuickFIX's threads enter Python through the binding with a fresh thread state
on every callback, which a thread-local would see as a new thread each time). Every ring has
exactly one producer, whichever QuickFIX or admin thread it is. Rings carry a role: `REQUESTS`
for what a client (or an operator) asked and the gateway decided, `VENUE` for what a venue
reported. A request event is always pushed before the message that it causes is sent, so the state
thread, which drains the venue rings first and the request rings second and then applies requests
before venue reports, sees every order's events in causal order.
"""

from __future__ import annotations

import threading
from typing import Iterator

import numpy as np

from fixgate._fast.ring import EVENT_DTYPE, SpscRing

REQUESTS = "requests"
VENUE = "venue"
ROLES = (REQUESTS, VENUE)


class EventSink:
    """Thread-local SPSC rings, and the list of all of them for the state thread to drain.

    Parameters
    ----------
    capacity : int
        Slots per ring (a power of two).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._by_thread: dict[tuple[int, str], SpscRing] = {}
        self._lock = threading.Lock()
        self._rings: dict[str, list[tuple[str, SpscRing]]] = {role: [] for role in ROLES}
        self.refused = 0

    def ring(self, role: str) -> SpscRing:
        """Return this thread's ring for `role`, creating it on first use."""
        key = (threading.get_ident(), role)
        ring = self._by_thread.get(key)
        if ring is None:
            ring = SpscRing(self.capacity)
            with self._lock:
                self._by_thread[key] = ring
                self._rings[role].append((f"thread-{key[0]}", ring))
        return ring

    def push(self, role: str, kind: int, order_id: int, *, instrument_id: int = 0, session_id: int = 0,
             side: int = 0, status: int = 0, reject_code: int = 0, qty_lots: int = 0, cum_lots: int = 0,
             leaves_lots: int = 0, price: float = 0.0, recv_ns: int = 0, sent_ns: int = 0) -> bool:
        """Push one event on this thread's ring for `role`; return False when the ring is full."""
        ring = self._by_thread.get((threading.get_ident(), role)) or self.ring(role)
        if ring.try_push(kind, order_id, instrument_id=instrument_id, session_id=session_id, side=side,
                         status=status, reject_code=reject_code, qty_lots=qty_lots, cum_lots=cum_lots,
                         leaves_lots=leaves_lots, price=price, recv_ns=recv_ns, sent_ns=sent_ns):
            return True
        self.refused += 1
        return False

    def has_room(self, role: str, slots: int) -> bool:
        """Return True when this thread's ring for `role` has at least `slots` free slots."""
        return self.ring(role).size() + slots <= self.capacity

    def rings(self, role: str) -> list[tuple[str, SpscRing]]:
        """Return (thread name, ring) for every ring of `role`."""
        with self._lock:
            return list(self._rings[role])

    def occupancy(self) -> int:
        """Return the events waiting in all rings (a snapshot)."""
        return sum(ring.size() for role in ROLES for _, ring in self.rings(role))

    def full_count(self) -> int:
        """Return how many pushes every ring refused, summed."""
        return sum(ring.full_count for role in ROLES for _, ring in self.rings(role))


class Drainer:
    """The state thread's side: drain the rings in causal order, in batches.

    Parameters
    ----------
    sink : EventSink
        The rings to drain.
    batch : int
        The most events taken from one ring in one go.
    """

    def __init__(self, sink: EventSink, batch: int = 1024) -> None:
        self.sink = sink
        self.batch = batch
        self._venue_buffer = np.zeros(batch, dtype=EVENT_DTYPE)
        self._request_buffer = np.zeros(batch, dtype=EVENT_DTYPE)

    def drain(self) -> Iterator[np.void]:
        """Yield the events available now: every request event, then the venue events drained
        before them (so that a venue report never precedes the request that caused it)."""
        venue_batches = []
        for _, ring in self.sink.rings(VENUE):
            count = ring.drain(self._venue_buffer, self.batch)
            if count:
                venue_batches.append(self._venue_buffer[:count].copy())
        for _, ring in self.sink.rings(REQUESTS):
            while True:
                count = ring.drain(self._request_buffer, self.batch)
                if not count:
                    break
                yield from self._request_buffer[:count].copy()
                if count < self.batch:
                    break
        for batch in venue_batches:
            yield from batch
