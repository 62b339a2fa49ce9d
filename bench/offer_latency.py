#!/usr/bin/env python3
"""Offer latency at the gateway under load (issue 11 item 5).

Starts the real broker (TLS, client certificates, the broker plugin's ACL and
its shipped per-car publish budget) and one pitstop-gateway on 127.0.0.1
(SQLite by default; --db postgresql: the tests' PostgreSQL 15 with fsync on,
as bench/throughput.py), with the low-fuel rule set so that every low batch
earns an offer (low_fuel_rearm_hold_s = 0, offers_per_day_max = 0). Then
bench_publish's fleet mode connects --cars cars, each with its own
certificate, and publishes --rate batches a second in total for --seconds;
one batch in 100 / --offer-pct of each car's has its fuel at 8 %, the others
at 60 %, so about --offer-pct % of the batches trigger an offer.

The gateway measures, per offer, from the moment Paho's thread received the
batch to the moment its signed offer was handed to the bus (Paho accepted
the publish): a histogram in ingest read back from GET /api/v1/counters
(offer_latency_us_*), printed as offer_latency_ms_p50/_p99 (2 decimals).
bench_publish measures, per offer, from handing the low batch to Paho to its
Paho thread receiving the offer (client_offer_ms_*): the gateway's interval
plus two broker hops and TLS on both sides.

Prints key=value lines. Every process runs on 127.0.0.1 and is stopped at the
end.

usage: bench/offer_latency.py [BUILD_DIR] [--cars N] [--rate R] [--seconds S]
                              [--offer-pct P] [--samples N] [--db sqlite|postgresql]
                              [--db-dir DIR]
"""
import argparse
import math
import os
import shutil
import subprocess
import tempfile

import bench_env

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("build", nargs="?", default=bench_env.DEFAULT_BUILD)
ap.add_argument("--cars", type=int, default=200)
ap.add_argument("--rate", type=float, default=1000.0, help="batches per second, all cars")
ap.add_argument("--seconds", type=int, default=25)
ap.add_argument("--offer-pct", type=float, default=2.0, help="share of batches with low fuel")
ap.add_argument("--samples", type=int, default=5, help="samples per batch")
ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
ap.add_argument("--db-dir", help="SQLite only: put the gateway's database in this directory "
                "(/dev/shm: a commit's fsync costs nothing, which separates the gateway's own "
                "time from the disk's)")
args = ap.parse_args()
if args.db_dir and args.db != "sqlite":
    ap.error("--db-dir is for --db sqlite")
build = bench_env.use(args.build, args.db)
from harness import System  # noqa: E402

# The broker's shipped per-car budget: 5 publishes/s sustained, bursts of 300.
SHIPPED_MSGS_PER_S = 5


def vins(n):
    """n distinct valid VINs (no I, O, Q)."""
    return ["WDB1234561B%06d" % i for i in range(1, n + 1)]


def main():
    cars = vins(args.cars)
    per_car = args.rate / args.cars
    with System("offer-latency") as s:
        s.make_pki(*cars)
        # Within the shipped budget (200 cars at 5/s each) the broker stays as
        # shipped; a denser load per car lifts it, and says so.
        budget = None
        if per_car > SHIPPED_MSGS_PER_S:
            budget = {"vehicle_msgs_per_s": str(math.ceil(per_car * 2))}
        s.start_broker(plugin_opts=budget)
        extra = {}
        if args.db_dir:
            db_dir = tempfile.mkdtemp(prefix="offer-latency-", dir=args.db_dir)
            cleanup.append(db_dir)
            extra["db"] = os.path.join(db_dir, "gateway.db")
        s.start_gateway(log_level="info", low_fuel_pct="15", low_fuel_rearm_pct="10",
                        low_fuel_rearm_hold_s="0", offers_per_day_max="0", **extra)
        vin_file = s.path("vins.txt")
        with open(vin_file, "w") as f:
            f.write("\n".join(cars) + "\n")
        pub = subprocess.run(
            [bench_env.bench_publish(build), "fleet",
             "ssl://127.0.0.1:%d" % s.broker_port, s.path("pki", "ca.crt"), s.path("pki"),
             vin_file, "%g" % args.rate, str(args.seconds), "%g" % args.offer_pct,
             str(args.samples)],
            stdout=subprocess.PIPE, text=True, timeout=args.seconds + 120)
        assert pub.returncode == 0, "bench_publish failed (%d)" % pub.returncode
        c = bench_env.kv(pub.stdout)
        status, counters = s.api_local("GET", "/api/v1/counters")
        assert status == 200, (status, counters)
        n = counters.get("offer_latency_count", 0)
        low = int(c["publish_low_batches"])
        # Every low batch earns one offer, and each reached its car.
        assert low > 0 and n == low, "%d low batches, %d offers timed" % (low, n)
        assert int(c["offers_received"]) == low and c["offers_missed"] == "0", c
        print("db=%s" % args.db)
        print("db_dir=%s" % (args.db_dir or "the run's temp dir"))
        print("cars=%d" % args.cars)
        print("broker_budget=%s" % ("lifted" if budget else "shipped"))
        print("samples_per_batch=%d" % args.samples)
        print("target_batches_per_s=%g" % args.rate)
        print("batches=%s" % c["publish_batches"])
        print("batches_per_s=%s" % c["publish_batches_per_s"])
        print("low_batches=%s" % c["publish_low_batches"])
        print("publish_refused=%s" % c["publish_refused"])
        print("offers=%d" % n)
        print("offers_sent=%d" % counters.get("offers_sent", 0))
        print("offer_latency_ms_p50=%.2f" % (counters["offer_latency_us_p50"] / 1000.0))
        print("offer_latency_ms_p99=%.2f" % (counters["offer_latency_us_p99"] / 1000.0))
        print("offer_latency_ms_max=%.2f" % (counters["offer_latency_us_max"] / 1000.0))
        print("client_offers_received=%s" % c["offers_received"])
        print("client_offers_missed=%s" % c["offers_missed"])
        for k in ("client_offer_ms_p50", "client_offer_ms_p99", "client_offer_ms_max"):
            print("%s=%s" % (k, c[k]))
        stored = counters.get("stored", 0)
        print("stored=%d" % stored)


cleanup = []  # directories made outside the System's temp dir

if __name__ == "__main__":
    try:
        main()
    finally:
        for d in cleanup:
            shutil.rmtree(d, ignore_errors=True)
