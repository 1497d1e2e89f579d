"""Restart time: replaying a journal of engine events the way the gateway does at start."""

import pytest

from fixgate.bench import recovery


def _journal(tmp_path_factory, request, *, snapshot: bool):
    quick = request.config.getoption("--quick")
    events = 8_000 if quick else 200_000
    path = tmp_path_factory.mktemp("journal") / "journal.sqlite3"
    written = recovery.build_journal(path, events, snapshot_at_end=snapshot)
    return path, written


@pytest.fixture(scope="module")
def journal(tmp_path_factory, request):
    return _journal(tmp_path_factory, request, snapshot=False)


@pytest.fixture(scope="module")
def snapshotted(tmp_path_factory, request):
    return _journal(tmp_path_factory, request, snapshot=True)


def test_replay_journal(benchmark, journal, quick, per_operation):
    benchmark.group = "restart: journal replay (accepted, acked, two fills per order)"
    path, written = journal
    seconds, replayed = benchmark.pedantic(recovery.replay_seconds, args=(path,), rounds=1 if quick else 3,
                                           iterations=1)
    assert replayed == written
    recovery.check(path, written // recovery.ORDER_EVENTS)
    benchmark.extra_info["events"] = written
    benchmark.extra_info["events_per_second"] = round(written / seconds)
    per_operation(benchmark, "fast", written, unit="event")


def test_replay_after_snapshot(benchmark, snapshotted, quick):
    """A snapshot at the end of the same day: replay reads no events, only the day's ids."""
    benchmark.group = "restart: journal replay (accepted, acked, two fills per order)"
    path, written = snapshotted
    seconds, replayed = benchmark.pedantic(recovery.replay_seconds, args=(path,), rounds=1 if quick else 3,
                                           iterations=1)
    assert replayed == 0
    recovery.check(path, written // recovery.ORDER_EVENTS)
    benchmark.extra_info["events_before_snapshot"] = written
    benchmark.extra_info["seconds"] = round(seconds, 4)
