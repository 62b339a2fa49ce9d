#!/usr/bin/env python3
"""How long a SIGTERM takes to stop each daemon (the units promise 2 s:
commit and save the counters, seal the open batch, disconnect), from the
signal to the exit, with the broker up, stopped (connection refused) and
frozen (SIGSTOP: TCP still open, no MQTT answer, so the clean disconnect
waits out its timeout on whatever is in flight). The real broker and daemons
on 127.0.0.1, a car sending a batch a second. Prints key=value lines; the
*_stop_ms keys are the worst of all runs.

usage: bench/stop_time.py [BUILD_DIR] [RUNS]
"""
import os
import signal
import statistics
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
build = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(here, "..", "build", "release")
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
os.environ["PITSTOP_BUILD_DIR"] = build
sys.path.insert(0, os.path.join(here, "..", "tests", "integration"))
from harness import VIN_A, System, wait_for  # noqa: E402

BROKER_STATES = ("up", "gone", "frozen")


def stop_both(procs):
    """SIGTERMs every process at once; returns {name: (ms to exit, status)}."""
    t0 = time.monotonic()
    for p in procs.values():
        os.kill(p.p.pid, signal.SIGTERM)
    out = {}
    while len(out) < len(procs):
        for name, p in procs.items():
            if name not in out and p.p.poll() is not None:
                out[name] = ((time.monotonic() - t0) * 1000, p.p.returncode)
        time.sleep(0.002)
    return out


def one_run(s, state, signals, port):
    if "broker" not in s.procs:
        s.start_broker(port)
    gw = s.start_gateway(log_level="info")
    car = s.start_agent(VIN_A, signals, signals_loop="true", sample_interval_ms="200",
                        batch_max_samples="5", batch_max_age_ms="1000", log_level="info")
    before = s.ctl("stats")["stored"]
    wait_for(lambda: s.ctl("stats")["stored"] >= before + 2, 30, "batches stored")
    broker = s.procs["broker"]
    if state == "gone":
        s.stop("broker")
    elif state == "frozen":
        os.kill(broker.p.pid, signal.SIGSTOP)
    time.sleep(1.2)  # the car seals and publishes into the void meanwhile
    got = stop_both({"gateway": gw, "agent": car})
    if state == "frozen":
        os.kill(broker.p.pid, signal.SIGCONT)
    for name in ("gateway", "agent"):
        s.procs.pop(name).stop()  # already gone: closes its log
        if got[name][1] != 0:
            raise AssertionError("%s exited %s with the broker %s" % (name, got[name][1], state))
    return {name: ms for name, (ms, _) in got.items()}


def main():
    with System("stop-time") as s:
        s.make_pki(VIN_A)
        port = s.start_broker()
        signals = s.write_signals("fuel.csv", [(0, 1000.0, 60.0, 30.0), (1, 1000.2, 60.0, 30.0)])
        times = {(d, st): [] for d in ("gateway", "agent") for st in BROKER_STATES}
        for _ in range(runs):
            for state in BROKER_STATES:
                for name, ms in one_run(s, state, signals, port).items():
                    times[(name, state)].append(ms)
        print("runs=%d" % runs)
        for name in ("gateway", "agent"):
            for state in BROKER_STATES:
                t = times[(name, state)]
                print("%s_stop_ms_broker_%s_median=%.0f" % (name, state, statistics.median(t)))
                print("%s_stop_ms_broker_%s_max=%.0f" % (name, state, max(t)))
            print("%s_stop_ms=%.0f" % (name, max(max(times[(name, st)]) for st in BROKER_STATES)))


if __name__ == "__main__":
    main()
