#!/usr/bin/env python3
"""The demo behind ./scripts/demo: one car driving the shipped route through
Munich, its telemetry arriving at the gateway, and the promotion engine's
offer for the nearest partner fuel station ahead of it (the shipped rules,
packaging/promotions.rules, over 10,000 generated points of interest around
Munich) reaching the car's screen once it stops; four more
cars drive shifted copies of the route, so the web console's map has a
small fleet on it. Reuses the integration-test harness, so the demo runs
exactly what the tests test."""
import os
import secrets
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from harness import CTL, DATA_DIR, SOURCE_DIR, VIN_A, System, read_card  # noqa: E402

# The other cars of the demo fleet, each on its own gpsfake.
OTHER_VINS = ["WAUZZZ8V5KA000101", "WBA3A5C50DF000202", "WDD2050071F000303",
              "VF1RFB00X57000404"]
CONSOLE_PORT = 8080


def line(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def plural(n, one, many):
    return "%d %s" % (n, one if n == 1 else many)


def nmea_checksum(body):
    c = 0
    for ch in body:
        c ^= ord(ch)
    return "%02X" % c


def shift_coord(value, hemi, delta, deg_digits):
    """ddmm.mmmmm (or dddmm.mmmmm) plus delta degrees, in the same format."""
    deg = int(value[:deg_digits]) + float(value[deg_digits:]) / 60.0
    if hemi in "SW":
        deg = -deg
    deg += delta
    hemi = ("N" if deg >= 0 else "S") if deg_digits == 2 else ("E" if deg >= 0 else "W")
    deg = abs(deg)
    d = int(deg)
    return "%0*d%08.5f" % (deg_digits, d, (deg - d) * 60.0), hemi


def shifted_route(path, out, dlat, dlon, rotate):
    """The shipped route moved by (dlat, dlon) degrees and started rotate
    fixes later, so each demo car drives its own street at its own time."""
    with open(path) as f:
        lines = [x.strip() for x in f if x.startswith("$")]
    pairs = [lines[i:i + 2] for i in range(0, len(lines), 2)]
    pairs = pairs[rotate:] + pairs[:rotate]
    with open(out, "w") as f:
        for pair in pairs:
            for sentence in pair:
                body = sentence[1:sentence.index("*")]
                fields = body.split(",")
                i = 2 if fields[0].endswith("GGA") else 3
                fields[i], fields[i + 1] = shift_coord(fields[i], fields[i + 1], dlat, 2)
                fields[i + 2], fields[i + 3] = shift_coord(fields[i + 2], fields[i + 3], dlon, 3)
                body = ",".join(fields)
                f.write("$%s*%s\r\n" % (body, nmea_checksum(body)))
    return out


def shifted_signals(path, out, odometer_km, fuel_pct):
    """drive.csv with another odometer and fuel level, so the cars differ."""
    with open(path) as f, open(out, "w") as o:
        for row in f:
            cells = row.strip().split(",")
            if row.startswith("#") or len(cells) != 4 or not cells[1]:
                o.write(row)
                continue
            fuel = min(100.0, float(cells[2]) + fuel_pct) if cells[2] else None
            o.write("%s,%.3f,%s,%s\n" % (cells[0], float(cells[1]) + odometer_km,
                                          "" if fuel is None else "%.1f" % fuel, cells[3]))
    return out


def console_listen():
    """127.0.0.1:8080 when free, else a port the kernel picks."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", CONSOLE_PORT))
            return "127.0.0.1:%d" % CONSOLE_PORT
        except OSError:
            return "127.0.0.1:0"


def ctl(s, *args, password=None):
    r = subprocess.run([CTL, "--config", s.gateway_conf] + list(args), capture_output=True,
                       text=True, timeout=60, input=password and password + "\n")
    if r.returncode != 0:
        raise SystemExit("pitstopctl %s failed: %s" % (" ".join(args), r.stderr.strip()))


def demo_rules(path):
    """The shipped rules file with its quiet hours off, so the demo gives
    its offer at any time of day."""
    with open(os.path.join(SOURCE_DIR, "packaging", "promotions.rules")) as f:
        text = f.read()
    out = []
    for row in text.splitlines():
        if row.split("=")[0].strip() == "quiet_hours":
            row = "quiet_hours = none   # the demo: offers at any hour"
        out.append(row)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path


def main():
    once = "--once" in sys.argv
    with System("demo") as s:
        line("fleet PKI (EC P-256, mbedTLS) in %s" % s.pki)
        s.make_pki(VIN_A, *OTHER_VINS)
        s.start_broker()
        line("mosquitto on 127.0.0.1:%d (TLS, client certificates, the pitstop broker plugin)" % s.broker_port)
        s.start_gpsfake()
        line("gpsd (gpsfake) on 127.0.0.1:%d replaying tests/data/route.nmea" % s.gps_port)
        # Service predictions from the repo's maintenance plans (installed
        # to /usr/share/pitstop/plans.json by the package).
        s.start_gateway(log_level="info", api_listen=console_listen(),
                        service_plans_file=os.path.join(SOURCE_DIR, "gateway", "service",
                                                        "plans.json"),
                        promo_rules_file=demo_rules(s.path("promotions.rules")))
        line("pitstop-gateway up, database %s; promotion rules %s (packaging/promotions.rules, "
             "quiet hours off)" % (s.path("gateway.db"), s.path("promotions.rules")))
        pois = s.path("pois.csv")
        subprocess.run([os.path.join(SOURCE_DIR, "scripts", "gen-pois"), "--count", "10000",
                        "--seed", "1", "--center", "48.137,11.575", "--spread-km", "15",
                        "--out", pois], check=True)
        ctl(s, "poi", "import", pois)
        line("10,000 points of interest around Munich (scripts/gen-pois) imported: "
             "pitstopctl poi near --lat 48.137 --lon 11.575 --radius-m 2000 --category fuel")
        # The console's users, made through the API as the local operator.
        password = secrets.token_urlsafe(12)
        ctl(s, "fleet", "add", "munich")
        ctl(s, "fleet", "assign", "munich", VIN_A, *OTHER_VINS)
        ctl(s, "user", "add", "operator", "--role", "operator", "--password-stdin",
            password=password)
        ctl(s, "user", "add", "manager", "--role", "fleet_manager", "--fleet", "munich",
            "--password-stdin", password=password)
        # The agent runs on its embedded defaults but for two: every 1 Hz
        # sample kept (the harness turns adaptive sampling off) and batches
        # of 30 s instead of the car's 5 min (docs/agent.md), so the
        # console's map moves while you watch.
        conf = dict(log_level="info", batch_max_age_ms="30000")
        for k in ("sample_interval_ms", "batch_max_samples"):
            conf[k] = None
        s.start_agent(VIN_A, os.path.join(DATA_DIR, "drive.csv"), **conf)
        line("pitstop-agent up for %s; its screen is %s" % (VIN_A, s.path("agent-state", "screen.txt")))
        route = os.path.join(DATA_DIR, "route.nmea")
        for k, vin in enumerate(OTHER_VINS, 1):
            nmea = shifted_route(route, s.path("route-%d.nmea" % k), 0.006 * k * (-1) ** k,
                                 0.009 * k, 40 * k)
            port = s.start_gpsfake(nmea, name="gpsfake-%d" % k)
            signals = shifted_signals(os.path.join(DATA_DIR, "drive.csv"),
                                      s.path("drive-%d.csv" % k), 9000.0 * k - 30000.0,
                                      14.0 * k)
            s.start_agent(vin, signals, name="agent-%d" % k, gpsd_port=str(port), **conf)
        line("%d more cars drive shifted copies of the route (the fleet \"munich\")"
             % len(OTHER_VINS))
        line("web console: %s  log in as operator (or manager: the fleet manager), "
             "password %s" % (s.api_urls["gateway"], password))
        line("telemetry arrives in batches of 30 s; the fuel falls through 15 % after ~2.5 min:")
        line("the gateway picks the nearest partner station ahead; the car stops after 3.5 min")
        line("and the offer appears then. %s" % ("The demo ends there." if once else "Ctrl-C stops."))
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
