"""The ``fixgate`` command."""

from __future__ import annotations

import argparse
import os
import platform
import sys

import fixgate


def machine_description() -> str:
    """Return 'CPU model, N cores, Python x.y.z' for benchmark reports."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _format_ns(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1_000_000:
        return f"{value / 1e6:.2f} ms"
    if value >= 1_000:
        return f"{value / 1e3:.2f} µs"
    return f"{value:.0f} ns"


def command_bench(arguments: argparse.Namespace) -> int:
    """Run the hot-path benchmarks (fast vs reference) and print a summary table."""
    from fixgate.bench import hotpath

    print(f"fixgate {fixgate.__version__} hot-path benchmark on {machine_description()}")
    print("medians per operation over rounds; p99 per call includes one perf_counter_ns pair "
          f"(~{hotpath.timer_overhead_ns():.0f} ns here)\n")
    header = f"{'group':<38} {'fast median':>12} {'fast p99':>10} {'reference':>12} {'ratio':>8}"
    print(header)
    print("-" * len(header))
    for fast, reference in hotpath.summary(quick=arguments.quick):
        ratio = reference.median_ns / fast.median_ns
        print(f"{fast.group:<38} {_format_ns(fast.median_ns):>12} {_format_ns(fast.p99_ns):>10} "
              f"{_format_ns(reference.median_ns):>12} {ratio:>7.0f}x")
    print("\nbudget: check chain <= 1 µs per order; batch <= 100 ns per order. "
          "Full suite: pytest benchmarks/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``fixgate`` command."""
    parser = argparse.ArgumentParser(
        prog="fixgate",
        description="fixgate: a FIX order gateway with a Cython pre-trade risk hot path.",
    )
    parser.add_argument("--version", action="version", version=f"fixgate {fixgate.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench = commands.add_parser(
        "bench", help="measure the hot path, Cython against the plain-Python reference",
        description="Measure the pre-trade check chain, the batch checker and quote validation, "
                    "Cython against the plain-Python reference on identical inputs, and print "
                    "medians, p99 and ratios.")
    bench.add_argument("--quick", action="store_true", help="small inputs and few rounds (a few seconds)")
    bench.set_defaults(handler=command_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``fixgate`` command; return its exit code."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.command is None:
        parser.print_help(sys.stderr)
        return 2
    return arguments.handler(arguments)


if __name__ == "__main__":
    sys.exit(main())
