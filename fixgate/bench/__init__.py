"""Benchmark scenarios shared by ``fixgate bench`` and the pytest-benchmark suites in ``benchmarks/``."""
