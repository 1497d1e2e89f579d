"""The journal: batches of whole 256-byte events, notes and snapshots on disk; the intent log read back."""

import sqlite3
import subprocess
import sys

import pytest

from fixgate.core import events as ev
from fixgate.core.events import EVENT_BYTES, event_bytes, make_event
from fixgate.core.journal import SCHEMA_VERSION, IntentLog, JournalError, SqliteJournal


def batch(*events) -> bytes:
    return b"".join(event_bytes(event) for event in events)


def accepted(order_id, seq):
    return make_event(ev.ACCEPTED, order_id=order_id, seq=seq, instrument_id=2, session_id=0, venue_id=0,
                      qty_lots=10, price_ticks=19_000, text_a=f"c{order_id}".encode())


def filled(order_id, seq, exec_id):
    return make_event(ev.FILLED, order_id=order_id, seq=seq, qty_lots=4, price_ticks=19_001, text_a=exec_id)


# -- BATCHES AND NOTES ------------------------------------------------------------------------------

def test_journal_when_batches_written_reads_the_same_events_back_in_order(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    first = [accepted(1, 1), accepted(2, 2)]
    second = [filled(1, 3, b"E1")]
    assert journal.write([(100, batch(*first))], []) == 1
    assert journal.write([(200, batch(*second)), (300, batch(accepted(3, 4)))], []) == 3
    assert journal.last_seq() == 3 and journal.events_written == 4
    journal.close()
    again = SqliteJournal(tmp_path / "journal.sqlite3", create=False)
    batches = list(again.batches())
    assert [(found.seq, found.at_ns, found.count) for found in batches] == [(1, 100, 2), (2, 200, 1), (3, 300, 1)]
    assert batches[0].events() == first and batches[1].events() == second
    assert [found.seq for found in again.batches(after_seq=1)] == [2, 3]
    assert [found.seq for found in again.batches(since_ns=200)] == [2, 3]
    assert again.last_seq() == 3


def test_journal_when_many_batches_written_yields_every_one(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    journal.write([(number, batch(accepted(number, number))) for number in range(1, 601)], [])
    assert [found.events()[0].order_id for found in journal.batches()] == list(range(1, 601))


def test_journal_when_notes_written_reads_their_json_back_with_the_batches_sequence_apart(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    assert journal.write([], [(10, "risk_state_changed", {"from": "NORMAL", "to": "WARNING", "drawdown": 0.051})]) == 0
    assert journal.write([(20, batch(accepted(1, 1)))], [(21, "kill", {"reason": "operator", "by": ["admin"]})]) == 1
    journal.close()
    again = SqliteJournal(tmp_path / "journal.sqlite3")
    assert [(note.seq, note.at_ns, note.kind, note.data) for note in again.notes()] == [
        (1, 10, "risk_state_changed", {"from": "NORMAL", "to": "WARNING", "drawdown": 0.051}),
        (2, 21, "kill", {"reason": "operator", "by": ["admin"]})]
    assert again.last_seq() == 1


def test_journal_when_nothing_to_write_returns_the_last_sequence_and_writes_nothing(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    journal.write([(1, batch(accepted(1, 1)))], [])
    assert journal.write([], []) == 1 and len(list(journal.batches())) == 1


def test_journal_when_a_batch_is_not_whole_events_refuses_it_and_writes_nothing(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    with pytest.raises(JournalError, match="300 bytes is not whole events"):
        journal.write([(1, batch(accepted(1, 1))), (2, b"\0" * 300)], [(3, "note", {})])
    assert list(journal.batches()) == [] and list(journal.notes()) == [] and journal.last_seq() == 0


def test_journal_when_the_database_refuses_the_write_raises_journal_error_and_keeps_its_sequence(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    journal.write([(1, batch(accepted(1, 1)))], [])
    journal.connection.execute("PRAGMA query_only = ON")
    with pytest.raises(JournalError, match="cannot write"):
        journal.write([(2, batch(accepted(2, 2)))], [(2, "note", {})])
    journal.connection.execute("PRAGMA query_only = OFF")
    assert journal.last_seq() == 1
    assert journal.write([(3, batch(accepted(3, 3)))], []) == 2
    assert [found.events()[0].order_id for found in journal.batches()] == [1, 3]


def test_journal_when_a_stored_batch_is_torn_refuses_to_read_it(tmp_path):
    path = tmp_path / "journal.sqlite3"
    SqliteJournal(path).write([(1, batch(accepted(1, 1)))], [])
    connection = sqlite3.connect(path)
    connection.execute("UPDATE batches SET data = substr(data, 1, 200)")
    connection.commit()
    connection.close()
    with pytest.raises(JournalError, match="batch 1 holds 200 bytes"):
        list(SqliteJournal(path).batches())


# -- SNAPSHOTS --------------------------------------------------------------------------------------

def test_journal_when_snapshots_written_keeps_only_the_latest(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    assert journal.latest_snapshot() is None
    journal.write_snapshot(5, {"orders": [], "n": 1})
    journal.write_snapshot(9, {"orders": [{"order_id": 3}], "n": 2})
    assert journal.latest_snapshot() == (9, {"orders": [{"order_id": 3}], "n": 2})
    count = journal.connection.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
    assert count == 1


# -- REFUSALS ---------------------------------------------------------------------------------------

def test_journal_when_the_file_is_of_schema_1_refuses_it_naming_both_schemas(tmp_path):
    path = tmp_path / "journal.sqlite3"
    connection = sqlite3.connect(path)                        # what the gateway before the native path wrote
    connection.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE events (seq INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, kind TEXT NOT NULL,
                             order_id INTEGER NOT NULL, data TEXT NOT NULL);
        CREATE TABLE snapshots (seq INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, data TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        INSERT INTO events VALUES (1, 1, 'accepted', 1, '{}');
    """)
    connection.commit()
    connection.close()
    with pytest.raises(JournalError, match=r"journal schema 1, this gateway reads 2; see `fixgate recover --help`"):
        SqliteJournal(path)
    assert SCHEMA_VERSION == 2


def test_journal_when_schema_1_has_no_version_row_still_refuses_it(tmp_path):
    path = tmp_path / "journal.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, data TEXT)")
    connection.commit()
    connection.close()
    with pytest.raises(JournalError, match="a journal of schema 1"):
        SqliteJournal(path)


def test_journal_when_the_file_is_not_a_database_refuses_with_a_pointer_to_recover(tmp_path):
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="not a readable journal.*fixgate recover"):
        SqliteJournal(path)
    assert path.read_bytes() == b"this is not a database" * 100            # refused, not replaced


def test_journal_when_missing_and_not_to_be_created_refuses(tmp_path):
    with pytest.raises(JournalError, match="no journal here"):
        SqliteJournal(tmp_path / "journal.sqlite3", create=False)
    assert not (tmp_path / "journal.sqlite3").exists()


def test_recover_when_journal_unreadable_explains_then_sets_it_aside(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "journal.sqlite3").write_bytes(b"garbage" * 1000)
    check = subprocess.run([sys.executable, "-m", "fixgate", "recover", "--state-dir", str(state)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 2 and "not a readable journal" in check.stderr and "--set-aside" in check.stderr
    aside = subprocess.run([sys.executable, "-m", "fixgate", "recover", "--state-dir", str(state), "--set-aside"],
                           capture_output=True, text=True, timeout=60)
    assert aside.returncode == 0 and "moved the unreadable journal aside" in aside.stdout
    assert not (state / "journal.sqlite3").exists()
    assert list(state.glob("journal.sqlite3.unreadable-*"))
    fresh = subprocess.run([sys.executable, "-m", "fixgate", "recover", "--state-dir", str(state)],
                           capture_output=True, text=True, timeout=60)
    assert fresh.returncode == 1 and "there is no journal" in fresh.stderr, fresh.stderr[-2000:]
    assert not (state / "journal.sqlite3").exists()                  # never creates one


# -- THE INTENT LOG ---------------------------------------------------------------------------------

def test_intent_log_when_both_files_exist_reads_the_previous_then_the_current(tmp_path):
    intents = IntentLog(tmp_path)
    intents.previous.write_bytes(batch(accepted(1, 1), accepted(2, 2)))
    intents.path.write_bytes(batch(make_event(ev.CANCEL_REQUESTED, order_id=1, seq=3, aux=1, text_b=b"c1")))
    assert [(event.kind, event.seq) for event in intents.events()] == [
        (ev.ACCEPTED, 1), (ev.ACCEPTED, 2), (ev.CANCEL_REQUESTED, 3)]


def test_intent_log_when_the_last_record_is_torn_ignores_it(tmp_path):
    intents = IntentLog(tmp_path)
    whole = [accepted(1, 1), accepted(2, 2)]
    intents.path.write_bytes(batch(*whole) + event_bytes(accepted(3, 3))[:EVENT_BYTES - 17])
    assert intents.events() == whole


def test_intent_log_when_the_previous_file_has_a_torn_tail_still_reads_the_current_one(tmp_path):
    intents = IntentLog(tmp_path)
    intents.previous.write_bytes(batch(accepted(1, 1)) + b"\x01" * 40)
    intents.path.write_bytes(batch(accepted(2, 2)))
    assert [event.order_id for event in intents.events()] == [1, 2]


def test_intent_log_when_no_file_exists_has_no_intents_and_creates_its_directory(tmp_path):
    intents = IntentLog(tmp_path / "state")
    assert intents.events() == [] and (tmp_path / "state").is_dir()
    assert intents.path.name == "intents.log" and intents.previous.name == "intents.previous.log"
