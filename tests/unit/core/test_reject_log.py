"""The reject log: one event for the first reject of a reason per client, then a count per window."""

import numpy as np

from fixgate._fast.codes import reject_name
from fixgate.core import events as ev
from fixgate.core.agents import RejectLog, observers
from fixgate.core.events import EVENT_DTYPE, events_of

SECOND = 1_000_000_000


class Recorder:
    """A logger that keeps what it is given: the events as the log would get them."""

    def __init__(self):
        self.entries = []

    def info(self, event, **fields):
        self.entries.append({"event": event, **fields})


def rejected(code, session, at_ns, cl_ord_id="C1"):
    record = np.zeros(1, dtype=EVENT_DTYPE)
    record["kind"], record["code"], record["session_id"], record["recv_ns"] = ev.REJECTED, code, session, at_ns
    record["text_a"] = cl_ord_id.encode()
    return next(iter(events_of(record)))


def test_reject_log_when_a_reason_repeats_logs_it_once_then_counts_it_per_window():
    recorder = Recorder()
    log = RejectLog(["client1", "client2"], reject_name, interval_ns=10 * SECOND, logger=recorder)
    for index in range(5):
        log.observe(rejected(39, 0, index * SECOND, f"C{index}"))          # DUPLICATE_ORDER, client1
    log.observe(rejected(39, 1, 2 * SECOND))                                # another client: its own first
    log.observe(rejected(37, 0, 3 * SECOND))                                # another reason: its own first
    log.observe(rejected(39, 0, 12 * SECOND, "C9"))                         # the next window
    logs = recorder.entries
    events = [(entry["event"], entry.get("reason"), entry.get("client"), entry.get("count")) for entry in logs]
    assert events == [("order_rejected", "DUPLICATE_ORDER", "client1", None),
                      ("order_rejected", "DUPLICATE_ORDER", "client2", None),
                      ("order_rejected", "CLIENT_KILLED", "client1", None),
                      ("orders_rejected", "DUPLICATE_ORDER", "client1", 4),
                      ("order_rejected", "DUPLICATE_ORDER", "client1", None)]
    assert logs[0]["cl_ord_id"] == "C0" and logs[-1]["cl_ord_id"] == "C9"


def test_observers_when_given_several_calls_each_and_skips_none():
    seen = []
    assert observers(None, None) is None
    combined = observers(seen.append, None, lambda event: seen.append(event.kind))
    combined(rejected(1, 0, 0))
    assert len(seen) == 2 and seen[1] == ev.REJECTED
