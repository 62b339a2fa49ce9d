#!/usr/bin/env python3
# ctest: no postgres twin (the car and the broker: the gateway's database plays no part)
"""Offline behind a frozen broker: mosquitto is stopped with SIGSTOP while
the agent is connected, so its TCP connection stays open and nothing comes
back (no PUBACK, no PINGRESP, no RST). The agent (keep-alive 2 s here) must
declare the connection dead, keep sealing batches into queue.db, reconnect
once the broker runs again (SIGCONT) and then drain the backlog as in
test_agent_backlog.py: oldest first at backlog_max_batches_per_s while live
batches flow, every batch at the gateway once, no seq missing."""
import os
import signal
import time

from harness import System, wait_for
from test_agent_backlog import check_drain, events, start_offline

KEEPALIVE_S = 2


def test():
    with System("frozen") as s:
        start_offline(s, mqtt_keepalive_s=str(KEEPALIVE_S))
        log = s.path("agent.log")
        broker = s.procs["broker"].p.pid
        os.kill(broker, signal.SIGSTOP)
        t_frozen = time.monotonic()
        try:
            wait_for(lambda: ("disconnected", 0) in events(log), 10 * KEEPALIVE_S,
                     "the agent noticing the frozen broker")
            t_noticed = time.monotonic()
            sealed = lambda: sum(1 for k, _ in events(log) if k == "sealed")  # noqa: E731
            n = sealed()
            wait_for(lambda: sealed() >= n + 12, 30, "batches sealed while the broker is frozen")
        finally:
            os.kill(broker, signal.SIGCONT)
        t_up = time.monotonic()
        print("frozen: the agent noticed after %.1f s (keep-alive %d s)" % (
            t_noticed - t_frozen, KEEPALIVE_S))
        print(check_drain(s, t_up, "broker frozen"))


if __name__ == "__main__":
    test()
