#!/usr/bin/env python3
"""payload_bytes_per_sample for the shipped route at 1 Hz.

Turns tests/data/route.nmea (GNSS) and tests/data/drive.csv (odometer, fuel)
into one sample a second, exactly the values the agent would take, and feeds
them to bench_codec, which encodes them with the real codec in the agent's
default batches (30 samples). Prints key=value lines.

usage: bench/payload.py [BUILD_DIR] [SAMPLES_PER_BATCH]
"""
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, "..", "tests", "data")
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "build", "release")
per_batch = sys.argv[2] if len(sys.argv) > 2 else "30"

fixes = []
with open(os.path.join(data, "route.nmea")) as f:
    for line in f:
        if line.startswith("$GPRMC"):
            p = line.split(",")
            lat = int(p[3][:2]) + float(p[3][2:]) / 60
            lon = int(p[5][:3]) + float(p[5][3:]) / 60
            fixes.append((round(lat * 1e7), round(lon * 1e7),
                          round(float(p[7]) / 1.943844 * 100), round(float(p[8]) * 100) % 36000))
rows = []
with open(os.path.join(data, "drive.csv")) as f:
    for line in f:
        if not line.startswith("#"):
            t, odo, fuel, _ = line.strip().split(",")
            rows.append((round(float(odo) * 1000), round(float(fuel) * 10)))
lines = []
t0 = 1795000000000
for i, ((lat, lon, spd, hdg), (odo, fuel)) in enumerate(zip(fixes, rows)):
    lines.append("%d %d %d %d %d %d %d 3" % (t0 + i * 1000, odo, fuel, lat, lon, spd, hdg))
r = subprocess.run([os.path.join(build, "bench", "bench_codec"), per_batch],
                   input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
print("route=tests/data/route.nmea")
sys.stdout.write(r.stdout)
