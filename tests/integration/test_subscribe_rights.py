#!/usr/bin/env python3
# ctest: no postgres twin (the broker alone: the gateway's database plays no part)
"""Subscribe rights (issue 6, item 1), with the real broker and the shipped
config. A car holding a valid certificate asks for every subscription that
would let it read what is not its own: `#`, `$SYS/#`, the gateways'
shared-subscription group, another car's offers and acks, every car's
offers, its own telemetry. Each is refused in the SUBACK (reason 135); its
own offers and acks are granted. A client with a certificate of the fleet CA
that is neither a car nor a gateway (the broker's own) gets nothing. And the
attack the refusal stops: while the car "joins" the gateways' share group,
all 20 status messages another car sends reach the gateway (with the old
acl_file the rogue member took its round-robin share, which was then
dropped: 10 of 20)."""
import os

from harness import VIN_A, VIN_B, System, run, wait_for
from mqtt5 import NOT_AUTHORIZED, Client, Refused

T = "pitstop/v1/vehicles/%s/%s"
GROUP = "$share/pitstop-gateway/"


def client(s, cert, key, **kw):
    return Client(s.broker_port, s.path("pki", "ca.crt"), cert, key, **kw)


def car(s, vin, **kw):
    return client(s, s.path("pki", "vehicles", vin + ".crt"),
                  s.path("pki", "vehicles", vin + ".key"), **kw)


def test():
    with System("subrights") as s:
        s.make_pki(VIN_A, VIN_B)
        s.start_broker()
        s.start_gateway()  # subscribed in group pitstop-gateway

        a = car(s, VIN_A, client_id=VIN_A)
        hostile = ["#", "$SYS/#", "pitstop/#", GROUP + T % ("+", "status"),
                   GROUP + T % ("+", "events"), GROUP + T % ("+", "telemetry"),
                   GROUP + T % (VIN_A, "offers"), T % ("+", "offers"), T % ("+", "acks"),
                   T % (VIN_B, "offers"), T % (VIN_B, "acks"), T % (VIN_A, "telemetry"),
                   T % (VIN_A, "+"), T % (VIN_A, "#"), T % ("+", "status")]
        codes = a.subscribe(*hostile)
        granted = [f for f, c in zip(hostile, codes) if c != NOT_AUTHORIZED]
        own = a.subscribe(T % (VIN_A, "offers"), T % (VIN_A, "acks"))
        assert own == [1, 1], "the car's own offers/acks: %r" % own

        # Not a car, not a gateway: the broker's certificate as a client.
        try:
            other = client(s, s.path("pki", "broker.crt"), s.path("pki", "broker.key"))
        except Refused as e:
            print("the broker's certificate as a client: refused (%s)" % e)
            other = None  # refused outright is fine too
        if other:
            assert other.subscribe("#", T % ("+", "telemetry")) == [NOT_AUTHORIZED] * 2
            assert other.publish(T % (VIN_B, "offers"), b"x") == NOT_AUTHORIZED
            other.close()

        # The hijack: B's status messages all reach the gateway although A
        # tried to join its share group.
        b = car(s, VIN_B, client_id=VIN_B)
        for i in range(20):
            rc = b.publish(T % (VIN_B, "status"), b"not a status %d" % i)
            assert rc in (0, 16), "B's status %d refused: %d" % (i, rc)  # 16: no subscribers
        try:
            wait_for(lambda: s.ctl("stats")["received"] >= 20, 10,
                     "the gateway to receive 20 messages", interval=0.3)
        finally:
            got = s.ctl("stats")["received"]
            print("car granted %d of %d hostile subscriptions; gateway received %d of 20 "
                  "status messages" % (len(granted), len(hostile), got))
        assert not granted, "a car was granted %r (codes %r)" % (granted, codes)
        assert got == 20, got
        assert not a.received, "car A was delivered %r" % a.received[:3]
        a.close()
        b.close()
        assert "pitstop: refused subscription to" in s.broker_log(), s.broker_log()[-2000:]
        print("15 hostile subscriptions refused with 135, own offers/acks granted; "
              "gateway received 20 of 20")


if __name__ == "__main__":
    run(test)
