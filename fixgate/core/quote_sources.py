"""Which venue's quotes each instrument's quote book takes: its own venue's, or a backup's while the
primary's are stale.

The engine switches by itself, on its service thread, as soon as the primary has sent no quote for
the instrument's `stale_after_ms` while the backup has (and back once the primary quotes again
within half of it). This agent, on the state thread, follows the engine once a second: it logs each
change (`quote_source_changed`) and keeps the current source for /status and the metric
`fixgate_quote_source`.
"""

from __future__ import annotations

import time
from typing import Callable

import structlog

log = structlog.get_logger("fixgate.quotes")


class QuoteSourceAgent:
    name = "quote_sources"

    def __init__(self, symbols: list[str], primaries: list[str], backups: list[str | None], venue_names: list[str],
                 source_of: Callable[[int], int]) -> None:
        self.symbols = symbols
        self.primaries = primaries
        self.backups = backups
        self.venue_names = venue_names
        self.source_of = source_of
        self.sources = dict(zip(symbols, primaries))          # symbol -> venue name
        self.switches = 0
        self.next_check = 0.0

    def do_work(self) -> int:
        now = time.monotonic()
        if now < self.next_check:
            return 0
        self.next_check = now + 1.0
        changed = 0
        for index, (symbol, primary, backup) in enumerate(zip(self.symbols, self.primaries, self.backups)):
            if backup is None:
                continue
            source = self.venue_names[self.source_of(index)]
            if source == self.sources[symbol]:
                continue
            self.sources[symbol] = source
            self.switches += 1
            changed += 1
            if source == backup:
                log.warning("quote_source_changed", symbol=symbol, venue=source, primary=primary,
                            reason=f"quotes from {primary} stale")
            else:
                log.info("quote_source_changed", symbol=symbol, venue=source, backup=backup,
                         reason=f"{primary} quotes again")
        return changed
