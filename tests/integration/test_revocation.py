#!/usr/bin/env python3
# ctest: no postgres twin (the broker alone: the gateway's database plays no part)
"""Revocation (issue 6, item 5), with the real broker and the shipped
config. Car A's head unit is stolen: `pitstopctl pki revoke <VIN>` adds its
certificate to the CRL the broker uses (crlfile), the broker re-reads it on
SIGHUP, and from then on A's certificate is refused in the TLS handshake
while car B and the gateway connect as before. A gateway instance is revoked
the same way. (Before: there was no revoke command and no CRL.)"""
import os
import shutil
import signal
import subprocess

from harness import CTL, VIN_A, VIN_B, System, run, wait_for
from mqtt5 import Client, Refused


def connect(s, crt, key):
    return Client(s.broker_port, s.path("pki", "ca.crt"), crt, key)


def car_files(s, vin, where):
    """Copies the car's certificate and key out of the PKI (the stolen unit keeps them)."""
    crt, key = (os.path.join(where, vin + ext) for ext in (".crt", ".key"))
    shutil.copy(s.path("pki", "vehicles", vin + ".crt"), crt)
    shutil.copy(s.path("pki", "vehicles", vin + ".key"), key)
    return crt, key


def test():
    with System("revoke") as s:
        s.make_pki(VIN_A, VIN_B)
        s.start_broker()
        gw = s.start_gateway()
        gw2_crt, gw2_key = (shutil.copy(f, s.dir) for f in s.gateway_cert("pitstop-gateway-2"))
        connect(s, gw2_crt, gw2_key).close()
        stolen = car_files(s, VIN_A, s.dir)
        b = car_files(s, VIN_B, s.dir)
        connect(s, *stolen).close()  # A connects while it is valid

        for name in (VIN_A, "pitstop-gateway-2"):
            r = subprocess.run([CTL, "pki", "revoke", name, s.pki], capture_output=True,
                               text=True, timeout=30)
            assert r.returncode == 0, r.stderr
        os.kill(s.procs["broker"].p.pid, signal.SIGHUP)
        wait_for(lambda: "Reloading config." in s.broker_log(), 10, "the broker to reload")

        refused = []
        for what, crt, key in (("car A", *stolen), ("pitstop-gateway-2", gw2_crt, gw2_key)):
            try:
                connect(s, crt, key).close()
            except Refused as e:
                refused.append(what)
                print("%s refused: %s" % (what, e))
        assert refused == ["car A", "pitstop-gateway-2"], "still accepted: %r" % refused
        assert "certificate verify failed" in s.broker_log(), s.broker_log()[-2000:]

        # The others are untouched: B connects and publishes, the gateway
        # stayed connected and received it.
        c = connect(s, *b)
        assert c.publish("pitstop/v1/vehicles/%s/status" % VIN_B, b"x") in (0, 16)
        c.close()
        wait_for(lambda: s.ctl("stats")["received"] >= 1, 10, "the gateway to get B's status")
        assert "disconnected from the broker" not in gw.text(), gw.text()[-2000:]
        r = subprocess.run(["openssl", "crl", "-in", s.path("pki", "ca.crl"), "-noout", "-text",
                            "-CAfile", s.path("pki", "ca.crt")], capture_output=True, text=True)
        assert r.returncode == 0 and "verify OK" in r.stderr + r.stdout, r
        print("revoked car A and pitstop-gateway-2 refused after SIGHUP; car B and the "
              "gateway unaffected")


if __name__ == "__main__":
    run(test)
