"""The journal: every order event, risk-state change and admin action, on disk, in order.

Written by the state thread, off the order path, one transaction per pass. The engine's events are
stored as they were drained: one row per batch holding the batch's 256-byte records (``fg_event``,
see ``fixgate.core.events``), so a busy pass costs one insert, and replay reads the same bytes the
state thread applied. Risk-state changes and admin actions are notes (JSON). A snapshot of the live
state is written every `snapshot_every` events, so that a restart replays the snapshot plus the tail.
The default store is SQLite in WAL mode in the gateway's state directory (embedded, nothing to set
up); `Journal` is the interface another store would implement.

Durability: ``synchronous=NORMAL`` in WAL mode survives a crash of the process (what a kill -9
tests); a power loss may drop the last transactions, which the venues' and clients' resend and the
reconciliation after logon then restore.

The intent log is the engine's write-ahead: it appends each intent (a new order, a cancel, a
replace) as the same 256-byte record with a plain write before the message goes to the venue.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

import orjson

from fixgate.core.events import EVENT_BYTES, Event, events_from_bytes

SCHEMA_VERSION = 2


class JournalError(RuntimeError):
    """The journal cannot be read or written: refuse to trade rather than start from nothing."""


@dataclass(frozen=True)
class Batch:
    """Events drained in one pass: their sequence, when they were written, and their records."""

    seq: int
    at_ns: int
    data: bytes

    @property
    def count(self) -> int:
        return len(self.data) // EVENT_BYTES

    def events(self) -> list[Event]:
        return events_from_bytes(self.data)


@dataclass(frozen=True)
class Note:
    """A risk-state change or an admin action."""

    seq: int
    at_ns: int
    kind: str
    data: dict[str, Any]


class Journal(Protocol):
    def write(self, batches: list[tuple[int, bytes]], notes: list[tuple[int, str, dict[str, Any]]]) -> int: ...
    def write_snapshot(self, seq: int, state: dict[str, Any]) -> None: ...
    def latest_snapshot(self) -> tuple[int, dict[str, Any]] | None: ...
    def batches(self, after_seq: int = 0, since_ns: int = 0) -> Iterator[Batch]: ...
    def notes(self) -> Iterator[Note]: ...
    def last_seq(self) -> int: ...
    def close(self) -> None: ...


class SqliteJournal:
    """The journal in one SQLite file (WAL mode).

    Parameters
    ----------
    path : Path
        The database file; created with its schema when missing.
    create : bool
        Create the file when it does not exist (False: a missing journal is an error).

    Raises
    ------
    JournalError
        When the file exists but is not a readable fixgate journal of this schema, or is missing
        and `create` is False.
    """

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise JournalError(f"{self.path}: no journal here")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self.connection = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            self.connection.executescript("""
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS batches (
                    seq INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL);
                CREATE INDEX IF NOT EXISTS batches_at ON batches (at_ns);
                CREATE TABLE IF NOT EXISTS notes (
                    seq INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS snapshots (
                    seq INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, data TEXT NOT NULL);
            """)
            version = self.connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if version is None:
                if self.connection.execute("SELECT name FROM sqlite_master WHERE name = 'events'").fetchone():
                    raise JournalError(f"{self.path}: a journal of schema 1 (before the native order path), "
                                       f"this gateway reads {SCHEMA_VERSION}; see `fixgate recover --help`")
                self.connection.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(version[0]) != SCHEMA_VERSION:
                raise JournalError(f"{self.path}: journal schema {version[0]}, this gateway reads {SCHEMA_VERSION}; "
                                   "see `fixgate recover --help`")
            self.connection.execute("PRAGMA quick_check").fetchone()
            # Names this journal wherever its events are copied (a new state directory is a new journal).
            self.connection.execute("INSERT OR IGNORE INTO meta VALUES ('journal_id', ?)", (uuid.uuid4().hex[:16],))
            self.journal_id = self.connection.execute("SELECT value FROM meta WHERE key = 'journal_id'").fetchone()[0]
            self._seq = self.connection.execute("SELECT COALESCE(MAX(seq), 0) FROM batches").fetchone()[0]
            self.events_written = 0
        except sqlite3.DatabaseError as error:
            raise JournalError(f"{self.path}: not a readable journal ({error}); see `fixgate recover --help`") from None

    def write(self, batches: list[tuple[int, bytes]], notes: list[tuple[int, str, dict[str, Any]]]) -> int:
        """Append event batches (at_ns, records) and notes (at_ns, kind, data) in one transaction;
        return the last batch sequence."""
        if not batches and not notes:
            return self._seq
        with self._lock:
            rows = []
            seq = self._seq
            for at_ns, data in batches:
                if len(data) % EVENT_BYTES:
                    raise JournalError(f"{self.path}: a batch of {len(data)} bytes is not whole events")
                seq += 1
                rows.append((seq, at_ns, len(data) // EVENT_BYTES, data))
            try:
                self.connection.execute("BEGIN")
                if rows:
                    self.connection.executemany("INSERT INTO batches VALUES (?, ?, ?, ?)", rows)
                if notes:
                    self.connection.executemany("INSERT INTO notes (at_ns, kind, data) VALUES (?, ?, ?)",
                                                [(at_ns, kind, orjson.dumps(data).decode())
                                                 for at_ns, kind, data in notes])
                self.connection.execute("COMMIT")
            except sqlite3.Error as error:
                if self.connection.in_transaction:
                    self.connection.execute("ROLLBACK")
                raise JournalError(f"{self.path}: cannot write: {error}") from None
            self._seq = seq
            self.events_written += sum(row[2] for row in rows)
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

    def batches(self, after_seq: int = 0, since_ns: int = 0) -> Iterator[Batch]:
        """Yield the batches after `after_seq` (and written at or after `since_ns`), in order."""
        try:
            cursor = self.connection.execute(
                "SELECT seq, at_ns, data FROM batches WHERE seq > ? AND at_ns >= ? ORDER BY seq", (after_seq, since_ns))
            while True:
                rows = cursor.fetchmany(256)
                if not rows:
                    break
                for seq, at_ns, data in rows:
                    if len(data) % EVENT_BYTES:
                        raise JournalError(f"{self.path}: batch {seq} holds {len(data)} bytes, not whole events")
                    yield Batch(seq, at_ns, bytes(data))
        except sqlite3.Error as error:
            raise JournalError(f"{self.path}: unreadable batch: {error}") from None

    def notes(self) -> Iterator[Note]:
        try:
            for seq, at_ns, kind, data in self.connection.execute("SELECT seq, at_ns, kind, data FROM notes ORDER BY seq"):
                yield Note(seq, at_ns, kind, orjson.loads(data))
        except (sqlite3.Error, ValueError) as error:
            raise JournalError(f"{self.path}: unreadable note: {error}") from None

    def last_seq(self) -> int:
        return self._seq

    def close(self) -> None:
        with self._lock:
            try:
                self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self.connection.close()


class JournalReader:
    """A read-only view of a journal on its own connection, for a thread other than the writer's
    (WAL mode: it reads what was committed while the writer goes on).

    Raises
    ------
    JournalError
        When the file is not a journal.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            row = self.connection.execute("SELECT value FROM meta WHERE key = 'journal_id'").fetchone()
        except sqlite3.Error as error:
            raise JournalError(f"{self.path}: cannot read the journal: {error}") from None
        if row is None:
            raise JournalError(f"{self.path}: a journal without an id (opened by an older gateway)")
        self.journal_id: str = row[0]

    def batches_after(self, seq: int, limit: int) -> list[Batch]:
        """Return up to `limit` batches after `seq`, in order."""
        try:
            rows = self.connection.execute("SELECT seq, at_ns, data FROM batches WHERE seq > ? ORDER BY seq LIMIT ?",
                                           (seq, limit)).fetchall()
        except sqlite3.Error as error:
            raise JournalError(f"{self.path}: unreadable batch: {error}") from None
        return [Batch(row_seq, at_ns, bytes(data)) for row_seq, at_ns, data in rows]

    def notes_after(self, seq: int, limit: int) -> list[Note]:
        """Return up to `limit` notes after `seq`, in order."""
        try:
            rows = self.connection.execute("SELECT seq, at_ns, kind, data FROM notes WHERE seq > ? ORDER BY seq LIMIT ?",
                                           (seq, limit)).fetchall()
            return [Note(row_seq, at_ns, kind, orjson.loads(data)) for row_seq, at_ns, kind, data in rows]
        except (sqlite3.Error, ValueError) as error:
            raise JournalError(f"{self.path}: unreadable note: {error}") from None

    def backlog(self, batch_seq: int, note_seq: int) -> dict[str, int]:
        """Return how many batches, events and notes come after the given sequences, and when the
        oldest of them was written (0: none)."""
        try:
            batches, events, oldest = self.connection.execute(
                "SELECT COUNT(*), COALESCE(SUM(count), 0), COALESCE(MIN(at_ns), 0) FROM batches WHERE seq > ?",
                (batch_seq,)).fetchone()
            notes, oldest_note = self.connection.execute(
                "SELECT COUNT(*), COALESCE(MIN(at_ns), 0) FROM notes WHERE seq > ?", (note_seq,)).fetchone()
        except sqlite3.Error as error:
            raise JournalError(f"{self.path}: cannot read the journal: {error}") from None
        oldest = min(value for value in (oldest, oldest_note) if value) if (oldest or oldest_note) else 0
        return {"batches": batches, "events": events, "notes": notes, "oldest_ns": oldest}

    def close(self) -> None:
        self.connection.close()


class IntentLog:
    """The engine's write-ahead file of intents, as recovery reads it.

    The engine appends every intent as one 256-byte record to ``intents.log`` before it sends; when
    the journal writes a snapshot the file is rotated (the engine renames it to
    ``intents.previous.log`` and starts a new one), so the two files together hold every intent
    that the journal may not have yet.
    """

    def __init__(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "intents.log"
        self.previous = directory / "intents.previous.log"

    def events(self) -> list[Event]:
        """Return the intents of the previous and the current file (a torn last record is skipped)."""
        found: list[Event] = []
        for path in (self.previous, self.path):
            if path.exists():
                found.extend(events_from_bytes(path.read_bytes()))
        return found
