#!/usr/bin/env python3
# ctest: no postgres twin (the car alone: the gateway's database plays no part)
"""GNSS outage: gpsfake replays tests/data/outage.nmea in a loop, 8 s of
fixes (each at its own position) and then 12 s in which gpsd reports no fix
(GGA quality 0, RMC status V: TPV mode 1). The samples taken after gpsd said
"no fix" must carry no position. The last position before the outage is in
the samples taken until gpsd's first no-fix report, which gpsd 3.22 sends for
the second no-fix epoch (so 2 samples, 3 with timing jitter), not in the 5
the agent used to store, marked 3D, while it waited for the fix to go stale
(measured before the fix: 5). The agent keeps every sample open in queue.db
(huge batch limits, no gateway), so the test reads them from its samples
table."""
import os
import sqlite3

from harness import DATA_DIR, VIN_A, System, run, wait_for

OUTAGE = os.path.join(DATA_DIR, "outage.nmea")
SAMPLE_POSITION = 1 << 2
FIX_NONE = 1


def last_fix_lat_e7():
    """Latitude (1e-7 degrees) of the last fix before the outage."""
    lat = None
    with open(OUTAGE) as f:
        for line in f:
            fld = line.split(",")
            if fld[0] == "$GPRMC" and fld[2] == "A":
                lat = int(fld[3][:2]) + float(fld[3][2:]) / 60
    return round(lat * 1e7)


def samples(db):
    """(fix, lat_e7 or None) of every stored sample, oldest first."""
    h = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        rows = h.execute("SELECT fix, present, lat_e7 FROM samples ORDER BY id").fetchall()
    finally:
        h.close()
    return [(fix, lat if present & SAMPLE_POSITION else None) for fix, present, lat in rows]


def test():
    last_lat = last_fix_lat_e7()
    with System("agent-gnss") as s:
        s.make_pki(VIN_A)
        s.start_broker()
        s.start_gpsfake(nmea=OUTAGE)
        signals = s.write_signals("signals.csv", [(0, "1000.000", "50.0", "0")])
        # max_loss_s 0: each sample a row of queue.db (else open samples
        # wait in the sample journal, queue.db-samples, until a seal)
        s.start_agent(VIN_A, signals, batch_max_samples="3600", batch_max_age_ms="86400000",
                      max_loss_s="0")
        db = s.path("agent-state", "queue.db")

        def outage_seen():
            """The samples once one outage began with a fix at last_lat
            before it and 6 samples after the last of those."""
            got = samples(db)
            at_last = [i for i, (_, lat) in enumerate(got)
                       if lat is not None and abs(lat - last_lat) <= 2]
            if not at_last:
                return None
            first = at_last[0]
            run_end = first
            while run_end + 1 < len(got) and got[run_end + 1][1] is not None and \
                    abs(got[run_end + 1][1] - last_lat) <= 2:
                run_end += 1
            if len(got) < run_end + 7:
                return None
            return got, first, run_end

        got, first, run_end = wait_for(outage_seen, 60, "a GNSS outage in the samples")
        kept = run_end - first + 1
        assert kept <= 3, ("the last position before the outage was stored in %d samples "
                           "(%s): it was kept after gpsd reported no fix" % (kept, got[first:run_end + 7]))
        after = got[run_end + 1:run_end + 7]
        assert all(lat is None and fix == FIX_NONE for fix, lat in after), \
            "samples in the outage carry a position or a fix: %s" % after
        for fix, lat in got:
            assert lat is None or fix >= 2, "a position without a fix: %s" % got


if __name__ == "__main__":
    run(test)
