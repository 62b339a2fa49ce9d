#!/usr/bin/env python3
# ctest: no postgres twin (the car alone: the gateway's database plays no part)
"""OBD-II through an ELM327 (issue 9): two agents, each reading its own
emulated adapter on a pseudo-terminal (elm327_emu.py).

Car A has the odometer PID 0xA6 and its adapter sits behind a symlink (as
udev makes one); it answers SEARCHING..., NO DATA, 7F 01 12, garbage bytes,
a timeout, STOPPED and BUS INIT: ...ERROR along the way. Its odometer
reaches the gateway as read, not estimated. Then the adapter is unplugged
and a new one (a new pty; its odometer 600 m on, within the gateway's
plausibility slack) is plugged in behind the same
symlink: the agent reopens it and the new values arrive.

Car B has no 0xA6: its odometer is estimated from speed and reaches the
gateway marked (`pitstopctl vehicle show --json`: odometer_estimated), and
the estimate is kept in the agent's state_dir: after a restart it continues
from there."""
import os
import subprocess

from elm327_emu import Car, Elm327
from harness import AGENT, VIN_A, VIN_B, System, run, wait_for

FAULTS = [(None, "searching"), (None, "nodata"), (0x0D, "nrc"), (None, "garbage"),
          (None, "timeout"), (None, "stopped"), (None, "businit")]


def test():
    help_text = subprocess.run([AGENT, "--help"], capture_output=True, text=True).stdout
    # every sample kept, where adaptive sampling exists (it would thin a parked car)
    extra = {"sample_adaptive": "no"} if "sample_adaptive" in help_text else {}
    extra.update(batch_max_samples="2", obd_timeout_ms="400", obd_poll_interval_ms="50")
    with System("agent_obd") as s:
        s.make_pki(VIN_A, VIN_B)
        s.start_broker()
        s.start_gateway()
        car_a = Car(odometer_km=12345.6)
        emu_a = Elm327(car_a, FAULTS)
        link = s.path("obd-a")
        os.symlink(emu_a.path, link)
        emu_b = Elm327(Car(speed_kmh=90, has_odometer=False))
        a = s.start_agent(VIN_A, None, name="agent-a", signals_file=None, obd_device=link, **extra)
        b = s.start_agent(VIN_B, None, name="agent-b", signals_file=None,
                          obd_device=emu_b.path, **extra)

        def shown(vin, pred):
            v = s.try_ctl("vehicle", "show", vin)
            return v if v and pred(v) else None

        # A: the real odometer, not marked; fuel 128/255
        v = wait_for(lambda: shown(VIN_A, lambda v: v["odometer_km"] is not None), 30, "A's odometer")
        assert abs(v["odometer_km"] - 12345.6) < 1e-6, v
        assert v["odometer_estimated"] is False, v
        wait_for(lambda: shown(VIN_A, lambda v: v["fuel_pct"] is not None), 10, "A's fuel")
        assert abs(s.ctl("vehicle", "show", VIN_A)["fuel_pct"] - 50.2) < 0.05
        # the set-up the agent chose, and every fault answered and survived
        cmds = [c.replace(" ", "").upper() for c in emu_a.requests]
        assert cmds[:6] == ["ATZ", "ATE0", "ATL0", "ATS1", "ATH0", "ATSP0"], cmds[:6]
        assert "01A0" in cmds and "01A6" in cmds, cmds
        wait_for(lambda: not emu_a.faults, 20, "every scripted fault used")
        log = a.text()
        assert "refused speed (0x0D) (negative response 0x12)" in log, log
        assert "no answer to 01" in log, log
        assert "BUS INIT: ...ERROR" in log, log
        assert "garbage" in log and "STOPPED" in log, log

        # B: estimated from speed, marked, growing, and kept in state_dir
        v1 = wait_for(lambda: shown(VIN_B, lambda v: v["odometer_estimated"] is True
                                    and v["odometer_km"] > 0), 30, "B's estimated odometer")
        assert "the odometer is estimated from speed" in b.text(), b.text()
        assert "01A6" not in [c.replace(" ", "").upper() for c in emu_b.requests]
        v2 = wait_for(lambda: shown(VIN_B, lambda v: v["odometer_km"] > v1["odometer_km"]), 15,
                      "B's estimate to grow")
        assert v2["odometer_estimated"] is True and v2["odometer_km"] < 1.0, v2  # 90 km/h, seconds
        wait_for(lambda: os.path.exists(s.path("agent-b-state", "odometer")), 10, "B's saved estimate")

        # A: unplugged, then a new adapter (a new device node) behind the same symlink
        emu_a.unplug()
        wait_for(lambda: "adapter %s lost" % link in a.text(), 10, "A's agent to see the unplug")
        emu_a2 = Elm327(Car(odometer_km=12346.2))
        os.unlink(link)
        os.symlink(emu_a2.path, link)
        wait_for(lambda: shown(VIN_A, lambda v: v["odometer_km"] is not None
                               and abs(v["odometer_km"] - 12346.2) < 1e-6), 30,
                 "the replugged adapter's odometer")
        assert s.ctl("vehicle", "show", VIN_A)["odometer_estimated"] is False
        assert "(%s)" % emu_a2.path in a.text(), "the reopen names the new device node"
        emu_a2.unplug()

        # B restarts: the estimate continues from the saved value, not from 0
        s.stop("agent-b")
        with open(s.path("agent-b-state", "odometer")) as f:
            saved = float(f.read())
        assert saved >= v2["odometer_km"] - 1e-3, (saved, v2)
        s.start_agent(VIN_B, None, name="agent-b", signals_file=None, obd_device=emu_b.path,
                      **extra)
        v3 = wait_for(lambda: shown(VIN_B, lambda v: v["odometer_km"] > saved), 20,
                      "B's estimate to continue after the restart")
        assert v3["odometer_estimated"] is True and v3["odometer_km"] < saved + 0.5, (v3, saved)
        emu_b.unplug()


if __name__ == "__main__":
    run(test)
