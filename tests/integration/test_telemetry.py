#!/usr/bin/env python3
"""(a) Positions from the NMEA route (gpsd via gpsfake) and the replayed
odometer and fuel arrive in the gateway with the right values, and
`pitstopctl vehicle show` reports the latest of them."""
import os

from harness import DATA_DIR, VIN_A, System, nmea_fixes, run, wait_for

SAMPLES = 12


def csv_values():
    odo, fuel = set(), set()
    with open(os.path.join(DATA_DIR, "drive.csv")) as f:
        for line in f:
            if line.startswith("#"):
                continue
            _, o, fu, _ = line.strip().split(",")
            odo.add(round(float(o) * 1000))
            fuel.add(float(fu))
    return odo, fuel


def test():
    route = nmea_fixes()
    odo_values, fuel_values = csv_values()
    with System("telemetry") as s:
        s.make_pki(VIN_A)
        s.start_broker()
        s.start_gpsfake()
        s.start_gateway()
        s.start_agent(VIN_A, os.path.join(DATA_DIR, "drive.csv"), signals_loop="true")

        def enough():
            h = s.try_ctl("vehicle", "history", VIN_A) or []
            return h if sum(1 for x in h if x["lat"] is not None) >= SAMPLES else None

        hist = wait_for(enough, 60, "%d samples with a position" % SAMPLES)
        positioned = [x for x in hist if x["lat"] is not None]
        for x in positioned:
            # Every position is one of the route's fixes (NMEA has 1e-5 minute
            # resolution, the protocol 1e-7 degree).
            d = min(abs(x["lat"] - la) + abs(x["lon"] - lo) for la, lo in route)
            assert d < 3e-7, "position %r,%r is not on the route (off by %g deg)" % (x["lat"], x["lon"], d)
            assert x["fix"] in (2, 3, "2d", "3d"), x
        for x in hist:
            assert x["odometer_m"] in odo_values, "odometer %r not in the replay" % x["odometer_m"]
            # The protocol carries fuel in 0.1 % steps; the replay has 0.01 %.
            assert min(abs(x["fuel_pct"] - f) for f in fuel_values) <= 0.05 + 1e-9, \
                "fuel %r not in the replay" % x["fuel_pct"]
        times = [x["time_ms"] for x in hist]
        assert times == sorted(times) and len(set(times)) == len(times), "history not strictly ordered"

        # The latest state is the newest sample (read history after show, so
        # a batch landing in between cannot make them disagree).
        v = s.ctl("vehicle", "show", VIN_A)
        last = [x for x in s.ctl("vehicle", "history", VIN_A) if x["time"] == v["updated_at"]]
        assert last, "show's updated_at %s is not a stored sample" % v["updated_at"]
        last = last[0]
        assert v["vin"] == VIN_A
        assert abs(v["odometer_km"] * 1000 - last["odometer_m"]) < 1e-6, (v, last)
        assert abs(v["fuel_pct"] - last["fuel_pct"]) < 1e-9, (v, last)
        if last["lat"] is not None:
            assert abs(v["lat"] - last["lat"]) < 1e-9 and abs(v["lon"] - last["lon"]) < 1e-9, (v, last)
        stats = s.ctl("stats")
        assert stats["stored"] >= SAMPLES // 5, stats
        assert stats["samples_stored"] >= SAMPLES, stats
        assert sum(stats["rejected"].values()) == 0, stats


if __name__ == "__main__":
    run(test)
