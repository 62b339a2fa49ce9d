#!/usr/bin/env python3
# ctest: no postgres twin (the car alone: the gateway's database plays no part)
"""Power cuts in the middle of writes: the agent samples at 10 Hz against
the real broker and gateway and is killed with SIGKILL 50 times at random
moments. Every other run has max_loss_s 0 and seals a batch every 3
samples (queue.db is written every 100 ms, by sample rows and seals; killed
0.15-0.8 s after it started); the others have max_loss_s 1 and batches of
20 samples (the sample journal is written about every 0.9 s, killed 0.9-1.6
s after the start, so mostly with journaled samples open). After every kill the queue database must pass PRAGMA
integrity_check; a batch counts as stored when the agent logged it sealed
(it logs after the commit) or queue.db holds it after a kill. At the end
the agent runs until the gateway has stored all of them; then every recorded
batch is in the gateway's history exactly once (no sample twice), the seqs
are one run from 1 with no hole, and the samples follow seq order. With
max_loss_s 1 the open samples go to the sample journal (queue.db-samples):
every sample the agent logged as journaled before a kill ("samples
journaled, the last of T") is at the gateway in the end (replayed at the
next start, sealed once)."""
import os
import random
import re
import signal
import sqlite3
import time

from harness import VIN_A, System, wait_for


KILLS = 50


def queue_state(db):
    """(integrity_check result, seqs of the stored batches)."""
    h = sqlite3.connect(db, timeout=5)
    try:
        ok = h.execute("PRAGMA integrity_check").fetchall()
        seqs = {r[0] for r in h.execute("SELECT seq FROM batches")}
    finally:
        h.close()
    return ok, seqs


def test():
    rng = random.Random(os.environ.get("PITSTOP_TEST_SEED", "powercut"))
    with System("powercut") as s:
        s.make_pki(VIN_A)
        s.start_broker()
        s.start_gateway()
        signals = s.write_signals("signals.csv", [(t, "%.3f" % (1000 + t * 0.02), "50.0", "72")
                                                  for t in range(0, 600)])
        conf = dict(sample_interval_ms="100", receipt_timeout_ms="2000", signals_loop="true",
                    log_level="debug", sample_adaptive="no")
        rows = dict(max_loss_s="0", batch_max_samples="3", batch_max_age_ms="300")
        journal = dict(max_loss_s="1", batch_max_samples="20", batch_max_age_ms="2000")
        db = s.path("agent-state", "queue.db")
        recorded = set()
        def log_text():
            with open(s.path("agent.log"), errors="replace") as f:
                return f.read()

        def started(n):
            """Waits for the n-th "ready" in the log (it holds every run's)."""
            return wait_for(lambda: (lambda t: t if t.count("info: ready") >= n else None)(
                log_text()), 20, "start-up %d" % n)

        for i in range(KILLS):
            s.start_agent(VIN_A, signals, **(journal if i % 2 else rows), **conf)
            started(i + 1)
            time.sleep(rng.uniform(0.9, 1.6) if i % 2 else rng.uniform(0.15, 0.8))
            s.stop("agent", signal.SIGKILL)
            ok, seqs = queue_state(db)
            assert ok == [("ok",)], "queue.db damaged after kill %d: %r" % (i + 1, ok)
            recorded |= seqs
        s.start_agent(VIN_A, signals, **rows, **conf)
        # Its start-up seals what the last kill left open, then says "ready".
        text = started(KILLS + 1)
        recorded |= {int(m) for m in re.findall(r"batch (\d+) sealed with", text)}
        journaled = {int(m) for m in re.findall(r"samples journaled, the last of (\d+)", text)}
        assert journaled, "no sample went through the journal"
        assert len(recorded) >= KILLS, "only %d batches stored in %d runs" % (len(recorded), KILLS)

        def history():
            h = s.try_ctl("vehicle", "history", VIN_A, "--limit", "100000")
            if not h or not recorded <= {x["seq"] for x in h}:
                return None
            return h
        wait_for(history, 60, "every recorded batch at the gateway")
        s.stop("agent")
        final = wait_for(history, 10, "the gateway's history")

        seqs = sorted({x["seq"] for x in final})
        assert seqs == list(range(1, seqs[-1] + 1)), "a hole in the stored seqs: %r" % seqs
        assert recorded <= set(seqs), "recorded batches missing: %r" % sorted(recorded - set(seqs))
        times = [x["time_ms"] for x in final]
        assert len(set(times)) == len(times), "a sample was stored twice"
        assert journaled <= set(times), "journaled samples lost: %r" % sorted(
            journaled - set(times))[:10]
        by_seq = {}
        for x in final:
            by_seq.setdefault(x["seq"], []).append(x["time_ms"])
        spans = [(min(by_seq[q]), max(by_seq[q])) for q in seqs]
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:])), \
            "batches out of order: the samples do not follow their seqs"
        print("powercut: %d kills, %d batches recorded, %d stored, %d samples, %d journal flushes"
              % (KILLS, len(recorded), len(seqs), len(times), len(journaled)))


if __name__ == "__main__":
    test()
