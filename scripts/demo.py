#!/usr/bin/env python3
"""The demo behind ./scripts/demo: one car driving the shipped route through
Munich, its telemetry arriving at the gateway, and the low-fuel offer
reaching the car's screen once it stops at the fuel station. Reuses the
integration-test harness, so the demo runs exactly what the tests test."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from harness import DATA_DIR, VIN_A, System, read_card  # noqa: E402


def line(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def plural(n, one, many):
    return "%d %s" % (n, one if n == 1 else many)


def main():
    once = "--once" in sys.argv
    with System("demo") as s:
        line("fleet PKI (EC P-256, mbedTLS) in %s" % s.pki)
        s.make_pki(VIN_A)
        s.start_broker()
        line("mosquitto on 127.0.0.1:%d (TLS, client certificates, the pitstop broker plugin)" % s.broker_port)
        s.start_gpsfake()
        line("gpsd (gpsfake) on 127.0.0.1:%d replaying tests/data/route.nmea" % s.gps_port)
        s.start_gateway(log_level="info")
        line("pitstop-gateway up, database %s" % s.path("gateway.db"))
        # The agent runs on its embedded defaults (1 Hz sampling, a batch
        # every 30 samples or 30 s); only paths and ports are set here.
        conf = dict(log_level="info")
        for k in ("sample_interval_ms", "batch_max_samples", "batch_max_age_ms"):
            conf[k] = None
        s.start_agent(VIN_A, os.path.join(DATA_DIR, "drive.csv"), **conf)
        line("pitstop-agent up for %s; its screen is %s" % (VIN_A, s.path("agent-state", "screen.txt")))
        line("telemetry arrives in batches of 30 s; the fuel falls through 15 % after ~2.5 min,")
        line("the car stops at a fuel station after 3.5 min: the offer appears then. %s"
             % ("The demo ends there." if once else "Ctrl-C stops."))
        last, shown, offer_states = None, None, {}
        try:
            while True:
                v = s.try_ctl("vehicle", "show", VIN_A)
                if v and v.get("updated_at") != last:
                    last = v["updated_at"]
                    st = s.ctl("stats")
                    line("gateway: %s odometer %.3f km, fuel %.1f %%, at %.5f,%.5f, %.0f km/h "
                         "(%s, %s stored)" % (
                             VIN_A, v["odometer_km"], v["fuel_pct"], v["lat"] or 0, v["lon"] or 0,
                             v["speed_kmh"] or 0, plural(st["stored"], "batch", "batches"),
                             plural(st["samples_stored"], "sample", "samples")))
                    for o in s.ctl("vehicle", "offers", VIN_A):
                        if offer_states.get(o["id"]) != o["state"]:
                            offer_states[o["id"]] = o["state"]
                            line("gateway: offer %s (%s) %s" % (o["id"][:8], o["kind"], o["state"]))
                card = read_card(s.path("agent-state", "screen.txt"))
                if card and card.get("offer_id") != shown:
                    shown = card["offer_id"]
                    line("car screen shows:")
                    for k in ("title", "body", "promo_code", "valid_until"):
                        print("        %-11s %s" % (k + ":", card.get(k, "")), flush=True)
                    if once:
                        break
                for name, p in s.procs.items():
                    if not p.alive():
                        raise SystemExit("%s stopped unexpectedly; log: %s" % (name, p.log_path))
                time.sleep(1)
        except KeyboardInterrupt:
            print()
        line("stopping everything")


if __name__ == "__main__":
    main()
