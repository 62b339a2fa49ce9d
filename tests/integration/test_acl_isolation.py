#!/usr/bin/env python3
# ctest: no postgres twin (the broker alone: the gateway's database plays no part)
"""(b) A vehicle holding the certificate for VIN A cannot publish as VIN B:
the broker refuses with MQTT v5 reason code 135 and nothing is stored for B.

Since issue 7 our own agent refuses to start with a certificate that is not
its VIN's (test_named_errors), so the hostile car here is a raw MQTT client
holding A's valid certificate: what a stolen or modified head unit would be.
A control publish on A's own topic is delivered."""
from harness import VIN_A, VIN_B, System, run, wait_for
from mqtt5 import NOT_AUTHORIZED, Client

T = "pitstop/v1/vehicles/%s/telemetry"


def car_a(s):
    return Client(s.broker_port, s.path("pki", "ca.crt"),
                  s.path("pki", "vehicles", VIN_A + ".crt"),
                  s.path("pki", "vehicles", VIN_A + ".key"))


def test():
    with System("acl") as s:
        s.make_pki(VIN_A)
        s.start_broker()
        s.start_gateway()
        # Control: on its own topic A is heard (the gateway rejects the
        # junk payload, but it was delivered).
        a = car_a(s)
        try:
            assert a.publish(T % VIN_A, b"junk from A") == 0
        finally:
            a.close()
        wait_for(lambda: s.ctl("stats")["received"] == 1, 20, "the control message")
        # As B: refused by the broker (which then closes the connection,
        # mosquitto issue #2579: one refusal per connection).
        for i in range(2):
            a = car_a(s)
            try:
                assert a.publish(T % VIN_B, b"not for B %d" % i) == NOT_AUTHORIZED
            finally:
                a.close()
        stats = s.ctl("stats")
        assert stats["received"] == 1 and stats["stored"] == 0, stats
        r = s.ctl("vehicle", "show", VIN_B, check=False)
        assert not isinstance(r, dict), "gateway has state for %s: %r" % (VIN_B, r)


if __name__ == "__main__":
    run(test)
