"""Controls scoped to one client session, and the restricted list, changed at run time.

A client's kill switch refuses that client's new orders and replaces (CLIENT_KILLED, with the reason
in Text(58)) and cancels its working orders, while every other client keeps trading. The restricted
list refuses new orders and replaces in a symbol, for every client or for one. Both are bytes in the
risk book that the hot path reads; this module changes them on the state thread, keeps them in
`controls.json` in the state directory (a restarted gateway comes back with them), and writes each
change to the audit trail.

The configuration's restricted lists (risk.restricted, clients[].restricted) are the baseline; a
change at run time is kept as an override of one (scope, symbol) pair and applied on top of the
baseline at every start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import structlog

from fixgate.core.clock import iso_time
from fixgate.core.risk_state import CommandRefused
from fixgate.core.safety import StateFileError

log = structlog.get_logger("fixgate.controls")

EVERYONE = "*"          # the scope of the restricted list that applies to every client


def _since(entry: dict[str, Any]) -> str | None:
    try:
        return iso_time(int(entry.get("since_ns", 0)))
    except (TypeError, ValueError):
        return None


class ControlsFileError(StateFileError):
    """The persisted controls cannot be read: refuse to start rather than trade without them."""


class ClientControls:
    """Scoped kill switches and the restricted list.

    Parameters
    ----------
    book : fixgate._fast.risk.RiskBook
        Holds the bytes the checks read.
    sessions : dict[str, int]
        Client session name -> session index.
    symbols : dict[str, int]
        Symbol -> instrument id.
    path : Path
        Where the controls are kept.
    audit : callable
        Takes one audit record (a dict).
    cancel_all : callable(session, reason) -> int
        Cancels the working orders of one client session.
    set_kill_reason : callable(session index, reason)
        Gives the order path the text of a client's CLIENT_KILLED rejects.
    set_account_killed : callable(account, killed, reason) -> int
        Refuses (or takes again) one account's orders in the order path; on a kill, cancels its
        working orders and returns how many cancels went out.
    """

    def __init__(self, book, sessions: dict[str, int], symbols: dict[str, int], path: Path, audit: Callable[[dict[str, Any]], None], cancel_all: Callable[[str, str], int],
                 set_kill_reason: Callable[[int, str], None],
                 set_account_killed: Callable[[str, bool, str], int] | None = None) -> None:
        self.book = book
        self.sessions = sessions
        self.symbols = symbols
        self.path = Path(path)
        self.audit = audit
        self.cancel_all = cancel_all
        self.set_kill_reason = set_kill_reason
        self.set_account_killed = set_account_killed
        self.killed: dict[str, dict[str, Any]] = {}                 # client -> actor, reason, since_ns
        self.killed_accounts: dict[str, dict[str, Any]] = {}        # account -> actor, reason, since_ns
        self.account_texts: dict[str, str] = {}                     # account -> the reason the engine has
        self.overrides: dict[str, dict[str, bool]] = {}             # scope -> symbol -> restricted

    # -- START ------------------------------------------------------------------------------------

    def load(self) -> None:
        """Apply the persisted kills and restricted-list changes (before the engine starts).

        Raises
        ------
        ControlsFileError
            When the file exists but cannot be read.
        """
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            killed = {str(name): dict(entry) for name, entry in data.get("killed", {}).items()}
            accounts = {str(name): dict(entry) for name, entry in data.get("killed_accounts", {}).items()}
            overrides = {str(scope): {str(symbol): bool(value) for symbol, value in entries.items()}
                         for scope, entries in data.get("restricted", {}).items()}
        except (OSError, ValueError, TypeError, AttributeError) as error:
            raise ControlsFileError(f"{self.path}: unreadable client controls ({error}); fix or remove it after "
                                    "checking which clients were killed") from None
        for name, entry in killed.items():
            if name not in self.sessions:
                log.warning("controls_client_gone", client=name, control="kill switch")
                continue
            self.killed[name] = entry
            self.book.set_client_killed(self.sessions[name], True)
            self.set_kill_reason(self.sessions[name], f"restored: {entry.get('reason', '')}")
        for account, entry in accounts.items():
            self.killed_accounts[account] = entry
            self.account_texts[account] = f"restored: {entry.get('reason', '')}"
            if self.set_account_killed is not None:
                self.set_account_killed(account, True, self.account_texts[account])
        for scope, entries in overrides.items():
            if scope != EVERYONE and scope not in self.sessions:
                log.warning("controls_client_gone", client=scope, control="restricted list")
                continue
            for symbol, restricted in entries.items():
                if symbol not in self.symbols:
                    log.warning("controls_symbol_gone", client=scope, symbol=symbol)
                    continue
                self.overrides.setdefault(scope, {})[symbol] = restricted
                self._apply(scope, symbol, restricted)

    # -- COMMANDS (state thread) ------------------------------------------------------------------

    def kill(self, client: str, actor: str, reason: str, now_ns: int) -> dict[str, Any]:
        """Refuse the client's new orders and cancel its working ones."""
        index = self._session(client)
        reason = reason or "no reason given"
        already = client in self.killed
        self.killed[client] = {"actor": actor, "reason": reason, "since_ns": now_ns}
        self.set_kill_reason(index, reason)
        self.book.set_client_killed(index, True)
        self._save()
        cancels = self.cancel_all(client, f"kill switch for client {client}: {reason}")
        self.audit({"event": "client_killed", "client": client, "actor": actor, "reason": reason,
                    "cancels_sent": cancels, "again": already})
        log.warning("client_killed", client=client, actor=actor, reason=reason, cancels=cancels)
        return {"ok": True, "client": client, "killed": True, "cancels_sent": cancels}

    def kill_account(self, account: str, actor: str, reason: str, now_ns: int) -> dict[str, Any]:
        """Refuse one account's new orders (the Account(1) of its orders, else its client's name)
        and cancel its working ones, whichever client session sends them."""
        if self.set_account_killed is None:
            raise CommandRefused("this gateway cannot kill one account")
        if not account or len(account) > 63:
            raise CommandRefused("an account is 1 to 63 characters")
        reason = reason or "no reason given"
        self.killed_accounts[account] = {"actor": actor, "reason": reason, "since_ns": now_ns}
        self.account_texts[account] = reason
        self._save()
        cancels = self.set_account_killed(account, True, reason)
        self.audit({"event": "account_killed", "account": account, "actor": actor, "reason": reason,
                    "cancels_sent": cancels})
        log.warning("account_killed", account=account, actor=actor, reason=reason, cancels=cancels)
        return {"ok": True, "account": account, "killed": True, "cancels_sent": cancels}

    def resume_account(self, account: str, actor: str) -> dict[str, Any]:
        """Take one account's orders again."""
        if account not in self.killed_accounts:
            raise CommandRefused(f"account {account} is not killed")
        del self.killed_accounts[account]
        self.account_texts.pop(account, None)
        self._save()
        if self.set_account_killed is not None:
            self.set_account_killed(account, False, "")
        self.audit({"event": "account_resumed", "account": account, "actor": actor})
        log.warning("account_resumed", account=account, actor=actor)
        return {"ok": True, "account": account, "killed": False}

    def resume(self, client: str, actor: str) -> dict[str, Any]:
        """Take the client's orders again."""
        index = self._session(client)
        if client not in self.killed:
            raise CommandRefused(f"client {client} is not killed")
        del self.killed[client]
        self.book.set_client_killed(index, False)
        self._save()
        self.audit({"event": "client_resumed", "client": client, "actor": actor})
        log.warning("client_resumed", client=client, actor=actor)
        return {"ok": True, "client": client, "killed": False}

    def restrict(self, symbol: str, client: str | None, restricted: bool, actor: str, reason: str) -> dict[str, Any]:
        """Put `symbol` on (or take it off) the restricted list of everyone or of one client."""
        if symbol not in self.symbols:
            raise CommandRefused(f"no instrument {symbol!r} (instruments: {', '.join(self.symbols)})")
        scope = EVERYONE if client is None else client
        if client is not None:
            self._session(client)
            if not restricted and self.book.is_restricted(self.symbols[symbol], -1):
                raise CommandRefused(f"{symbol} is restricted for every client: take it off that list first "
                                     "(fixgate restrict SYMBOL --remove)")
        self.overrides.setdefault(scope, {})[symbol] = restricted
        self._apply(scope, symbol, restricted)
        self._save()
        self.audit({"event": "restricted_list_changed", "symbol": symbol, "client": client,
                    "restricted": restricted, "actor": actor, "reason": reason})
        log.warning("restricted_list_changed", symbol=symbol, client=client, restricted=restricted, actor=actor,
                    reason=reason)
        return {"ok": True, "symbol": symbol, "client": client, "restricted": restricted,
                "restricted_list": self.restricted_list()}

    def sweep(self) -> int:
        """Cancel what killed clients and accounts still have working: orders at a venue that was not
        logged on when the kill came (or when a restart restored it) get their cancel once it is.
        Orders with a cancel pending are left alone. Return the cancels sent."""
        sent = 0
        for client, entry in list(self.killed.items()):
            sent += self.cancel_all(client, f"kill switch for client {client}: {entry.get('reason', '')}")
        if self.set_account_killed is not None:
            for account, text in list(self.account_texts.items()):
                sent += self.set_account_killed(account, True, text)
        if sent:
            log.warning("killed_orders_cancelled", cancels=sent, clients=list(self.killed),
                        accounts=list(self.killed_accounts))
        return sent

    @property
    def any_killed(self) -> bool:
        return bool(self.killed or self.killed_accounts)

    # -- READS ------------------------------------------------------------------------------------

    def restricted_list(self) -> dict[str, list[str]]:
        """The symbols each scope may not trade now (EVERYONE, then each client with any)."""
        result: dict[str, list[str]] = {}
        for scope in [EVERYONE, *self.sessions]:
            session = -1 if scope == EVERYONE else self.sessions[scope]
            listed = [symbol for symbol, instrument in self.symbols.items()
                      if self.book.is_restricted(instrument, session)
                      and (scope == EVERYONE or not self.book.is_restricted(instrument, -1))]
            if listed or scope == EVERYONE:
                result[scope] = listed
        return result

    def describe(self) -> dict[str, Any]:
        # Copies first: the admin thread reads while the state thread may change them.
        return {"killed_clients": {name: {**entry, "since": _since(entry)} for name, entry in dict(self.killed).items()},
                "killed_accounts": {name: {**entry, "since": _since(entry)}
                                    for name, entry in dict(self.killed_accounts).items()},
                "restricted": self.restricted_list()}

    # -- INSIDE -----------------------------------------------------------------------------------

    def _session(self, client: str) -> int:
        if client not in self.sessions:
            raise CommandRefused(f"no client session named {client!r} (sessions: {', '.join(self.sessions)})")
        return self.sessions[client]

    def _apply(self, scope: str, symbol: str, restricted: bool) -> None:
        self.book.set_restricted(self.symbols[symbol], restricted, -1 if scope == EVERYONE else self.sessions[scope])

    def _save(self) -> None:
        data = {"killed": self.killed, "killed_accounts": self.killed_accounts, "restricted": self.overrides}
        temporary = self.path.with_suffix(".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

