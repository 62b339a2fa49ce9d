#!/usr/bin/env python3
"""Both daemons as systemd runs them (docs/operations.md, "Service
lifecycle"): NOTIFY_SOCKET names a unix datagram socket of ours and
WATCHDOG_USEC asks for the watchdog, as systemd's Type=notify and
WatchdogSec= do.

* READY=1, then WATCHDOG=1 again and again from the event loop, and STATUS=
  lines saying what each daemon does (connected / reconnecting, batches a
  minute and cars online; sampling, queued batches, connected / offline).
* The gateway's activity line (PITSTOP_STATS_INTERVAL_MS shortens the
  minute) adds up to its saved counters: batches, samples, receipts and a
  rejected.malformed we cause; cars_online=1 while the car sends.
* SIGHUP with a broken file: the daemon lives, logs file:line and keeps
  ingesting. SIGHUP with a changed reloadable key takes effect
  (low_fuel_pct above the car's fuel: a refuel offer; the agent's log_level:
  its debug lines appear) and a changed restart-only key is warned about.
* SIGTERM with the broker stopped: both exit 0; the gateway's saved
  counters match what it committed, the agent sealed its open samples, and
  every batch the car made is either stored by the gateway or still in the
  car's queue (no sequence number missing)."""
import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager

from harness import VIN_A, System, run, wait_for

STATS_MS = 1500
WATCHDOG_USEC = 600000  # pings every 300 ms


class NotifySocket:
    """A systemd stand-in: collects every datagram sent to a unix socket."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.msgs = []
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.msgs.append(data.decode())

    def lines(self, prefix):
        """Every assignment starting with prefix, in arrival order."""
        with self.lock:
            return [l for m in self.msgs for l in m.split("\n") if l.startswith(prefix)]

    def close(self):
        self.done = True
        self.thread.join()
        self.sock.close()


@contextmanager
def environment(**values):
    """Sets environment variables for the daemons started inside."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def activity_lines(text):
    """The gateway's activity lines as dicts of their key=value fields."""
    out = []
    for line in text.splitlines():
        if "last " not in line or " cars_online=" not in line:
            continue
        fields = line.split(" s: ", 1)[1].split()
        out.append({k: v for k, v in (f.split("=", 1) for f in fields)})
    return out


def total(lines, key):
    return sum(int(l.get(key, "0")) for l in lines)


def write_conf(path, values, extra=""):
    with open(path, "w") as f:
        for k, v in values.items():
            f.write("%s = %s\n" % (k, v))
        f.write(extra)


def read_conf(path):
    with open(path) as f:
        return dict(l.rstrip("\n").split(" = ", 1) for l in f if " = " in l)


def sighup_and_wait(proc, what):
    seen = len(proc.text())
    os.kill(proc.p.pid, 1)  # SIGHUP
    wait_for(lambda: ("reloaded " in proc.text()[seen:] or "reload failed" in proc.text()[seen:]),
             15, what + " reloaded")
    return seen


def queue_rows(db_path, sql):
    db = sqlite3.connect(db_path, timeout=5)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test():
    with System("lifecycle") as s:
        s.make_pki(VIN_A)
        s.start_broker()  # mosquitto gets no NOTIFY_SOCKET of ours
        gw_sock = NotifySocket(s.path("gw.notify"))
        car_sock = NotifySocket(s.path("car.notify"))
        try:
            with environment(NOTIFY_SOCKET=gw_sock.path, WATCHDOG_USEC=str(WATCHDOG_USEC),
                             PITSTOP_STATS_INTERVAL_MS=str(STATS_MS)):
                gw = s.start_gateway(low_fuel_pct="15", log_level="info")
            gw_conf = s.gateway_conf
            signals = s.write_signals("fuel.csv", [(0, 1000.0, 30.0, 0.0), (1, 1000.0, 30.0, 0.0)])
            with environment(NOTIFY_SOCKET=car_sock.path, WATCHDOG_USEC=str(WATCHDOG_USEC)):
                car = s.start_agent(VIN_A, signals, signals_loop="true", sample_interval_ms="500",
                                    batch_max_samples="2", batch_max_age_ms="1000",
                                    log_level="info")
            car_conf = s.path("agent.conf")

            # --- readiness, watchdog, status -------------------------------
            for name, sock in (("gateway", gw_sock), ("agent", car_sock)):
                wait_for(lambda: sock.lines("READY=1"), 10, name + " READY=1")
                wait_for(lambda: len(sock.lines("WATCHDOG=1")) >= 4, 20,
                         name + " repeating WATCHDOG=1")
            wait_for(lambda: any(l.startswith("STATUS=connected to the broker, ingesting")
                                 for l in gw_sock.lines("STATUS=")), 10, "gateway STATUS connected")
            wait_for(lambda: any("sampling;" in l and l.endswith("connected")
                                 for l in car_sock.lines("STATUS=")), 15, "agent STATUS connected")
            wait_for(lambda: any("batches/min, 1 cars online" in l
                                 for l in gw_sock.lines("STATUS=")), 15,
                     "gateway STATUS with its rate and the car")
            wait_for(lambda: s.ctl("stats")["stored"] >= 3, 30, "the first batches stored")
            assert s.ctl("stats")["offers_sent"] == 0, "an offer at 30 % fuel with low_fuel_pct 15"

            # --- a malformed message, counted in the activity line ---------
            junk = s.path("junk.bin")
            with open(junk, "wb") as f:
                f.write(b"\xff\xff\xff not a batch")
            # As the car (only it may publish there): the broker hands its client id
            # to mosquitto_pub for a moment and the agent reconnects.
            s.mqtt_pub("pitstop/v1/vehicles/%s/telemetry" % VIN_A, junk, cert=VIN_A)
            wait_for(lambda: s.ctl("stats")["rejected"]["malformed"] == 1, 15, "the reject counted")

            # --- gateway SIGHUP: a broken file changes nothing --------------
            good = read_conf(gw_conf)
            s.gateway_conf = s.path("ctl.conf")  # pitstopctl reads a good copy meanwhile
            write_conf(s.gateway_conf, good)
            write_conf(gw_conf, dict(good, low_fuel_pct="lots"))
            broken_line = list(good).index("low_fuel_pct") + 1
            stored = s.ctl("stats")["stored"]
            seen = sighup_and_wait(gw, "gateway")
            after = gw.text()[seen:]
            assert "reload failed: %s:%d: low_fuel_pct" % (gw_conf, broken_line) in after, after
            assert gw.alive(), "gateway died on a broken config"
            wait_for(lambda: s.ctl("stats")["stored"] >= stored + 2, 20,
                     "batches stored after the failed reload")

            # --- gateway SIGHUP: one reloadable, one restart-only change ----
            good.update(low_fuel_pct="40", max_backlog_mb="32")
            write_conf(gw_conf, good)
            seen = sighup_and_wait(gw, "gateway")
            after = gw.text()[seen:]
            assert "reload: low_fuel_pct 15 -> 40" in after, after
            assert "reload: max_backlog_mb changed; it takes effect only after a restart" in after
            assert "1 change applied, 1 more takes effect only after a restart" in after, after
            wait_for(lambda: s.ctl("stats")["offers_sent"] >= 1, 20,
                     "a refuel offer at 30 % fuel once low_fuel_pct is 40")

            # --- agent SIGHUP: broken, then debug logging and a restart-only key
            car_good = read_conf(car_conf)
            write_conf(car_conf, dict(car_good, batch_max_samples="0"))
            seen = sighup_and_wait(car, "agent")
            assert "reload failed: %s:%d: batch_max_samples" % (
                car_conf, list(car_good).index("batch_max_samples") + 1) in car.text()[seen:], \
                car.text()[seen:]
            assert car.alive(), "agent died on a broken config"
            car_good.update(log_level="debug", receipt_timeout_ms="30000")
            write_conf(car_conf, car_good)
            seen = sighup_and_wait(car, "agent")
            after = car.text()[seen:]
            assert "reload: log_level info -> debug" in after, after
            assert "reload: receipt_timeout_ms changed; it takes effect only after a restart" \
                in after, after
            wait_for(lambda: "sealed with" in car.text()[seen:], 15,
                     "the agent's debug lines after log_level = debug")

            # --- the activity lines add up to the counters ------------------
            wait_for(lambda: any(l.get("cars_online") == "1" for l in activity_lines(gw.text())),
                     10, "an activity line with the car online")

            # --- SIGTERM with the broker gone -------------------------------
            s.stop("broker")
            wait_for(lambda: any(l.startswith("STATUS=reconnecting to the broker")
                                 for l in gw_sock.lines("STATUS=")), 15, "gateway STATUS reconnecting")
            wait_for(lambda: any("offline" in l for l in car_sock.lines("STATUS=")), 15,
                     "agent STATUS offline")
            lines_before = len(activity_lines(gw.text()))
            # Two more lines: everything committed before the broker went is in one.
            wait_for(lambda: len(activity_lines(gw.text())) >= lines_before + 2, 10,
                     "activity lines after the broker went")
            assert s.stop("agent") == 0, "agent exit status"
            assert s.stop("gateway") == 0, "gateway exit status"
            for name, sock in (("gateway", gw_sock), ("agent", car_sock)):
                assert sock.lines("STOPPING=1"), name + " sent no STOPPING=1"

            stats = s.ctl("stats")
            lines = activity_lines(gw.text())
            assert total(lines, "batches") == stats["stored"], (lines, stats)
            assert total(lines, "samples") == stats["samples_stored"], (lines, stats)
            assert total(lines, "receipts") == stats["acks_sent"], (lines, stats)
            assert total(lines, "offers") == stats["offers_sent"], (lines, stats)
            assert total(lines, "rejected.malformed") == 1, lines
            assert all(k in ("batches", "samples", "duplicates", "offers", "receipts",
                             "cars_online", "rejected.malformed")
                       for l in lines for k in l), lines  # rejects only when non-zero

            # Nothing accepted is lost: the gateway's counters match its data,
            # the car sealed its open samples, every seq is somewhere.
            hist = s.ctl("vehicle", "history", VIN_A)
            stored_seqs = {x["seq"] for x in hist}
            assert len(stored_seqs) == stats["stored"], (len(stored_seqs), stats["stored"])
            queue_db = s.path("agent-state", "queue.db")
            assert queue_rows(queue_db, "select count(*) from samples")[0][0] == 0, \
                "open samples left unsealed"
            queued = {r[0] for r in queue_rows(queue_db, "select seq from batches")}
            last = max(stored_seqs | queued)
            assert stored_seqs | queued == set(range(1, last + 1)), \
                "batches missing: %r" % sorted(set(range(1, last + 1)) - stored_seqs - queued)
            print("lifecycle: %d activity lines, %d batches stored, %d queued at stop, "
                  "%d watchdog pings (gateway)"
                  % (len(lines), stats["stored"], len(queued), len(gw_sock.lines("WATCHDOG=1"))))
        finally:
            gw_sock.close()
            car_sock.close()


if __name__ == "__main__":
    run(test)
