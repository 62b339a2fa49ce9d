#!/usr/bin/env python3
"""The agent's footprint on a head unit: resident memory and CPU while it
runs on its embedded defaults (1 Hz sampling, batches of 30) against the real
broker, gpsd (gpsfake, shipped route) and gateway on 127.0.0.1. Prints
key=value lines.

usage: bench/footprint.py [BUILD_DIR] [SECONDS]
"""
import os
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
build = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(here, "..", "build", "release")
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
os.environ["PITSTOP_BUILD_DIR"] = build
sys.path.insert(0, os.path.join(here, "..", "tests", "integration"))
from harness import DATA_DIR, VIN_A, System  # noqa: E402


def proc_stat(pid):
    """(RSS KiB, peak RSS KiB, CPU seconds) of a process."""
    with open("/proc/%d/status" % pid) as f:
        d = dict(line.split(":", 1) for line in f)
    with open("/proc/%d/stat" % pid) as f:
        t = f.read().rsplit(")", 1)[1].split()
    cpu = (int(t[11]) + int(t[12])) / os.sysconf("SC_CLK_TCK")
    return int(d["VmRSS"].split()[0]), int(d["VmHWM"].split()[0]), cpu


def main():
    with System("footprint") as s:
        s.make_pki(VIN_A)
        s.start_broker()
        s.start_gpsfake()
        s.start_gateway(log_level="info")
        agent = s.start_agent(VIN_A, os.path.join(DATA_DIR, "drive.csv"), signals_loop="true",
                              log_level="info", sample_interval_ms=None,
                              batch_max_samples=None, batch_max_age_ms=None)
        time.sleep(5)  # past start-up
        _, _, c0 = proc_stat(agent.p.pid)
        t0 = time.monotonic()
        time.sleep(seconds)
        rss, peak, c1 = proc_stat(agent.p.pid)
        elapsed = time.monotonic() - t0
        grss, gpeak, _ = proc_stat(s.procs["gateway"].p.pid)
        print("seconds=%.0f" % elapsed)
        print("agent_rss_kib=%d" % rss)
        print("agent_peak_rss_kib=%d" % peak)
        print("agent_cpu_pct=%.2f" % (100.0 * (c1 - c0) / elapsed))
        print("gateway_rss_kib=%d" % grss)
        print("gateway_peak_rss_kib=%d" % gpeak)
        print("samples_stored=%d" % s.ctl("stats")["samples_stored"])


if __name__ == "__main__":
    main()
