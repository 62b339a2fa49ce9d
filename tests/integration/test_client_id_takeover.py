#!/usr/bin/env python3
# ctest: no postgres twin (the broker alone: the gateway's database plays no part)
"""Identity = client id (issue 6, item 2), with the real broker and the
shipped config. Car A, holding its own valid certificate, connects with car
B's VIN as its client id, then with the gateway's: neither B nor the gateway
is kicked off (the broker names every client after its certificate,
use_username_as_clientid), and the message queued in B's session while B
was away is still delivered to B. With the old config A took over B's
session (B was disconnected each time A connected) and the gateway's."""
import time

from harness import VIN_A, VIN_B, System, run, wait_for
from mqtt5 import Client

T = "pitstop/v1/vehicles/%s/%s"


def car(s, vin, **kw):
    return Client(s.broker_port, s.path("pki", "ca.crt"),
                  s.path("pki", "vehicles", vin + ".crt"),
                  s.path("pki", "vehicles", vin + ".key"), **kw)


def test():
    with System("takeover") as s:
        s.make_pki(VIN_A, VIN_B)
        s.start_broker()
        gw = s.start_gateway()

        # B has a persistent session with a message waiting in it.
        b = car(s, VIN_B, client_id=VIN_B, clean=False, session_expiry=3600)
        assert b.subscribe(T % (VIN_B, "offers")) == [1]
        b.close()
        offer = s.path("offer.bin")
        with open(offer, "wb") as f:
            f.write(b"queued for B")
        s.mqtt_pub(T % (VIN_B, "offers"), offer)
        b = car(s, VIN_B, client_id=VIN_B, clean=False, session_expiry=3600)

        kicked = []
        for victim in (VIN_B, "pitstop-gateway"):
            a = car(s, VIN_A, client_id=victim, clean=False, session_expiry=3600)
            time.sleep(0.5)
            if not b.alive():
                kicked.append(VIN_B)
                b = car(s, VIN_B, client_id=VIN_B, clean=False, session_expiry=3600)
            a.close()
        time.sleep(1)
        if "disconnected from the broker" in gw.text():
            kicked.append("pitstop-gateway")
        try:
            wait_for(lambda: b.alive(0.2) and b.received, 5, "B's queued offer")
        finally:
            got = [p for _, p in b.received]
            print("kicked by car A: %r; B got %r" % (kicked, got))
        assert not kicked, "car A kicked %r off the broker" % kicked
        assert got == [b"queued for B"], got
        b.close()
        log = s.broker_log()
        assert ("as %s" % VIN_A) in log, log[-3000:]
        assert "already connected, closing old connection" not in log, log[-3000:]


if __name__ == "__main__":
    run(test)
