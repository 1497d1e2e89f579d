"""The journal: entries and snapshots round-trip; an unreadable file is refused, not replaced."""

import subprocess
import sys

import pytest

from fixgate.core.journal import JournalError, SqliteJournal


def test_journal_when_entries_appended_reads_them_back_in_order(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    assert journal.append([(1, "accepted", 7, {"a": 1}), (2, "filled", 7, {"exec_id": "E1"})]) == 2
    assert journal.append([(3, "canceled", 8, {})]) == 3
    journal.close()
    again = SqliteJournal(tmp_path / "journal.sqlite3")
    assert [(entry.seq, entry.kind, entry.order_id, entry.data) for entry in again.entries()] == [
        (1, "accepted", 7, {"a": 1}), (2, "filled", 7, {"exec_id": "E1"}), (3, "canceled", 8, {})]
    assert [entry.seq for entry in again.entries(after_seq=2)] == [3]
    assert again.last_seq() == 3


def test_journal_when_snapshots_written_keeps_the_latest(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    assert journal.latest_snapshot() is None
    journal.write_snapshot(5, {"n": 1})
    journal.write_snapshot(9, {"n": 2})
    assert journal.latest_snapshot() == (9, {"n": 2})


def test_journal_when_file_is_not_a_journal_refuses_with_a_pointer_to_recover(tmp_path):
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="fixgate recover"):
        SqliteJournal(path)


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
    assert fresh.returncode == 0 and '"open_orders": []' in fresh.stdout
