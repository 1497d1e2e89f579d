"""A latency histogram cheap enough for the order path: fixed buckets, one array per thread.

Each thread records into its own counts (no lock, no lost increments between threads); readers merge
the threads' arrays. Exported to Prometheus by ``fixgate.ops.metrics`` at scrape time.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import deque

# Bucket upper bounds in nanoseconds: 100 ns to 1 s.
CHECK_BUCKETS_NS = (100, 200, 300, 500, 750, 1_000, 2_000, 5_000, 10_000, 50_000, 100_000, 1_000_000)
PATH_BUCKETS_NS = (10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
                   10_000_000, 50_000_000, 100_000_000, 1_000_000_000)


class LatencyHistogram:
    """Counts of durations per bucket (the last bucket is +Inf), and their sum, per thread."""

    def __init__(self, bounds_ns: tuple[int, ...]) -> None:
        self.bounds_ns = bounds_ns
        self._threads: dict[int, list[int]] = {}
        self._lock = threading.Lock()

    def _counts(self) -> list[int]:
        ident = threading.get_ident()
        counts = self._threads.get(ident)
        if counts is None:
            counts = [0] * (len(self.bounds_ns) + 2)        # buckets, +Inf, then the sum
            with self._lock:
                self._threads[ident] = counts
        return counts

    def record(self, nanoseconds: int) -> None:
        counts = self._counts()
        counts[bisect_left(self.bounds_ns, nanoseconds)] += 1
        counts[-1] += nanoseconds

    def snapshot(self) -> tuple[list[int], int, int]:
        """Return (counts per bucket including +Inf, total count, sum in ns), merged over threads."""
        with self._lock:
            arrays = [list(counts) for counts in self._threads.values()]
        merged = [0] * (len(self.bounds_ns) + 2)
        for counts in arrays:
            for index, value in enumerate(counts):
                merged[index] += value
        buckets = merged[:-1]
        return buckets, sum(buckets), merged[-1]

    def percentile(self, fraction: float) -> int | None:
        """Return the upper bound of the bucket holding the `fraction` quantile (None when empty)."""
        buckets, total, _ = self.snapshot()
        if not total:
            return None
        target = fraction * total
        running = 0
        for index, count in enumerate(buckets):
            running += count
            if running >= target:
                return self.bounds_ns[index] if index < len(self.bounds_ns) else None
        return None


class StageTimes:
    """The latest durations of each stage of the order path, for the benchmark's breakdown.

    Bounded (the last `size` samples per stage); a deque append is safe from any thread.
    """

    STAGES = ("decode", "checks", "journal", "encode_send", "internal", "relay")

    def __init__(self, size: int = 50_000) -> None:
        self.samples = {stage: deque(maxlen=size) for stage in self.STAGES}

    def record(self, stage: str, nanoseconds: int) -> None:
        self.samples[stage].append(nanoseconds)

    def clear(self) -> None:
        for samples in self.samples.values():
            samples.clear()

    def summary(self) -> dict[str, dict[str, float]]:
        """Return count and p50/p90/p99/p99.9 in nanoseconds per stage."""
        result = {}
        for stage, samples in self.samples.items():
            ordered = sorted(list(samples))
            if not ordered:
                result[stage] = {"count": 0}
                continue

            def at(fraction: float) -> int:
                return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

            result[stage] = {"count": len(ordered), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99),
                             "p999": at(0.999)}
        return result
