#!/usr/bin/env python3
"""(e) The broker is stopped for 30 seconds while the agent keeps sampling.
After it returns, every sample arrives exactly once and in order: batch
sequence numbers are contiguous from 1, sample times strictly increase with
no gap longer than the sampling interval allows, including across the outage.

The broker's restart loses the gateway's shared subscription (mosquitto 2.0),
so batches the agent publishes before the gateway subscribes again are
acknowledged by the broker and discarded: they reach the gateway only because
the agent deletes a batch on the gateway's receipt, not on the PUBACK, and
publishes it again after receipt_timeout_ms (5 s here)."""
import os
import sqlite3
import time

from harness import DATA_DIR, VIN_A, System, run, wait_for

INTERVAL_MS = 1000
RECEIPT_TIMEOUT_MS = 5000


def unconfirmed_sealed_before(db_path, t_ms):
    """Batches still in the agent's queue (not confirmed by the gateway)
    that were sealed before t_ms (wall clock)."""
    db = sqlite3.connect(db_path, timeout=5)
    try:
        return db.execute("select count(*) from batches where sealed_ms < ?",
                          (int(t_ms),)).fetchone()[0]
    finally:
        db.close()


def test():
    with System("outage") as s:
        s.make_pki(VIN_A)
        port = s.start_broker()
        s.start_gpsfake()
        s.start_gateway()
        agent = s.start_agent(VIN_A, os.path.join(DATA_DIR, "drive.csv"),
                              sample_interval_ms=str(INTERVAL_MS), batch_max_samples="3",
                              batch_max_age_ms="3000",
                              receipt_timeout_ms=str(RECEIPT_TIMEOUT_MS))
        wait_for(lambda: s.ctl("stats")["stored"] >= 2, 30, "the first batches stored")

        s.stop("broker")
        t_down = time.time()
        time.sleep(30)
        assert agent.alive(), "agent died while the broker was away"
        s.start_broker(port)
        t_up = time.time()
        # Let the agent drain, resends of lost batches included: wait until
        # the gateway has confirmed every batch sealed more than a few seconds
        # ago (so no hole can remain in the seqs it stored), and keep
        # sampling at least 12 s after the broker returned.
        queue_db = s.path("agent-state", "queue.db")
        wait_for(lambda: time.time() > t_up + 12 and unconfirmed_sealed_before(
            queue_db, (time.time() - 4) * 1000) == 0, 120,
            "the gateway's receipts for every batch sealed during and after the outage")
        # The backlog drains at a capped rate while live batches go at once
        # (docs/agent.md), so the newest stored batch may be ahead of a
        # backlog batch still on its way: wait for a moment when what is
        # stored has no hole (a lost batch would leave one for good).

        def contiguous_history():
            h = s.try_ctl("vehicle", "history", VIN_A)
            if not h or h[-1]["time_ms"] / 1000 <= t_up + 5:
                return None
            seqs = sorted({x["seq"] for x in h})
            return h if seqs == list(range(1, seqs[-1] + 1)) else None

        final = wait_for(contiguous_history, 60,
                         "every batch up to the newest stored, samples from after the outage")
        s.stop("agent")

        seqs = sorted({x["seq"] for x in final})
        assert seqs == list(range(1, seqs[-1] + 1)), "batch seqs not contiguous: %r" % seqs
        times = [x["time_ms"] for x in final]
        assert len(set(times)) == len(times), "a sample was stored twice"
        assert times == sorted(times), "samples out of order"
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert max(gaps) <= INTERVAL_MS * 1.6, "a sample is missing: gap of %d ms" % max(gaps)
        during = [t for t in times if t_down * 1000 < t < t_up * 1000]
        assert len(during) >= 25, "only %d samples taken during the 30 s outage" % len(during)
        by_seq = {}
        for x in final:
            by_seq.setdefault(x["seq"], []).append(x["time_ms"])
        order = [min(by_seq[q]) for q in seqs]
        assert order == sorted(order), "batch seqs do not follow sample time"
        print("outage: %d samples, %d during the outage, %d batches, duplicates skipped: %d"
              % (len(times), len(during), len(seqs), s.ctl("stats")["duplicates"]))


if __name__ == "__main__":
    run(test)
