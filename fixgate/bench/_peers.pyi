"""Native benchmark peers over QuickFIX C++: an echo venue and a load client (see _peers.pyx)."""

from collections.abc import Mapping
from os import PathLike
from typing import Any, Final, Literal

VENUE_MODES: Final[tuple[str, ...]]
CLIENT_MODES: Final[tuple[str, ...]]
COMPLETE_ON: Final[tuple[str, ...]]
STORES: Final[tuple[str, ...]]
VENUE_SETTINGS: Final[dict[str, tuple[str, object]]]
CLIENT_SETTINGS: Final[dict[str, tuple[str, object]]]

def run_echo_venue(
    settings: Mapping[str, object],
    mode: Literal["ack", "fill", "ioc"] = "ack",
    duration_seconds: float | None = None,
    ready_file: str | PathLike[str] | None = None,
    quotes: Mapping[str, tuple[str, str]] | None = None,
    *,
    quote_size: str = "100",
) -> dict[str, Any]:
    """Run the echo venue until `duration_seconds` pass or SIGINT/SIGTERM arrives; return its counts."""

def run_load_client(
    settings: Mapping[str, object],
    mode: Literal["latency", "throughput", "rate"] = "latency",
    *,
    orders: int | None = 10_000,
    warmup_orders: int = 1_000,
    outstanding: int = 64,
    duration_seconds: float | None = None,
    rate_per_second: float | None = None,
    complete_on: Literal["first", "final"] = "final",
    symbol: str = "AAPL",
    side: str = "1",
    quantity: str = "1",
    price: str = "187.00",
    time_in_force: str = "3",
    cl_ord_id_prefix: str | None = None,
    answer_timeout_seconds: float = 5.0,
    logon_timeout_seconds: float = 10.0,
) -> dict[str, Any]:
    """Log on, send orders in `mode`, time each to its first report; return counts and samples."""

def tcp_echo(port: int, message_bytes: int = 200, seconds: float = 0.0, ready_file: str | None = None) -> None: ...
def tcp_pingpong(port: int, message_bytes: int = 200, count: int = 10_000) -> list[int]: ...
