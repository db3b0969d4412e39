"""The tracker that proves no test leaves a process behind knows a pid with its start time: the machine
reuses pids, and another process that got a stopped one's pid is not a leftover."""
import os

from dataplane.servers import ProcessTracker, _start_time


def test_a_pid_now_held_by_another_process_is_not_a_leftover():
    tracker = ProcessTracker()
    me = os.getpid()
    tracker.seen[me] = ("service", _start_time(me))
    assert tracker.leftovers() == {me: "service"}  # the same process, still running
    tracker.seen[me] = ("service", str(int(_start_time(me)) - 1))  # a process that had this pid before
    assert tracker.leftovers() == {}
