#!/usr/bin/env python3
"""Two gateway instances in one shared-subscription group on one database
(PostgreSQL with PITSTOP_TEST_DB=postgresql, else one SQLite file), three
cars. The broker deals each car's batches out to both instances in turn, so
one car's batches are stored by both, its latest state and daily rollup are
updated from both, and its low-fuel episode may be seen by both at once.
Checked: every batch is stored once (contiguous seqs, no sample twice, the
vehicle's batch count equals the batches in its history), both instances
stored some, the latest state is the newest sample, the daily rollup counts
every sample once, and each car got exactly one low-fuel offer."""
import time

from harness import VIN_A, VIN_B, System, run, wait_for

VIN_C = "1HGCM82633A004352"
VINS = (VIN_A, VIN_B, VIN_C)


def signals(s, name, start_fuel):
    """Parked, 1 Hz, fuel falling through 15 % once and staying low."""
    rows = []
    for t in range(0, 24):
        fuel = max(start_fuel - t * 1.0, 5.0)
        rows.append((t, "%.3f" % (1000 + t * 0.01), "%.1f" % fuel, "0"))
    return s.write_signals(name, rows)


def test():
    with System("instances") as s:
        s.make_pki(*VINS)
        s.start_broker()
        s.start_gpsfake()
        s.start_gateway(name="gateway-1", low_fuel_pct="15")
        s.start_gateway(name="gateway-2", low_fuel_pct="15")
        for i, vin in enumerate(VINS):
            s.start_agent(vin, signals(s, "signals-%d.csv" % i, 24.0 + i), name="agent-%d" % i,
                          batch_max_samples="1", batch_max_age_ms="1000",
                          signals_loop="false")

        def all_stored():
            for vin in VINS:
                v = s.try_ctl("vehicle", "show", vin)
                if not v or v["samples"] < 20:
                    return None
            return True

        wait_for(all_stored, 90, "20 samples of every car stored")
        time.sleep(3)
        for i in range(len(VINS)):
            s.stop("agent-%d" % i)
        time.sleep(2)  # the last receipts and offers

        stats = s.ctl("stats")
        per = {x["id"]: x for x in stats["instances"]}
        assert per["pitstop-gateway-1"]["stored"] > 0 and per["pitstop-gateway-2"]["stored"] > 0, \
            "one instance stored nothing: %r" % {k: v["stored"] for k, v in per.items()}
        total_batches = 0
        for vin in VINS:
            hist = s.ctl("vehicle", "history", vin)
            v = s.ctl("vehicle", "show", vin)
            seqs = sorted(x["seq"] for x in hist)
            assert seqs == list(range(1, len(seqs) + 1)), "%s: seqs %r" % (vin, seqs)
            times = [x["time_ms"] for x in hist]
            assert len(set(times)) == len(times), "%s: a sample stored twice" % vin
            assert v["batches"] == len(seqs) and v["samples"] == len(hist), (vin, v, len(hist))
            assert v["updated_at"] == hist[-1]["time"], (vin, v["updated_at"], hist[-1])
            assert abs(v["fuel_pct"] - hist[-1]["fuel_pct"]) < 1e-9, (vin, v, hist[-1])
            days = s.ctl("vehicle", "days", vin)
            assert sum(d["samples"] for d in days) == len(hist), (vin, days, len(hist))
            offers = s.ctl("vehicle", "offers", vin)
            assert len(offers) == 1, "%s: %d offers in one low-fuel episode: %r" % (
                vin, len(offers), offers)
            total_batches += len(seqs)
        assert stats["stored"] == total_batches, (stats["stored"], total_batches)
        print("two instances: %s batches stored by gw1, %s by gateway-2, %d duplicates; one offer "
              "per car" % (per["pitstop-gateway-1"]["stored"], per["pitstop-gateway-2"]["stored"],
                           stats["duplicates"]))


if __name__ == "__main__":
    run(test)
