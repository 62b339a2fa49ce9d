#!/usr/bin/env python3
"""The gateway is killed (SIGKILL, no chance to commit or say goodbye) while a
car keeps sending, and restarted 10 s later on the same database. Every
sample still arrives exactly once and in order: the car deletes a batch only
on the gateway's receipt, which is sent after the commit, so whatever the
dead gateway had received but not committed is sent again."""
import os
import signal
import time

from harness import DATA_DIR, VIN_A, System, run, wait_for


def test():
    with System("gwcrash") as s:
        s.make_pki(VIN_A)
        s.start_broker()
        s.start_gpsfake()
        s.start_gateway()
        agent = s.start_agent(VIN_A, os.path.join(DATA_DIR, "drive.csv"), batch_max_samples="2",
                              batch_max_age_ms="2000", receipt_timeout_ms="4000")
        wait_for(lambda: s.ctl("stats")["stored"] >= 3, 30, "the first batches stored")

        s.stop("gateway", signal.SIGKILL)
        time.sleep(10)
        assert agent.alive()
        s.start_gateway()
        time.sleep(12)  # resends after the receipt timeout, plus fresh batches
        s.stop("agent")

        hist = s.ctl("vehicle", "history", VIN_A)
        seqs = sorted({x["seq"] for x in hist})
        assert seqs == list(range(1, seqs[-1] + 1)), "batch seqs not contiguous: %r" % seqs
        times = [x["time_ms"] for x in hist]
        assert len(set(times)) == len(times), "a sample was stored twice"
        assert times == sorted(times), "samples out of order"
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert max(gaps) <= 1600, "a sample is missing: gap of %d ms" % max(gaps)
        assert len(times) >= 25, "only %d samples stored" % len(times)
        print("gateway crash: %d samples in %d batches, duplicates skipped after restart: %d"
              % (len(times), len(seqs), s.ctl("stats")["duplicates"]))


if __name__ == "__main__":
    run(test)
