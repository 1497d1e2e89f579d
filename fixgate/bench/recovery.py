"""Restart-time scenario: a journal of N events, replayed as the gateway does at start."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from fixgate._fast.codes import EventKind
from fixgate.core import recovery
from fixgate.core.journal import SqliteJournal
from fixgate.core.orders import OrderRecord
from fixgate.core.positions import PositionTracker

ORDER_EVENTS = 4          # accepted, acked, two fills


def build_journal(path: Path, events: int, *, batch: int = 5_000, snapshot_at_end: bool = False) -> int:
    """Write a journal of about `events` entries: orders accepted, acked and filled in two parts.

    Returns the number of entries written.
    """
    journal = SqliteJournal(path)
    pending: list = []
    written = 0
    now = time.time_ns()
    for order_id in range(1, events // ORDER_EVENTS + 1):
        record = OrderRecord(order_id=order_id, gateway_order_id=f"BENCH-{order_id}", session="client1",
                             account="client1", cl_ord_id=f"C{order_id}", symbol="AAPL", instrument_id=0,
                             side="1" if order_id % 2 else "2", ord_type="2", time_in_force="0", order_qty="10",
                             price="190.00", lot_size=Decimal(1), venue="simvenue",
                             venue_cl_ord_id=f"BENCH-{order_id}")
        record.cl_ord_ids.append(record.cl_ord_id)
        pending.append((now, "accepted", order_id, {"qty_lots": 10, "price": 190.0,
                                                     "order": recovery.record_state(record)}))
        pending.append((now, "acked", order_id, {"qty_lots": 0, "price": 0.0}))
        pending.append((now, "filled", order_id, {"qty_lots": 4, "price": 190.0, "exec_id": f"E{order_id}a"}))
        pending.append((now, "filled", order_id, {"qty_lots": 6, "price": 190.01, "exec_id": f"E{order_id}b"}))
        if len(pending) >= batch:
            journal.append(pending)
            written += len(pending)
            pending = []
    if pending:
        journal.append(pending)
        written += len(pending)
    if snapshot_at_end:
        recovered = recovery.replay(journal, Decimal(1_000_000))
        journal.write_snapshot(journal.last_seq(), {
            "records": [], "client_ids": sorted(recovered.client_ids), "seen_exec_ids": [],
            "positions": recovery.positions_state(recovered.positions), "next_order_id": recovered.next_order_id,
            "daily_orders": recovered.daily_orders, "daily_notional": recovered.daily_notional})
    journal.close()
    return written


def replay_seconds(path: Path) -> tuple[float, int]:
    """Open the journal and replay it; return (seconds, entries replayed after the snapshot)."""
    started = time.perf_counter()
    journal = SqliteJournal(path)
    recovered = recovery.replay(journal, Decimal(1_000_000))
    journal.close()
    return time.perf_counter() - started, recovered.entries


def check(path: Path, orders: int) -> PositionTracker:
    journal = SqliteJournal(path)
    recovered = recovery.replay(journal, Decimal(1_000_000))
    journal.close()
    assert not recovered.live_records() and recovered.next_order_id == orders + 1
    return recovered.positions


__all__ = ["EventKind", "build_journal", "check", "replay_seconds"]
