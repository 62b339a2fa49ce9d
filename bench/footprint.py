#!/usr/bin/env python3
"""The agent's footprint on a head unit, against its floor. The agent runs on
its embedded defaults (1 Hz sampling) against the real broker, gpsd (gpsfake,
shipped route) and gateway on 127.0.0.1, reading its vehicle signals from an
ELM327 (tests/integration/elm327_emu.py on a pseudo-terminal: a parked car
with 12 % fuel, so the gateway sends it a low-fuel offer) and serving the
head unit's screen (agent/screen's pitstop-screen on its hmi_socket); with
--replay the signals come from drive.csv instead and there is no screen.
Next to it runs bench_floor (bench/floor.c):
the same libraries, one SQLite database and one TLS connection to the same
broker, nothing else. Prints key=value lines:

  agent_rss_kib, floor_rss_kib   peak resident set (VmHWM)
  agent_uss_kib, floor_uss_kib   peak private memory, USS (Private_Clean +
                                 Private_Dirty of /proc/PID/smaps_rollup),
                                 read every second
  agent_uss_over_floor_kib       the agent's own memory (target <= 1024)
  agent_cpu_pct                  CPU of one core, utime+stime read every
                                 second over the window (target <= 1)
  agent_cpu_max_pct              the busiest one-second step
  flash_bytes_per_hour           what the agent wrote to storage (/proc/PID/io
                                 write_bytes: pages it dirtied, the sample
                                 journal queue.db-samples, queue.db and its
                                 WAL, its log file, offers.db) over the
                                 window, scaled to an hour at 1 Hz; 10
                                 minutes include two 5-minute seals (and
                                 their receipts), 3 minutes none
  aarch64_stripped_bytes         the aarch64 pitstop-agent stripped, from
                                 scripts/cross-aarch64's build (or the
                                 aarch64 preset's), else "not built"

usage: bench/footprint.py [BUILD_DIR] [--minutes N] [--replay]
  BUILD_DIR defaults to build/release; --minutes defaults to 10 (the issue's
  measurement; 0.5 for a quick look). The old form BUILD_DIR SECONDS works.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, ".."))
args = list(sys.argv[1:])
minutes = 10.0
replay = "--replay" in args
if replay:
    args.remove("--replay")
if "--minutes" in args:
    i = args.index("--minutes")
    minutes = float(args[i + 1])
    del args[i:i + 2]
build = os.path.abspath(args[0]) if args else os.path.join(root, "build", "release")
seconds = float(args[1]) if len(args) > 1 else minutes * 60
os.environ["PITSTOP_BUILD_DIR"] = build
sys.path.insert(0, os.path.join(root, "tests", "integration"))
from harness import DATA_DIR, VIN_A, VIN_B, System, wait_for  # noqa: E402
from elm327_emu import Car, Elm327  # noqa: E402


def proc_stat(pid):
    """(RSS KiB, peak RSS KiB, CPU seconds) of a process."""
    with open("/proc/%d/status" % pid) as f:
        d = dict(line.split(":", 1) for line in f)
    with open("/proc/%d/stat" % pid) as f:
        t = f.read().rsplit(")", 1)[1].split()
    cpu = (int(t[11]) + int(t[12])) / os.sysconf("SC_CLK_TCK")
    return int(d["VmRSS"].split()[0]), int(d["VmHWM"].split()[0]), cpu


def uss_kib(pid):
    """Private memory (USS) of pid in KiB, from /proc/PID/smaps_rollup."""
    total = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Private_Clean", "Private_Dirty", "Private_Hugetlb"):
                total += int(v.split()[0])
    return total


def flash_written(pid):
    """Bytes pid has caused to be written to storage so far (/proc/PID/io)."""
    with open("/proc/%d/io" % pid) as f:
        return int(dict(line.split(":", 1) for line in f)["write_bytes"])


def aarch64_stripped():
    """Size of the stripped aarch64 agent, or None when it is not built."""
    strip = shutil.which("aarch64-linux-gnu-strip")
    for b in ("aarch64-sysroot-build", "aarch64"):
        exe = os.path.join(root, "build", b, "agent", "pitstop-agent")
        if strip and os.path.exists(exe):
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "agent")
                subprocess.run([strip, "-o", out, exe], check=True)
                return os.path.getsize(out)
    return None


def main():
    floor_exe = os.path.join(build, "bench", "bench_floor")
    if not os.path.exists(floor_exe):
        sys.exit("footprint: %s is missing: build the bench_floor target" % floor_exe)
    with System("footprint") as s:
        s.make_pki(VIN_A, VIN_B)
        s.start_broker()
        s.start_gpsfake()
        s.start_gateway(log_level="info")
        defaults = dict(log_level="info", sample_interval_ms=None, batch_max_samples=None,
                        batch_max_age_ms=None, sample_adaptive=None)
        screen = None
        if replay:
            agent = s.start_agent(VIN_A, os.path.join(DATA_DIR, "drive.csv"),
                                  signals_loop="true", **defaults)
        else:
            emu = Elm327(Car(speed_kmh=0, fuel_a=30))  # parked, 11.8 % fuel
            agent = s.start_agent(VIN_A, None, signals_file=None, obd_device=emu.path,
                                  **defaults)
            screen = s.start("screen", [os.path.join(build, "agent", "screen", "pitstop-screen"),
                                        "--socket", s.path("agent-state", "hmi.sock"),
                                        "--port", "0",
                                        "--www", os.path.join(root, "agent", "screen", "www")])
        floor = s.start("floor", [floor_exe, "ssl://127.0.0.1:%d" % s.broker_port,
                                  s.path("pki", "ca.crt"),
                                  s.path("pki", "vehicles", VIN_B + ".crt"),
                                  s.path("pki", "vehicles", VIN_B + ".key"), VIN_B,
                                  s.path("floor.db"), s.path("pki", "offer-signing.pub")])
        wait_for(lambda: "connected" in floor.text() or not floor.alive(), 20, "the floor")
        assert floor.alive(), "bench_floor exited:\n" + floor.text()
        time.sleep(5)  # past start-up
        assert not screen or screen.alive(), "pitstop-screen exited:\n" + screen.text()
        apid, fpid = agent.p.pid, floor.p.pid
        _, _, c0 = proc_stat(apid)
        w0 = flash_written(apid)
        t0 = time.monotonic()
        a_uss = f_uss = 0
        cpu_max, prev, prev_t = 0.0, c0, t0
        while time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            _, _, c = proc_stat(apid)
            now = time.monotonic()
            cpu_max = max(cpu_max, 100.0 * (c - prev) / (now - prev_t))
            prev, prev_t = c, now
            a_uss = max(a_uss, uss_kib(apid))
            f_uss = max(f_uss, uss_kib(fpid))
        _, apeak, c1 = proc_stat(apid)
        elapsed = time.monotonic() - t0
        flash = (flash_written(apid) - w0) * 3600.0 / elapsed
        _, fpeak, _ = proc_stat(fpid)
        _, gpeak, _ = proc_stat(s.procs["gateway"].p.pid)
        stats = s.ctl("stats")
        size = aarch64_stripped()
        if screen:
            assert screen.alive(), "pitstop-screen exited:\n" + screen.text()
            _, speak, _ = proc_stat(screen.p.pid)
        print("seconds=%.0f" % elapsed)
        print("agent_rss_kib=%d" % apeak)
        print("agent_uss_kib=%d" % a_uss)
        print("floor_rss_kib=%d" % fpeak)
        print("floor_uss_kib=%d" % f_uss)
        print("agent_uss_over_floor_kib=%d" % (a_uss - f_uss))
        print("agent_cpu_pct=%.2f" % (100.0 * (c1 - c0) / elapsed))
        print("agent_cpu_max_pct=%.1f" % cpu_max)
        print("flash_bytes_per_hour=%.0f" % flash)
        print("aarch64_stripped_bytes=%s" % (size if size is not None else
                                               "not built (run scripts/cross-aarch64)"))
        print("signals=%s" % ("replay" if replay else "obd"))
        if screen:
            print("screen_rss_kib=%d" % speak)
            print("screen_uss_kib=%d" % uss_kib(screen.p.pid))
        print("gateway_peak_rss_kib=%d" % gpeak)
        print("samples_stored=%d" % stats["samples_stored"])
        print("offers_sent=%d" % stats.get("offers_sent", 0))


if __name__ == "__main__":
    main()
