"""The risk-state agent: runs the risk-state machine on the state thread and applies its effects.

Every pass it feeds the machine the drawdown, the throttle's breach flag, the order rate and the
daily order count; it executes the operators' commands (kill, resume, reset the breaker, cancel
all), which reach it through a queue from the admin thread; and for each transition it sets the
hot path's risk byte, cancels what is open, logs the venues out or back in, persists the state
and writes the audit trail.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import structlog

from fixgate.core.clock import NANOSECONDS_PER_DAY, day_start_at, iso_time
from fixgate.core.risk_state import (
    AUTOMATIC,
    BREAKER,
    KILLED,
    CommandRefused,
    RiskState,
    RiskStateMachine,
    Transition,
)

log = structlog.get_logger("fixgate.safety")


class StateFileError(RuntimeError):
    """The persisted risk state cannot be read: refuse to start rather than trade unprotected."""


class AuditLog:
    """Append-only JSON lines: every risk transition and admin action, who, why, when.

    `forward`, when given, receives each record too (the journal keeps them with the order events).
    """

    def __init__(self, path: Path, forward: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.forward = forward

    def write(self, record: dict[str, Any]) -> None:
        if self.forward is not None:
            self.forward(record)
        line = json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record}, sort_keys=True)
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]


class RiskStateStore:
    """The risk state on disk, so that a killed or broken gateway comes back killed or broken."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Any] | None:
        """Return the persisted state, None when there is none.

        Raises
        ------
        StateFileError
            When the file exists but cannot be read as a risk state.
        """
        if not self.path.exists():
            return None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            RiskState[data["state"]]
            int(data["since_ns"])
            return data
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StateFileError(f"{self.path}: unreadable risk state ({error}); fix or remove it after "
                                 "checking the venues by hand") from None

    def save(self, machine: RiskStateMachine, day_start_ns: int = 0) -> None:
        data = {"state": machine.state.name, "reason": machine.reason, "since_ns": machine.since_ns,
                "actor": machine.actor, "day_start_ns": day_start_ns,
                "breaker_since_ns": machine.breaker_since_ns, "breaker_trips_today": machine.breaker_trips_today}
        temporary = self.path.with_suffix(".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)


def restore(machine: RiskStateMachine, store: RiskStateStore, now_ns: int, *, day_start_ns: int | None = None) -> None:
    """Start `machine` in the persisted KILL_SWITCH or CIRCUIT_BREAKER state, if any; the day's
    breaker trips only when the file is of the same trading day (`day_start_ns`)."""
    data = store.load()
    if data is None:
        return
    state = RiskState[data["state"]]
    same_day = day_start_ns is None or int(data.get("day_start_ns", -1)) == day_start_ns
    machine.breaker_trips_today = int(data.get("breaker_trips_today", 0)) if same_day else 0
    if state in (KILLED, BREAKER):
        machine.state = state
        machine.reason = f"restored: {data.get('reason', '')}"
        machine.since_ns = int(data["since_ns"])
        machine.actor = str(data.get("actor", "automatic"))
        machine.breaker_since_ns = int(data.get("breaker_since_ns") or now_ns)


class VenueControl(Protocol):
    def log_out(self, reason: str) -> None: ...
    def log_on(self) -> None: ...


class OrderControl(Protocol):
    def cancel_all(self, session: str | None = None, reason: str = "cancel all", text: str | None = None) -> int: ...
    def orders_received(self) -> int: ...
    def close(self, reason: str) -> None: ...


@dataclass
class Command:
    """An operator's command, executed on the state thread; `done` is set when `result` is ready."""

    name: str
    actor: str
    reason: str = ""
    session: str | None = None
    mode: str = ""                      # drain: "cancel" or "wait"
    symbol: str = ""                    # restrict: the instrument
    account: str | None = None          # kill, resume: one account only
    restricted: bool = True             # restrict: on (True) or off the list
    timeout_s: float = 0.0              # drain: how long working orders may take
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None


class RiskAgent:
    """Drive the risk-state machine from the state thread.

    Parameters
    ----------
    machine : RiskStateMachine
        Already restored from disk when there was a state to restore.
    book : fixgate._fast.risk.RiskBook
        Receives the risk byte; gives the throttle flag and daily count.
    positions : PositionTracker
        Gives the drawdown.
    orders : OrderControl
        Cancels open orders; counts orders received.
    venues : VenueControl
        Logs the venues out on a kill and back in on resume.
    store, audit
        Persistence of the state and the audit trail.
    """

    name = "risk-state"

    def __init__(self, machine: RiskStateMachine, book, positions, orders: OrderControl, venues: VenueControl,
                 store: RiskStateStore,
                 audit: AuditLog, *, interval_ns: int = 10_000_000, logout_timeout_ns: int = 5_000_000_000,
                 clock: Callable[[], int] = time.time_ns, on_transition: Callable[[Transition], None] | None = None,
                 day_start_ns: int = 0, controls=None, on_day_roll: Callable[[], None] | None = None,
                 wake: Callable[[], None] | None = None):
        self.machine = machine
        self.book = book
        self.positions = positions
        self.orders = orders
        self.venues = venues
        self.store = store
        self.audit = audit
        self.interval_ns = interval_ns
        self.logout_timeout_ns = logout_timeout_ns
        self.clock = clock
        self.on_transition = on_transition
        self.commands: queue.Queue[Command] = queue.Queue()
        self.next_ns = 0
        self.logout_due_ns: int | None = None
        self.venues_logged_out = False
        self.rate_window: deque[tuple[int, int]] = deque()
        self.drawdown = 0.0
        self.order_rate = 0.0
        self.drain: dict[str, Any] | None = None
        self.drain_deadline_ns = 0
        self.day_start_ns = day_start_ns          # the current trading day's start (0: days not followed)
        self.day_rolls = 0
        self.drain_next_cancel_ns = 0
        self.controls = controls                  # fixgate.core.controls.ClientControls, or None
        self.controls_sweep_ns = 0
        self.on_day_roll = on_day_roll
        self.wake = wake                          # wakes the state thread for a command, any thread
        self.book.set_risk_state(int(machine.state))
        if machine.state == KILLED:
            self.logout_due_ns = 0          # a gateway restored killed keeps away from the venues

    # -- COMMANDS (any thread) --------------------------------------------------------------------

    def submit(self, command: Command, timeout: float = 5.0) -> dict[str, Any]:
        """Queue `command` for the state thread and wait for its result."""
        self.commands.put(command)
        if self.wake is not None:
            self.wake()
        if not command.done.wait(timeout):
            return {"ok": False, "error": "the state thread did not answer in time"}
        return command.result or {"ok": False, "error": "no result"}

    # -- THE PASS (state thread) ------------------------------------------------------------------

    def do_work(self) -> int:
        work = 0
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                break
            self._execute(command)
            work += 1
        now_ns = self.clock()
        if self.logout_due_ns is not None and (now_ns >= self.logout_due_ns or self.book.live_orders == 0):
            self.logout_due_ns = None
            self.venues_logged_out = True
            self.venues.log_out("kill switch active")
            log.warning("venues_logged_out", reason=self.machine.reason, open_orders=self.book.live_orders)
            work += 1
        if self.drain is not None and self.drain["state"] != "drained":
            work += self._drain_step(now_ns)
        if self.controls is not None and self.controls.any_killed and now_ns >= self.controls_sweep_ns:
            self.controls_sweep_ns = now_ns + 1_000_000_000
            if self.controls.sweep():
                work += 1
        if self.day_start_ns and now_ns >= self.day_start_ns + NANOSECONDS_PER_DAY:
            self._roll_day(now_ns)
            work += 1
        if now_ns < self.next_ns:
            return work
        self.next_ns = now_ns + self.interval_ns
        self.drawdown = float(self.positions.drawdown())
        self.order_rate = self._order_rate(now_ns)
        limit = self.book.max_daily_orders
        capped = limit < (1 << 62) and self.book.daily_orders >= limit
        for transition in self.machine.evaluate(now_ns, drawdown=self.drawdown,
                                                throttle_breach=bool(self.book.throttle.breach_flag),
                                                order_rate=self.order_rate, daily_orders_capped=capped):
            self._apply(transition)
            work += 1
        return work

    def _order_rate(self, now_ns: int) -> float:
        received = self.orders.orders_received()
        self.rate_window.append((now_ns, received))
        while self.rate_window and now_ns - self.rate_window[0][0] > 1_000_000_000:
            self.rate_window.popleft()
        first_ns, first = self.rate_window[0]
        span = max(now_ns - first_ns, 100_000_000)
        return (received - first) * 1e9 / span

    def _execute(self, command: Command) -> None:
        now_ns = self.clock()
        try:
            if command.name in ("kill", "resume") and command.account is not None:
                if self.controls is None:
                    raise CommandRefused("this gateway has no client controls")
                if command.session is not None:
                    raise CommandRefused("give a client session or an account, not both")
                command.result = (self.controls.kill_account(command.account, command.actor, command.reason, now_ns)
                                  if command.name == "kill" else
                                  self.controls.resume_account(command.account, command.actor))
                return
            if command.name in ("kill", "resume", "restrict") and (command.session is not None
                                                                   or command.name == "restrict"):
                if self.controls is None:
                    raise CommandRefused("this gateway has no client controls")
                if command.name == "kill":
                    command.result = self.controls.kill(command.session, command.actor, command.reason, now_ns)
                elif command.name == "resume":
                    command.result = self.controls.resume(command.session, command.actor)
                else:
                    command.result = self.controls.restrict(command.symbol, command.session, command.restricted,
                                                            command.actor, command.reason)
                return
            if command.name == "kill":
                self._apply(self.machine.kill(command.actor, command.reason, now_ns))
            elif command.name == "resume":
                self._apply(self.machine.resume(command.actor, now_ns, drawdown=float(self.positions.drawdown())))
            elif command.name == "reset-breaker":
                self._apply(self.machine.reset_breaker(command.actor, now_ns,
                                                       drawdown=float(self.positions.drawdown()),
                                                       throttle_breach=bool(self.book.throttle.breach_flag)))
            elif command.name == "drain":
                command.result = self._begin_drain(command, now_ns)
                return
            elif command.name == "cancel-all":
                sent = self.orders.cancel_all(session=command.session, reason=f"cancel-all by {command.actor}")  # may refuse
                self.audit.write({"event": "cancel_all", "actor": command.actor, "session": command.session,
                                  "cancels_sent": sent})
                log.warning("cancel_all_requested", actor=command.actor, session=command.session, cancels=sent)
                command.result = {"ok": True, "cancels_sent": sent}
                return
            else:
                raise CommandRefused(f"unknown command {command.name!r}")
            command.result = {"ok": True, **self.describe()}
        except CommandRefused as refusal:
            self.audit.write({"event": "command_refused", "command": command.name, "actor": command.actor,
                              "reason": str(refusal)})
            log.warning("command_refused", command=command.name, actor=command.actor, reason=str(refusal))
            command.result = {"ok": False, "error": str(refusal), **self.describe()}
        finally:
            command.done.set()

    def _apply(self, transition: Transition) -> None:
        self.book.set_risk_state(int(transition.after))
        self.store.save(self.machine, self.day_start_ns)
        self.audit.write({"event": "risk_state_changed", **transition.as_record()})
        log.warning("risk_state_changed", **{"from": transition.before.name}, to=transition.after.name,
                    actor=transition.actor, reason=transition.reason)
        if self.on_transition is not None:
            self.on_transition(transition)
        if transition.after in (BREAKER, KILLED):
            what = "kill switch" if transition.after == KILLED else "circuit breaker"
            self.orders.cancel_all(reason=transition.after.name.lower(),
                                   text=f"{what}: {transition.reason or 'no reason given'}")
        if transition.after == BREAKER and transition.actor == AUTOMATIC:
            self.book.throttle.clear_breach_flag()
        if transition.after == KILLED:
            self.logout_due_ns = self.clock() + self.logout_timeout_ns
        elif transition.before == KILLED:
            self.logout_due_ns = None
            if self.venues_logged_out and self.drain is None:     # a drained gateway stays away
                self.venues.log_on()
                self.venues_logged_out = False
                log.warning("venues_logged_on", actor=transition.actor)

    # -- DRAIN (before a blue-green or canary switch) ----------------------------------------------

    def _begin_drain(self, command: Command, now_ns: int) -> dict[str, Any]:
        """Take no new order from now on; cancel the working ones, or let them work for up to
        `timeout_s` and cancel what is left then; log the venues out once none is open."""
        if command.mode not in ("cancel", "wait"):
            raise CommandRefused(f"drain mode must be 'cancel' or 'wait', got {command.mode!r}")
        if self.drain is not None:
            return {"ok": True, "drain": dict(self.drain), "note": "already draining"}
        reason = command.reason or "the gateway is draining"
        self.orders.close(f"gateway closed: {reason}")
        self.drain = {"state": "draining", "mode": command.mode, "reason": reason, "actor": command.actor,
                      "since": iso_time(now_ns), "open_orders": self.book.live_orders, "cancels_sent": 0,
                      "drained_at": None, "left_open": 0}
        self.drain_next_cancel_ns = now_ns + 1_000_000_000
        self.drain_deadline_ns = now_ns + int(command.timeout_s * 1e9)
        if command.mode == "cancel":
            self.drain["cancels_sent"] = self.orders.cancel_all(reason="drain")
            self.drain["state"] = "cancelling"
        self.audit.write({"event": "drain_started", "actor": command.actor, "mode": command.mode, "reason": reason,
                          "open_orders": self.drain["open_orders"]})
        log.warning("drain_started", actor=command.actor, mode=command.mode, reason=reason,
                    open_orders=self.drain["open_orders"])
        return {"ok": True, "drain": dict(self.drain)}

    def _drain_step(self, now_ns: int) -> int:
        drain = self.drain
        drain["open_orders"] = self.book.live_orders
        if drain["state"] == "draining" and now_ns >= self.drain_deadline_ns and drain["open_orders"]:
            drain["cancels_sent"] += self.orders.cancel_all(reason="drain")      # waited long enough
            drain["state"] = "cancelling"
            self.drain_deadline_ns = now_ns + self.logout_timeout_ns
            return 1
        if drain["state"] == "cancelling" and drain["open_orders"] and now_ns >= self.drain_next_cancel_ns:
            # Again each second for the orders that have no cancel pending (acknowledged since, or a
            # venue that was not logged on a moment ago); an order with one pending is left alone.
            self.drain_next_cancel_ns = now_ns + 1_000_000_000
            drain["cancels_sent"] += self.orders.cancel_all(reason="drain")
        if drain["open_orders"] == 0 or (drain["state"] == "cancelling" and now_ns >= self.drain_deadline_ns
                                         + (self.logout_timeout_ns if drain["mode"] == "cancel" else 0)):
            self.venues.log_out("gateway drained")
            self.venues_logged_out = True
            drain["state"] = "drained"
            drain["drained_at"] = iso_time(now_ns)
            drain["left_open"] = drain["open_orders"]           # not answered in time: check them at the venue
            self.audit.write({"event": "drain_finished", "open_orders": drain["open_orders"],
                              "cancels_sent": drain["cancels_sent"]})
            (log.warning if not drain["open_orders"] else log.error)(
                "drain_finished", open_orders=drain["open_orders"], cancels_sent=drain["cancels_sent"])
            return 1
        return 0

    def _roll_day(self, now_ns: int) -> None:
        """A new trading day: breaker trips count from zero and the drawdown from today's opening
        equity. The risk state itself stays (a KILL_SWITCH never clears by itself)."""
        before = self.machine.breaker_trips_today
        self.day_start_ns = day_start_at(now_ns, self.day_start_ns)
        self.machine.start_day()
        self.positions.start_day()
        self.store.save(self.machine, self.day_start_ns)
        if self.on_day_roll is not None:
            self.on_day_roll()
        self.day_rolls += 1
        record = {"event": "trading_day_rolled", "day_start": iso_time(self.day_start_ns),
                  "risk_state": self.machine.state.name, "breaker_trips_yesterday": before}
        self.audit.write(record)
        log.warning("trading_day_rolled", day_start=record["day_start"], risk_state=record["risk_state"],
                    breaker_trips_yesterday=before)

    def report_fatal(self, reason: str) -> None:
        """Trip the kill switch for a fatal internal error (call on the state thread)."""
        transition = self.machine.fatal(reason, self.clock())
        if transition is not None:
            self._apply(transition)

    def describe(self) -> dict[str, Any]:
        """Return the risk state and its figures for status pages."""
        machine = self.machine
        return {"risk_state": machine.state.name, "reason": machine.reason, "actor": machine.actor,
                "since_ns": machine.since_ns, "since": iso_time(machine.since_ns),
                "drawdown": round(self.drawdown, 6), "order_rate": round(self.order_rate, 1),
                "breaker_trips_today": machine.breaker_trips_today,
                "trading_day": iso_time(self.day_start_ns) if self.day_start_ns else None,
                "venues_logged_out": self.venues_logged_out,
                **(self.controls.describe() if self.controls is not None else {}),
                "drain": dict(self.drain) if self.drain is not None else None}
