"""FIX message logs in files, with passwords masked.

QuickFIX's own FileLog writes every message as it came, Password(554) included. The applications
write their message log themselves instead, from the callbacks that see every message (fromAdmin,
toAdmin, fromApp, toApp), with the password replaced, so credentials never reach a log file.

Lines are buffered and written out by a background thread every `flush_interval_s` (50 ms) and at
close, not by a system call per message on the FIX threads: a write releases the GIL, and on a busy
gateway each release is a hand-off between threads. The message log is an audit record, not state
(QuickFIX's stores and the journal are what a restart reads), so a hard kill can lose at most the
last interval of lines.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import TextIO

from fixgate.fix.codec import SessionNames, format_utc_timestamp

PASSWORD = re.compile("(?:(?<=\x01)|^)554=[^\x01]*")
MASK = "554=********"


def mask_credentials(text: str) -> str:
    """Return a raw FIX message with Password(554) masked."""
    return PASSWORD.sub(MASK, text) if "554=" in text else text


class MessageLog:
    """One line per message in and out, per session: ``<dir>/<session>.messages.log``.

    Parameters
    ----------
    directory : Path
        Where the files go.
    flush_interval_s : float
        How often buffered lines are written out (also at `flush` and `close`).
    """

    def __init__(self, directory: Path, *, flush_interval_s: float = 0.05) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, TextIO] = {}
        self._lock = threading.Lock()
        self.closed = False
        self.errors = 0
        self.flush_interval_s = flush_interval_s
        self._names = SessionNames()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_periodically, name="fixgate-fixlog", daemon=True)
        self._flusher.start()

    def _flush_periodically(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()

    def flush(self) -> None:
        """Write out every buffered line; never raises, but counts what it could not write."""
        with self._lock:
            for handle in self._files.values():
                try:
                    handle.flush()
                except Exception:
                    self.errors += 1

    def _file(self, session: str) -> TextIO | None:
        handle = self._files.get(session)
        if handle is None and not self.closed:
            with self._lock:
                handle = self._files.get(session)
                if handle is None:
                    name = session.replace(":", "-").replace(">", "").replace("/", "_")
                    handle = open(self.directory / f"{name}.messages.log", "a", encoding="utf-8",  # noqa: SIM115
                                  buffering=1 << 16)
                    self._files[session] = handle
        return handle

    def write(self, session_id, message, direction: str) -> None:
        """Log `message` (a QuickFIX message or its text) of `session_id` ('in' or 'out'), password
        masked; never raises (a full disk must not stop trading), but counts what it could not write."""
        try:
            self.write_text(self._names(session_id), message if isinstance(message, str) else message.toString(),
                            direction)
        except Exception:
            self.errors += 1

    def write_text(self, session: str, text: str, direction: str) -> None:
        """Log the raw message `text` of `session` (its SessionID as text), as `write` does."""
        try:
            handle = self._file(session)
            if handle is not None:
                line = mask_credentials(text).replace("\x01", "|")
                with self._lock:
                    if not self.closed:
                        handle.write(f"{format_utc_timestamp(time.time_ns())} {direction} {line}\n")
        except Exception:
            self.errors += 1

    def close(self) -> None:
        """Write out what is buffered and close every file."""
        self._stop.set()
        with self._lock:
            self.closed = True
            for handle in self._files.values():
                try:
                    handle.close()
                except Exception:
                    self.errors += 1
            self._files.clear()
