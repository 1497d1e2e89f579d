"""One TOML file -> frozen dataclasses, validated strictly; every error names its key.

The bundled ``fixgate/defaults.toml`` is the configuration of the demo; a user's file stands alone
(keys it leaves out take the defaults below). QuickFIX session settings are generated from this
configuration (``fixgate.fix.engine``), so there is one place to edit.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import ipaddress
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

SECRET_MASK = "********"


class ConfigError(ValueError):
    """The configuration is unusable; `problems` lists every problem found, each naming its key."""

    def __init__(self, problems: list[str], source: str = "configuration"):
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: " + "; ".join(problems))

    def report(self) -> str:
        """Return the problems as lines for a person."""
        lines = [f"{self.source}: {len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"]
        lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)


def _rule(default: Any = dataclasses.MISSING, *, doc: str = "", **checks: Any) -> Any:
    """Declare a setting: its default, what it means, and the checks its value must pass.

    Checks: ``positive`` (> 0), ``minimum``/``maximum`` (inclusive), ``below_one`` (< 1),
    ``choices``, ``power_of_two``, ``port``, ``secret`` (masked when printed), ``identifier``
    (non-empty, no spaces or '|').
    """
    metadata = {"doc": doc, **checks}
    if default is dataclasses.MISSING:
        return field(metadata=metadata)
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for defaults")
    return field(default=default, metadata=metadata)


# -- SECTIONS ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GatewaySettings:
    name: str = _rule("fixgate", doc="name of this gateway in logs and metrics", identifier=True)
    comp_id: str = _rule("FIXGATE", doc="the gateway's CompID towards clients and venues", identifier=True)
    state_dir: str = _rule("var/fixgate", doc="where FIX stores, logs and the journal live (relative to the "
                                           "configuration file's folder; the bundled defaults: to the "
                                           "current folder)")
    cancel_on_shutdown: bool = _rule(True, doc="cancel every open order on a graceful stop")
    message_log: bool = _rule(True, doc="keep a FIX message log per session in <state_dir>/fixlog")
    message_log_max_bytes: int = _rule(256 * 1024 * 1024, doc="a message or session event log is renamed "
                                       "<name>.<YYYYMMDD-HHMMSS> and begun again past this size, and at the "
                                       "first write of each UTC day", minimum=4096)
    message_store: str = _rule("mapped", doc="the FIX sessions' message store: 'mapped' (a memory-mapped file, "
                                             "no system call per message) or 'file' (QuickFIX's FileStore)",
                               choices=("mapped", "file"))
    ring_capacity: int = _rule(65536, doc="slots in the event ring from the engine to the state thread",
                               power_of_two=True)
    order_capacity: int = _rule(65536, doc="most live orders in the risk book", power_of_two=True)
    max_outbound_queue_bytes: int = _rule(16 * 1024 * 1024, doc="bytes queued to one peer beyond what its "
                                                                "socket holds before it is disconnected as a "
                                                                "slow consumer", minimum=65536)
    slow_consumer_timeout_ms: int = _rule(5000, doc="a peer with bytes queued that reads none for this long is "
                                                    "disconnected as a slow consumer", minimum=100)
    reconcile_timeout_ms: int = _rule(10000, doc="a venue that has not answered every status request of its "
                                                 "reconciliation by then is marked not ready", minimum=100)
    state_thread_nice: int = _rule(10, doc="the state thread's nice value: above the engine threads' 0, so that "
                                          "its passes give way to messages in flight", minimum=0, maximum=19)
    watchdog_ms: int = _rule(2000, doc="an engine thread inside one callback for longer makes /health fail",
                             minimum=100)
    retained_orders: int = _rule(100_000, doc="finished orders kept in memory (for status requests and the "
                                              "admin API) before the oldest are forgotten; the journal keeps all",
                                 minimum=1000)


@dataclass(frozen=True)
class FixSessionSettings:
    """How QuickFIX runs one session (a client's or a venue's): `[clients.session]`, `[venues.session]`."""

    reset_on_logon: bool = _rule(False, doc="sequence numbers back to 1 at every Logon (ResetOnLogon): what the "
                                            "peer missed is never resent")
    reset_on_logout: bool = _rule(False, doc="sequence numbers back to 1 after a Logout (ResetOnLogout)")
    reset_on_disconnect: bool = _rule(False, doc="sequence numbers back to 1 when the connection drops "
                                                 "(ResetOnDisconnect)")
    timestamp_precision: int = _rule(3, doc="digits of a second in SendingTime(52) and the session's other "
                                            "timestamps: 3 (milliseconds, as FIX 4.4 defines them), 0, 6 or 9",
                                     choices=(0, 3, 6, 9))
    validate_user_defined_fields: bool = _rule(True, doc="refuse a message with a user-defined tag (5000 and "
                                                         "up) its dictionary does not define: session Reject "
                                                         "373=0")
    validate_fields_out_of_order: bool = _rule(True, doc="refuse a message whose header, body and trailer "
                                                         "fields are out of order: session Reject")
    logon_timeout_seconds: int = _rule(10, doc="seconds to wait for the answer to a Logon", minimum=1,
                                       maximum=300)
    logout_timeout_seconds: int = _rule(5, doc="seconds to wait for the answer to a Logout", minimum=1,
                                        maximum=300)
    max_latency_seconds: int = _rule(120, doc="refuse a message whose SendingTime is further than this from the "
                                              "clock; 0: no check", minimum=0, maximum=86400)
    start_time: str = _rule("", doc="the session opens at this time (HH:MM or HH:MM:SS in time_zone) each day, "
                                    "or on start_day; empty: the trading day's 24 hours from "
                                    "risk.trading_day_start_utc")
    end_time: str = _rule("", doc="the session closes at this time (with start_time)")
    start_day: str = _rule("", doc="a weekly session opens on this day (Monday to Sunday) at start_time; "
                                   "empty: daily")
    end_day: str = _rule("", doc="a weekly session closes on this day at end_time")
    time_zone: str = _rule("UTC", doc="the zone of start_time and end_time (an IANA name such as "
                                      "America/New_York), converted to UTC for QuickFIX at start")
    data_dictionary: str = _rule("", doc="the session's own FIX 4.4 data dictionary (a venue's custom tags), "
                                         "relative to the configuration file's folder; empty: QuickFIX's "
                                         "FIX44.xml")


@dataclass(frozen=True)
class TlsSettings:
    """TLS on the client acceptor (`[acceptor.tls]`) or on one venue's connection (`[venues.tls]`)."""

    enabled: bool = _rule(False, doc="speak TLS on this connection")
    certificate: str = _rule("", doc="PEM file: this side's certificate (the acceptor's, required; towards a "
                                     "venue, a client certificate if the venue asks for one)")
    key: str = _rule("", doc="PEM file: the certificate's private key; empty: in the certificate file")
    ca: str = _rule("", doc="PEM file of the certificate authorities trusted for the other side: the clients' "
                            "(acceptor) or the venue's (required towards a venue)")
    require_client_certificate: bool = _rule(False, doc="acceptor: refuse a client without a certificate signed "
                                                        "by `ca`")
    min_version: str = _rule("TLSv1.2", doc="the oldest protocol version accepted", choices=("TLSv1.2", "TLSv1.3"))
    ciphers: str = _rule("", doc="OpenSSL cipher list for TLS 1.2; empty: OpenSSL's default")


@dataclass(frozen=True)
class AcceptorSettings:
    host: str = _rule("127.0.0.1", doc="the IPv4 address (or host name) the client acceptor listens on, and only "
                                       "there; 0.0.0.0 for every interface")
    port: int = _rule(9820, doc="port the client acceptor listens on", port=True)
    tls: TlsSettings = _rule(TlsSettings(), doc="TLS towards the clients")


@dataclass(frozen=True)
class ClientSettings:
    name: str = _rule(doc="the client's name in logs and metrics", identifier=True)
    comp_id: str = _rule(doc="the client's SenderCompID", identifier=True)
    username: str = _rule("", doc="Username(553) the client must send on Logon; empty: no credentials asked "
                                  "(the client is known by source_addresses or its TLS certificate)")
    password: str = _rule("", doc="Password(554) the client must send on Logon, with username", secret=True)
    source_addresses: tuple[str, ...] = _rule((), doc="IP addresses the client may connect from; empty: any")
    certificate_name: str = _rule("", doc="the common name (CN) the client's TLS certificate must carry; empty: "
                                          "not checked (needs acceptor.tls.require_client_certificate)")
    instruments: tuple[str, ...] = _rule(("*",), doc="symbols the client may trade; '*' for all")
    max_order_rate: float = _rule(100.0, doc="orders per second the client may send", positive=True)
    burst: int = _rule(20, doc="orders the client may send at once", minimum=1)
    cancel_on_disconnect: bool = _rule(True, doc="cancel the client's open orders when its session drops")
    restricted: tuple[str, ...] = _rule((), doc="symbols this client may not trade (on top of risk.restricted); "
                                           "changed at run time with `fixgate restrict`")
    max_daily_notional: Decimal | None = _rule(None, doc="the client's notional per trading day", minimum=0)
    max_open_notional: Decimal | None = _rule(None, doc="the notional of the client's open orders", minimum=0)
    max_window_notional: Decimal | None = _rule(None, doc="the client's notional within any window_ms "
                                                          "(erroneous orders over a short period)", minimum=0)
    window_ms: int = _rule(1000, doc="the window of max_window_notional", minimum=1)
    duplicate_window_ms: int = _rule(0, doc="refuse an order with the same symbol, side, type, quantity and "
                                            "price as one of the client's within this many ms; 0: off", minimum=0)
    self_match_prevention: bool = _rule(False, doc="refuse an order that would trade against one of the client's "
                                                   "own resting orders (SELF_MATCH)")
    firm_credit: Decimal | None = _rule(None, doc="the notional of the client's open orders across every gateway "
                                                  "of the firm (its name is the same on each): a firm-wide limit "
                                                  "split into budgets like those of [firm.limits]", minimum=0)
    session: FixSessionSettings = _rule(FixSessionSettings(), doc="how QuickFIX runs the client's session")


@dataclass(frozen=True)
class VenueSettings:
    name: str = _rule(doc="the venue's name; instruments route to it by this name", identifier=True)
    host: str = _rule(doc="address of the venue's FIX acceptor")
    port: int = _rule(doc="port of the venue's FIX acceptor", port=True)
    comp_id: str = _rule(doc="the venue's CompID (TargetCompID)", identifier=True)
    heartbeat_seconds: int = _rule(10, doc="HeartBtInt sent on Logon", minimum=1, maximum=3600)
    reconnect_seconds: int = _rule(1, doc="seconds between reconnect attempts", minimum=1, maximum=3600)
    backup_hosts: tuple[str, ...] = _rule((), doc="the venue's backup acceptors, \"host:port\" each: when the "
                                                  "connection drops, each reconnect tries the next address in "
                                                  "turn (QuickFIX's SocketConnectHost<n>), then the primary again")
    market_data: bool = _rule(True, doc="subscribe to the venue's quotes for its instruments")
    username: str = _rule("", doc="Username(553) sent on Logon; empty for none")
    password: str = _rule("", doc="Password(554) sent on Logon", secret=True)
    max_message_rate: float | None = _rule(None, doc="the venue's own limit on what it takes, in messages per "
                                                     "second: new orders and replaces beyond it are refused "
                                                     "VENUE_RATE_LIMIT, cancels always go", positive=True)
    message_burst: int = _rule(10, doc="messages the venue takes at once within max_message_rate", minimum=1)
    session: FixSessionSettings = _rule(FixSessionSettings(), doc="how QuickFIX runs the venue's session")
    tls: TlsSettings = _rule(TlsSettings(), doc="TLS towards the venue")


@dataclass(frozen=True)
class InstrumentSettings:
    symbol: str = _rule(doc="the instrument's symbol on both sides", identifier=True)
    venue: str = _rule(doc="name of the venue that trades it")
    tick_size: Decimal = _rule(doc="price increment", positive=True)
    lot_size: Decimal = _rule(doc="quantity increment", positive=True)
    reference_price: Decimal = _rule(Decimal(0), doc="price used before any quote or trade; 0 for none",
                                     minimum=0)
    adv: Decimal = _rule(Decimal(0), doc="average daily volume; 0 when unknown", minimum=0)
    max_order_qty: Decimal | None = _rule(None, doc="largest order quantity", minimum=0)
    max_order_notional: Decimal | None = _rule(None, doc="largest order notional", minimum=0)
    max_position: Decimal | None = _rule(None, doc="largest worst-case position, long or short", minimum=0)
    max_open_orders: int | None = _rule(None, doc="most open orders at once", minimum=0)
    max_adv_fraction: float | None = _rule(None, doc="largest order as a share of ADV", minimum=0)
    price_collar: float | None = _rule(None, doc="largest |price - reference| / reference", minimum=0)
    stale_after_ms: int = _rule(2000, doc="a quote older than this is stale", minimum=1)
    backup_quote_venue: str = _rule("", doc="a venue session (another trading venue, or one for market data "
                                            "only) whose quotes stand in while the venue's are stale past "
                                            "stale_after_ms; empty: none")
    requires_live_quote: bool = _rule(False, doc="reject orders while the quote is stale")
    max_order_rate: float | None = _rule(None, doc="orders per second in this instrument", positive=True)
    burst: int = _rule(10, doc="orders at once in this instrument", minimum=1)
    sector: str = _rule("", doc="the instrument's sector, for risk.max_sector_concentration; empty for none")


@dataclass(frozen=True)
class RiskSettings:
    starting_equity: Decimal = _rule(Decimal(1_000_000), doc="account equity at start", positive=True)
    max_order_notional: Decimal | None = _rule(None, doc="largest order notional, any instrument", minimum=0)
    max_gross_exposure: Decimal | None = _rule(None, doc="largest gross exposure", minimum=0)
    max_leverage: float | None = _rule(None, doc="largest gross exposure / equity", positive=True)
    max_daily_orders: int | None = _rule(None, doc="most orders per trading day", minimum=0)
    max_daily_notional: Decimal | None = _rule(None, doc="largest notional per trading day", minimum=0)
    warning_order_qty_factor: float = _rule(0.5, doc="max order quantity factor in WARNING", positive=True,
                                            maximum=1)
    warning_collar_factor: float = _rule(0.5, doc="price collar factor in WARNING", positive=True, maximum=1)
    max_concentration: float | None = _rule(None, doc="largest worst-case position value in one instrument / "
                                                      "equity (e.g. 0.20)", positive=True)
    max_sector_concentration: float | None = _rule(None, doc="largest worst-case position value summed over "
                                                             "a sector's instruments / equity (e.g. 0.40)",
                                                   positive=True)
    warning_concentration_factor: float = _rule(0.5, doc="concentration limits factor in WARNING", positive=True,
                                                maximum=1)
    warning_drawdown: float = _rule(0.05, doc="drawdown that enters WARNING", positive=True, below_one=True)
    breaker_drawdown: float = _rule(0.10, doc="drawdown that trips the circuit breaker", positive=True,
                                    below_one=True)
    recovery_hysteresis: float = _rule(0.02, doc="WARNING ends below warning_drawdown minus this", minimum=0,
                                       below_one=True)
    breaker_cooldown_seconds: int = _rule(900, doc="seconds before a breaker may be reset", minimum=0)
    kill_order_rate: float | None = _rule(None, doc="orders per second received (all clients) that trip "
                                                    "the kill switch", positive=True)
    kill_after_breaker_trips: int = _rule(3, doc="circuit-breaker trips in a day that trip the kill switch",
                                          minimum=1)
    kill_logout_timeout_seconds: float = _rule(5.0, doc="after a kill, log out of the venues once every "
                                                        "cancel is acknowledged or after this long", minimum=0)
    global_max_order_rate: float | None = _rule(None, doc="orders per second, all clients", positive=True)
    global_burst: int = _rule(100, doc="orders at once, all clients", minimum=1)
    throttle_breach_limit: int = _rule(20, doc="throttle breaches inside the window that raise the flag",
                                       minimum=1, maximum=64)
    throttle_breach_window_ms: int = _rule(1000, doc="the breach window", minimum=1)
    trading_day_start_utc: str = _rule("00:00", doc="HH:MM UTC when daily counters reset")
    restricted: tuple[str, ...] = _rule((), doc="symbols no client may trade; changed at run time with "
                                               "`fixgate restrict`")


@dataclass(frozen=True)
class QuoteSettings:
    max_spread_fraction: float = _rule(0.01, doc="widest valid spread / mid", positive=True)
    max_age_ms: int = _rule(1000, doc="oldest valid quote by the venue's timestamp", minimum=1)
    max_future_skew_ms: int = _rule(100, doc="how far ahead a venue timestamp may be", minimum=0)
    max_jump_fraction: float = _rule(0.10, doc="largest move of the mid between valid quotes", positive=True)


@dataclass(frozen=True)
class TokenSettings:
    name: str = _rule(doc="who the token stands for in the audit trail", identifier=True)
    token: str = _rule(doc="the bearer token", secret=True)
    role: str = _rule("operator", doc="'operator' (may command) or 'read-only' (may only read)",
                      choices=("operator", "read-only"))


@dataclass(frozen=True)
class AdminSettings:
    enabled: bool = _rule(True, doc="serve the admin HTTP API")
    host: str = _rule("127.0.0.1", doc="address of the admin HTTP API")
    port: int = _rule(9822, doc="port of the admin HTTP API", port=True)
    token: str = _rule("demo-admin-token", doc="bearer token for admin commands (FIXGATE_ADMIN_TOKEN overrides)",
                       secret=True)
    token_name: str = _rule("admin", doc="who the token stands for in the audit trail", identifier=True)
    tokens: tuple[TokenSettings, ...] = _rule((), doc="more named tokens, each with its role")
    read_requires_token: bool = _rule(False, doc="GET /status and /metrics need a token too (any role); "
                                                 "/health, /ready and the page itself never do")


@dataclass(frozen=True)
class LoggingSettings:
    level: str = _rule("INFO", doc="lowest level logged", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    format: str = _rule("json", doc="json lines or console text", choices=("json", "console"))
    file: str = _rule("", doc="log file, JSON lines (relative to the configuration file's folder); empty for "
                              "standard error")


@dataclass(frozen=True)
class TracingSettings:
    endpoint: str = _rule("", doc="OTLP/HTTP traces URL of a collector, e.g. http://127.0.0.1:4318/v1/traces; "
                                  "empty: no traces")
    sample_ratio: float = _rule(0.01, doc="share of orders traced (1.0: every order)", positive=True, maximum=1)
    service_name: str = _rule("fixgate", doc="the traces' service.name", identifier=True)
    export_interval_ms: int = _rule(1000, doc="how often spans are exported", minimum=10)
    max_orders_per_second: int = _rule(200, doc="at most this many orders traced a second, whatever the ratio "
                                                "(spans are built on the state thread)", minimum=1)


@dataclass(frozen=True)
class FirmLimitSettings:
    max_gross_exposure: Decimal | None = _rule(None, doc="the firm's gross exposure across all its gateways",
                                               minimum=0)
    max_daily_notional: Decimal | None = _rule(None, doc="the firm's notional per trading day across all its "
                                                         "gateways", minimum=0)
    max_daily_orders: int | None = _rule(None, doc="the orders the firm's gateways may accept per trading day, "
                                                   "together", minimum=0)
    chunk: float = _rule(0.05, doc="the share of a firm limit a gateway asks for at a time, and about what it "
                                   "gives back when another gateway asks and it is not using it", positive=True,
                         maximum=1)


@dataclass(frozen=True)
class FirmSettings:
    name: str = _rule("", doc="the firm this gateway belongs to: with a name, it publishes every event to the "
                              "firm's NATS JetStream stream and obeys the firm-wide kill switch; empty: a gateway "
                              "alone (the SQLite journal only)")
    servers: tuple[str, ...] = _rule(("nats://127.0.0.1:4222",), doc="NATS servers, nats://host:port each (a "
                                                                    "cluster's members)")
    lease_seconds: float = _rule(5.0, doc="a gateway that has not reached NATS for this long goes reduce-only "
                                          "until it does again (it could miss a firm-wide kill)", positive=True)
    reduce_only_when_unreachable: bool = _rule(False, doc="go reduce-only as soon as NATS is unreachable, without "
                                                          "waiting for the lease")
    replicas: int = _rule(1, doc="JetStream replicas of the firm's stream and key-value bucket (3 in a "
                                 "three-node cluster)", minimum=1, maximum=5)
    duplicate_window_seconds: int = _rule(600, doc="how long JetStream remembers a message id, so that a "
                                                   "re-publish is a no-op", minimum=1)
    connect_timeout_seconds: float = _rule(2.0, doc="how long one connection attempt to NATS may take",
                                           positive=True)
    limits: FirmLimitSettings = _rule(FirmLimitSettings(), doc="firm-wide limits, split into budgets each "
                                                              "gateway holds locally (every gateway of the firm "
                                                              "sets the same; the first to reach NATS records them)")


@dataclass(frozen=True)
class DropCopyClientSettings:
    comp_id: str = _rule(doc="the compliance client's CompID", identifier=True)
    username: str = _rule("", doc="Username(553) it must send on Logon (empty: none asked)")
    password: str = _rule("", doc="Password(554) it must send on Logon", secret=True)


@dataclass(frozen=True)
class DropCopySettings:
    comp_id: str = _rule("FIXGATE-DC", doc="the drop copy's CompID towards compliance clients", identifier=True)
    host: str = _rule("127.0.0.1", doc="address `fixgate dropcopy` listens on")
    port: int = _rule(9830, doc="port `fixgate dropcopy` listens on", port=True)
    state_dir: str = _rule("var/dropcopy", doc="its FIX stores and logs (relative to the configuration file's "
                                                "folder)")
    clients: tuple[DropCopyClientSettings, ...] = _rule((), doc="compliance clients, each served every "
                                                                "gateway's execution reports")


@dataclass(frozen=True)
class FaultSettings:
    reject_ratio: float = _rule(0.0, doc="share of new orders the simulator rejects", minimum=0, maximum=1)
    ack_delay_ms: int = _rule(0, doc="delay before the simulator acknowledges an order", minimum=0)


@dataclass(frozen=True)
class SimulatorSettings:
    host: str = _rule("127.0.0.1", doc="address the venue simulator listens on")
    port: int = _rule(9821, doc="port the venue simulator listens on", port=True)
    comp_id: str = _rule("SIMVENUE", doc="the simulator's CompID", identifier=True)
    seed: int = _rule(42, doc="seed of the simulated market")
    quote_interval_ms: int = _rule(200, doc="how often the market maker moves", minimum=1)
    refresh_ms: int = _rule(1000, doc="how often the top of book is sent again to subscribers, changed or "
                                      "not (a quiet market is not a stale one)", minimum=1)
    levels: int = _rule(3, doc="price levels the market maker quotes per side", minimum=1, maximum=20)
    quote_qty_lots: int = _rule(10, doc="lots the market maker shows per level", minimum=1)
    spread_ticks: int = _rule(2, doc="the market maker's spread in ticks", minimum=1)
    volatility_ticks: float = _rule(1.0, doc="standard deviation of a mid move, in ticks", minimum=0)
    faults: FaultSettings = _rule(FaultSettings(), doc="fault injection")


@dataclass(frozen=True)
class Config:
    gateway: GatewaySettings = _rule(GatewaySettings())
    acceptor: AcceptorSettings = _rule(AcceptorSettings())
    clients: tuple[ClientSettings, ...] = _rule(())
    venues: tuple[VenueSettings, ...] = _rule(())
    instruments: tuple[InstrumentSettings, ...] = _rule(())
    risk: RiskSettings = _rule(RiskSettings())
    quotes: QuoteSettings = _rule(QuoteSettings())
    admin: AdminSettings = _rule(AdminSettings())
    logging: LoggingSettings = _rule(LoggingSettings())
    tracing: TracingSettings = _rule(TracingSettings())
    firm: FirmSettings = _rule(FirmSettings())
    dropcopy: DropCopySettings = _rule(DropCopySettings())
    simulator: SimulatorSettings = _rule(SimulatorSettings())
    source: str = field(default="", compare=False, metadata={"internal": True})
    sha256: str = field(default="", compare=False, metadata={"internal": True})
    # gateway.state_dir as the file wrote it, when it was relative (resolved against the file's folder)
    state_dir_written: str = field(default="", compare=False, metadata={"internal": True})

    # -- LOOKUPS ----------------------------------------------------------------------------------

    def venue(self, name: str) -> VenueSettings:
        """Return the venue called `name`."""
        return next(venue for venue in self.venues if venue.name == name)

    def client_by_comp_id(self, comp_id: str) -> ClientSettings | None:
        """Return the client whose SenderCompID is `comp_id`, or None."""
        return next((client for client in self.clients if client.comp_id == comp_id), None)

    def as_dict(self, *, mask_secrets: bool = True) -> dict[str, Any]:
        """Return the resolved configuration as plain values (Decimals as strings, secrets masked)."""
        return _plain(self, mask_secrets)


# -- LOADING ----------------------------------------------------------------------------------------

DEFAULT_CONFIG = "defaults.toml"


def default_config_text() -> str:
    """Return the text of the bundled default configuration."""
    return resources.files("fixgate").joinpath(DEFAULT_CONFIG).read_text(encoding="utf-8")


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate `path`, or the bundled defaults when `path` is None.

    Raises
    ------
    ConfigError
        Listing every problem, each naming its key.
    """
    if path is None:
        return loads(default_config_text(), source=f"<bundled {DEFAULT_CONFIG}>")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([f"cannot read the file: {error.strerror or error}"], source=str(path)) from None
    config = relative_to(loads(text, source=str(path)), Path(path).resolve().parent)
    problems = file_problems(config)
    if problems:
        raise ConfigError(problems, source=str(path))
    return config


def file_problems(config: Config) -> list[str]:
    """Return what is wrong with the files the configuration names (dictionaries, TLS files)."""
    problems = []
    tls_owners = [("acceptor.tls", config.acceptor.tls)] + [
        (f"venues[{index}] ({venue.name}).tls", venue.tls) for index, venue in enumerate(config.venues)]
    for owner, tls in tls_owners:
        if not tls.enabled:
            continue
        for name in ("certificate", "key", "ca"):
            path = getattr(tls, name)
            if not path:
                continue
            if not Path(path).is_file():
                problems.append(f"{owner}.{name}: no such file {path}")
                continue
            text = Path(path).read_text(errors="replace")
            if "-----BEGIN" not in text:
                problems.append(f"{owner}.{name}: {path} is not a PEM file")
            elif name != "ca" and "-----BEGIN EC PRIVATE KEY" in text:
                problems.append(f"{owner}.{name}: {path} holds an EC key; QuickFIX C++ 1.15.1 takes RSA or DSA "
                                f"keys only")
    for section in ("clients", "venues"):
        for index, peer in enumerate(getattr(config, section)):
            path = peer.session.data_dictionary
            if path:
                problem = dictionary_problem(Path(path))
                if problem:
                    problems.append(f"{section}[{index}] ({peer.name}).session.data_dictionary: {problem}")
    return problems


def dictionary_problem(path: Path) -> str:
    """Why `path` is not a FIX 4.4 data dictionary QuickFIX can load, or "" when it is one."""
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.parse(path).getroot()
    except OSError as error:
        return f"cannot read {path}: {error.strerror or error}"
    except ElementTree.ParseError as error:
        return f"{path} is not XML: {error}"
    if root.tag != "fix" or (root.get("major"), root.get("minor")) != ("4", "4"):
        found = f"<{root.tag} major={root.get('major')!r} minor={root.get('minor')!r}>"
        return f"{path} is not a FIX 4.4 dictionary (its root is {found}, expected <fix major='4' minor='4'>)"
    missing = [part for part in ("header", "trailer", "messages", "fields") if root.find(part) is None]
    if missing:
        return f"{path} has no {', '.join(missing)} section"
    return ""


def relative_to(config: Config, directory: Path) -> Config:
    """Resolve the configuration's relative paths (state directory, log file) against `directory`,
    the configuration file's own folder, so that a command means the same files from any folder."""
    state_dir = Path(config.gateway.state_dir)
    log_file = Path(config.logging.file) if config.logging.file else None
    gateway, logging_settings = config.gateway, config.logging
    written = ""
    if not state_dir.is_absolute():
        gateway = dataclasses.replace(gateway, state_dir=str(directory / state_dir))
        written = str(state_dir)
    if log_file is not None and not log_file.is_absolute():
        logging_settings = dataclasses.replace(logging_settings, file=str(directory / log_file))

    def resolved(peer: Any) -> Any:
        path = peer.session.data_dictionary
        if not path or Path(path).is_absolute():
            return peer
        return dataclasses.replace(peer, session=dataclasses.replace(peer.session,
                                                                     data_dictionary=str(directory / path)))

    def tls_resolved(tls: TlsSettings) -> TlsSettings:
        return dataclasses.replace(tls, **{name: str(directory / getattr(tls, name)) for name in
                                           ("certificate", "key", "ca")
                                           if getattr(tls, name) and not Path(getattr(tls, name)).is_absolute()})

    venues = tuple(dataclasses.replace(resolved(venue), tls=tls_resolved(venue.tls)) for venue in config.venues)
    acceptor = dataclasses.replace(config.acceptor, tls=tls_resolved(config.acceptor.tls))
    dropcopy = config.dropcopy
    if not Path(dropcopy.state_dir).is_absolute():
        dropcopy = dataclasses.replace(dropcopy, state_dir=str(directory / dropcopy.state_dir))
    return dataclasses.replace(config, gateway=gateway, logging=logging_settings, state_dir_written=written,
                               clients=tuple(resolved(client) for client in config.clients), venues=venues,
                               acceptor=acceptor, dropcopy=dropcopy)


def loads(text: str, *, source: str = "configuration") -> Config:
    """Parse and validate TOML `text`; see `load`."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"not valid TOML: {error}"], source=source) from None
    problems: list[str] = []
    config = _build(Config, table, "", problems)
    if config is not None:
        try:
            cross = _cross_checks(config)
        except (TypeError, ValueError, AttributeError):
            cross = []              # a value of the wrong type is reported already; its cross-checks wait
        problems.extend(problem for problem in cross if problem not in problems)
    if problems:
        raise ConfigError(_named(problems, table), source=source)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return dataclasses.replace(config, source=source, sha256=digest)


_ELEMENT = re.compile(r"\b(instruments|clients|venues)\[(\d+)\]")
_NAME_KEYS = {"instruments": "symbol", "clients": "name", "venues": "name"}


def _named(problems: list[str], table: dict[str, Any]) -> list[str]:
    """Name each element a problem is about by its symbol or name: `instruments[2] (AAPL).tick_size`."""

    def label(match: re.Match) -> str:
        section, index = match.group(1), int(match.group(2))
        elements = table.get(section)
        if isinstance(elements, list) and index < len(elements) and isinstance(elements[index], dict):
            name = elements[index].get(_NAME_KEYS[section])
            if isinstance(name, str) and name:
                return f"{match.group(0)} ({name})"
        return match.group(0)

    return [_ELEMENT.sub(label, problem) for problem in problems]


# Secrets of the bundled configuration, which anyone can read: fine for the demo, never for trading.
DEMO_SECRETS = frozenset({"demo", "demo-admin-token"})


def warnings(config: Config) -> list[str]:
    """Return what is allowed but most likely a mistake: demo secrets, empty sections."""
    found = []
    if config.admin.enabled and config.admin.token in DEMO_SECRETS:
        found.append("admin.token: the bundled demo token; anyone who reads the defaults can kill or resume "
                     "(set your own, or FIXGATE_ADMIN_TOKEN)")
    for index, client in enumerate(config.clients):
        if client.password in DEMO_SECRETS:
            found.append(f"clients[{index}] ({client.name}).password: the bundled demo password")
    for index, venue in enumerate(config.venues):
        if venue.password and venue.password in DEMO_SECRETS:
            found.append(f"venues[{index}] ({venue.name}).password: the bundled demo password")
    if any(instrument.sector for instrument in config.instruments) and config.risk.max_sector_concentration is None:
        found.append("instruments[].sector: sectors are named but risk.max_sector_concentration is not set; "
                     "no sector limit applies")
    for section, label in (("clients", "no client can log on"), ("venues", "no order can reach a venue"),
                           ("instruments", "every order is rejected as an unknown symbol")):
        if not getattr(config, section):
            found.append(f"{section}: none configured; {label}")
    return found


# -- BUILDING ---------------------------------------------------------------------------------------

def _type_name(annotation: Any) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
             Decimal: "a number (or a decimal string such as \"0.01\")"}
    if annotation in names:
        return names[annotation]
    origin = typing.get_origin(annotation)
    if origin is tuple:
        item = typing.get_args(annotation)[0]
        return "an array of tables" if dataclasses.is_dataclass(item) else f"an array of {_type_name(item)}s"
    if dataclasses.is_dataclass(annotation):
        return "a table"
    return str(annotation)


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return f"{kind.get(type(value), type(value).__name__)} {value!r}"


def _convert(annotation: Any, value: Any, key: str, problems: list[str]) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        inner = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
        return _convert(inner, value, key, problems)
    expected = f"{key}: expected {_type_name(annotation)}, got {_describe(value)}"
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            problems.append(expected)
            return None
        return _build(annotation, value, key + ".", problems)
    if origin is tuple:
        item = typing.get_args(annotation)[0]
        if not isinstance(value, list):
            problems.append(expected)
            return None
        return tuple(_convert(item, element, f"{key}[{index}]", problems) for index, element in enumerate(value))
    if annotation is bool:
        if not isinstance(value, bool):
            problems.append(expected)
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(expected)
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(expected)
            return value
        return float(value)
    if annotation is Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            problems.append(expected)
            return value
        try:
            number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except InvalidOperation:
            problems.append(expected)
            return value
        if not number.is_finite():
            problems.append(expected)
        return number
    if annotation is str:
        if not isinstance(value, str):
            problems.append(expected)
        return value
    raise TypeError(f"unsupported setting type {annotation!r}")


def _check(value: Any, metadata: dict[str, Any], key: str, problems: list[str]) -> None:
    if value is None or isinstance(value, (dict, list)):
        return
    if metadata.get("identifier") and (not value or any(char.isspace() or char == "|" for char in value)):
        problems.append(f"{key}: expected a non-empty name without spaces, got {value!r}")
    if "choices" in metadata and value not in metadata["choices"]:
        choices = ", ".join(repr(choice) for choice in metadata["choices"])
        problems.append(f"{key}: expected one of {choices}, got {value!r}")
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        if metadata.get("positive") and not value > 0:
            problems.append(f"{key}: expected a positive number, got {value}")
        if "minimum" in metadata and value < metadata["minimum"]:
            problems.append(f"{key}: expected at least {metadata['minimum']}, got {value}")
        if "maximum" in metadata and value > metadata["maximum"]:
            problems.append(f"{key}: expected at most {metadata['maximum']}, got {value}")
        if metadata.get("below_one") and not value < 1:
            problems.append(f"{key}: expected a fraction below 1, got {value}")
        if metadata.get("port") and not 1 <= value <= 65535:
            problems.append(f"{key}: expected a TCP port from 1 to 65535, got {value}")
        if metadata.get("power_of_two") and (value < 2 or value & (value - 1)):
            problems.append(f"{key}: expected a power of two of at least 2, got {value}")


SUBJECT_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def _firm_problems(config: Config) -> list[str]:
    """The firm section: names that are NATS subject tokens, servers that are NATS URLs."""
    firm = config.firm
    if not firm.name:
        problems = ["dropcopy.clients: a drop copy reads the firm's stream; give [firm] a name and its servers"] \
            if config.dropcopy.clients else []
        limits = firm.limits
        if any(value is not None for value in (limits.max_gross_exposure, limits.max_daily_notional,
                                               limits.max_daily_orders)):
            problems.append("firm.limits: firm-wide limits are shared over the firm's NATS; give [firm] a name and "
                            "its servers")
        problems += [f"clients[{index}].firm_credit: a firm-wide credit is shared over the firm's NATS; give [firm] "
                     "a name and its servers" for index, client in enumerate(config.clients)
                     if client.firm_credit is not None]
        return problems
    problems = []
    problems += _duplicates([(f"dropcopy.clients[{index}].comp_id", client.comp_id)
                             for index, client in enumerate(config.dropcopy.clients)])
    if not SUBJECT_TOKEN.match(firm.name):
        problems.append(f"firm.name: {firm.name!r} may hold only letters, digits, '_' and '-' (it is a NATS subject "
                        "token)")
    if not SUBJECT_TOKEN.match(config.gateway.name):
        problems.append(f"gateway.name: {config.gateway.name!r} may hold only letters, digits, '_' and '-' in a "
                        "firm (it is a NATS subject token)")
    if not firm.servers:
        problems.append("firm.servers: at least one NATS server, nats://host:port")
    for position, server in enumerate(firm.servers):
        scheme, _, rest = server.partition("://")
        if scheme not in ("nats", "tls") or not rest:
            problems.append(f"firm.servers[{position}]: expected nats://host:port, got {server!r}")
    for index, client in enumerate(config.clients):
        if client.firm_credit is not None and not SUBJECT_TOKEN.match(client.name):
            problems.append(f"clients[{index}].name: {client.name!r} may hold only letters, digits, '_' and '-' with "
                            "firm_credit (it names the client's budget in the firm's key-value bucket)")
    return problems


def _build(cls: type, table: dict[str, Any], prefix: str, problems: list[str]) -> Any:
    fields = {item.name: item for item in dataclasses.fields(cls) if not item.metadata.get("internal")}
    hints = typing.get_type_hints(cls)
    for key in table:
        if key not in fields:
            guess = difflib.get_close_matches(key, fields, n=1)
            hint = f"; did you mean '{guess[0]}'?" if guess else f"; known keys: {', '.join(fields)}"
            problems.append(f"{prefix}{key}: unknown key{hint}")
    values = {}
    for name, item in fields.items():
        key = prefix + name
        if name in table:
            before = len(problems)
            value = _convert(hints[name], table[name], key, problems)
            _check(value, item.metadata, key, problems)
            if (len(problems) > before and item.default is not dataclasses.MISSING
                    and not isinstance(item.default, tuple) and not dataclasses.is_dataclass(item.default)):
                value = item.default          # a wrong value, reported: the cross-checks run on the default
            values[name] = value
        elif item.default is dataclasses.MISSING:
            problems.append(f"{key}: missing; {item.metadata.get('doc', 'required')}")
            values[name] = None
    try:
        return cls(**values)
    except TypeError:
        return None


def _port_owners(config: Config) -> list[tuple[str, str, int]]:
    owners = [("acceptor.port", config.acceptor.host, config.acceptor.port),
              ("admin.port", config.admin.host, config.admin.port),
              ("simulator.port", config.simulator.host, config.simulator.port)]
    return owners


def _duplicates(values: list[tuple[str, str]]) -> list[str]:
    seen: dict[str, str] = {}
    problems = []
    for key, value in values:
        if value in seen:
            problems.append(f"{key}: {value!r} is already used by {seen[value]}")
        else:
            seen[value] = key
    return problems


def _cross_checks(config: Config) -> list[str]:
    problems: list[str] = []
    venue_names = {venue.name for venue in config.venues}
    symbols = {instrument.symbol for instrument in config.instruments}
    problems += _duplicates([(f"clients[{index}].name", client.name) for index, client in enumerate(config.clients)])
    problems += _duplicates([("gateway.comp_id", config.gateway.comp_id)]
                            + [(f"clients[{index}].comp_id", client.comp_id)
                               for index, client in enumerate(config.clients)])
    problems += _duplicates([(f"venues[{index}].name", venue.name) for index, venue in enumerate(config.venues)])
    problems += _duplicates([("gateway.comp_id", config.gateway.comp_id)]
                            + [(f"venues[{index}].comp_id", venue.comp_id)
                               for index, venue in enumerate(config.venues)])
    problems += _duplicates([(f"instruments[{index}].symbol", instrument.symbol)
                             for index, instrument in enumerate(config.instruments)])
    problems += _duplicates([(key, f"{host}:{port}") for key, host, port in _port_owners(config)])
    listeners = {(host, port): key for key, host, port in _port_owners(config) if key != "simulator.port"}
    for index, venue in enumerate(config.venues):
        if (venue.host, venue.port) in listeners:
            problems.append(f"venues[{index}].port: {venue.host}:{venue.port} is the gateway's own "
                            f"{listeners[(venue.host, venue.port)]}")
    for index, instrument in enumerate(config.instruments):
        backup = instrument.backup_quote_venue
        if backup and backup not in venue_names:
            problems.append(f"instruments[{index}].backup_quote_venue: no venue named {backup!r}")
        elif backup and backup == instrument.venue:
            problems.append(f"instruments[{index}].backup_quote_venue: {backup!r} is the instrument's own venue")
        elif backup and not config.venue(backup).market_data:
            problems.append(f"instruments[{index}].backup_quote_venue: venue {backup!r} has market_data = false")
        if instrument.venue not in venue_names:
            known = ", ".join(sorted(venue_names)) or "none configured"
            problems.append(f"instruments[{index}].venue: no venue named {instrument.venue!r} (venues: {known})")
        if instrument.max_open_orders is not None and instrument.max_open_orders > config.gateway.order_capacity:
            problems.append(f"instruments[{index}].max_open_orders: {instrument.max_open_orders} exceeds "
                            f"gateway.order_capacity {config.gateway.order_capacity}")
    for index, client in enumerate(config.clients):
        for position, symbol in enumerate(client.instruments):
            if symbol != "*" and symbol not in symbols:
                problems.append(f"clients[{index}].instruments[{position}]: no instrument {symbol!r}")
        for position, symbol in enumerate(client.restricted):
            if symbol not in symbols:
                problems.append(f"clients[{index}].restricted[{position}]: no instrument {symbol!r}")
    try:
        if ipaddress.ip_address(config.acceptor.host).version == 6:
            problems.append(f"acceptor.host: {config.acceptor.host!r} is IPv6; QuickFIX's acceptor listens on IPv4 "
                            f"only (an IPv4 address, a host name, or 0.0.0.0 for every interface)")
    except ValueError:
        pass                                            # a host name: resolved when the gateway starts
    for section in ("clients", "venues"):
        for index, peer in enumerate(getattr(config, section)):
            problems += _schedule_problems(f"{section}[{index}].session", peer.session)
    for index, client in enumerate(config.clients):
        problems += _pair_problem(f"clients[{index}]", client, "username", "password",
                                  "the client's {given} is set, and Logon credentials are both or neither")
        if not client.username and not client.source_addresses and not client.certificate_name:
            problems.append(f"clients[{index}].username: a client without Logon credentials must be known "
                            f"another way: set username and password, source_addresses, or certificate_name")
        if client.certificate_name and not (config.acceptor.tls.enabled and
                                            config.acceptor.tls.require_client_certificate):
            problems.append(f"clients[{index}].certificate_name: needs acceptor.tls.enabled and "
                            f"acceptor.tls.require_client_certificate")
        for position, address in enumerate(client.source_addresses):
            try:
                ipaddress.ip_address(address)
            except ValueError:
                problems.append(f"clients[{index}].source_addresses[{position}]: expected an IP address, "
                                f"got {address!r}")
    tls = config.acceptor.tls
    if tls.enabled and not tls.certificate:
        problems.append("acceptor.tls.certificate: missing; a TLS acceptor needs its certificate")
    if tls.require_client_certificate and not tls.ca:
        problems.append("acceptor.tls.ca: missing; client certificates are required, and are checked against it")
    for index, venue in enumerate(config.venues):
        for position, backup in enumerate(venue.backup_hosts):
            if host_port(backup) is None:
                problems.append(f"venues[{index}].backup_hosts[{position}]: expected \"host:port\" with a port "
                                f"from 1 to 65535, got {backup!r}")
            elif host_port(backup) == (venue.host, venue.port):
                problems.append(f"venues[{index}].backup_hosts[{position}]: {backup} is the venue's primary")
        if venue.tls.enabled and not venue.tls.ca:
            problems.append(f"venues[{index}].tls.ca: missing; without it the venue's certificate is not checked")
        if venue.tls.require_client_certificate:
            problems.append(f"venues[{index}].tls.require_client_certificate: only the acceptor asks for client "
                            f"certificates")
    for position, symbol in enumerate(config.risk.restricted):
        if symbol not in symbols:
            problems.append(f"risk.restricted[{position}]: no instrument {symbol!r}")
    admin_names = [("admin.token_name", config.admin.token_name)] + [
        (f"admin.tokens[{index}].name", token.name) for index, token in enumerate(config.admin.tokens)]
    problems += _duplicates(admin_names)
    secrets = [("admin.token", config.admin.token)] + [
        (f"admin.tokens[{index}] ({token.name}).token", token.token) for index, token in enumerate(config.admin.tokens)]
    for key, value in secrets:
        if len(value) < 12:
            problems.append(f"{key}: a token needs at least 12 characters")
    seen: dict[str, str] = {}
    for key, value in secrets:
        if value in seen:
            problems.append(f"{key}: the same token as {seen[value]} (each token names one actor)")
        seen.setdefault(value, key)
    problems += _firm_problems(config)
    endpoint = config.tracing.endpoint
    if endpoint and not (endpoint.startswith(("http://", "https://")) and len(endpoint.split("://", 1)[1]) > 0):
        problems.append(f"tracing.endpoint: expected an http:// or https:// URL, got {endpoint!r}")
    risk = config.risk
    if risk.warning_drawdown >= risk.breaker_drawdown:
        problems.append(f"risk.warning_drawdown: {risk.warning_drawdown} must be below "
                        f"risk.breaker_drawdown {risk.breaker_drawdown}")
    if risk.recovery_hysteresis >= risk.warning_drawdown:
        problems.append(f"risk.recovery_hysteresis: {risk.recovery_hysteresis} must be below "
                        f"risk.warning_drawdown {risk.warning_drawdown}")
    if not _valid_time_of_day(risk.trading_day_start_utc):
        problems.append(f"risk.trading_day_start_utc: expected HH:MM (00:00 to 23:59), "
                        f"got {risk.trading_day_start_utc!r}")
    if len(config.instruments) > 65536:
        problems.append("instruments: at most 65536 instruments")
    if len(config.venues) > 64:
        problems.append("venues: at most 64 venues")
    return problems


def _pair_problem(key: str, settings: Any, first: str, second: str, why: str) -> list[str]:
    """Two settings given both or neither: the one missing when only the other is set (`why` may name
    the one given as {given})."""
    if bool(getattr(settings, first)) == bool(getattr(settings, second)):
        return []
    given, missing = (first, second) if getattr(settings, first) else (second, first)
    return [f"{key}.{missing}: missing; " + why.format(given=given)]


def _schedule_problems(key: str, options: FixSessionSettings) -> list[str]:
    from fixgate.core.schedule import parse_day, parse_time, zone

    problems = _pair_problem(key, options, "start_time", "end_time", "{given} is set, and a session needs both")
    for name in ("start_time", "end_time"):
        value = getattr(options, name)
        if value and parse_time(value) is None:
            problems.append(f"{key}.{name}: expected HH:MM or HH:MM:SS, got {value!r}")
    problems += _pair_problem(key, options, "start_day", "end_day",
                              "{given} is set, and a weekly session needs both")
    for name in ("start_day", "end_day"):
        value = getattr(options, name)
        if value and parse_day(value) is None:
            problems.append(f"{key}.{name}: expected a day (Monday to Sunday), got {value!r}")
    if options.start_day and not options.start_time:
        problems.append(f"{key}.start_time: missing; a weekly session needs its times")
    if zone(options.time_zone) is None:
        problems.append(f"{key}.time_zone: unknown time zone {options.time_zone!r} (an IANA name such as "
                        f"Europe/London, or UTC)")
    return problems


def host_port(text: str) -> tuple[str, int] | None:
    """("host", port) of "host:port", or None when it is not one."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535 or any(c.isspace() for c in host):
        return None
    return host, int(port)


def _valid_time_of_day(text: str) -> bool:
    hours, _, minutes = text.partition(":")
    return (len(hours) == 2 and len(minutes) == 2 and hours.isdigit() and minutes.isdigit()
            and int(hours) < 24 and int(minutes) < 60)


def trading_day_offset_ns(config: Config) -> int:
    """Return the trading-day start as nanoseconds after midnight UTC."""
    hours, minutes = config.risk.trading_day_start_utc.split(":")
    return (int(hours) * 60 + int(minutes)) * 60 * 1_000_000_000


# -- PRINTING ---------------------------------------------------------------------------------------

def _plain(value: Any, mask_secrets: bool) -> Any:
    if dataclasses.is_dataclass(value):
        result = {}
        for item in dataclasses.fields(value):
            if item.metadata.get("internal"):
                continue
            element = getattr(value, item.name)
            if item.metadata.get("secret") and mask_secrets:
                result[item.name] = SECRET_MASK
            else:
                result[item.name] = _plain(element, mask_secrets)
        return result
    if isinstance(value, tuple):
        return [_plain(element, mask_secrets) for element in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


def to_toml(config: Config, *, mask_secrets: bool = True) -> str:
    """Return the resolved configuration as TOML text."""
    plain = config.as_dict(mask_secrets=mask_secrets)
    lines: list[str] = []

    def scalar(value: Any) -> str:
        if value is None:
            return '"none"'
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return repr(value)
        if isinstance(value, list):
            return "[" + ", ".join(scalar(element) for element in value) + "]"
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    def table(name: str, values: dict[str, Any], array: bool = False) -> None:
        lines.append(f"[[{name}]]" if array else f"[{name}]")
        nested = []
        for key, value in values.items():
            if isinstance(value, dict):
                nested.append((key, value))
            elif value is not None:
                lines.append(f"{key} = {scalar(value)}")
        lines.append("")
        for key, value in nested:
            table(f"{name}.{key}", value)

    for name, values in plain.items():
        if isinstance(values, list):
            for element in values:
                table(name, element, array=True)
        else:
            table(name, values)
    return "\n".join(lines)
