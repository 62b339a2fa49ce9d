#!/usr/bin/env python3
"""The agent's mobile data budget for a month of driving.

Runs build/<dir>/bench/bench_budget (the agent's sampler, signals replay,
config defaults and the codec, in C) over a drive twice: every 1 Hz sample
kept (sample_adaptive = no), then with adaptive sampling as configured
(the defaults, or --set KEY=VALUE). Prints key=value lines:

  payload_bytes_per_sample  v2 batch payload per sample, every sample kept
  samples_kept_ratio        samples kept / samples taken, adaptive on
  publishes_per_hour        telemetry batches an hour of this drive sends
  mb_per_month              1,500 km and 40 h of driving, everything on the
                            wire (MQTT, TLS, TCP/IP), assumptions below

The drive is tests/data/drive_hour.nmea + drive_hour.csv (bench/make_drive.py)
unless --nmea FILE [--signals CSV] is given. The month is this drive
repeated for max(40 h, the hours it takes to cover 1,500 km).

usage: bench/data_budget.py [--build DIR] [--nmea FILE [--signals CSV]]
                            [--set KEY=VALUE ...]
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data")
VIN = "WP0ZZZ99ZTS392124"

# --- What a month is -------------------------------------------------------
MONTH_KM = 1500.0
MONTH_HOURS = 40.0
TRIPS_PER_MONTH = 60  # two a driving day: one connection each

# --- Bytes on the wire, per unit (see docs/performance.md) -------------------
TCPIP = 52  # IPv4 20 + TCP 20 + timestamps 12, one segment per packet
TLS_RECORD = 29  # TLS 1.2 AES-GCM: header 5 + explicit nonce 8 + tag 16 (1.3: 22)
TOPIC_TELEMETRY = len("pitstop/v1/vehicles/%s/telemetry" % VIN)
TOPIC_ACKS = len("pitstop/v1/vehicles/%s/acks" % VIN)


def packet(mqtt_bytes):
    """One MQTT packet in its own TLS record and TCP segment."""
    return mqtt_bytes + TLS_RECORD + TCPIP


def publish_mqtt(topic_len, payload):
    """PUBLISH QoS 1, MQTT v5: fixed header, topic, packet id, no properties."""
    rest = 2 + topic_len + 2 + 1 + payload
    return 1 + (1 if rest < 128 else 2 if rest < 16384 else 3) + rest


PUBACK = packet(4)  # v5 PUBACK with reason code
BARE_ACK = TCPIP  # a TCP ACK with no data
RECEIPT_PAYLOAD = 20  # TelemetryAck: one seq, epoch (fixed64), gateway clock
# A batch: PUBLISH; the broker's PUBACK; the gateway's receipt (a PUBLISH on
# acks) and the car's PUBACK for it; two bare TCP ACKs (of the PUBACKs).
PER_PUBLISH_FIXED = (PUBACK + packet(publish_mqtt(TOPIC_ACKS, RECEIPT_PAYLOAD)) + PUBACK +
                     2 * BARE_ACK)
# A keep-alive: PINGREQ, PINGRESP, a bare ACK of the response.
PER_PING = packet(2) + packet(2) + BARE_ACK
# A connection with TLS session resumption (1.3 PSK): TCP handshake and FIN
# (7 segments), ClientHello with the ticket ~350, ServerHello + Finished
# ~250, client Finished ~80; MQTT CONNECT with its will ~180, CONNACK,
# SUBSCRIBE to offers and acks, SUBACK, the retained ONLINE status and its
# PUBACK, OFFLINE at the end, DISCONNECT.
PER_CONNECT_RESUMED = 7 * TCPIP + 350 + 250 + 80 + 3 * TCPIP + sum(
    packet(b) for b in (180, 8, 110, 9, 90, 4, 90, 4, 2))
# A full handshake adds both certificate chains (vehicle and broker, ~1.2 KB
# each with their CA) and the key exchange: ~3.5 KB more.
FULL_HANDSHAKE_EXTRA = 3500


def run_bench(build, nmea, signals, settings):
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("vin = %s\nallow_plaintext = yes\nbroker_uri = tcp://127.0.0.1:1\n" % VIN)
        for k, v in settings.items():
            f.write("%s = %s\n" % (k, v))
        conf = f.name
    try:
        cmd = [os.path.join(build, "bench", "bench_budget"), conf, nmea]
        if signals:
            cmd.append(signals)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("bench_budget failed: " + r.stderr.strip())
    finally:
        os.unlink(conf)
    return {k: int(v) for k, v in (l.split("=") for l in r.stdout.split())}


def drive_km(nmea, signals):
    """The drive's length: the odometer if the signals have one, else the fixes."""
    if signals:
        odo = []
        with open(signals) as f:
            for line in f:
                p = line.strip().split(",")
                if line.startswith("#") or len(p) < 2 or not p[1]:
                    continue
                odo.append(float(p[1]))
        if odo:
            return odo[-1] - odo[0]
    km, last = 0.0, None
    with open(nmea) as f:
        for line in f:
            p = line.split(",")
            if not line[3:6] == "RMC" or len(p) < 7 or p[2] != "A":
                continue
            lat = (int(p[3][:2]) + float(p[3][2:]) / 60) * (-1 if p[4] == "S" else 1)
            lon = (int(p[5][:3]) + float(p[5][3:]) / 60) * (-1 if p[6] == "W" else 1)
            if last:
                dy = math.radians(lat - last[0]) * 6371.0
                dx = math.radians(lon - last[1]) * 6371.0 * math.cos(math.radians(lat))
                km += math.hypot(dx, dy)
            last = (lat, lon)
    return km


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build", "release"))
    ap.add_argument("--nmea")
    ap.add_argument("--signals")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args()
    nmea = a.nmea or os.path.join(DATA, "drive_hour.nmea")
    signals = a.signals if a.nmea else (a.signals or os.path.join(DATA, "drive_hour.csv"))
    settings = dict(s.split("=", 1) for s in a.set)

    every = run_bench(a.build, nmea, signals, dict(settings, sample_adaptive="no"))
    adapt = run_bench(a.build, nmea, signals, dict(settings, sample_adaptive="yes"))
    hours = every["samples_taken"] / 3600.0
    km = drive_km(nmea, signals)
    month_hours = max(MONTH_HOURS, MONTH_KM / (km / hours) if km > 0 else MONTH_HOURS)
    scale = month_hours / hours
    keepalive = adapt["mqtt_keepalive_s"]

    publishes = adapt["batches"]
    wire = adapt["payload_bytes_v2"]
    wire += publishes * (publish_mqtt(TOPIC_TELEMETRY, 0) + TLS_RECORD + TCPIP +
                         PER_PUBLISH_FIXED)
    # Paho pings after a keep-alive interval without traffic: floor(gap / K)
    # pings in each gap between publishes (taken as even).
    gap_s = 3600.0 * hours / max(publishes, 1)
    pings = publishes * math.floor(gap_s / keepalive * (1 - 1e-9))
    wire += pings * PER_PING
    month = wire * scale + TRIPS_PER_MONTH * PER_CONNECT_RESUMED
    month_full = month + TRIPS_PER_MONTH * FULL_HANDSHAKE_EXTRA

    print("drive=%s" % os.path.relpath(nmea))
    print("drive_hours=%.2f" % hours)
    print("drive_km=%.1f" % km)
    print("samples=%d" % every["samples_taken"])
    print("payload_bytes_per_sample=%.2f" % (every["payload_bytes_v2"] / every["samples_taken"]))
    print("payload_bytes_per_sample_v1=%.2f" %
          (every["payload_bytes_v1"] / every["samples_taken"]))
    print("samples_kept=%d" % adapt["samples_kept"])
    print("samples_kept_ratio=%.3f" % (adapt["samples_kept"] / adapt["samples_taken"]))
    print("payload_bytes_per_kept_sample=%.2f" %
          (adapt["payload_bytes_v2"] / max(adapt["samples_kept"], 1)))
    print("publishes_per_hour=%.1f" % (publishes / hours))
    print("parked_flushes=%d" % adapt["parked_flushes"])
    print("month_hours=%.1f" % month_hours)
    print("mqtt_keepalive_s=%d" % keepalive)
    print("pings_per_hour=%.1f" % (pings / hours))
    print("mb_per_month=%.3f" % (month / 1e6))
    print("mb_per_month_full_handshakes=%.3f" % (month_full / 1e6))
    print("assumptions=MQTT v5 QoS 1, one PUBLISH per batch in one TLS 1.2 AES-GCM record "
          "and one TCP/IPv4 segment with timestamps; a gateway receipt and two bare TCP ACKs "
          "per batch; %d connections a month with TLS session resumption (the _full_handshakes "
          "line: without); a keep-alive ping after mqtt_keepalive_s without traffic; no "
          "retransmissions; no offers" % TRIPS_PER_MONTH)


if __name__ == "__main__":
    main()
