#!/usr/bin/env python3
# ctest: no postgres twin (the car alone: the gateway's database plays no part)
"""Adaptive sampling in the real agent: a car drives 100 m at 36 km/h (no
GNSS, so the odometer measures movement) and stops. Only the samples that say
something new reach the gateway (the first, one after 50 m, the parking
place), and parking stands in for ignition off: the batch is sealed and sent
at once, although its 10-minute window is far from over. While parked, no
more samples are kept (the heartbeat is an hour)."""
import time

from harness import VIN_A, System, run, wait_for


def test():
    with System("agent_adaptive") as s:
        s.make_pki(VIN_A)
        s.start_broker()
        s.start_gateway()
        rows = [(t, "%.3f" % (100 + 0.010 * min(t, 10)), "50.0", "36.0" if t < 10 else "0.0")
                for t in range(0, 40)]
        sig = s.write_signals("drive.csv", rows)
        s.start_agent(VIN_A, sig, sample_adaptive="yes", sample_min_distance_m="50",
                      sample_max_interval_s="3600", parked_after_s="3",
                      parked_heartbeat_s="3600", batch_max_samples="600",
                      batch_max_age_ms="600000")

        def parked_batch():
            h = s.try_ctl("vehicle", "history", VIN_A) or []
            return h if h and h[-1]["odometer_m"] == 100100 else None

        hist = wait_for(parked_batch, 40, "the batch sealed when the car parked")
        odo = [x["odometer_m"] for x in hist]
        assert odo == sorted(odo) and len(set(odo)) == len(odo), odo
        # first sample (~100010), one after 50 m (~100060), the parking place
        assert 2 <= len(odo) <= 4, "kept %r, want the start, +50 m and the parking place" % odo
        assert odo[0] < 100060 <= odo[-2] + 10, odo
        stats = s.ctl("stats")
        assert stats["stored"] == 1, "one batch, sealed by parking: %r" % stats

        # Parked: nothing new is kept (no heartbeat within the hour).
        time.sleep(3)
        assert len(s.ctl("vehicle", "history", VIN_A)) == len(hist)


if __name__ == "__main__":
    run(test)
