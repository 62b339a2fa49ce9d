#!/usr/bin/env python3
"""A flooding car cannot fill the broker (issue 6, item 3), with the real
broker and the shipped config. While the gateway is down (its session keeps
queueing), car A publishes 64 KB messages as fast as mosquitto_pub -l can
send them for 8 s; car B's agent keeps driving. The broker refuses A past
its per-car budget (the plugin's token bucket), so its memory grows by a few
MiB, not gigabytes (before: 1.4 GiB in 10 s, the issue saw 1.9 GiB); once
the gateway is back every batch of B is stored. Then, as if a thousand cars
flooded at once (the budget lifted with plugin_opts), the queue limits hold
the offline gateway's queue to max_queued_bytes (here 32 MiB)."""
import os
import subprocess
import threading
import time

from harness import DATA_DIR, VIN_A, VIN_B, System, run, wait_for

LINE = b"x" * 65000 + b"\n"
LIFTED = {"vehicle_msgs_per_s": "100000", "vehicle_msgs_burst": "10000000",
          "vehicle_bytes_per_s": "1073741824", "vehicle_bytes_burst": "17179869184"}


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def flood(s, vin, seconds):
    """mosquitto_pub -l as vin, QoS 1, 64 KB lines for seconds; returns the
    broker's peak RSS (MiB) meanwhile."""
    bpid = s.procs["broker"].p.pid
    pub = subprocess.Popen(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(s.broker_port), "-V", "mqttv5",
         "--cafile", s.path("pki", "ca.crt"), "--cert", s.path("pki", "vehicles", vin + ".crt"),
         "--key", s.path("pki", "vehicles", vin + ".key"), "-q", "1", "-l",
         "-t", "pitstop/v1/vehicles/%s/telemetry" % vin],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = [rss_mib(bpid)]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib(bpid))
            time.sleep(0.05)

    w = threading.Thread(target=watch)
    w.start()
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            pub.stdin.write(LINE * 16)
    except BrokenPipeError:
        pass
    finally:
        try:
            pub.stdin.close()
        except BrokenPipeError:
            pass
        try:
            pub.wait(10)
        except subprocess.TimeoutExpired:
            pub.kill()
            pub.wait()
        time.sleep(0.5)
        done.set()
        w.join()
    return peak[0]


def test():
    with System("flood") as s:
        s.make_pki(VIN_A, VIN_B)
        s.start_broker()
        s.start_gpsfake()
        s.start_gateway(log_level="info")
        s.start_agent(VIN_B, os.path.join(DATA_DIR, "drive.csv"), batch_max_samples="2",
                      batch_max_age_ms="2000", receipt_timeout_ms="4000", log_level="info")
        wait_for(lambda: (s.try_ctl("vehicle", "show", VIN_B) or {}).get("samples", 0) >= 2,
                 30, "B's first samples")
        s.stop("gateway")  # its session queues what comes now
        base = rss_mib(s.procs["broker"].p.pid)
        peak = flood(s, VIN_A, 8)
        print("broker RSS %.1f MiB -> peak %.1f MiB during car A's flood" % (base, peak))
        assert peak - base < 48, "the broker grew by %.0f MiB" % (peak - base)
        assert "pitstop: %s is over its publish budget" % VIN_A in s.broker_log()

        s.start_gateway(log_level="info")
        before = s.ctl("vehicle", "show", VIN_B)["batches"]
        wait_for(lambda: s.ctl("vehicle", "show", VIN_B)["batches"] >= before + 3, 30,
                 "B's telemetry stored again")
        s.stop("agent")
        time.sleep(2)
        seqs = sorted({x["seq"] for x in s.ctl("vehicle", "history", VIN_B)})
        assert seqs == list(range(1, seqs[-1] + 1)), "B's batches not contiguous: %r" % seqs
        print("B: %d batches stored, contiguous" % len(seqs))

        # The broker-wide bound: no budget, a small queue limit.
        s.stop("gateway")
        s.stop("broker")
        s.start_broker(s.broker_port, plugin_opts=LIFTED,
                       settings={"max_queued_bytes": str(32 << 20)})
        s.start_gateway(log_level="info")
        s.stop("gateway")
        base = rss_mib(s.procs["broker"].p.pid)
        peak = flood(s, VIN_A, 5)
        print("no budget, max_queued_bytes 32 MiB: broker RSS %.1f MiB -> peak %.1f MiB"
              % (base, peak))
        assert peak - base < 32 + 24, "the broker grew by %.0f MiB" % (peak - base)


if __name__ == "__main__":
    run(test)
