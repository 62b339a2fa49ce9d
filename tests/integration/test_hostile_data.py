#!/usr/bin/env python3
"""A car with a valid certificate sends implausible or hostile data through
the real broker, and the gateway (shipped defaults) keeps its head:

* a sample dated in the year 3000 is stored but set apart: the car's later,
  real samples are its latest state, and its low-fuel offer still comes
  (before: the year-3000 sample froze the latest state, no offer ever);
* a status dated at INT64_MAX changes nothing: a later real "offline" is
  applied (before: the car stayed "online" for ever);
* events naming offers never issued are counted and dropped (before: each
  was stored, 428,400 of them in 10 s);
* a fuel level swinging between 1 % and 100 % gives one offer, not one per
  swing (before: 20 signed promo codes in 4 s);
and every batch, set apart or not, gets its receipt (stats: stored)."""
import os
import struct
import time

from harness import VIN_A, VIN_B, System, run, wait_for


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def key(num, wire):
    return varint((num << 3) | wire)


def ld(num, payload):
    return key(num, 2) + varint(len(payload)) + payload


def packed(num, values, signed=True):
    body = b"".join(varint(zigzag(v) if signed else v) for v in values)
    return ld(num, body)


def batch(seq, samples, epoch=0x5EED5EED):
    """A TelemetryBatch (proto/pitstop.proto) of (time_ms, odometer_m,
    fuel_permille) samples, columns delta-coded as the codec does."""
    def deltas(vals):
        prev, out = 0, []
        for v in vals:
            out.append(v - prev)
            prev = v
        return out
    flags = [0x3 | (3 << 8)] * len(samples)  # odometer + fuel, 3D fix
    return (key(1, 0) + varint(seq) + packed(2, flags, signed=False)
            + packed(3, deltas([s[0] for s in samples]))
            + packed(4, deltas([s[1] for s in samples]))
            + packed(5, deltas([s[2] for s in samples]))
            + key(10, 1) + struct.pack("<Q", epoch))


def status(state, time_ms):
    return key(1, 0) + varint(state) + key(2, 0) + varint(time_ms) + ld(3, b"evil-1.0")


def offer_event(offer_id, time_ms):
    ev = ld(1, offer_id.encode()) + key(2, 0) + varint(1)  # SHOWN
    return key(1, 0) + varint(time_ms) + ld(2, ev)


def now_ms():
    return int(time.time() * 1000)


def test():
    with System("hostile") as s:
        s.make_pki(VIN_A, VIN_B)
        s.start_broker()
        s.start_gateway(low_fuel_pct="15")

        def send(vin, kind, payload, name):
            path = s.path(name)
            with open(path, "wb") as f:
                f.write(payload)
            s.mqtt_pub("pitstop/v1/vehicles/%s/%s" % (vin, kind), path, cert=vin)

        # The year 3000, then real samples: low fuel.
        t = now_ms()
        send(VIN_A, "telemetry", batch(1, [(t - 60000, 1000000, 500),
                                          (32503680000000, 1000100, 900)]), "b1")
        send(VIN_A, "telemetry", batch(2, [(t - 30000, 1000200, 140)]), "b2")
        v = wait_for(lambda: (lambda x: x if x and x["samples"] == 3 else None)(
            s.try_ctl("vehicle", "show", VIN_A)), 20, "both batches stored")
        assert abs(v["fuel_pct"] - 14.0) < 1e-9, v
        assert v["updated_at"].startswith(time.strftime("%Y", time.gmtime())), v
        hist = s.ctl("vehicle", "history", VIN_A)
        assert [x["implausible"] for x in hist] == [False, False, True], hist
        offers = wait_for(lambda: s.ctl("vehicle", "offers", VIN_A), 10, "the low-fuel offer")
        assert len(offers) == 1, offers

        # A status at INT64_MAX, then a real "offline".
        send(VIN_A, "status", status(1, (1 << 63) - 1), "s1")
        send(VIN_A, "status", status(2, now_ms()), "s2")
        wait_for(lambda: s.ctl("stats")["status"] >= 1, 20, "the real status")
        v = s.ctl("vehicle", "show", VIN_A)
        assert v["online"] is False, v

        # Events for offers never issued.
        for i in range(20):
            send(VIN_A, "events", offer_event("%032x" % (0xdead0000 + i), now_ms()), "e")
        wait_for(lambda: s.ctl("stats")["events_unknown"] >= 20, 30, "20 unknown events")

        # B swings its fuel between 1 % and 100 %, 20 times.
        t = now_ms()
        for i in range(40):
            fuel = 10 if i % 2 == 0 else 1000
            send(VIN_B, "telemetry", batch(i + 1, [(t + i * 100, 2000000 + i, fuel)]), "sw")
        wait_for(lambda: (lambda x: x if x and x["batches"] == 40 else None)(
            s.try_ctl("vehicle", "show", VIN_B)), 30, "B's 40 batches stored")
        offers_b = s.ctl("vehicle", "offers", VIN_B)
        assert len(offers_b) == 1, "%d offers for a swinging fuel level" % len(offers_b)

        time.sleep(1.5)  # the counters are saved within a second
        st = s.ctl("stats")
        assert st["implausible"]["future"] == 1, st
        assert st["status_ahead"] == 1, st
        assert st["events_unknown"] == 20 and st["events"] == 0, st
        assert st["stored"] == 42 and st["duplicates"] == 0, st
        assert sum(st["rejected"].values()) == 0, st
        print("hostile data: year 3000 set apart, status INT64_MAX ignored, %d unknown "
              "events dropped, one offer for 20 fuel swings" % st["events_unknown"])


if __name__ == "__main__":
    run(test)
