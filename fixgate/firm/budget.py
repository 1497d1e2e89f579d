"""Firm-wide limits as budgets: each gateway holds an allocation of every firm limit locally, so the
order path never waits on the network; the allocations never add up to more than the limit.

One key of the firm's bucket per limit (``budget.<limit>``, a client's credit ``budget.credit.<client>``)
holds its ledger: the firm's limit, each gateway's allocation and what each still asks for. Every
change is a compare-and-set on that key, so two gateways that change it at once cannot both win, and
no leader is needed: a gateway running low takes from what is free; when nothing is free it records
what it wants, and a gateway holding more than it uses gives the surplus back, which the one asking
then takes.

A gateway's budget in its risk book (what the hot path checks) is never above its allocation in the
ledger, whatever fails when:

- **taking**: the ledger first, then the book, then the budget file;
- **giving back**: the book first (trimmed to its usage plus a reserve, under the engine lock, so
  that no order is decided in between), then the budget file (on disk), then the ledger.

The budget file (``firm-budgets.json`` in the state directory) lets a gateway restarted without NATS
trade on the allocation it held, and no more, when the ledger confirmed it less than a lease before
(an operator may give a gateway's share back only after two leases without a word from it). A
graceful stop gives back everything the gateway does not use. Amounts are whole units (currency, orders), so the
ledger's sums are exact.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import orjson
import structlog

log = structlog.get_logger("fixgate.firm")

BUDGET_PREFIX = "budget."
STEP_SECONDS = 0.02                    # how often usage is looked at when nothing else wakes the keeper
READ, SET, TRIM = 0, 1, 2              # the book's budget operations (fixgate._fast.risk FirmBudgetOp)
SAMPLES = 1000                         # rebalance latencies kept for /status


def budget_key(meter: str) -> str:
    return f"{BUDGET_PREFIX}{meter}"


# -- THE LEDGER -------------------------------------------------------------------------------------

@dataclass
class Ledger:
    """One firm limit and how it is split: allocations and wants per gateway, in whole units."""

    limit: int
    allocations: dict[str, int] = field(default_factory=dict)
    wants: dict[str, int] = field(default_factory=dict)

    @property
    def allocated(self) -> int:
        return sum(self.allocations.values())

    @property
    def free(self) -> int:
        return max(self.limit - self.allocated, 0)

    def copy(self) -> Ledger:
        return Ledger(self.limit, dict(self.allocations), dict(self.wants))

    def to_bytes(self, by: str = "") -> bytes:
        return orjson.dumps({"limit": self.limit, "allocations": self.allocations, "wants": self.wants,
                             "by": by, "at_ns": time.time_ns()})

    @classmethod
    def from_bytes(cls, data: bytes) -> Ledger:
        return cls.from_value(orjson.loads(data))

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> Ledger:
        return cls(int(value["limit"]), {str(k): int(v) for k, v in value.get("allocations", {}).items()},
                   {str(k): int(v) for k, v in value.get("wants", {}).items()})


def take(ledger: Ledger, gateway: str, amount: int) -> tuple[Ledger, int]:
    """Grant `gateway` up to `amount` of what is free; what it lacks becomes its want. Returns the new
    ledger and the amount granted."""
    after = ledger.copy()
    granted = min(max(amount, 0), after.free)
    if granted:
        after.allocations[gateway] = after.allocations.get(gateway, 0) + granted
    if granted < amount:
        after.wants[gateway] = amount - granted
    else:
        after.wants.pop(gateway, None)
    return after, granted


def give_back(ledger: Ledger, gateway: str, allocation: int) -> Ledger:
    """`gateway` keeps `allocation` (never more than it holds) and gives the rest back."""
    after = ledger.copy()
    held = after.allocations.get(gateway, 0)
    if allocation < held:
        if allocation > 0:
            after.allocations[gateway] = allocation
        else:
            after.allocations.pop(gateway, None)
    return after


def chunk_of(limit: int, share: float) -> int:
    """What a gateway asks for at a time: `share` of the limit, at least one unit."""
    return max(int(limit * share), 1)


# -- ONE GATEWAY'S BUDGETS --------------------------------------------------------------------------

@dataclass(frozen=True)
class Meter:
    """One firm limit as this gateway meters it: the ledger's name, the book's budget kind and session."""

    name: str                        # gross_exposure, daily_notional, daily_orders, credit.<client>
    kind: str                        # the risk book's budget kind
    session: int                     # the client session of a credit, else -1
    limit: int                       # the limit this gateway's configuration gives (the firm's ledger wins)


class BudgetBook(Protocol):
    """The risk book's budgets, as the gateway lets the keeper move them (each call under the engine lock)."""

    def firm_budget(self, kind: str, op: int = READ, value: float | None = 0.0,
                    session: int = -1) -> tuple[float | None, float]: ...


class BookBudgets:
    """The BudgetBook of a risk book used without an engine (one thread: tests and the benchmark)."""

    def __init__(self, book) -> None:
        self.book = book

    def firm_budget(self, kind: str, op: int = READ, value: float | None = 0.0,
                    session: int = -1) -> tuple[float | None, float]:
        if op == SET:
            return self.book.set_firm_budget(kind, value, session_id=session)
        if op == TRIM:
            return self.book.trim_firm_budget(kind, value, session_id=session)
        return self.book.firm_budget(kind, session_id=session)


class BudgetFile:
    """The allocations a gateway's book holds, on disk (written whole, fsynced, then renamed)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self, trust_seconds: float | None = None) -> dict[str, int]:
        """The budgets the file holds; with `trust_seconds`, none when the ledger last confirmed them
        longer ago than that (a gateway stopped that long may have been released by an operator)."""
        try:
            value = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as error:
            log.error("firm_budget_file_unreadable", path=str(self.path), error=str(error))
            return {}
        budgets = {str(name): int(amount) for name, amount in value.get("budgets", {}).items()}
        age_s = (time.time_ns() - int(value.get("confirmed_ns", 0))) / 1e9
        if trust_seconds is not None and age_s > trust_seconds:
            log.warning("firm_budget_file_too_old", path=str(self.path), age_seconds=round(age_s, 3),
                        trusted_seconds=trust_seconds, budgets=budgets)
            return {}
        return budgets

    def save(self, budgets: dict[str, int], confirmed_ns: int, *, durable: bool = True) -> None:
        """Write the budgets, and when the ledger last confirmed them; `durable`: on disk before this
        returns, the rename too (a give-back, which the ledger may only hear of after). A grant needs
        no more than the page cache: a file that lost it holds less than the ledger, never more."""
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            handle.write(orjson.dumps({"budgets": budgets, "confirmed_ns": confirmed_ns, "at_ns": time.time_ns()}))
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        if durable:
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)


def install(book: BudgetBook, meters: list[Meter], saved: dict[str, int]) -> dict[str, int]:
    """At start, before any order: each metered limit's budget is what the file says this gateway held,
    else nothing (it takes its share from the firm once it reaches NATS). Returns the budgets set."""
    budgets = {}
    for meter in meters:
        budgets[meter.name] = max(saved.get(meter.name, 0), 0)
        book.firm_budget(meter.kind, SET, float(budgets[meter.name]), meter.session)
    return budgets


class BudgetKeeper:
    """Keeps this gateway's budgets and the firm's ledgers in step (on the firm link's loop).

    Parameters
    ----------
    gateway : str
    meters : list of Meter
    book : BudgetBook
        Reads, sets and trims the book's budgets.
    budget_file : BudgetFile
    share : float
        The share of a limit asked for at a time (``firm.limits.chunk``).
    """

    def __init__(self, gateway: str, meters: list[Meter], book: BudgetBook, budget_file: BudgetFile, share: float,
                 *, saved: dict[str, int] | None = None, lease_seconds: float = 5.0,
                 explain: Callable[[Meter, str], None] | None = None,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.gateway = gateway
        self.meters = meters
        self.book = book
        self.file = budget_file
        self.share = share
        self.lease_seconds = lease_seconds
        self.clock = clock
        # What `install` put in the book (the file's budgets, when the file was recent enough).
        self.budgets: dict[str, int] = {meter.name: 0 for meter in meters}
        self.budgets.update({name: amount for name, amount in (saved or {}).items() if name in self.budgets})
        self.explain = explain                                # says why the book refuses, with the firm's figures
        self._explained: dict[str, str] = {}
        self._last_take: dict[str, tuple[int, float]] = {}    # name -> (clock, usage) at its last take
        self.confirmed_ns = 0                                 # when the ledger last confirmed the budgets
        self._saved_confirmed_ns = 0
        self._step_error = ""
        self._step_error_ns = 0
        self.ledgers: dict[str, tuple[Ledger, int]] = {}      # name -> (ledger, revision)
        self.wanting_since: dict[str, int] = {}               # name -> clock when it first asked in vain
        self.rebalance_ns: list[int] = []                     # from asking in vain to being granted
        self.conflicts = 0
        self.taken = 0
        self.given = 0
        self._warned_limits: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- STATUS -----------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        meters = {}
        for meter in self.meters:
            budget, usage = self.book.firm_budget(meter.kind, READ, 0.0, meter.session)
            entry = self.ledgers.get(meter.name)
            ledger = entry[0] if entry else None
            meters[meter.name] = {
                "budget": budget, "usage": usage, "firm_limit": ledger.limit if ledger else meter.limit,
                "firm_allocated": ledger.allocated if ledger else None, "wants": ledger.wants.get(self.gateway, 0)
                if ledger else 0}
        samples = sorted(self.rebalance_ns)
        return {"meters": meters, "taken": self.taken, "given_back": self.given, "conflicts": self.conflicts,
                "rebalances": len(samples),
                "rebalance_ms": {"p50": _percentile(samples, 0.5), "p99": _percentile(samples, 0.99),
                                 "max": samples[-1] / 1e6 if samples else None}}

    # -- THE LOOP ---------------------------------------------------------------------------------

    async def run(self, kv) -> None:
        """Create the ledgers that are missing, then follow them and keep the budgets in step."""
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        for meter in self.meters:
            await self._ensure(kv, meter)
        watch = asyncio.ensure_future(self._follow(kv))
        try:
            while True:
                if watch.done():                    # the ledgers would go stale: end the session instead
                    watch.result()
                    raise RuntimeError("the watch of the firm's ledgers ended")
                self._wake.clear()
                for meter in self.meters:
                    try:
                        await self._step(kv, meter)
                    except asyncio.CancelledError:
                        raise
                    except Exception as error:      # a slow answer: the next step tries again
                        self._step_failed(meter, error)
                self._confirm()
                try:
                    await asyncio.wait_for(self._wake.wait(), STEP_SECONDS)
                except asyncio.TimeoutError:
                    pass
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)

    def _step_failed(self, meter: Meter, error: Exception) -> None:
        text = f"{type(error).__name__}: {error}"
        now = time.time_ns()
        if text != self._step_error or now - self._step_error_ns > 5_000_000_000:
            log.warning("firm_budget_step_failed", limit=meter.name, error=text)
            self._step_error, self._step_error_ns = text, now

    def _confirm(self) -> None:
        """Keep the file's confirmation recent while the ledgers are followed (a quarter lease at most
        behind), so that a gateway restarted at once trusts it."""
        if self.confirmed_ns - self._saved_confirmed_ns > self.lease_seconds / 4 * 1e9:
            self._save(durable=False)

    def _save(self, *, durable: bool) -> None:
        self.file.save(dict(self.budgets), self.confirmed_ns, durable=durable)
        self._saved_confirmed_ns = self.confirmed_ns

    async def give_back_unused(self, kv) -> None:
        """At a graceful stop: give the firm back everything this gateway does not use."""
        for meter in self.meters:
            entry = self.ledgers.get(meter.name)
            if entry is not None and entry[0].allocations.get(self.gateway, 0) > 0:
                await self._give_back(kv, meter, entry[0], entry[1], 0.0)

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def notify(self) -> None:
        """Look at the budgets now (any thread: the state thread after a journal write or a budget reject)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not wake.is_set():
            loop.call_soon_threadsafe(wake.set)

    async def _ensure(self, kv, meter: Meter) -> None:
        key = budget_key(meter.name)
        from nats.js.errors import KeyWrongLastSequenceError

        try:
            await kv.create(key, Ledger(meter.limit).to_bytes(self.gateway))
            log.info("firm_limit_recorded", limit=meter.name, value=meter.limit)
        except KeyWrongLastSequenceError:
            pass                                # there already: the firm's ledger stands
        entry = await kv.get(key)
        self._take_entry(meter.name, entry.value, entry.revision)

    async def _follow(self, kv) -> None:
        from fixgate.firm.link import watching

        names = {budget_key(meter.name): meter.name for meter in self.meters}
        async with watching(kv, f"{BUDGET_PREFIX}>") as watcher:
            async for entry in watcher:
                if entry is None or entry.value is None or entry.key not in names:
                    continue
                self._take_entry(names[entry.key], entry.value, entry.revision)
                self.wake()

    def _take_entry(self, name: str, value: bytes, revision: int) -> None:
        try:
            ledger = Ledger.from_bytes(value)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            log.error("firm_ledger_unreadable", limit=name, error=str(error))
            return
        held = self.ledgers.get(name)
        if held is None or held[1] < revision:
            self.ledgers[name] = (ledger, revision)
        self.confirmed_ns = time.time_ns()
        meter = next(meter for meter in self.meters if meter.name == name)
        if ledger.limit != meter.limit and name not in self._warned_limits:
            self._warned_limits.add(name)
            log.warning("firm_limit_differs", limit=name, configured=meter.limit, firm=ledger.limit)

    async def _step(self, kv, meter: Meter) -> None:
        entry = self.ledgers.get(meter.name)
        if entry is None:
            return
        ledger, revision = entry
        mine = ledger.allocations.get(self.gateway, 0)
        budget = self.budgets[meter.name]
        if budget != mine:
            # The book follows the ledger: down when an operator released this gateway's share, up
            # when a grant came before a restart or before the book moved.
            await self._set(meter, mine)
            budget = mine
        _, usage = self.book.firm_budget(meter.kind, READ, 0.0, meter.session)
        chunk = chunk_of(ledger.limit, self.share)
        headroom = budget - usage
        self._explain(meter, ledger, budget)
        if headroom < chunk / 2 or ledger.allocated > ledger.limit:
            if ledger.allocated > ledger.limit:
                await self._give_back(kv, meter, ledger, revision, 0.0)   # the limit was lowered
                return
            await self._take(kv, meter, ledger, revision, self._ask(meter, usage, chunk))
            return
        if self.gateway in ledger.wants:                      # enough now: ask no more
            await self._write(kv, meter, ledger, revision, take(ledger, self.gateway, 0)[0])
            self.wanting_since.pop(meter.name, None)
            return
        if headroom > chunk * 0.75 and any(amount > 0 for name, amount in ledger.wants.items()
                                           if name != self.gateway):
            await self._give_back(kv, meter, ledger, revision, chunk / 2)     # it keeps half a chunk

    def _explain(self, meter: Meter, ledger: Ledger, budget: int) -> None:
        """Tell the book's rejects where the firm stands, when that changed."""
        if self.explain is None:
            return
        if ledger.allocated > ledger.limit:
            text = (f"the firm's limit was lowered to {ledger.limit:,}, under the {ledger.allocated:,} allocated: "
                    "no gateway takes more until they fit")
        elif ledger.free > 0:
            text = (f"{ledger.free:,} of the firm's {ledger.limit:,} are not allocated yet; this gateway holds "
                    f"{budget:,} and takes more as it runs low")
        else:
            text = (f"the firm's {ledger.limit:,} are allocated in full, {budget:,} to this gateway; it asks the "
                    "others for what they do not use")
        if self._explained.get(meter.name) != text:
            self._explained[meter.name] = text
            self.explain(meter, text)

    def _ask(self, meter: Meter, usage: float, chunk: int) -> int:
        """A chunk, or more under a burst: twice what went since the last take if that was within
        half a second (at most four chunks)."""
        now = self.clock()
        last = self._last_take.get(meter.name)
        self._last_take[meter.name] = (now, usage)
        if last is None or now - last[0] > 500_000_000:
            return chunk
        return int(min(max(chunk, 2 * (usage - last[1])), 4 * chunk))

    async def _take(self, kv, meter: Meter, ledger: Ledger, revision: int, chunk: int) -> None:
        after, granted = take(ledger, self.gateway, chunk)
        if after.allocations == ledger.allocations and after.wants == ledger.wants:
            if not granted:
                self.wanting_since.setdefault(meter.name, self.clock())
            return
        if not await self._write(kv, meter, ledger, revision, after):
            return
        if granted:
            self.taken += granted
            await self._set(meter, after.allocations[self.gateway])
            since = self.wanting_since.pop(meter.name, None)
            if since is not None:
                self._sample(self.clock() - since)
        if granted < chunk:
            self.wanting_since.setdefault(meter.name, self.clock())

    async def _give_back(self, kv, meter: Meter, ledger: Ledger, revision: int, keep: float) -> None:
        held = ledger.allocations.get(self.gateway, 0)
        trimmed, _ = self.book.firm_budget(meter.kind, TRIM, keep, meter.session)
        keep_units = min(int(math.ceil(trimmed)) if trimmed is not None else held, held)
        # Whole units again, within what it held (the trim may have left a fraction, or nothing to give).
        self.book.firm_budget(meter.kind, SET, float(keep_units), meter.session)
        if keep_units >= held:
            return
        self.budgets[meter.name] = keep_units
        self._save(durable=True)                    # on disk before the ledger hears of it
        for _ in range(8):
            if await self._write(kv, meter, ledger, revision, give_back(ledger, self.gateway, keep_units)):
                self.given += held - keep_units
                return
            ledger, revision = self.ledgers[meter.name]     # a lost race: `_write` read the ledger again

    async def _set(self, meter: Meter, amount: int) -> None:
        """The book's budget becomes `amount` (the ledger holds at least that much), then the file."""
        before = self.budgets[meter.name]
        self.budgets[meter.name] = amount
        self.book.firm_budget(meter.kind, SET, float(amount), meter.session)
        self._save(durable=amount < before)

    async def _write(self, kv, meter: Meter, before: Ledger, revision: int, after: Ledger) -> bool:
        """Compare-and-set the ledger; False when another gateway changed it first (it is read again)."""
        from nats.js.errors import KeyWrongLastSequenceError

        key = budget_key(meter.name)
        try:
            new_revision = await kv.update(key, after.to_bytes(self.gateway), last=revision)
        except KeyWrongLastSequenceError:
            self.conflicts += 1
            entry = await kv.get(key)
            self._take_entry(meter.name, entry.value, entry.revision)
            return False
        held = self.ledgers.get(meter.name)
        if held is None or held[1] < new_revision:
            self.ledgers[meter.name] = (after, new_revision)
        self.confirmed_ns = time.time_ns()
        return True

    def _sample(self, elapsed_ns: int) -> None:
        self.rebalance_ns.append(elapsed_ns)
        if len(self.rebalance_ns) > SAMPLES:
            del self.rebalance_ns[: len(self.rebalance_ns) - SAMPLES]


def _percentile(samples: list[int], q: float) -> float | None:
    if not samples:
        return None
    return round(samples[min(int(q * len(samples)), len(samples) - 1)] / 1e6, 3)


# -- REBALANCE LATENCY ------------------------------------------------------------------------------

async def measure_rebalances(settings, books: list, directory: Path, rounds: int, *,
                             order: Callable[[Any, float], Callable[[], None]]) -> dict[str, Any]:
    """Two gateways' keepers on the firm of `settings` (real NATS), sharing a gross exposure limit of
    100,000 in chunks of 50,000. Each round one of them takes on an order that leaves it less than half
    a chunk; nothing is free, so it asks, the other gives back what it does not use, and it takes that.
    `order(book, notional)` puts an order in the book and returns what takes it out again. Returns each
    round's latency, from asking in vain to the grant in the book (ms)."""
    from fixgate.firm.control import _bucket, _connect

    client = await _connect(settings)
    try:
        kv = await _bucket(client, settings)
        try:
            await kv.delete(budget_key("gross_exposure"))
        except Exception:
            pass
        meter = Meter("gross_exposure", "gross_exposure", -1, 100_000)
        keepers = []
        for index, book in enumerate(books):
            budgets = BookBudgets(book)
            install(budgets, [meter], {})
            keepers.append(BudgetKeeper(f"bench{index + 1}", [meter], budgets,
                                        BudgetFile(directory / f"bench{index + 1}-budgets.json"), 0.5))
        tasks = [asyncio.ensure_future(keeper.run(kv)) for keeper in keepers]
        try:
            deadline = time.monotonic() + 10
            while any(keeper.budgets["gross_exposure"] < 50_000 for keeper in keepers):
                if time.monotonic() > deadline:
                    raise RuntimeError("the keepers did not take their first chunks")
                await asyncio.sleep(0.01)
            samples = []
            for number in range(rounds):
                needy = keepers[number % 2]
                before = len(needy.rebalance_ns)
                release = order(needy.book.book, needy.budgets["gross_exposure"] - 10_000)   # 10,000 left
                needy.notify()
                deadline = time.monotonic() + 5
                while len(needy.rebalance_ns) == before:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"round {number}: no rebalance within 5 s")
                    await asyncio.sleep(0.002)
                samples.append(needy.rebalance_ns[-1] / 1e6)
                release()
                needy.notify()
                await asyncio.sleep(0.01)
                entry = await kv.get(budget_key("gross_exposure"))
                if Ledger.from_bytes(entry.value).allocated > 100_000:
                    raise AssertionError(f"round {number}: the allocations exceed the limit")
            return {"samples_ms": samples, "conflicts": sum(keeper.conflicts for keeper in keepers)}
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await client.close()
