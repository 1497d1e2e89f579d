"""The graduated risk state: NORMAL, WARNING, CIRCUIT_BREAKER, KILL_SWITCH.

A pure state machine (time is an argument, no I/O): the state thread feeds it the drawdown, the
throttle's breach flag, the order rate and the daily order count, and the admin API feeds it
commands; it answers with transitions, each carrying who moved it, why and when. The caller applies
the effects (the risk byte of the hot path, cancel-all, venue logout) and keeps the audit trail.

| state | entered when | left when |
|---|---|---|
| WARNING | drawdown > warning threshold | drawdown < warning - hysteresis |
| CIRCUIT_BREAKER | drawdown > breaker threshold, or the throttle-breach flag | explicit reset after the cooldown, refused while a trigger still holds |
| KILL_SWITCH | the kill command, the order-rate ceiling, N breaker trips in a day, the daily order cap, a fatal error | explicit resume only (survives a restart) |
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fixgate._fast.codes import RiskState

NORMAL = RiskState.NORMAL
WARNING = RiskState.WARNING
BREAKER = RiskState.CIRCUIT_BREAKER
KILLED = RiskState.KILL_SWITCH

AUTOMATIC = "automatic"


@dataclass(frozen=True)
class Transition:
    """A change of risk state and its audit facts."""

    before: RiskState
    after: RiskState
    actor: str
    reason: str
    at_ns: int

    def as_record(self) -> dict:
        return {"from": self.before.name, "to": self.after.name, "actor": self.actor, "reason": self.reason,
                "at_ns": self.at_ns}


@dataclass(frozen=True)
class RiskLimits:
    """The thresholds the machine applies."""

    warning_drawdown: float = 0.05
    breaker_drawdown: float = 0.10
    recovery_hysteresis: float = 0.02
    breaker_cooldown_ns: int = 900 * 1_000_000_000
    kill_order_rate: float | None = None
    kill_after_breaker_trips: int = 3


class CommandRefused(Exception):
    """A command that the state does not allow now; the message says why."""


@dataclass
class RiskStateMachine:
    """Decide the risk state from the figures and commands it is given.

    Parameters
    ----------
    limits : RiskLimits
        Thresholds.
    state : RiskState
        The state to start in (KILL_SWITCH when a previous run was killed).
    reason : str
        Why the starting state holds.
    """

    limits: RiskLimits
    state: RiskState = NORMAL
    reason: str = "start"
    since_ns: int = 0
    actor: str = "automatic"
    breaker_trips_today: int = 0
    breaker_since_ns: int = 0
    breaker_trigger: str = ""
    history: list[Transition] = field(default_factory=list)

    # -- AUTOMATIC RULES --------------------------------------------------------------------------

    def evaluate(self, now_ns: int, *, drawdown: float, throttle_breach: bool = False, order_rate: float = 0.0,
                 daily_orders_capped: bool = False) -> list[Transition]:
        """Apply the automatic rules to the latest figures; return the transitions they caused."""
        changes: list[Transition] = []
        if self.state == KILLED:
            return changes
        limits = self.limits
        if limits.kill_order_rate is not None and order_rate > limits.kill_order_rate:
            return [self._move(KILLED, AUTOMATIC, f"order rate {order_rate:.0f}/s above the ceiling "
                                                  f"{limits.kill_order_rate:.0f}/s", now_ns)]
        if daily_orders_capped:
            return [self._move(KILLED, AUTOMATIC, "daily order count cap reached", now_ns)]
        if self.state != BREAKER:
            trigger = None
            if drawdown > limits.breaker_drawdown:
                trigger = f"drawdown {drawdown:.2%} above {limits.breaker_drawdown:.2%}"
            elif throttle_breach:
                trigger = "repeated throttle breaches"
            if trigger is not None:
                self.breaker_trips_today += 1
                self.breaker_since_ns = now_ns
                self.breaker_trigger = trigger
                changes.append(self._move(BREAKER, AUTOMATIC, trigger, now_ns))
                if self.breaker_trips_today >= limits.kill_after_breaker_trips:
                    changes.append(self._move(KILLED, AUTOMATIC,
                                              f"{self.breaker_trips_today} circuit-breaker trips today", now_ns))
                return changes
        if self.state == NORMAL and drawdown > limits.warning_drawdown:
            changes.append(self._move(WARNING, AUTOMATIC, f"drawdown {drawdown:.2%} above "
                                                          f"{limits.warning_drawdown:.2%}", now_ns))
        elif self.state == WARNING and drawdown < limits.warning_drawdown - limits.recovery_hysteresis:
            changes.append(self._move(NORMAL, AUTOMATIC, f"drawdown {drawdown:.2%} back below "
                                      f"{limits.warning_drawdown - limits.recovery_hysteresis:.2%}", now_ns))
        return changes

    def fatal(self, reason: str, now_ns: int) -> Transition | None:
        """Trip the kill switch for a fatal internal error."""
        if self.state == KILLED:
            return None
        return self._move(KILLED, AUTOMATIC, f"fatal error: {reason}", now_ns)

    def start_day(self) -> None:
        """Start a trading day: breaker trips count from zero."""
        self.breaker_trips_today = 0

    # -- COMMANDS ---------------------------------------------------------------------------------

    def kill(self, actor: str, reason: str, now_ns: int) -> Transition:
        """Trip the kill switch (idempotent: killing a killed gateway keeps the first reason).

        Raises
        ------
        CommandRefused
            When the gateway is already killed.
        """
        if self.state == KILLED:
            raise CommandRefused(f"kill switch already active since {self.reason!r}")
        return self._move(KILLED, actor, reason or "kill command", now_ns)

    def resume(self, actor: str, now_ns: int, *, drawdown: float) -> Transition:
        """Release the kill switch; the state becomes what the drawdown says (never straight back
        into a breaker: a breaker trigger still holding keeps the gateway in CIRCUIT_BREAKER).

        Raises
        ------
        CommandRefused
            When the kill switch is not active.
        """
        if self.state != KILLED:
            raise CommandRefused(f"kill switch is not active (state {self.state.name})")
        if drawdown > self.limits.breaker_drawdown:
            self.breaker_since_ns = now_ns
            self.breaker_trigger = f"drawdown {drawdown:.2%} above {self.limits.breaker_drawdown:.2%}"
            return self._move(BREAKER, actor, f"resumed; {self.breaker_trigger}", now_ns)
        after = WARNING if drawdown > self.limits.warning_drawdown else NORMAL
        return self._move(after, actor, "resumed", now_ns)

    def reset_breaker(self, actor: str, now_ns: int, *, drawdown: float, throttle_breach: bool) -> Transition:
        """Leave CIRCUIT_BREAKER after the cooldown, when no trigger holds any more.

        Raises
        ------
        CommandRefused
            When not in CIRCUIT_BREAKER, before the cooldown ends, or while a trigger holds.
        """
        if self.state != BREAKER:
            raise CommandRefused(f"circuit breaker is not active (state {self.state.name})")
        remaining = self.breaker_since_ns + self.limits.breaker_cooldown_ns - now_ns
        if remaining > 0:
            raise CommandRefused(f"cooldown: {remaining / 1e9:.0f} s left before the breaker may be reset")
        if drawdown > self.limits.breaker_drawdown:
            raise CommandRefused(f"drawdown {drawdown:.2%} still above {self.limits.breaker_drawdown:.2%}")
        if throttle_breach:
            raise CommandRefused("the throttle-breach flag is still raised")
        after = WARNING if drawdown > self.limits.warning_drawdown else NORMAL
        return self._move(after, actor, "breaker reset", now_ns)

    # -- INTERNALS --------------------------------------------------------------------------------

    def _move(self, after: RiskState, actor: str, reason: str, now_ns: int) -> Transition:
        transition = Transition(RiskState(self.state), RiskState(after), actor, reason, now_ns)
        self.state = RiskState(after)
        self.reason = reason
        self.since_ns = now_ns
        self.actor = actor
        self.history.append(transition)
        return transition
