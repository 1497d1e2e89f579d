"""Startup is recovery: the snapshot, the journal's tail and the intents it never got rebuild the state."""

import time

import orjson
import pytest

from fixgate import config as configuration
from fixgate.core import events as ev
from fixgate.core.events import event_bytes, make_event
from fixgate.core.journal import IntentLog, JournalError, SqliteJournal
from fixgate.core.messages import OrdStatus as S
from fixgate.core.orders import Orders, engine_restore
from fixgate.core.positions import PositionTracker
from fixgate.core.recovery import DailyFigures, JournalAgent, Replayer, install, replay, snapshot_state
from fixgate.gateway import build_book, instruments_of

CONFIG = configuration.load()
INSTRUMENTS = instruments_of(CONFIG)
SESSIONS = [client.name for client in CONFIG.clients]
VENUES = [venue.name for venue in CONFIG.venues]
EQUITY = CONFIG.risk.starting_equity
BTC, ETH, AAPL = 0, 1, 2
DAY_NS = 86_400 * 10**9
TODAY = 1_796_083_200 * 10**9                    # a trading day's start (midnight UTC)
NOON = TODAY + DAY_NS // 2


class Day:
    """The engine's events of a trading day, numbered in push order as the engine numbers them."""

    def __init__(self, recv_ns: int = NOON) -> None:
        self.seq = 0
        self.recv_ns = recv_ns

    def event(self, kind, **fields):
        self.seq += 1
        return make_event(kind, seq=self.seq, recv_ns=fields.pop("recv_ns", self.recv_ns), **fields)

    def accepted(self, order_id, cl_ord_id, qty_lots, price_ticks, *, instrument_id=AAPL, side=1, ord_type=2,
                 **fields):
        return self.event(ev.ACCEPTED, order_id=order_id, instrument_id=instrument_id, session_id=0, venue_id=0,
                          side=side, ord_type=ord_type, qty_lots=qty_lots, price_ticks=price_ticks,
                          status=ord("A"), text_a=cl_ord_id.encode(), text_c=f"T1-{order_id}".encode(), **fields)

    def acked(self, order_id):
        return self.event(ev.ACKED, order_id=order_id, text_c=f"SIM-{order_id}".encode())

    def filled(self, order_id, lots, ticks, exec_id, *, instrument_id=AAPL, side=1):
        return self.event(ev.FILLED, order_id=order_id, instrument_id=instrument_id, session_id=0, venue_id=0,
                          side=side, qty_lots=lots, price_ticks=ticks, aux=lots * ticks, text_a=exec_id.encode())

    def cancel_requested(self, order_id, number, cl_ord_id, orig_cl_ord_id):
        return self.event(ev.CANCEL_REQUESTED, order_id=order_id, session_id=0, aux=number,
                          text_a=cl_ord_id.encode(), text_b=orig_cl_ord_id.encode())

    def replace_accepted(self, order_id, number, cl_ord_id, orig_cl_ord_id, qty_lots, price_ticks):
        return self.event(ev.REPLACE_ACCEPTED, order_id=order_id, session_id=0, aux=number, qty_lots=qty_lots,
                          price_ticks=price_ticks, text_a=cl_ord_id.encode(), text_b=orig_cl_ord_id.encode())

    def answer(self, kind, order_id, number=0, **fields):
        return self.event(kind, order_id=order_id, aux=number, **fields)


def records(*events) -> bytes:
    return b"".join(event_bytes(event) for event in events)


def recover(journal, intents=None, **options):
    return replay(journal, intents, INSTRUMENTS, SESSIONS, VENUES, EQUITY, day_start_ns=TODAY, **options)


def a_day() -> list[list]:
    """Batches of a day: orders filled, replaced, cancelled, refused; a fill after a cancel crossed."""
    day = Day()
    return [
        [day.accepted(1, "c1", 10, 19_000), day.acked(1), day.accepted(2, "c2", 2_000, 120_000, instrument_id=BTC)],
        [day.filled(1, 4, 19_000, "E1"), day.acked(2),
         day.event(ev.SESSION_LOGON, session_id=0, text_a=b"client1")],
        [day.replace_accepted(1, 1, "c3", "c1", 12, 19_010), day.filled(2, 2_000, 120_001, "E2", instrument_id=BTC)],
        [day.answer(ev.REPLACED, 1, 1, qty_lots=12, price_ticks=19_010),
         day.accepted(3, "c4", 300, 60_000, instrument_id=ETH, side=2), day.acked(3)],
        [day.event(ev.REJECTED, instrument_id=AAPL, session_id=0, code=13, qty_lots=5_000, price_ticks=19_000,
                   text_a=b"c5"),
         day.cancel_requested(3, 1, "c6", "c4"), day.filled(3, 100, 60_010, "E3", instrument_id=ETH, side=2)],
        [day.answer(ev.CANCEL_REJECTED, 3, 1), day.filled(1, 2, 19_005, "E4"),
         day.event(ev.ALARM, code=ev.ALARM_ERROR_AFTER_SEND, text_a=b"order T1-9 went to the venue, then")],
        [day.accepted(4, "c7", 5, 0, ord_type=1), day.acked(4), day.filled(4, 5, 19_020, "E5"),
         day.cancel_requested(3, 2, "c8", "c4")],
    ]


def write_day(journal, batches, *, snapshot_after: int | None = None) -> None:
    """Journal the batches as the state thread does; snapshot after batch `snapshot_after`."""
    orders = Orders(INSTRUMENTS, SESSIONS, VENUES)
    positions = PositionTracker(EQUITY, INSTRUMENTS)
    replayer = Replayer(orders, positions, DailyFigures(TODAY))
    for number, batch in enumerate(batches, 1):
        for event in batch:
            replayer.apply(event)
        seq = journal.write([(NOON + number, records(*batch))], [])
        if number == snapshot_after:
            journal.write_snapshot(seq, snapshot_state(orders, positions, replayer.daily, replayer.next_order_id,
                                                       orders.next_reject_id, replayer.last_seq))


def summary(recovered):
    """What a restart must get back: the live orders, the positions, the counters."""
    return {
        "live": sorted((view.state() for view in recovered.live_views()), key=lambda state: state["order_id"]),
        "positions": recovered.positions.state(),
        "daily": (recovered.daily.orders, recovered.daily.notional),
        "next_order_id": recovered.next_order_id,
        "next_reject_id": recovered.orders.next_reject_id,
        "last_event_seq": recovered.last_event_seq,
        "used": sorted(recovered.used_cl_ord_ids),
        "exec_ids": sorted(recovered.exec_ids),
    }


class RecordingEngine:
    """The engine's restore interface, recording what it is given."""

    def __init__(self) -> None:
        self.orders: list[dict] = []
        self.used: list[tuple[int, str]] = []
        self.exec_ids: list[str] = []
        self.next_event_seq: list[int] = []

    def restore_order(self, order):
        self.orders.append(order)

    def restore_used_cl_ord_id(self, session, cl_ord_id):
        self.used.append((session, cl_ord_id))

    def restore_exec_id(self, venue_exec_id):
        self.exec_ids.append(venue_exec_id)

    def restore_next_event_seq(self, next_seq):
        self.next_event_seq.append(next_seq)


# -- REPLAY -----------------------------------------------------------------------------------------

def test_replay_when_the_journal_is_empty_starts_from_nothing(tmp_path):
    recovered = recover(SqliteJournal(tmp_path / "journal.sqlite3"), IntentLog(tmp_path))
    assert recovered.live_views() == [] and recovered.positions.positions == {}
    assert (recovered.next_order_id, recovered.last_event_seq, recovered.entries, recovered.illegal) == (1, 0, 0, 0)


def test_replay_when_the_journal_holds_a_day_rebuilds_live_orders_positions_and_counters(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    write_day(journal, a_day())
    recovered = recover(journal)
    live = {view.order_id: view for view in recovered.live_views()}
    assert sorted(live) == [1, 3]
    assert live[1].status == S.PARTIALLY_FILLED and live[1].cl_ord_id == "c3" and live[1].qty_lots == 12
    assert live[1].cum_lots == 6 and live[1].avg_px == "190.01666667"
    assert live[3].status == S.PENDING_CANCEL and live[3].cancel.number == 2 and live[3].cum_lots == 100
    assert recovered.orders.by_id[2].status == S.FILLED and recovered.orders.by_id[-1].status == S.REJECTED
    positions = recovered.positions
    assert (positions.net_lots(AAPL), positions.net_lots(BTC), positions.net_lots(ETH)) == (11, 2_000, -100)
    assert recovered.daily.orders == 4
    assert recovered.next_order_id == 5 and recovered.last_event_seq == 21
    assert (recovered.batches, recovered.entries, recovered.illegal) == (7, 21, 0)


def test_replay_when_a_snapshot_was_taken_equals_replaying_everything(tmp_path):
    whole = SqliteJournal(tmp_path / "whole.sqlite3")
    write_day(whole, a_day())
    for snapshot_after in (1, 3, 5, 7):
        journal = SqliteJournal(tmp_path / f"snapshot-{snapshot_after}.sqlite3")
        write_day(journal, a_day(), snapshot_after=snapshot_after)
        recovered = recover(journal)
        assert recovered.snapshot_seq == snapshot_after
        assert recovered.batches == 7 - snapshot_after                 # only the tail is replayed
        assert summary(recovered) == summary(recover(whole)), snapshot_after


def test_replay_when_intents_are_newer_than_the_journal_applies_each_once(tmp_path):
    batches = a_day()
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    write_day(journal, batches[:4])                                   # events 1..11 reached the journal
    day = Day()
    day.seq = 11
    crashed = [day.accepted(9, "c9", 7, 19_001), day.cancel_requested(1, 2, "c10", "c3")]   # 12, 13
    intents = IntentLog(tmp_path)
    written_ahead = [event for batch in batches[2:4] for event in batch
                     if event.kind in ev.ORDER_KINDS and event.kind != ev.ACKED]
    intents.previous.write_bytes(records(*written_ahead, crashed[0]))
    intents.path.write_bytes(records(crashed[0], crashed[1]))         # the same record in both files
    recovered = recover(journal, intents)
    assert [event.seq for event in recovered.from_intents] == [12, 13] and recovered.intents_applied == 2
    live = {view.order_id: view for view in recovered.live_views()}
    assert live[9].status == S.PENDING_NEW and live[9].qty_lots == 7
    assert live[1].status == S.PENDING_CANCEL and live[1].cancel.client_cl_ord_id == "c10"
    assert live[1].qty_lots == 12 and live[1].replaced_cl_ord_ids == ["c1"]  # its replace, in both: applied once
    assert recovered.positions.net_lots(BTC) == 2_000                        # E2, in both: booked once
    assert recovered.last_event_seq == 13 and recovered.next_order_id == 10 and recovered.illegal == 0
    assert recovered.daily.orders == 4


def test_replay_when_every_intent_is_already_journaled_applies_none(tmp_path):
    batches = a_day()
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    write_day(journal, batches)
    intents = IntentLog(tmp_path)
    intents.path.write_bytes(records(*(event for batch in batches for event in batch if event.kind in ev.INTENT_KINDS)))
    assert recover(journal, intents).intents_applied == 0
    assert summary(recover(journal, intents)) == summary(recover(journal))


def test_replay_when_intents_follow_a_snapshot_compares_with_the_snapshots_last_sequence(tmp_path):
    batches = a_day()
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    write_day(journal, batches, snapshot_after=7)                     # no tail: the snapshot holds seq 21
    day = Day()
    day.seq = 20
    old, new = day.filled(1, 1, 19_000, "E-old"), day.filled(1, 1, 19_000, "E-new")   # 21 and 22
    intents = IntentLog(tmp_path)
    intents.path.write_bytes(records(old, new))
    recovered = recover(journal, intents)
    assert [event.seq for event in recovered.from_intents] == [22]
    assert {view.order_id: view.cum_lots for view in recovered.live_views()}[1] == 7
    assert "E-new" in recovered.exec_ids and "E-old" not in recovered.exec_ids


def test_replay_when_ids_were_used_yesterday_and_today_restores_only_todays(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    yesterday, today = Day(NOON - DAY_NS), Day()
    today.seq = 10
    journal.write([(NOON - DAY_NS, records(yesterday.accepted(1, "old", 5, 19_000),
                                           yesterday.filled(1, 5, 19_000, "E-old")))], [])
    journal.write([(NOON, records(
        today.accepted(2, "new", 5, 19_000),
        today.event(ev.REJECTED, instrument_id=AAPL, session_id=0, code=32, text_a=b"refused"),
        today.cancel_requested(2, 1, "cxl", "new"),
        today.event(ev.CANCEL_REQUESTED, order_id=2, session_id=-1, aux=2, code=ev.CANCEL_KILL_SWITCH,
                    flags=ev.FLAG_GATEWAY, text_b=b"new"),                  # the gateway's own: no ClOrdID
        today.filled(2, 1, 19_000, "E-new")))], [])
    intents = IntentLog(tmp_path)
    intents.path.write_bytes(records(today.replace_accepted(2, 3, "rep", "new", 6, 19_000),
                                     today.filled(2, 1, 19_001, "E-ahead")))
    recovered = recover(journal, intents)
    assert recovered.used_cl_ord_ids == [(0, "new"), (0, "refused"), (0, "cxl"), (0, "rep")]
    assert recovered.exec_ids == ["E-new", "E-ahead"]
    assert recovered.daily.orders == 1                                 # yesterday's order is not today's


def test_replay_when_the_snapshot_is_of_another_day_starts_the_days_figures_at_zero(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    write_day(journal, a_day(), snapshot_after=7)
    assert recover(journal).daily.orders == 4
    tomorrow = replay(journal, None, INSTRUMENTS, SESSIONS, VENUES, EQUITY, day_start_ns=TODAY + DAY_NS)
    assert (tomorrow.daily.orders, tomorrow.daily.notional) == (0, 0.0)
    assert sorted(view.order_id for view in tomorrow.live_views()) == [1, 3]      # orders live on


def test_replay_when_the_snapshot_holds_an_instrument_no_longer_configured_refuses(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    write_day(journal, a_day(), snapshot_after=7)
    with pytest.raises(JournalError, match="an order in AAPL, an instrument no longer configured"):
        replay(journal, None, INSTRUMENTS[:2], SESSIONS, VENUES, EQUITY, day_start_ns=TODAY)


def test_replay_when_an_event_breaks_the_state_machine_counts_it_by_reason(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    day = Day()
    journal.write([(NOON, records(day.accepted(1, "c1", 5, 19_000), day.answer(ev.CANCELED, 1),
                                  day.answer(ev.ACKED, 1), day.answer(ev.ACKED, 7)))], [])
    recovered = recover(journal)
    assert recovered.illegal == 2
    assert recovered.illegal_reasons == {"acked in Canceled": 1, "unknown order": 1}


# -- FILLS OF FINISHED ORDERS -----------------------------------------------------------------------

def test_replayer_when_a_forgotten_order_is_filled_again_moves_the_position_all_the_same():
    orders = Orders(INSTRUMENTS, SESSIONS, VENUES, retention_orders=0)
    positions = PositionTracker(EQUITY, INSTRUMENTS)
    replayer = Replayer(orders, positions, DailyFigures(TODAY))
    day = Day()
    for event in (day.accepted(1, "c1", 10, 19_000), day.filled(1, 10, 19_000, "E1"),
                  day.filled(1, 2, 19_000, "E2")):                   # an overfill: the engine books it
        replayer.apply(event)
    assert 1 not in orders.by_id
    assert positions.net_lots(AAPL) == 12


def test_replayer_when_a_forgotten_order_of_its_own_account_is_filled_again_books_that_account():
    orders = Orders(INSTRUMENTS, SESSIONS, VENUES, retention_orders=0)
    positions = PositionTracker(EQUITY, INSTRUMENTS)
    replayer = Replayer(orders, positions, DailyFigures(TODAY))
    day = Day()
    late = day.filled(1, 2, 19_000, "E2")._replace(text_b=b"ACCT-7")
    for event in (day.accepted(1, "c1", 10, 19_000, text_b=b"ACCT-7"),
                  day.filled(1, 10, 19_000, "E1")._replace(text_b=b"ACCT-7"), late):
        replayer.apply(event)
    assert 1 not in orders.by_id
    assert {account for account, _ in positions.positions} == {"ACCT-7"}
    assert positions.net_lots(AAPL) == 12


def test_replayer_when_a_filled_order_still_retained_is_filled_again_moves_the_position_as_the_engine_did():
    orders = Orders(INSTRUMENTS, SESSIONS, VENUES)
    positions = PositionTracker(EQUITY, INSTRUMENTS)
    replayer = Replayer(orders, positions, DailyFigures(TODAY))
    day = Day()
    for event in (day.accepted(1, "c1", 10, 19_000), day.filled(1, 10, 19_000, "E1"),
                  day.filled(1, 2, 19_000, "E2")):
        replayer.apply(event)
    assert orders.by_id[1].status == S.FILLED
    assert positions.net_lots(AAPL) == 12                              # the engine's book holds 12


# -- INSTALL ----------------------------------------------------------------------------------------

def live_book():
    """A real risk book through which a day's orders went, and the events the engine pushed for them."""
    book = build_book(CONFIG)
    now = time.time_ns()
    for instrument_id, (bid, ask) in enumerate([(59_990.0, 60_010.0), (2_999.0, 3_001.0), (189.9, 190.1)]):
        assert book.quotes.on_quote(instrument_id, bid, ask, now, now) == 0
    day = Day()
    events = []

    def new(cl_ord_id, instrument_id, side, ord_type, lots, ticks):
        code, order_id = book.check_new_order_units(0, instrument_id, side, ord_type, lots, ticks, now)
        assert code == 0, code
        events.append(day.accepted(order_id, cl_ord_id, lots, ticks if ord_type == 2 else 0,
                                   instrument_id=instrument_id, side=side, ord_type=ord_type))
        return order_id

    def fill(order_id, instrument_id, side, lots, ticks, exec_id):
        assert book.on_filled_units(order_id, lots, ticks) == 0
        events.append(day.filled(order_id, lots, ticks, exec_id, instrument_id=instrument_id, side=side))

    first = new("c1", AAPL, 1, 2, 10, 19_000)
    assert book.on_acked(first) == 0
    events.append(day.acked(first))
    fill(first, AAPL, 1, 4, 19_000, "E1")
    second = new("c2", AAPL, 2, 2, 5, 19_050)
    assert book.check_replace_units(second, 8, 19_060, now) == 0
    events.append(day.replace_accepted(second, 1, "c3", "c2", 8, 19_060))
    new("c4", AAPL, 1, 1, 3, 0)                                        # a market order: reserved at 190.00
    fourth = new("c5", ETH, 1, 2, 100, 60_000)
    fill(fourth, ETH, 1, 100, 60_000, "E2")
    fifth = new("c6", BTC, 2, 2, 1_000, 120_000)
    assert book.on_canceled(fifth) == 0
    events.append(day.answer(ev.CANCELED, fifth))
    return book, events


def without_fill_prices(snapshot):
    for exposure in snapshot["exposures"]:
        exposure.pop("last_fill_price")
    return snapshot


def test_install_when_live_orders_are_recovered_reserves_in_the_book_what_the_live_book_reserved(tmp_path):
    live, events = live_book()
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    journal.write([(NOON, records(*events))], [])
    recovered = recover(journal)
    book = build_book(CONFIG)
    install(recovered, RecordingEngine(), book)
    restored, expected = without_fill_prices(book.snapshot()), without_fill_prices(live.snapshot())
    assert restored["orders"] == expected["orders"]
    assert restored["exposures"] == expected["exposures"]
    assert restored["live_orders"] == expected["live_orders"] == 3
    assert book.next_order_id == live.next_order_id
    assert book.daily_orders == live.daily_orders == 5


def test_install_when_orders_are_recovered_gives_the_engine_live_and_finished_orders_ids_and_the_next_sequence(
        tmp_path):
    _, events = live_book()
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    journal.write([(NOON, records(*events))], [])
    recovered = recover(journal)
    engine = RecordingEngine()
    install(recovered, engine, build_book(CONFIG))
    live = [engine_restore(view) for view in recovered.live_views()]
    assert engine.orders[-3:] == live and all(order["in_book"] for order in live)
    assert [order["cl_ord_id"] for order in live] == ["c1", "c2", "c4"]
    assert live[1]["replace"]["qty_lots"] == 8
    # Finished today, kept as the engine keeps them while it runs: a report sent again finds them.
    finished = engine.orders[:-3]
    assert [(order["cl_ord_id"], order["status"], order["in_book"]) for order in finished] == [
        ("c5", "2", False), ("c6", "4", False)]
    assert engine.used == [(0, "c1"), (0, "c2"), (0, "c3"), (0, "c4"), (0, "c5"), (0, "c6")]
    assert engine.exec_ids == ["E1", "E2"]
    assert engine.next_event_seq == [len(events) + 1]


def test_install_when_an_order_was_replaced_larger_restores_the_daily_notional_the_book_counted(tmp_path):
    live = build_book(CONFIG)
    now = time.time_ns()
    assert live.quotes.on_quote(AAPL, 189.9, 190.1, now, now) == 0
    code, order_id = live.check_new_order_units(0, AAPL, 1, 2, 10, 19_000, now)
    assert code == 0 and live.check_replace_units(order_id, 20, 19_000, now) == 0
    assert live.daily_notional == pytest.approx(3_800.0)              # 1900 accepted + 1900 more replaced
    day = Day()
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    journal.write([(NOON, records(day.accepted(order_id, "c1", 10, 19_000),
                                  day.replace_accepted(order_id, 1, "c2", "c1", 20, 19_000)))], [])
    book = build_book(CONFIG)
    install(recover(journal), RecordingEngine(), book)
    assert book.daily_orders == live.daily_orders
    assert book.daily_notional == pytest.approx(live.daily_notional)


def test_install_when_the_book_cannot_take_an_order_logs_it_and_restores_the_others(tmp_path):
    capacity = CONFIG.gateway.order_capacity
    day = Day()
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    journal.write([(NOON, records(day.accepted(1, "c1", 5, 19_000), day.accepted(1 + capacity, "c2", 5, 19_000),
                                  day.accepted(2, "c3", 5, 19_000)))], [])        # 1 + capacity shares 1's slot
    book = build_book(CONFIG)
    engine = RecordingEngine()
    install(recover(journal), engine, book)
    assert book.live_order_ids() == [1, 2]
    assert len(engine.orders) == 3                                    # the engine keeps what the book cannot


# -- THE JOURNAL AGENT ------------------------------------------------------------------------------

class Snapshots:
    """A snapshot source and an intent-log rotation, counted."""

    def __init__(self) -> None:
        self.taken = 0
        self.rotations = 0

    def __call__(self):
        self.taken += 1
        return {"taken": self.taken}

    def rotate(self) -> None:
        self.rotations += 1


def test_journal_agent_when_batches_and_notes_are_pending_writes_them_in_one_pass(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    agent = JournalAgent(journal, Snapshots(), commit_interval_s=0.0)
    day = Day()
    agent.add_batch(NOON, records(day.accepted(1, "c1", 5, 19_000), day.acked(1)))
    agent.add_batch(NOON + 1, records(day.filled(1, 5, 19_000, "E1")))
    agent.note("risk_state_changed", {"to": "WARNING"})
    assert agent.pending_events == 3
    assert agent.do_work() == 4 and agent.pending_events == 0 and agent.written == 3
    assert [batch.count for batch in journal.batches()] == [3]                 # one row for the pass
    assert [(note.kind, note.data) for note in journal.notes()] == [("risk_state_changed", {"to": "WARNING"})]
    assert agent.do_work() == 0


def test_journal_agent_when_enough_events_were_written_snapshots_and_rotates_the_intents(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    snapshots = Snapshots()
    agent = JournalAgent(journal, snapshots, rotate_intents=snapshots.rotate, snapshot_every=3, commit_interval_s=0.0)
    day = Day()
    agent.add_batch(NOON, records(day.accepted(1, "c1", 5, 19_000), day.acked(1)))
    agent.do_work()
    assert journal.latest_snapshot() is None and snapshots.rotations == 0
    agent.add_batch(NOON, records(day.filled(1, 5, 19_000, "E1")))
    agent.do_work()
    assert journal.latest_snapshot() == (2, {"taken": 1}) and snapshots.rotations == 1
    assert agent.since_snapshot == 0


def test_journal_agent_when_the_journal_fails_keeps_everything_retries_and_tells_on_failure_once(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    failures = []
    agent = JournalAgent(journal, Snapshots(), on_failure=failures.append, retry_interval_s=0.0, commit_interval_s=0.0)
    day = Day()
    journal.connection.execute("PRAGMA query_only = ON")              # the disk refuses writes
    agent.add_batch(NOON, records(day.accepted(1, "c1", 5, 19_000)))
    agent.note("kill", {"reason": "operator"})
    assert agent.do_work() == 0 and agent.failing
    agent.add_batch(NOON + 1, records(day.acked(1)))
    agent.note("resume", {})
    assert agent.do_work() == 0 and agent.do_work() == 0
    assert agent.failures == 3 and len(failures) == 1 and "cannot write" in failures[0]
    assert agent.pending_events == 2
    journal.connection.execute("PRAGMA query_only = OFF")
    assert agent.do_work() == 4 and not agent.failing
    assert [event.seq for batch in journal.batches() for event in batch.events()] == [1, 2]
    assert [note.kind for note in journal.notes()] == ["kill", "resume"]
    journal.connection.execute("PRAGMA query_only = ON")              # a second outage is told again
    agent.add_batch(NOON + 2, records(day.filled(1, 5, 19_000, "E1")))
    agent.do_work()
    assert len(failures) == 2


def test_journal_agent_when_failing_waits_for_the_retry_interval_before_trying_again(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    agent = JournalAgent(journal, Snapshots(), retry_interval_s=60.0, commit_interval_s=0.0)
    journal.connection.execute("PRAGMA query_only = ON")
    agent.add_batch(NOON, records(Day().accepted(1, "c1", 5, 19_000)))
    agent.do_work()
    journal.connection.execute("PRAGMA query_only = OFF")
    assert agent.do_work() == 0 and agent.failures == 1               # not tried again yet
    agent.flush()                                                     # at shutdown: tried at once
    assert agent.pending_events == 0 and journal.last_seq() == 1


def test_journal_agent_when_flushed_during_an_outage_tells_on_failure_once(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    failures = []
    agent = JournalAgent(journal, Snapshots(), on_failure=failures.append, retry_interval_s=0.0, commit_interval_s=0.0)
    journal.connection.execute("PRAGMA query_only = ON")
    agent.add_batch(NOON, records(Day().accepted(1, "c1", 5, 19_000)))
    agent.do_work()
    agent.flush()                                                     # the same outage, at shutdown
    assert agent.pending_events == 1 and len(failures) == 1


def test_snapshot_state_when_taken_keeps_only_live_orders_and_the_counters():
    orders = Orders(INSTRUMENTS, SESSIONS, VENUES)
    positions = PositionTracker(EQUITY, INSTRUMENTS)
    replayer = Replayer(orders, positions, DailyFigures(TODAY))
    for batch in a_day():
        for event in batch:
            replayer.apply(event)
    state = snapshot_state(orders, positions, replayer.daily, replayer.next_order_id, orders.next_reject_id,
                           replayer.last_seq)
    assert [order["order_id"] for order in state["orders"]] == [1, 3]
    assert state["positions"] == positions.state()
    daily = state["daily"]
    assert (daily["day_start_ns"], daily["orders"], daily["notional"]) == (TODAY, 4, replayer.daily.notional)
    assert daily["tally"] == replayer.daily.tally and daily["tally"]["accepted"] == 4
    assert daily["tally"]["rejected"] == sum(daily["rejected_by_code"].values()) == 1
    assert (state["next_order_id"], state["next_reject_id"], state["last_event_seq"]) == (5, -2, 21)
    # The day's tally comes back from a snapshot of the same day, not from another day's.
    again = DailyFigures(TODAY)
    again.restore(orjson.loads(orjson.dumps(daily)))
    assert (again.tally, again.rejected_by_code, again.orders) == (replayer.daily.tally,
                                                                    replayer.daily.rejected_by_code, 4)
    tomorrow = DailyFigures(TODAY + DAY_NS)
    tomorrow.restore(daily)
    assert tomorrow.orders == 0 and not any(tomorrow.tally.values()) and not tomorrow.rejected_by_code


def test_daily_figures_when_events_of_yesterday_are_replayed_count_only_todays():
    daily = DailyFigures(TODAY)
    day = Day(recv_ns=TODAY - 1)
    daily.count_event(day.accepted(1, "c1", 1, 19_000))
    daily.count_event(Day().accepted(2, "c2", 1, 19_000))
    daily.count_event(Day().event(ev.REJECTED, code=13, session_id=0))
    daily.count_event(Day().event(ev.SESSION_LOGON, session_id=0))
    assert daily.tally["accepted"] == 1 and daily.tally["rejected"] == 1 and daily.rejected_by_code == {13: 1}


def test_journal_agent_when_batches_come_faster_than_its_interval_writes_them_in_one_transaction(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    agent = JournalAgent(journal, Snapshots(), commit_interval_s=3600.0, max_pending_batches=3)
    agent.add_batch(1, event_bytes(make_event(ev.ACKED, seq=1, order_id=1)))
    assert agent.do_work() == 1                                  # the first transaction goes at once
    for number in (2, 3):
        agent.add_batch(number, event_bytes(make_event(ev.ACKED, seq=number, order_id=number)))
        assert agent.do_work() == 0                              # then it waits for its interval...
    agent.add_batch(4, event_bytes(make_event(ev.ACKED, seq=4, order_id=4)))
    assert agent.do_work() == 3                                  # ...or for three batches waiting
    assert [batch.count for batch in journal.batches()] == [1, 3]
    assert [event.seq for batch in journal.batches() for event in batch.events()] == [1, 2, 3, 4]


def test_daily_figures_when_an_event_of_the_next_day_comes_start_the_day_again():
    daily = DailyFigures(TODAY)
    daily.count_event(Day().accepted(1, "c1", 1, 19_000))
    daily.count_event(Day().event(ev.REJECTED, code=13, session_id=0))
    daily.count(Day().accepted(1, "c1", 1, 19_000), [0.01] * 3)
    assert daily.tally["accepted"] == 1 and daily.orders == 1
    tomorrow = Day(recv_ns=NOON + DAY_NS)
    daily.count_event(tomorrow.accepted(2, "c2", 1, 19_000))
    assert daily.day_start_ns == TODAY + DAY_NS
    assert daily.tally["accepted"] == 1 and daily.tally["rejected"] == 0 and not daily.rejected_by_code
    assert daily.orders == 0 and daily.notional == 0.0
    assert not daily.roll(NOON + DAY_NS) and daily.roll(TODAY + 3 * DAY_NS + 5)
    assert daily.day_start_ns == TODAY + 3 * DAY_NS


def test_replay_when_the_snapshot_is_of_an_earlier_day_counts_todays_drawdown_from_the_restart(tmp_path):
    from decimal import Decimal

    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    write_day(journal, a_day(), snapshot_after=len(a_day()))
    seq, state = journal.latest_snapshot()
    state["positions"]["peak_equity"] = str(EQUITY * 2)                  # yesterday's peak, far above
    journal.write_snapshot(seq, state)
    same_day = recover(journal)
    assert same_day.positions.peak_equity == EQUITY * 2 and same_day.positions.drawdown() > 0.4
    tomorrow = replay(journal, None, INSTRUMENTS, SESSIONS, VENUES, EQUITY, day_start_ns=TODAY + DAY_NS)
    assert tomorrow.snapshot_day_start_ns == TODAY
    assert tomorrow.positions.peak_equity == tomorrow.positions.equity() and tomorrow.positions.drawdown() == 0.0
    assert isinstance(tomorrow.positions.peak_equity, Decimal)
