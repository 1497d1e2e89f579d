"""Restart-time scenario: a journal of N engine events, replayed as the gateway does at start."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fixgate import config as configuration
from fixgate.core import events as ev
from fixgate.core.clock import day_start_at
from fixgate.core.events import EVENT_DTYPE
from fixgate.core.journal import SqliteJournal
from fixgate.core.positions import PositionTracker
from fixgate.core.recovery import Recovered, replay, snapshot_state

ORDER_EVENTS = 4          # accepted, acked, two fills
_CONFIG = configuration.load()


def _scope() -> tuple[list, list[str], list[str], int]:
    from fixgate.gateway import instruments_of

    instruments = instruments_of(_CONFIG)
    symbols = [instrument.symbol for instrument in instruments]
    return instruments, [client.name for client in _CONFIG.clients], [venue.name for venue in _CONFIG.venues], \
        symbols.index("AAPL") if "AAPL" in symbols else 0


def _day_start(now_ns: int) -> int:
    return day_start_at(now_ns, configuration.trading_day_offset_ns(_CONFIG))


def order_events(first_order: int, orders: int, first_seq: int, now_ns: int, instrument_id: int) -> np.ndarray:
    """The engine's records of `orders` limit orders accepted, acked and filled in two parts."""
    records = np.zeros(orders * ORDER_EVENTS, dtype=EVENT_DTYPE)
    order_ids = np.repeat(np.arange(first_order, first_order + orders, dtype=np.int64), ORDER_EVENTS)
    records["order_id"] = order_ids
    records["seq"] = np.arange(first_seq, first_seq + len(records), dtype=np.int64)
    records["recv_ns"] = now_ns
    records["instrument_id"] = instrument_id
    records["session_id"] = 0
    records["venue_id"] = 0
    records["side"] = np.where(order_ids % 2 == 1, 1, 2)
    records["ord_type"] = 2
    records["kind"] = np.tile(np.array([ev.ACCEPTED, ev.ACKED, ev.FILLED, ev.FILLED], dtype=np.uint8), orders)
    accepted = records[0::ORDER_EVENTS]
    accepted["qty_lots"] = 10
    accepted["price_ticks"] = 19_000
    accepted["status"] = ord("A")
    ids = [str(order_id) for order_id in range(first_order, first_order + orders)]
    accepted["text_a"] = [f"C{order_id}".encode() for order_id in ids]
    accepted["text_c"] = [f"BENCH-{order_id}".encode() for order_id in ids]
    records[0::ORDER_EVENTS] = accepted
    acked = records[1::ORDER_EVENTS]
    acked["text_c"] = [f"SIM-{order_id}".encode() for order_id in ids]
    records[1::ORDER_EVENTS] = acked
    for part, (lots, ticks, suffix) in enumerate(((4, 19_000, "a"), (6, 19_001, "b"))):
        fills = records[2 + part::ORDER_EVENTS]
        fills["qty_lots"] = lots
        fills["price_ticks"] = ticks
        fills["aux"] = lots * ticks
        fills["text_a"] = [f"E{order_id}{suffix}".encode() for order_id in ids]
        records[2 + part::ORDER_EVENTS] = fills
    return records


def build_journal(path: Path, events: int, *, batch: int = 5_000, snapshot_at_end: bool = False) -> int:
    """Write a journal of about `events` records, in batches as the state thread writes them.

    Returns the number of records written.
    """
    instruments, sessions, venues, instrument_id = _scope()
    journal = SqliteJournal(path)
    now = time.time_ns()
    orders = events // ORDER_EVENTS
    per_batch = max(batch // ORDER_EVENTS, 1)
    written = 0
    for first in range(1, orders + 1, per_batch):
        count = min(per_batch, orders + 1 - first)
        records = order_events(first, count, written + 1, now, instrument_id)
        journal.write([(now, records.tobytes())], [])
        written += len(records)
    if snapshot_at_end:
        recovered = _replay(journal)
        journal.write_snapshot(journal.last_seq(), snapshot_state(
            recovered.orders, recovered.positions, recovered.daily, recovered.next_order_id,
            recovered.orders.next_reject_id, recovered.last_event_seq))
    journal.close()
    return written


def _replay(journal: SqliteJournal) -> Recovered:
    instruments, sessions, venues, _ = _scope()
    return replay(journal, None, instruments, sessions, venues, _CONFIG.risk.starting_equity,
                  day_start_ns=_day_start(time.time_ns()))


def replay_seconds(path: Path) -> tuple[float, int]:
    """Open the journal and replay it; return (seconds, records replayed after the snapshot)."""
    started = time.perf_counter()
    journal = SqliteJournal(path, create=False)
    recovered = _replay(journal)
    journal.close()
    return time.perf_counter() - started, recovered.entries


def check(path: Path, orders: int) -> PositionTracker:
    """Replay once more and check what came back: every order filled, ids and positions complete."""
    journal = SqliteJournal(path, create=False)
    recovered = _replay(journal)
    journal.close()
    assert not recovered.live_views(), "orders left open after replaying filled orders"
    assert recovered.next_order_id == orders + 1, recovered.next_order_id
    assert len(recovered.exec_ids) == 2 * orders and len(recovered.used_cl_ord_ids) == orders
    assert recovered.illegal == 0, recovered.illegal_reasons
    return recovered.positions


__all__ = ["ORDER_EVENTS", "build_journal", "check", "order_events", "replay_seconds"]
