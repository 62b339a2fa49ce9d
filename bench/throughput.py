#!/usr/bin/env python3
"""Gateway ingest throughput against the raw broker, in one run.

Starts the real broker (TLS, ACL) on 127.0.0.1, then:
  1. raw: mosquitto_sub (as the gateway, QoS 1, shared subscription, output
     to /dev/null) receives N batches that bench_publish sends as one car;
     raw_broker_msgs_per_s = N / time until mosquitto_sub has all N.
  2. gateway: --instances pitstop-gateway processes in one share group, on
     one database (--db sqlite: a file; --db postgresql: a PostgreSQL 15 of
     the test harness's, started with fsync on so commits are as durable as
     SQLite's synchronous=FULL), receive N further batches (a new epoch) and
     store them durably. bench_publish waits for the gateway's receipt of
     every batch, so gateway_batches_per_s = N / time from the first publish
     to the last receipt, and the receipt latency (publish to receipt) is
     measured per batch.
  3. db_bytes_per_sample: what the database holds on disk over the samples
     stored (SQLite: the .db and -wal files after the gateways stopped, and
     while they ran; PostgreSQL: the gateway's tables and indexes, WAL not
     counted as it is shared by the server).
Checks that nothing was lost or stored twice. Prints key=value lines. Every
process runs on 127.0.0.1 and is stopped at the end.

usage: bench/throughput.py [BUILD_DIR] [N] [SAMPLES_PER_BATCH]
                           [--db sqlite|postgresql] [--instances N]
"""
import argparse
import os
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("build", nargs="?", default=os.path.join(here, "..", "build", "release"))
ap.add_argument("n", nargs="?", type=int, default=20000)
ap.add_argument("per_batch", nargs="?", default="30")
ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
ap.add_argument("--instances", type=int, default=1)
args = ap.parse_args()

build = os.path.abspath(args.build)
os.environ["PITSTOP_BUILD_DIR"] = build
os.environ["PITSTOP_TEST_DB"] = args.db
os.environ["PG_TEST_DURABLE"] = "1"  # benchmark durable commits, not fsync=off
sys.path.insert(0, os.path.join(here, "..", "tests", "integration"))
from harness import PG_BIN, VIN_A, System, wait_for  # noqa: E402

N = args.n
PER_BATCH = args.per_batch


def publish(s, first_seq, wait_receipts):
    argv = [os.path.join(build, "bench", "bench_publish"), "ssl://127.0.0.1:%d" % s.broker_port,
            s.path("pki", "ca.crt"), s.path("pki", "vehicles", VIN_A + ".crt"),
            s.path("pki", "vehicles", VIN_A + ".key"), VIN_A, str(N), PER_BATCH, str(first_seq),
            "1" if wait_receipts else "0"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


# The broker plugin's per-car publish budget, opened up for a benchmark car.
BENCH_BUDGET = {"vehicle_msgs_per_s": "100000", "vehicle_msgs_burst": "10000000",
                "vehicle_bytes_per_s": "1073741824", "vehicle_bytes_burst": "17179869184"}


def kv(out):
    return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)


def db_bytes(s):
    """Bytes the gateway's data takes on disk."""
    if args.db == "sqlite":
        return sum(os.path.getsize(s.path(f)) for f in ("gateway.db", "gateway.db-wal")
                   if os.path.exists(s.path(f)))
    r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-A", "-t", "-d", s.db_url(), "-c",
                        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE c.relkind = 'r' AND n.nspname = 'public'"],
                       capture_output=True, text=True, check=True, timeout=30)
    return int(r.stdout.strip())


def main():
    with System("bench") as s:
        s.make_pki(VIN_A)
        # One car publishes the whole load: lift the broker's per-car budget.
        s.start_broker(plugin_opts=BENCH_BUDGET)

        sub = s.start("mosquitto_sub", [
            "mosquitto_sub", "-h", "127.0.0.1", "-p", str(s.broker_port), "-V", "mqttv5",
            "--cafile", s.path("pki", "ca.crt"), "--cert", s.path("pki", "gateway.crt"),
            "--key", s.path("pki", "gateway.key"), "-q", "1", "-C", str(N),
            "-t", "$share/bench/pitstop/v1/vehicles/+/telemetry", "-F", "%l"])
        # The broker names it after its certificate (use_username_as_clientid).
        wait_for(lambda: " as pitstop-gateway " in s.broker_log(), 10, "mosquitto_sub connected")
        time.sleep(0.5)  # its SUBSCRIBE follows the CONNACK
        t0 = time.monotonic()
        pub = publish(s, 1, False)
        sub.p.wait(300)
        raw_s = time.monotonic() - t0
        out, _ = pub.communicate(60)
        with open(sub.log_path) as f:
            got = sum(1 for _ in f)
        assert got == N, "mosquitto_sub got %d of %d" % (got, N)
        s.procs.pop("mosquitto_sub").stop()
        raw_pub = kv(out)

        for i in range(args.instances):
            s.start_gateway(name="gateway-%d" % (i + 1), log_level="info")
        pub = publish(s, N + 1, True)
        out, _ = pub.communicate(900)
        assert pub.returncode == 0, "bench_publish failed (%d)" % pub.returncode
        gw_pub = kv(out)
        running_bytes = db_bytes(s)
        st = wait_for(lambda: (lambda x: x if x["stored"] >= N else None)(s.ctl("stats")), 30,
                      "the counters to show %d batches" % N)
        assert st["stored"] == N and st["duplicates"] == 0, st
        samples = s.ctl("vehicle", "show", VIN_A)["samples"]
        assert samples == N * int(PER_BATCH), "%d samples stored, expected %d" % (
            samples, N * int(PER_BATCH))
        for i in range(args.instances):
            s.stop("gateway-%d" % (i + 1))
        stopped_bytes = db_bytes(s)

        raw = N / raw_s
        gw = float(gw_pub["publish_receipted_msgs_per_s"])
        print("db=%s" % args.db)
        print("instances=%d" % args.instances)
        print("batches=%d" % N)
        print("samples_per_batch=%s" % PER_BATCH)
        print("publish_batch_bytes=%s" % raw_pub["publish_batch_bytes"])
        print("raw_broker_msgs_per_s=%.0f" % raw)
        print("gateway_batches_per_s=%.0f" % gw)
        print("gateway_samples_per_s=%.0f" % (gw * int(PER_BATCH)))
        print("ratio_to_raw=%.2f" % (gw / raw))
        for k in ("receipt_latency_ms_p50", "receipt_latency_ms_p99", "receipt_latency_ms_max"):
            print("%s=%s" % (k, gw_pub[k]))
        print("db_bytes_per_sample=%.2f" % (stopped_bytes / samples))
        print("db_bytes_per_sample_running=%.2f" % (running_bytes / samples))
        for i in range(args.instances):
            inst = [x for x in st["instances"] if x["id"] == "pitstop-gateway-%d" % (i + 1)]
            print("instance_%d_batches=%d" % (i + 1, inst[0]["stored"] if inst else 0))


if __name__ == "__main__":
    main()
