"""A gateway's link to its firm over NATS JetStream: its events out, the firm-wide kill switch in.

One thread runs an asyncio loop with the NATS client (nats-py); nothing on the order path waits on
it. What it does, once connected:

- **Publishes the journal.** The journal is the source of truth and the link only ever copies it:
  after each transaction the state thread wakes the link, which reads the batches and notes after
  the last one JetStream acknowledged and publishes them in order, one at a time, each with a
  message id made of the gateway, the journal's id and the entry's sequence. A message is only
  published after the one before it was acknowledged, so a consumer sees every gateway's events
  complete and in order; a re-publish (after a timeout, a reconnect or a restart) is a duplicate
  that JetStream drops. Where to start is read back from the stream at each connection (the last
  message of each of the gateway's subjects), so a restart or an outage of any length resumes
  exactly after the last event the stream holds.
- **Obeys the firm-wide kill switch.** It watches the bucket's ``kill`` key; a kill puts the
  gateway into KILL_SWITCH (through the state thread, as an operator's kill would), a release
  takes a kill of the firm's away (never a local one), and each is confirmed under
  ``confirm.<gateway>``.
- **Holds a lease.** It announces the gateway (build, risk state, backlog) every quarter lease.
  A gateway that has not reached NATS for longer than the lease could be missing a kill: it goes
  reduce-only until it reaches NATS again (at once, with ``reduce_only_when_unreachable``).
- **Keeps the firm's budgets** (``fixgate.firm.budget``): this gateway's share of each firm-wide
  limit, taken from and given back to the firm's ledgers by compare-and-set.
- **Checks the build.** When the firm names an expected build (``build.expected``) and this
  gateway runs another, it is reduce-only until an operator confirms it
  (``build.confirmed.<gateway>``).

With NATS unreachable the gateway trades on (its journal fills, the link counts the backlog) and
catches up when NATS is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import orjson
import structlog

from fixgate.core.clock import iso_time
from fixgate.core.events import EVENT_BYTES
from fixgate.core.journal import JournalError, JournalReader
from fixgate.firm import names as n

log = structlog.get_logger("fixgate.firm")

SECOND = 1_000_000_000
PUBLISH_TIMEOUT_S = 2.0
READ_LIMIT = 64                 # journal rows read at a time
# At most this many bytes of records per message (NATS refuses payloads above its max_payload, 1 MiB
# by default): a larger journal batch goes as consecutive parts.
PART_BYTES = 1024 * EVENT_BYTES
LEASE_REASON = "lease"
BUILD_REASON = "build"


@contextlib.asynccontextmanager
async def watching(kv, keys: str):
    """A key-value watch that is stopped when the block ends, cancelled or not (else its tasks are
    left pending when the loop closes)."""
    watcher = await kv.watch(keys)
    try:
        yield watcher
    finally:
        try:
            await asyncio.shield(watcher.stop())
        except BaseException:                       # the connection may be gone already
            pass


class FirmHooks(Protocol):
    """What the link asks of its gateway (each may block for a short while; called off the loop)."""

    def firm_kill(self, actor: str, reason: str) -> str: ...           # returns the risk state after
    def firm_resume(self, actor: str) -> str: ...
    def set_reduce_only(self, key: str, reason: str | None) -> None: ...
    def firm_announcement(self) -> dict[str, Any]: ...


class FirmLink:
    """The link of gateway `gateway` to the firm of `settings` (a ``FirmSettings``).

    Parameters
    ----------
    settings : fixgate.config.FirmSettings
    gateway : str
        This gateway's name (a subject token).
    journal_path : Path
        The journal the link copies to the stream (read on the link's own connection).
    hooks : FirmHooks
    build : dict
        version, commit and config_sha256 of this gateway.
    """

    def __init__(self, settings, gateway: str, journal_path: Path, hooks: FirmHooks, *,
                 build: dict[str, str], budgets=None) -> None:
        self.settings = settings
        self.names = n.FirmNames(settings.name)
        self.gateway = gateway
        self.journal_path = Path(journal_path)
        self.hooks = hooks
        self.build = build
        self.budgets = budgets                      # a fixgate.firm.budget.BudgetKeeper, or None
        self.lease_ns = int(settings.lease_seconds * SECOND)
        # Written only by the link's thread; read by /status and the metrics (plain values).
        self.connected = False
        self.server = ""                              # host:port of the NATS server connected to
        self.connects = 0
        self.last_contact_ns = time.time_ns()       # the lease counts from the start
        self.down_since_ns: int | None = None
        self.last_error = ""
        self.cursors = {n.ORDERS: 0, "notes": 0}
        self.published = {"batches": 0, "events": 0, "notes": 0, "duplicates": 0}
        self.publish_failures = 0
        self.backlog = {"batches": 0, "events": 0, "notes": 0, "oldest_ns": 0}
        self.applied_kill: dict[str, Any] | None = None
        self._kill_received_ns = 0
        self.reduce_only: dict[str, str] = {}
        self.expected_build: dict[str, Any] | None = None
        self.confirmed_build: dict[str, Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._idle = False
        self._stopping = False
        self._caught_up = threading.Event()
        self._flush_request = 0
        self._thread = threading.Thread(target=self._run, name="fixgate-firm", daemon=True)
        self.reader: JournalReader | None = None

    # -- ANY THREAD -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """The journal has new entries (the state thread, after each transaction)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and self._idle:
            self._idle = False
            loop.call_soon_threadsafe(wake.set)

    def stop(self, timeout: float = 3.0) -> None:
        """Publish what the journal holds (for up to `timeout` while connected), then disconnect."""
        if not self._thread.is_alive():
            return
        self.notify()
        if self.connected:
            # Only a pass that starts after this request may say it caught up: one that started
            # before it may have read the journal before its last transaction.
            self._flush_request += 1
            self._caught_up.clear()
            loop, wake = self._loop, self._wake
            if loop is not None and wake is not None:
                loop.call_soon_threadsafe(wake.set)
            self._caught_up.wait(timeout)
        self._stopping = True
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(lambda: None)
        self._thread.join(timeout + 2.0)

    def describe(self) -> dict[str, Any]:
        """The link for /status."""
        now = time.time_ns()
        return {
            "firm": self.settings.name, "servers": list(self.settings.servers), "connected": self.connected,
            "server": self.server if self.connected else "",
            "connects": self.connects, "last_contact_age_s": round((now - self.last_contact_ns) / SECOND, 3),
            "lease_seconds": self.settings.lease_seconds,
            "down_since": iso_time(self.down_since_ns) if self.down_since_ns else None,
            "last_error": self.last_error, "published": dict(self.published),
            "publish_failures": self.publish_failures, "backlog": {
                "batches": self.backlog["batches"], "events": self.backlog["events"], "notes": self.backlog["notes"],
                "oldest_age_s": round((now - self.backlog["oldest_ns"]) / SECOND, 3) if self.backlog["oldest_ns"]
                else 0.0},
            "kill": self.applied_kill, "reduce_only": dict(self.reduce_only),
            "expected_build": self.expected_build,
            "budgets": self.budgets.describe() if self.budgets is not None else None,
        }

    # -- THE LINK'S THREAD ------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except Exception:
            log.exception("firm_link_failed")
        finally:
            loop.close()

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        try:
            self.reader = JournalReader(self.journal_path)
        except JournalError as error:
            log.error("firm_link_cannot_read_journal", error=str(error))
            return
        lease = asyncio.ensure_future(self._watch_lease())
        backoff = 0.2
        try:
            while not self._stopping:
                if await self._session():
                    backoff = 0.2
                if self._stopping:
                    break
                await self._sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        finally:
            lease.cancel()
            self.reader.close()

    async def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            await asyncio.sleep(min(0.05, max(deadline - time.monotonic(), 0)))

    async def _session(self) -> bool:
        """Connect, then publish, watch and announce until the connection ends; True if it was up."""
        import nats
        from nats.js.api import KeyValueConfig, StorageType, StreamConfig

        ended = asyncio.Event()

        async def on_closed() -> None:
            ended.set()

        async def on_error(error: Exception) -> None:
            self.last_error = str(error) or type(error).__name__

        try:
            client = await nats.connect(
                servers=list(self.settings.servers), name=f"fixgate-{self.gateway}",
                connect_timeout=self.settings.connect_timeout_seconds, allow_reconnect=False,
                max_reconnect_attempts=1, reconnect_time_wait=0.1,     # the first connection: each server twice
                ping_interval=1, max_outstanding_pings=2, closed_cb=on_closed, disconnected_cb=on_closed,
                error_cb=on_error)
        except Exception as error:
            self._link_lost(f"cannot connect to {', '.join(self.settings.servers)}: {error or type(error).__name__}")
            return False
        tasks: list[asyncio.Future] = []
        try:
            js = client.jetstream(timeout=PUBLISH_TIMEOUT_S)
            stream = StreamConfig(name=self.names.stream, subjects=[self.names.all_subjects],
                                  storage=StorageType.FILE, num_replicas=self.settings.replicas,
                                  duplicate_window=float(self.settings.duplicate_window_seconds))
            try:
                await js.add_stream(stream)
            except Exception:
                await js.update_stream(stream)      # there already, perhaps with another window
            try:
                kv = await js.key_value(self.names.bucket)
            except Exception:
                kv = await js.create_key_value(KeyValueConfig(bucket=self.names.bucket, history=64,
                                                              replicas=self.settings.replicas))
            await self._resume_cursors(js)
            self.connected = True
            self.server = client.connected_url.netloc if client.connected_url is not None else ""
            self.connects += 1
            self._contact()
            log.info("firm_link_connected", firm=self.settings.name, servers=list(self.settings.servers),
                     orders_after=self.cursors[n.ORDERS], notes_after=self.cursors["notes"])
            tasks = [asyncio.ensure_future(coroutine) for coroutine in (
                self._publish(js), self._watch_kill(kv), self._watch_builds(kv), self._announce(kv),
                ended.wait(), self._until_stopping())]
            if self.budgets is not None:
                tasks.append(asyncio.ensure_future(self.budgets.run(kv)))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()
            if self._stopping:
                await self._leave(kv, tasks)
            return True
        except Exception as error:
            self._link_lost(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
            return self.connected
        finally:
            for task in tasks:
                task.cancel()
            # Let each end (its watches stopped) while the connection is still open.
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.connected:
                self.connected = False
                if not self._stopping:
                    self._link_lost(self.last_error or "the connection to NATS ended")
            try:
                await client.close()
            except Exception:
                pass

    async def _leave(self, kv, tasks: list[asyncio.Future]) -> None:
        """A graceful stop: the watches and the keeper end, the firm gets back what this gateway does
        not use, and the last announcement says it stopped (for up to 2 s each)."""
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            if self.budgets is not None:
                await asyncio.wait_for(self.budgets.give_back_unused(kv), 2.0)
            await asyncio.wait_for(self._announce_once(kv, stopped=True), 2.0)
        except Exception as error:
            log.warning("firm_leave_incomplete", error=f"{type(error).__name__}: {error}")

    async def _until_stopping(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.05)

    def _contact(self) -> None:
        self.last_contact_ns = time.time_ns()
        if self.down_since_ns is not None:
            log.warning("firm_link_restored", down_seconds=round((self.last_contact_ns - self.down_since_ns) / SECOND, 3))
            self.down_since_ns = None
        if LEASE_REASON in self.reduce_only:
            self._set_reduce_only(LEASE_REASON, None)

    def _link_lost(self, error: str) -> None:
        self.last_error = error
        if self.down_since_ns is None:
            self.down_since_ns = time.time_ns()
            log.error("firm_link_lost", error=error, backlog_events=self.backlog["events"])
            if self.settings.reduce_only_when_unreachable:
                self._set_reduce_only(LEASE_REASON, self._lease_text())

    def _lease_text(self) -> str:
        since = self.down_since_ns or self.last_contact_ns
        return (f"the firm link (NATS) is down since {iso_time(since)}, so a firm-wide kill could be missed")

    def _set_reduce_only(self, key: str, reason: str | None) -> None:
        if reason is None:
            if self.reduce_only.pop(key, None) is None:
                return
        elif self.reduce_only.get(key) == reason:
            return
        else:
            self.reduce_only[key] = reason
        self.hooks.set_reduce_only(key, reason)

    async def _watch_lease(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(0.1)
            ticks += 1
            if not self.connected and ticks % 5 == 0 and self.reader is not None:
                try:                                # what waits for NATS, counted while it is away
                    self.backlog = self.reader.backlog(self.cursors[n.ORDERS], self.cursors["notes"])
                except JournalError as error:
                    self.last_error = str(error)
            if (time.time_ns() - self.last_contact_ns > self.lease_ns and LEASE_REASON not in self.reduce_only):
                if self.down_since_ns is None:
                    self.down_since_ns = self.last_contact_ns
                self._set_reduce_only(LEASE_REASON, self._lease_text())

    # -- PUBLISHING -------------------------------------------------------------------------------

    async def _resume_cursors(self, js) -> None:
        """Start after the last entry of this journal that the stream holds, per subject."""
        reader = self.reader
        assert reader is not None
        last = {}
        for kind in n.KINDS:
            try:
                message = await js.get_last_msg(self.names.stream, self.names.subject(self.gateway, kind))
            except Exception as error:
                if "no message found" in str(error).lower() or type(error).__name__ == "NotFoundError":
                    continue
                raise
            headers = message.headers or {}
            if headers.get(n.JOURNAL) == reader.journal_id:
                seq = int(headers.get(n.SEQUENCE, 0))
                part, _, parts = headers.get(n.PART, "1/1").partition("/")
                # The last part of a batch ends it; before it, that batch goes again (the parts the
                # stream holds are duplicates, dropped).
                last[kind] = seq if part == parts else seq - 1
        self.cursors[n.ORDERS] = last.get(n.ORDERS, 0)
        self.cursors["notes"] = max(last.get(n.RISK, 0), last.get(n.ADMIN, 0))

    async def _publish(self, js) -> None:
        reader = self.reader
        assert reader is not None and self._wake is not None
        while True:
            self._wake.clear()
            request = self._flush_request
            sent = 0
            for batch in await self._read(reader.batches_after, self.cursors[n.ORDERS]):
                parts = max((len(batch.data) + PART_BYTES - 1) // PART_BYTES, 1)
                for part in range(parts):
                    data = batch.data[part * PART_BYTES:(part + 1) * PART_BYTES]
                    await self._send(js, n.ORDERS, batch.seq, batch.at_ns, data,
                                     {n.COUNT: str(len(data) // EVENT_BYTES), n.FORMAT: n.EVENTS_FORMAT,
                                      n.PART: f"{part + 1}/{parts}"}, part=part + 1 if parts > 1 else 0)
                self.cursors[n.ORDERS] = batch.seq
                self.published["batches"] += 1
                self.published["events"] += batch.count
                sent += 1
            for note in await self._read(reader.notes_after, self.cursors["notes"]):
                await self._send(js, n.note_kind(note.kind), note.seq, note.at_ns,
                                 orjson.dumps({"kind": note.kind, **note.data}), {n.FORMAT: n.NOTE_FORMAT})
                self.cursors["notes"] = note.seq
                self.published["notes"] += 1
                sent += 1
            if sent:
                continue
            self._idle = True                       # from here on, a journal write wakes the wait below
            self.backlog = reader.backlog(self.cursors[n.ORDERS], self.cursors["notes"])
            if self.backlog["batches"] or self.backlog["notes"]:
                self._idle = False
                continue
            if request == self._flush_request:
                self._caught_up.set()
            try:
                await asyncio.wait_for(self._wake.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
            self._idle = False

    async def _read(self, read, after: int) -> list:
        rows = read(after, READ_LIMIT)
        if rows:
            self.backlog = self.reader.backlog(self.cursors[n.ORDERS], self.cursors["notes"])
        return rows

    async def _send(self, js, kind: str, seq: int, written_ns: int, payload: bytes, extra: dict[str, str], *,
                    part: int = 0) -> None:
        reader = self.reader
        assert reader is not None
        message_id = self.names.message_id(self.gateway, reader.journal_id, kind, seq)
        headers = {"Nats-Msg-Id": f"{message_id}.{part}" if part else message_id,
                   n.GATEWAY: self.gateway, n.JOURNAL: reader.journal_id, n.SEQUENCE: str(seq),
                   n.WRITTEN_NS: str(written_ns), **extra}
        try:
            ack = await js.publish(self.names.subject(self.gateway, kind), payload, headers=headers,
                                   timeout=PUBLISH_TIMEOUT_S)
        except Exception:
            self.publish_failures += 1
            raise                                   # the session ends; the next one starts here again
        if ack.duplicate:
            self.published["duplicates"] += 1
        self._contact()

    # -- THE FIRM-WIDE KILL SWITCH ----------------------------------------------------------------

    async def _watch_kill(self, kv) -> None:
        async with watching(kv, n.KILL) as watcher:
            async for entry in watcher:
                if entry is None or entry.value is None:
                    continue                        # the end of the initial values, or a deleted key
                self._kill_received_ns = time.time_ns()
                self._contact()
                try:
                    kill = orjson.loads(entry.value)
                except orjson.JSONDecodeError:
                    log.error("firm_kill_unreadable", value=entry.value[:200].decode(errors="replace"))
                    continue
                if self.applied_kill is not None and self.applied_kill.get("id") == kill.get("id"):
                    continue
                await self._apply_kill(kv, kill, entry.revision)

    async def _apply_kill(self, kv, kill: dict[str, Any], revision: int) -> None:
        actor = f"firm:{kill.get('actor', 'unknown')}"
        loop = asyncio.get_running_loop()
        if kill.get("on"):
            reason = f"firm-wide kill by {kill.get('actor', 'unknown')}: {kill.get('reason') or 'no reason given'}"
            state = await loop.run_in_executor(None, self.hooks.firm_kill, actor, reason)
        else:
            state = await loop.run_in_executor(None, self.hooks.firm_resume, actor)
        applied_ns = time.time_ns()
        received_ns = self._kill_received_ns
        self.applied_kill = {"id": kill.get("id"), "on": bool(kill.get("on")), "revision": revision,
                             "state": state, "applied": iso_time(applied_ns)}
        log.warning("firm_kill_applied" if kill.get("on") else "firm_kill_released", actor=kill.get("actor"),
                    reason=kill.get("reason"), risk_state=state,
                    delay_ms=round((applied_ns - int(kill.get("at_ns", applied_ns))) / 1e6, 3))
        await kv.put(self.names.confirm_key(self.gateway), orjson.dumps({
            "gateway": self.gateway, "id": kill.get("id"), "on": bool(kill.get("on")), "state": state,
            "revision": revision, "received_ns": received_ns, "applied_ns": applied_ns}))
        self._contact()
        await self._announce_once(kv)               # the firm view shows the new state at once

    # -- BUILDS -----------------------------------------------------------------------------------

    async def _watch_builds(self, kv) -> None:
        async with watching(kv, "build.>") as watcher:
            async for entry in watcher:
                if entry is None:
                    self._check_build()
                    continue
                value = None
                if entry.value:
                    try:
                        value = orjson.loads(entry.value)
                    except orjson.JSONDecodeError:
                        value = None
                if entry.key == n.EXPECTED_BUILD:
                    self.expected_build = value
                elif entry.key == self.names.confirmed_build_key(self.gateway):
                    self.confirmed_build = value
                else:
                    continue
                self._check_build()

    def _check_build(self) -> None:
        expected = self.expected_build
        mine = {"version": self.build.get("version"), "commit": self.build.get("commit")}
        if not expected or all(expected.get(key) in (None, "", mine[key]) for key in mine):
            self._set_reduce_only(BUILD_REASON, None)
            return
        confirmed = self.confirmed_build or {}
        if confirmed.get("commit") == mine["commit"] and confirmed.get("version") == mine["version"]:
            self._set_reduce_only(BUILD_REASON, None)
            return
        self._set_reduce_only(BUILD_REASON, (
            f"this gateway runs {mine['version']} {mine['commit']}, the fleet expects {expected.get('version')} "
            f"{expected.get('commit')}: reduce-only until an operator confirms it "
            f"(fixgate firm confirm-build {self.gateway})"))

    # -- ANNOUNCEMENT -----------------------------------------------------------------------------

    async def _announce(self, kv) -> None:
        interval = max(self.settings.lease_seconds / 4, 0.05)
        while True:
            await self._announce_once(kv)
            await asyncio.sleep(interval)

    async def _announce_once(self, kv, *, stopped: bool = False) -> None:
        loop = asyncio.get_running_loop()
        announcement = await loop.run_in_executor(None, self.hooks.firm_announcement)
        if stopped:
            announcement["stopped"] = True          # the firm view shows it gone at once, not a lease later
        if self.budgets is not None:
            announcement["budgets"] = self.budgets.describe()["meters"]
        announcement.update({"gateway": self.gateway, **self.build, "at_ns": time.time_ns(),
                             "lease_seconds": self.settings.lease_seconds, "reduce_only": dict(self.reduce_only),
                             "backlog_events": self.backlog["events"]})
        await kv.put(self.names.gateway_key(self.gateway), orjson.dumps(announcement))
        self._contact()
