"""The state thread's scheduling: FIX threads first, but never starved."""

import time

from fixgate.core.agents import StateThread


class Counting:
    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def do_work(self) -> int:
        self.calls += 1
        return 0


def _run_for(thread: StateThread, seconds: float) -> None:
    thread.start()
    time.sleep(seconds)
    thread.stop()


def test_state_thread_when_fix_threads_stay_busy_still_runs_after_the_longest_deferral():
    agent = Counting()
    thread = StateThread([agent], busy=lambda: True, idle_sleep_s=0.001, max_defer_s=0.004)
    _run_for(thread, 0.3)
    passes = agent.calls - 1                                   # stop() makes one last pass itself
    assert passes >= 5                                          # never starved
    assert thread.deferred >= 4 * (passes - 1)                  # four deferrals before each pass


def test_state_thread_when_fix_threads_are_idle_never_defers():
    agent = Counting()
    thread = StateThread([agent], busy=lambda: False, idle_sleep_s=0.001)
    _run_for(thread, 0.1)
    assert thread.deferred == 0 and agent.calls >= 5
