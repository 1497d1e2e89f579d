"""The journal: every order event, risk-state change and admin action, on disk, in order.

Written by the state thread, off the order path, one transaction per pass. The default store is
SQLite in WAL mode in the gateway's state directory (embedded, nothing to set up); `Journal` is the
interface another store would implement. A snapshot of the live state is written every
`snapshot_every` events, so that a restart replays the snapshot plus the tail, not the whole day.

Durability: ``synchronous=NORMAL`` in WAL mode survives a crash of the process (what a kill -9
tests); a power loss may drop the last transactions, which the venues' and clients' resend and
the reconciliation after logon then restore.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

import orjson

SCHEMA_VERSION = 1


class JournalError(RuntimeError):
    """The journal cannot be read or written: refuse to trade rather than start from nothing."""


@dataclass(frozen=True)
class JournalEntry:
    """One event: its sequence, time, kind, order id (0 for none) and data."""

    seq: int
    at_ns: int
    kind: str
    order_id: int
    data: dict[str, Any]


class Journal(Protocol):
    def append(self, entries: list[tuple[int, str, int, dict[str, Any]]]) -> int: ...
    def write_snapshot(self, seq: int, state: dict[str, Any]) -> None: ...
    def latest_snapshot(self) -> tuple[int, dict[str, Any]] | None: ...
    def entries(self, after_seq: int = 0) -> Iterator[JournalEntry]: ...
    def last_seq(self) -> int: ...
    def close(self) -> None: ...


class SqliteJournal:
    """The journal in one SQLite file (WAL mode).

    Parameters
    ----------
    path : Path
        The database file; created with its schema when missing.

    Raises
    ------
    JournalError
        When the file exists but is not a readable fixgate journal.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self.connection = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            self.connection.executescript("""
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS events (
                    seq INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, kind TEXT NOT NULL,
                    order_id INTEGER NOT NULL, data TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS snapshots (
                    seq INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, data TEXT NOT NULL);
            """)
            version = self.connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if version is None:
                self.connection.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(version[0]) != SCHEMA_VERSION:
                raise JournalError(f"{self.path}: journal schema {version[0]}, this gateway reads {SCHEMA_VERSION}")
            self.connection.execute("PRAGMA quick_check").fetchone()
            self._seq = self.connection.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise JournalError(f"{self.path}: not a readable journal ({error}); see `fixgate recover --help`") from None

    def append(self, entries: list[tuple[int, str, int, dict[str, Any]]]) -> int:
        """Append (at_ns, kind, order_id, data) entries in one transaction; return the last sequence."""
        if not entries:
            return self._seq
        with self._lock:
            rows = []
            for at_ns, kind, order_id, data in entries:
                self._seq += 1
                rows.append((self._seq, at_ns, kind, order_id, orjson.dumps(data).decode()))
            try:
                self.connection.execute("BEGIN")
                self.connection.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
                self.connection.execute("COMMIT")
            except sqlite3.Error as error:
                self.connection.execute("ROLLBACK") if self.connection.in_transaction else None
                self._seq -= len(rows)
                raise JournalError(f"{self.path}: cannot write: {error}") from None
            return self._seq

    def write_snapshot(self, seq: int, state: dict[str, Any]) -> None:
        with self._lock:
            try:
                self.connection.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)",
                                        (seq, time.time_ns(), orjson.dumps(state).decode()))
                self.connection.execute("DELETE FROM snapshots WHERE seq < (SELECT MAX(seq) FROM snapshots)")
            except sqlite3.Error as error:
                raise JournalError(f"{self.path}: cannot write a snapshot: {error}") from None

    def latest_snapshot(self) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            try:
                row = self.connection.execute("SELECT seq, data FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
                return None if row is None else (row[0], orjson.loads(row[1]))
            except (sqlite3.Error, ValueError) as error:
                raise JournalError(f"{self.path}: unreadable snapshot: {error}") from None

    def entries(self, after_seq: int = 0) -> Iterator[JournalEntry]:
        """Yield the events after `after_seq`, in order."""
        try:
            cursor = self.connection.execute(
                "SELECT seq, at_ns, kind, order_id, data FROM events WHERE seq > ? ORDER BY seq", (after_seq,))
            for seq, at_ns, kind, order_id, data in cursor:
                yield JournalEntry(seq, at_ns, kind, order_id, orjson.loads(data))
        except (sqlite3.Error, ValueError) as error:
            raise JournalError(f"{self.path}: unreadable event: {error}") from None

    def last_seq(self) -> int:
        return self._seq

    def close(self) -> None:
        with self._lock:
            try:
                self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self.connection.close()


class IntentLog:
    """Intents written ahead by the FIX threads: one JSON line each, appended with a plain write.

    A new order, cancel or replace is written here before it is sent to the venue, so that after a
    crash the gateway knows what it may have sent. A write to the page cache survives a crash of the
    process, costs microseconds, and never waits for the state thread's journal transactions. The
    log is rotated when a snapshot is written; recovery reads the previous and the current file.
    """

    def __init__(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "intents.log"
        self.previous = directory / "intents.previous.log"
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, at_ns: int, kind: str, order_id: int, data: dict[str, Any]) -> None:
        line = orjson.dumps([at_ns, kind, order_id, data]) + b"\n"
        with self._lock:
            os.write(self._fd, line)

    def rotate(self) -> None:
        """Start a new file; the current one becomes the previous one (the one before is dropped)."""
        with self._lock:
            os.close(self._fd)
            os.replace(self.path, self.previous)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def entries(self) -> list[tuple[int, str, int, dict[str, Any]]]:
        """Return the intents of the previous and the current file (a torn last line is skipped)."""
        found = []
        for path in (self.previous, self.path):
            if not path.exists():
                continue
            for line in path.read_bytes().splitlines():
                try:
                    at_ns, kind, order_id, data = orjson.loads(line)
                except (orjson.JSONDecodeError, ValueError, TypeError):
                    continue
                found.append((at_ns, kind, order_id, data))
        return found

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)
