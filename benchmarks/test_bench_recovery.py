"""Restart time: replaying a journal the way the gateway does at start."""

import pytest

from fixgate.bench import recovery


@pytest.fixture(scope="module")
def journal(tmp_path_factory, request):
    quick = request.config.getoption("--quick")
    events = 8_000 if quick else 100_000
    path = tmp_path_factory.mktemp("journal") / "journal.sqlite3"
    written = recovery.build_journal(path, events)
    return path, written


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
