"""Shared options for the benchmark suites.

``pytest benchmarks/ --quick`` runs every benchmark once on small inputs, so that CI proves the
suites still run; the figures of a quick run are not worth quoting.
"""

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--quick",
        action="store_true",
        default=False,
        help="run each benchmark briefly on small inputs (CI smoke run; figures not meaningful)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if config.getoption("--quick"):
        config.option.benchmark_min_rounds = 1
        config.option.benchmark_max_time = 0.02
        config.option.benchmark_warmup = False


@pytest.fixture
def quick(request) -> bool:
    """Return True when the suite runs in quick mode."""
    return bool(request.config.getoption("--quick"))
