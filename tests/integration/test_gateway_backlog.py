#!/usr/bin/env python3
"""The gateway's in-process backlog is bounded. With its database locked
for 4.5 s while two cars flood (bench_publish, as fast as the broker takes
it), the messages the broker keeps delivering would pile up in the gateway's
memory (before: 10 MiB to 717 MiB, and it stayed there). With
max_backlog_mb = 1 the gateway drops telemetry past the bound, counts it
(rejected.backlog) and sends no receipt for it, so a real car resends what
was dropped: another car's agent, driving all along, still has every one of
its samples stored once the lock is gone, and the gateway's memory stays
within a few times the bound."""
import os
import sqlite3
import subprocess
import threading
import time

from harness import BUILD_DIR, DATA_DIR, PG_BIN, VIN_A, VIN_B, System, run, wait_for

# Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
# default) that would count as growth here: keep it small for this test.
os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=2").lstrip(":")


# Two cars stand in for a fleet catching up after an outage: the broker's
# per-car publish budget, which would stop a car long before the gateway
# notices, is lifted.
FLOODERS = (VIN_A, "WDD2050071F000303")
LIFTED = {"vehicle_msgs_per_s": "100000", "vehicle_msgs_burst": "10000000",
          "vehicle_bytes_per_s": "1073741824", "vehicle_bytes_burst": "17179869184"}


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def lock_database(s, seconds):
    """Holds a lock the gateway's writes wait behind, for `seconds`."""
    if s.db_backend == "sqlite":
        db = sqlite3.connect(s.path("gateway.db"), timeout=10, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)  # under the gateway's 5 s busy timeout
        db.execute("COMMIT")
        db.close()
        return
    subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-d", s.db_url(), "-c",
                    "BEGIN; LOCK TABLE telemetry_batches IN ACCESS EXCLUSIVE MODE;"
                    " SELECT pg_sleep(%g); COMMIT;" % seconds],
                   check=True, capture_output=True, timeout=seconds + 30)


def test():
    with System("backlog") as s:
        s.make_pki(VIN_B, *FLOODERS)
        s.start_broker(plugin_opts=LIFTED)
        s.start_gpsfake()
        gw = s.start_gateway(max_backlog_mb="1", log_level="info")
        agent = s.start_agent(VIN_B, os.path.join(DATA_DIR, "drive.csv"), batch_max_samples="2",
                              batch_max_age_ms="2000", receipt_timeout_ms="4000")
        wait_for(lambda: (s.try_ctl("vehicle", "show", VIN_B) or {}).get("samples", 0) >= 4,
                 30, "the agent's first samples")
        base = rss_kib(gw.p.pid)

        # Two flooding cars, so that even instrumented (ASan) publishers
        # outrun a stalled gateway by a wide margin: batches of 8 samples,
        # so that the 1 MiB bound is reached after ~4,000 of them (with 2
        # samples an ASan run once queued 16,277 and stayed under it).
        pubs = [subprocess.Popen([
            os.path.join(BUILD_DIR, "bench", "bench_publish"), "ssl://127.0.0.1:%d" % s.broker_port,
            s.path("pki", "ca.crt"), s.path("pki", "vehicles", vin + ".crt"),
            s.path("pki", "vehicles", vin + ".key"), vin, "30000", "8"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for vin in FLOODERS]
        peak = [base]
        done = threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kib(gw.p.pid))
                time.sleep(0.05)

        w = threading.Thread(target=watch)
        w.start()
        time.sleep(0.5)
        # SQLite's writer gives up after its 5 s busy timeout; PostgreSQL
        # waits for the lock, so hold it longer there (a slow publisher,
        # under ASan, must still outrun a stalled gateway).
        lock_database(s, 4.5 if s.db_backend == "sqlite" else 8)
        for pub in pubs:
            pub.communicate(120)
        time.sleep(1)
        done.set()
        w.join()
        assert gw.alive()

        # The car that kept driving: everything it sampled is stored, once.
        time.sleep(10)  # past its receipt timeout: what was dropped is resent
        s.stop("agent")
        time.sleep(6)
        hist = s.ctl("vehicle", "history", VIN_B)
        seqs = sorted({x["seq"] for x in hist})
        assert seqs == list(range(1, seqs[-1] + 1)), "B's batches not contiguous: %r" % seqs
        times = [x["time_ms"] for x in hist]
        assert len(set(times)) == len(times), "a sample of B stored twice"

        st = s.ctl("stats")
        growth = (peak[0] - base) / 1024
        print("backlog: gateway RSS %.1f MiB -> peak %.1f MiB (+%.1f) with max_backlog_mb = 1; "
              "%d messages dropped, %d batches stored; B: %d samples in %d batches"
              % (base / 1024, peak[0] / 1024, growth, st["rejected"]["backlog"], st["stored"],
                 len(hist), len(seqs)))
        assert st["rejected"]["backlog"] > 0, st
        # Unbounded, the same run grew it by 400+ MiB. ASan's redzones and
        # shadow memory roughly double what the heap takes.
        limit = 48 if "ASAN_OPTIONS" in os.environ else 24
        assert growth < limit, "the gateway grew by %.1f MiB" % growth
        del agent


if __name__ == "__main__":
    run(test)
