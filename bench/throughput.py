#!/usr/bin/env python3
"""Gateway ingest throughput against the raw broker, in one run.

Starts the real broker (TLS, ACL) on 127.0.0.1, then:
  1. raw: mosquitto_sub (as the gateway, QoS 1, shared subscription, output
     to /dev/null) receives N batches that bench_publish sends as one car;
     raw_broker_msgs_per_s = N / time until mosquitto_sub has all N.
  2. gateway: pitstop-gateway receives N further batches (new seqs) and stores
     them durably; gateway_batches_per_s = N / time until `pitstopctl stats`
     reports all N stored (the gateway saves its counters every second, so
     the figure is conservative by up to a second).
Prints key=value lines. Every process runs on 127.0.0.1 and is stopped at the end.

usage: bench/throughput.py [BUILD_DIR] [N] [SAMPLES_PER_BATCH]
"""
import os
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
build = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(here, "..", "build", "release")
os.environ["PITSTOP_BUILD_DIR"] = build
sys.path.insert(0, os.path.join(here, "..", "tests", "integration"))
from harness import VIN_A, System, wait_for  # noqa: E402

N = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
PER_BATCH = sys.argv[3] if len(sys.argv) > 3 else "30"


def publish(s, first_seq):
    argv = [os.path.join(build, "bench", "bench_publish"), "ssl://127.0.0.1:%d" % s.broker_port,
            s.path("pki", "ca.crt"), s.path("pki", "vehicles", VIN_A + ".crt"),
            s.path("pki", "vehicles", VIN_A + ".key"), VIN_A, str(N), PER_BATCH, str(first_seq)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def main():
    with System("bench") as s:
        s.make_pki(VIN_A)
        s.start_broker()

        sub = s.start("mosquitto_sub", [
            "mosquitto_sub", "-h", "127.0.0.1", "-p", str(s.broker_port), "-V", "mqttv5",
            "--cafile", s.path("pki", "ca.crt"), "--cert", s.path("pki", "gateway.crt"),
            "--key", s.path("pki", "gateway.key"), "-q", "1", "-C", str(N),
            "-t", "$share/bench/pitstop/v1/vehicles/+/telemetry", "-F", "%l"])
        # mosquitto_sub connects with a generated "auto-..." client id.
        wait_for(lambda: " as auto-" in s.broker_log(), 10, "mosquitto_sub connected")
        time.sleep(0.5)  # its SUBSCRIBE follows the CONNACK
        t0 = time.monotonic()
        pub = publish(s, 1)
        sub.p.wait(300)
        raw_s = time.monotonic() - t0
        out, _ = pub.communicate(60)
        with open(sub.log_path) as f:
            got = sum(1 for _ in f)
        assert got == N, "mosquitto_sub got %d of %d" % (got, N)
        s.procs.pop("mosquitto_sub").stop()
        batch_bytes = [l for l in out.splitlines() if l.startswith("publish_batch_bytes=")]

        s.start_gateway(log_level="info")
        t0 = time.monotonic()
        pub = publish(s, N + 1)
        wait_for(lambda: s.ctl("stats")["stored"] >= N, 600, "%d batches stored" % N, interval=0.05)
        gw_s = time.monotonic() - t0
        pub.communicate(60)
        st = s.ctl("stats")
        assert st["stored"] == N and st["duplicates"] == 0, st

        raw = N / raw_s
        gw = N / gw_s
        print("batches=%d" % N)
        print("samples_per_batch=%s" % PER_BATCH)
        for l in batch_bytes:
            print(l)
        print("raw_broker_msgs_per_s=%.0f" % raw)
        print("gateway_batches_per_s=%.0f" % gw)
        print("gateway_samples_per_s=%.0f" % (gw * int(PER_BATCH)))
        print("ratio_to_raw=%.2f" % (gw / raw))


if __name__ == "__main__":
    main()
