"""Run a native benchmark peer (``fixgate.bench._peers``) in this process, from the command line.

One peer per process, so that the harness can start each in its own process and pin it (``taskset``)::

    python -m fixgate.bench.native_peers venue --port 9881 --sender SIMVENUE --target FIXGATE --mode ioc \\
        --ready-file venue.ready --output venue.json
    python -m fixgate.bench.native_peers client --host 127.0.0.1 --port 9881 --sender CLIENT1 \\
        --target FIXGATE --username demo --password demo --mode latency --orders 10000 --warmup 1000 \\
        --symbol AAPL --side 1 --qty 1 --price 187.00 --tif 3 --output result.json

The venue runs until SIGTERM/SIGINT (or ``--duration``), then logs its sessions out and writes its
counts. The client writes ``result.json`` (counts, rates, latency percentiles in µs) and, next to
it, ``result.samples.npz`` with the raw samples: ``latency_ns`` (int64 per measured order in send
order, -1 for an order that got no report) and ``completed`` (bool per measured order).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# NumPy is imported where it is used, after a run: importing it starts OpenBLAS's thread pool, which
# has no business sharing a benchmark peer's cores while it measures.

PERCENTILES = {"p50_us": 50.0, "p90_us": 90.0, "p99_us": 99.0, "p999_us": 99.9}


# -- RESULTS ------------------------------------------------------------------------------------------

def latency_summary(latency_ns: np.ndarray) -> dict[str, float | int]:
    """Return the count, mean, percentiles and maximum in µs of the answered orders' latencies.

    Parameters
    ----------
    latency_ns : numpy.ndarray
        int64 nanoseconds per order; -1 marks an order without a report (left out).
    """
    import numpy as np

    answered = latency_ns[latency_ns >= 0].astype(np.float64) / 1e3
    if answered.size == 0:
        return {"count": 0}
    summary: dict[str, float | int] = {"count": int(answered.size), "mean_us": float(answered.mean())}
    for key, value in zip(PERCENTILES, np.percentile(answered, list(PERCENTILES.values())), strict=True):
        summary[key] = float(value)
    summary["max_us"] = float(answered.max())
    return summary


def samples_path(output: Path) -> Path:
    """Return where the raw samples of the result file `output` go (``result.json`` -> ``result.samples.npz``)."""
    return output.with_name(output.stem + ".samples.npz")


def write_client_result(result: dict[str, Any], output: Path) -> dict[str, Any]:
    """Write a load-client result as JSON at `output` and its samples next to it; return the JSON part."""
    import numpy as np

    latency_ns = result["latency_ns"]
    completed = result["completed"]
    samples = samples_path(output)
    np.savez(samples, latency_ns=latency_ns, completed=completed)
    document = {key: value for key, value in result.items() if key not in ("latency_ns", "completed")}
    document["latency_us"] = latency_summary(latency_ns)
    document["samples_file"] = samples.name
    output.write_text(json.dumps(document, indent=2) + "\n")
    return document


# -- ARGUMENTS ----------------------------------------------------------------------------------------

def parse_quote(text: str) -> tuple[str, tuple[str, str]]:
    """Read ``SYMBOL=BID/OFFER`` (e.g. ``AAPL=186.99/187.01``)."""
    symbol, separator, prices = text.partition("=")
    bid, slash, offer = prices.partition("/")
    if not (symbol and separator and bid and slash and offer):
        raise argparse.ArgumentTypeError(f"expected SYMBOL=BID/OFFER such as AAPL=186.99/187.01, found {text!r}")
    return symbol, (bid, offer)


def default_data_dictionary() -> str:
    """Return the FIX44.xml that ships with the pip quickfix package."""
    from fixgate.fix.engine import data_dictionary_path

    return str(data_dictionary_path())


def build_parser() -> argparse.ArgumentParser:
    """Return the command line of both peers (subcommands ``venue`` and ``client``)."""
    parser = argparse.ArgumentParser(prog="python -m fixgate.bench.native_peers",
                                     description="Native benchmark peers over QuickFIX C++ (one per process).")
    peers = parser.add_subparsers(dest="peer", required=True)

    def add_session_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--port", type=int, required=True)
        command.add_argument("--sender", required=True, help="this peer's SenderCompID")
        command.add_argument("--heartbeat", type=int, default=30, help="HeartBtInt in seconds")
        command.add_argument("--data-dictionary", help="FIX44.xml (default: the one the pip quickfix ships)")
        command.add_argument("--state-dir", type=Path,
                             help="for the QuickFIX settings file and file store (default: a temporary directory, "
                                  "removed at exit)")
        command.add_argument("--store", choices=("memory", "file"), default="memory")
        command.add_argument("--persist-messages", action="store_true",
                             help="keep sent messages for resends (memory or disk grows with every message)")
        command.add_argument("--output", type=Path, help="write the result here as JSON (default: print it)")

    venue = peers.add_parser("venue", help="the echo venue (an acceptor)")
    add_session_options(venue)
    venue.add_argument("--target", action="append", required=True,
                       help="a counterparty's CompID; repeat for more sessions")
    venue.add_argument("--mode", choices=("ack", "fill", "ioc"), default="ack")
    venue.add_argument("--duration", type=float, help="stop after this many seconds (default: at SIGTERM/SIGINT)")
    venue.add_argument("--ready-file", type=Path, help="written once the venue listens")
    venue.add_argument("--quote", type=parse_quote, action="append", default=[],
                       help="SYMBOL=BID/OFFER for market-data snapshots; repeatable")
    venue.add_argument("--quote-size", default="100")
    venue.add_argument("--reset-on-logon", action="store_true")

    client = peers.add_parser("client", help="the load client (an initiator)")
    add_session_options(client)
    client.add_argument("--host", default="127.0.0.1")
    client.add_argument("--target", required=True, help="the peer's CompID")
    client.add_argument("--username")
    client.add_argument("--password")
    client.add_argument("--no-reset-on-logon", dest="reset_on_logon", action="store_false")
    client.add_argument("--mode", choices=("latency", "throughput", "rate"), default="latency")
    client.add_argument("--orders", type=int, help="measured orders (default 10000 unless --duration is given)")
    client.add_argument("--warmup", type=int, default=1_000, help="orders sent one at a time first, not measured")
    client.add_argument("--outstanding", type=int, default=64, help="orders in flight in throughput mode")
    client.add_argument("--duration", type=float, help="length of the measured phase in seconds")
    client.add_argument("--rate", type=float, help="orders a second in rate mode")
    client.add_argument("--complete-on", choices=("first", "final"), default="final",
                        help="an order completes on its first report, or on a final OrdStatus (default)")
    client.add_argument("--symbol", default="AAPL")
    client.add_argument("--side", default="1")
    client.add_argument("--qty", default="1")
    client.add_argument("--price", default="187.00")
    client.add_argument("--tif", default="3", help="TimeInForce(59)")
    client.add_argument("--cl-ord-id-prefix")
    client.add_argument("--answer-timeout", type=float, default=5.0,
                        help="seconds to wait for the last answers before orders count as lost")
    client.add_argument("--logon-timeout", type=float, default=10.0)
    return parser


# -- RUNNING ------------------------------------------------------------------------------------------

def run_venue(arguments: argparse.Namespace, state_dir: Path) -> dict[str, Any]:
    """Run the echo venue from parsed arguments; write (or print) and return its counts."""
    from fixgate.bench import _peers

    settings = {
        "port": arguments.port,
        "sessions": [(arguments.sender, target) for target in arguments.target],
        "data_dictionary": arguments.data_dictionary or default_data_dictionary(),
        "state_dir": str(state_dir),
        "store": arguments.store,
        "heartbeat_seconds": arguments.heartbeat,
        "reset_on_logon": arguments.reset_on_logon,
        "persist_messages": arguments.persist_messages,
    }
    result = _peers.run_echo_venue(settings, arguments.mode, arguments.duration,
                                   str(arguments.ready_file) if arguments.ready_file else None,
                                   dict(arguments.quote), quote_size=arguments.quote_size)
    if arguments.output:
        arguments.output.write_text(json.dumps(result, indent=2) + "\n")
    else:
        print(json.dumps(result, indent=2))
    return result


def run_client(arguments: argparse.Namespace, state_dir: Path) -> dict[str, Any]:
    """Run the load client from parsed arguments; write (or print) and return its result without samples."""
    from fixgate.bench import _peers

    settings = {
        "host": arguments.host,
        "port": arguments.port,
        "sender": arguments.sender,
        "target": arguments.target,
        "username": arguments.username,
        "password": arguments.password,
        "data_dictionary": arguments.data_dictionary or default_data_dictionary(),
        "state_dir": str(state_dir),
        "store": arguments.store,
        "heartbeat_seconds": arguments.heartbeat,
        "reset_on_logon": arguments.reset_on_logon,
        "persist_messages": arguments.persist_messages,
    }
    orders = arguments.orders if arguments.orders is not None else (None if arguments.duration else 10_000)
    result = _peers.run_load_client(
        settings, arguments.mode, orders=orders, warmup_orders=arguments.warmup, outstanding=arguments.outstanding,
        duration_seconds=arguments.duration, rate_per_second=arguments.rate, complete_on=arguments.complete_on,
        symbol=arguments.symbol, side=arguments.side, quantity=arguments.qty, price=arguments.price,
        time_in_force=arguments.tif, cl_ord_id_prefix=arguments.cl_ord_id_prefix,
        answer_timeout_seconds=arguments.answer_timeout, logon_timeout_seconds=arguments.logon_timeout)
    if arguments.output:
        return write_client_result(result, arguments.output)
    document = {key: value for key, value in result.items() if key not in ("latency_ns", "completed")}
    document["latency_us"] = latency_summary(result["latency_ns"])
    print(json.dumps(document, indent=2))
    return document


def main(argv: Sequence[str] | None = None) -> int:
    """Run the peer named on the command line; return the exit status (0, or 1 when it could not run)."""
    arguments = build_parser().parse_args(argv)
    temporary = arguments.state_dir is None
    state_dir = Path(tempfile.mkdtemp(prefix=f"fixgate-{arguments.peer}-")) if temporary else arguments.state_dir
    try:
        (run_venue if arguments.peer == "venue" else run_client)(arguments, state_dir)
    except (ValueError, RuntimeError, OSError) as error:
        print(f"native {arguments.peer}: {error}", file=sys.stderr)
        return 1
    finally:
        if temporary:
            shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
