#!/usr/bin/env python3
# ctest: no postgres twin (the car and the receipts: the gateway's database plays no part)
"""The car's flash is wiped: the agent is stopped (SIGTERM) after the gateway
stored some of its batches, everything in its state dir is deleted
(queue.db with its -wal and -shm, offers.db, the screen file), and the agent
starts again with the same VIN. Its new queue starts again at seq 1, but
under a new random epoch, so the gateway must store every sample taken after
the wipe (a batch is (VIN, epoch, seq), not (VIN, seq)) and keep the ones
from before. The samples taken after the wipe are known from the new
agent's own log ("batch N sealed with K samples")."""
import os
import re
import time

from harness import DATA_DIR, VIN_A, System, run, wait_for

SEALED = re.compile(r"batch (\d+) sealed with (\d+) samples")
EPOCH = re.compile(r"queue: new queue, epoch ([0-9a-f]{16})")


def sealed(text):
    """{seq: samples} of every batch the agent's log says it sealed."""
    return {int(m.group(1)): int(m.group(2)) for m in SEALED.finditer(text)}


def epoch(p):
    m = wait_for(lambda: EPOCH.search(p.text()), 5, "the new queue's epoch in the log")
    return m.group(1)


def test():
    with System("wipe") as s:
        s.make_pki(VIN_A)
        s.start_broker()
        s.start_gpsfake()
        s.start_gateway()
        signals = os.path.join(DATA_DIR, "drive.csv")
        knobs = dict(batch_max_samples="2", batch_max_age_ms="2000", receipt_timeout_ms="4000")
        agent = s.start_agent(VIN_A, signals, **knobs)
        old_epoch = epoch(agent)
        wait_for(lambda: s.ctl("stats")["stored"] >= 3, 30, "the first batches stored")
        s.stop("agent")

        before = s.ctl("vehicle", "history", VIN_A)
        state = s.path("agent-state")
        for name in os.listdir(state):  # a wiped flash
            os.remove(os.path.join(state, name))
        wiped_ms = int(time.time() * 1000)
        agent = s.start_agent(VIN_A, signals, name="agent-wiped", state_dir=state,
                              display_file=os.path.join(state, "screen.txt"), **knobs)
        new_epoch = epoch(agent)
        assert new_epoch != old_epoch, "the wiped queue drew the same epoch %s" % new_epoch

        def four_sealed():
            b = sealed(agent.text())
            return b if len(b) >= 4 else None

        taken = wait_for(four_sealed, 20, "4 batches sealed after the wipe")

        def missing():
            """Batches sealed after the wipe that the history lacks samples of,
            as (seq, samples stored, samples sealed)."""
            hist = s.ctl("vehicle", "history", VIN_A)
            got = {}
            for x in hist:
                if x["time_ms"] >= wiped_ms:
                    got[x["seq"]] = got.get(x["seq"], 0) + 1
            return [(seq, got.get(seq, 0), n) for seq, n in sorted(taken.items())
                    if got.get(seq, 0) != n]

        deadline = time.monotonic() + 12  # a receipt timeout and then some
        gone = missing()
        while gone and time.monotonic() < deadline:
            time.sleep(0.5)
            gone = missing()
        after = s.ctl("vehicle", "history", VIN_A)
        stats = s.ctl("stats")

        assert not gone, (
            "samples taken after the wipe are missing from the history: "
            "%d of %d samples, in batches %s of the new queue (seq: stored/sealed %s); "
            "the gateway counted %d duplicates"
            % (sum(n - k for _, k, n in gone), sum(taken.values()), [g[0] for g in gone],
               ", ".join("%d: %d/%d" % g for g in gone), stats["duplicates"]))
        old = {(x["seq"], x["time_ms"]) for x in before}
        kept = {(x["seq"], x["time_ms"]) for x in after if x["time_ms"] < wiped_ms}
        assert old <= kept, "samples from before the wipe are gone: %r" % sorted(old - kept)
        times = [x["time_ms"] for x in after if x["time_ms"] >= wiped_ms]
        assert len(set(times)) == len(times), "a sample taken after the wipe was stored twice"
        s.stop("agent-wiped")
        print("agent wipe: %d samples before the wipe kept, all %d samples of the %d batches "
              "sealed after it stored (epoch %s, then %s)"
              % (len(old), sum(taken.values()), len(taken), old_epoch, new_epoch))


if __name__ == "__main__":
    run(test)
