"""Shared options for the benchmark suites.

``pytest benchmarks/ --quick`` runs every benchmark once on small inputs, so that CI proves the
suites still run; the figures of a quick run are not worth quoting.
"""

import os

# NumPy's OpenBLAS starts a spinning thread per core at import; nothing measured here does linear
# algebra, and on two cores that thread takes turns from the code under test (as `fixgate bench` does).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402

_RESULTS = pytest.StashKey[list]()


def pytest_addoption(parser):
    parser.addoption(
        "--quick",
        action="store_true",
        default=False,
        help="run each benchmark briefly on small inputs (CI smoke run; figures not meaningful)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.stash[_RESULTS] = []
    if config.getoption("--quick"):
        config.option.benchmark_min_rounds = 1
        config.option.benchmark_max_time = 0.02
        config.option.benchmark_warmup = False


@pytest.fixture
def quick(request) -> bool:
    """Return True when the suite runs in quick mode."""
    return bool(request.config.getoption("--quick"))


@pytest.fixture
def per_operation(request):
    """Record a benchmark's median per operation (rounds time many operations) for the summary.

    Call it after the benchmark ran: ``per_operation(benchmark, implementation, operations, p99_ns=...)``.
    """

    def record(benchmark, implementation, operations, *, unit="op", p99_ns=None):
        median_ns = benchmark.stats.stats.median * 1e9 / operations
        benchmark.extra_info["per_operation_ns"] = round(median_ns, 1)
        benchmark.extra_info["operations_per_round"] = operations
        if p99_ns is not None:
            benchmark.extra_info["p99_per_call_ns"] = p99_ns
        request.config.stash[_RESULTS].append((benchmark.group, implementation, median_ns, p99_ns, unit))

    return record


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    results = config.stash.get(_RESULTS, [])
    if not results:
        return
    groups = {}
    for group, implementation, median_ns, p99_ns, unit in results:
        groups.setdefault(group, {})[implementation] = (median_ns, p99_ns, unit)
    write = terminalreporter.write_line
    terminalreporter.section("fast vs reference, per operation")
    write(f"{'group':<72} {'fast median':>12} {'fast p99':>10} {'reference':>12} {'ratio':>7}")
    for group, rows in groups.items():
        fast = rows.get("fast")
        reference = rows.get("reference")
        if fast is None:
            continue
        p99 = f"{fast[1]:.0f} ns" if fast[1] is not None else "-"
        if fast[2] == "event":
            rate = 1e9 / fast[0]
            group = f"{group} ({rate / 1e6:.1f} M events/s)" if rate >= 1e5 else f"{group} ({rate / 1e3:.1f} k events/s)"
        reference_text = f"{reference[0]:.0f} ns" if reference else "-"
        ratio = f"{reference[0] / fast[0]:.0f}x" if reference else "-"
        write(f"{group:<72} {fast[0]:>9.1f} ns {p99:>10} {reference_text:>12} {ratio:>7}")
    if config.getoption("--quick"):
        write("(quick mode: figures are not meaningful)")
