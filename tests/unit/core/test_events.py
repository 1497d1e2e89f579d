"""Per-thread rings and the causal drain order."""

import threading

from fixgate._fast.codes import EventKind
from fixgate.core.events import REQUESTS, VENUE, Drainer, EventSink


def test_sink_when_threads_push_gives_each_thread_its_own_ring():
    sink = EventSink(16)
    barrier = threading.Barrier(3)

    def produce(order_id):
        barrier.wait()
        for _ in range(5):
            assert sink.push(REQUESTS, EventKind.ACCEPTED, order_id)

    threads = [threading.Thread(target=produce, args=(number,)) for number in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rings = sink.rings(REQUESTS)
    assert len(rings) == 3
    assert sorted(ring.size() for _, ring in rings) == [5, 5, 5]
    assert sink.occupancy() == 15


def test_sink_when_ring_full_refuses_and_counts():
    sink = EventSink(4)
    assert [sink.push(VENUE, EventKind.FILLED, 1) for _ in range(5)] == [True] * 4 + [False]
    assert sink.refused == 1 and sink.full_count() == 1
    assert not sink.has_room(VENUE, 1)


def test_drain_when_venue_report_was_pushed_before_the_drain_yields_requests_first():
    sink = EventSink(16)
    sink.push(VENUE, EventKind.FILLED, 7)           # a report from the venue thread...
    sink.push(REQUESTS, EventKind.ACCEPTED, 7)      # ...and the request it answered, pushed earlier in truth
    kinds = [int(row["kind"]) for row in Drainer(sink).drain()]
    assert kinds == [EventKind.ACCEPTED, EventKind.FILLED]
    assert list(Drainer(sink).drain()) == []
