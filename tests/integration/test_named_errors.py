#!/usr/bin/env python3
# ctest: no postgres twin (certificates and the broker: the gateway's database plays no part)
"""Errors that name their cause (issue 7, item 3), asserted on log lines.

Refused at start (exit 2, no broker needed): a missing cert_file, a key that
belongs to another certificate, a certificate that does not verify to
ca_file, a vehicle's certificate given to the gateway, a car's certificate
for another VIN, a tcp:// broker_uri without allow_plaintext, a key given
twice. Then, at run time, with one broker: a gateway started while the
broker is down says "connection refused" (and connects once it is up); a
gateway whose certificate comes from another CA (which it trusts, the broker
does not) says "unknown ca", OpenSSL's reason; a second gateway with the
first one's certificate takes its session over and the first one logs a
client-id clash (a broker restarted twice within seconds is not one); allow_plaintext = yes lets tcp:// through, with a warning.
Before, every one of these was "Paho error -1: TCP/TLS connect failure"
(or nothing at all, and "ready")."""
import os
import subprocess

from harness import AGENT, CTL, GATEWAY, VIN_A, VIN_B, System, free_port, run, wait_for


def gateway_conf(s, name, **overrides):
    crt, key = s.gateway_cert("pitstop-gateway")
    conf = {
        "broker_uri": "ssl://127.0.0.1:%d" % s.broker_port,
        "client_id": "pitstop-gateway",
        "ca_file": s.path("pki", "ca.crt"),
        "cert_file": crt,
        "key_file": key,
        "offer_key_file": s.path("pki", "offer-signing.key"),
        "db": s.db_url(),
        "log_level": "debug",
        "api_listen": "",  # no HTTP API: not what this test is about
        "api_socket": "",
    }
    conf.update(overrides)
    return s.write_conf(name + ".conf", conf)


def refused(argv, conf):
    """Runs a daemon that must refuse to start; returns its output."""
    r = subprocess.run(argv + ["--config", conf], capture_output=True, text=True, timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode == 2, "exit %d, expected 2: %s" % (r.returncode, out)
    return out


def test():
    with System("errors") as s:
        s.make_pki(VIN_A)
        other = s.path("other-pki")  # another fleet's CA, with a gateway of its own
        subprocess.run([CTL, "pki", "init", other], check=True, capture_output=True, timeout=60)
        s.broker_port = free_port()  # nothing listens there yet
        pki = s.path("pki")

        # --- refused at start -------------------------------------------
        out = refused([GATEWAY], gateway_conf(s, "nocert", cert_file=s.path("missing.crt")))
        assert "cert_file %s: cannot read it: No such file or directory" % s.path("missing.crt") \
            in out, out
        out = refused([GATEWAY], gateway_conf(s, "wrongkey",
                                              key_file=os.path.join(other, "gateway.key")))
        assert "the key does not match cert_file" in out, out
        out = refused([GATEWAY], gateway_conf(s, "wrongca",
                                              ca_file=os.path.join(other, "ca.crt")))
        assert "does not verify to ca_file" in out and "not correctly signed" in out, out
        out = refused([GATEWAY], gateway_conf(
            s, "vincert", cert_file=os.path.join(pki, "vehicles", VIN_A + ".crt"),
            key_file=os.path.join(pki, "vehicles", VIN_A + ".key")))
        assert "CN %s is a VIN: that is a vehicle's certificate" % VIN_A in out, out
        out = refused([GATEWAY], gateway_conf(s, "plain",
                                              broker_uri="tcp://127.0.0.1:%d" % s.broker_port))
        assert "plain.conf:1: broker_uri:" in out and "allow_plaintext = yes" in out, out
        path = gateway_conf(s, "twice")
        with open(path, "a") as f:
            f.write("client_id = pitstop-gateway-2   # the second\n")
        out = refused([GATEWAY], path)
        assert "twice.conf:11: key 'client_id' given twice (first at line 2)" in out, out

        car = s.write_conf("car.conf", {
            "vin": VIN_B,  # the certificate is A's
            "ca_file": os.path.join(pki, "ca.crt"),
            "cert_file": os.path.join(pki, "vehicles", VIN_A + ".crt"),
            "key_file": os.path.join(pki, "vehicles", VIN_A + ".key"),
            "state_dir": s.path("car-state"),
        })
        out = refused([AGENT], car)
        assert "CN '%s' is not this car's vin %s" % (VIN_A, VIN_B) in out, out

        # --- at run time -------------------------------------------------
        down = s.start("gw-down", [GATEWAY, "--config", gateway_conf(s, "gw-down")])
        wait_for(lambda: "connection refused" in down.text() or not down.alive(), 20,
                 "the gateway to say the broker is down")
        assert "cannot reach 127.0.0.1:%d: connection refused" % s.broker_port in down.text(), \
            down.text()
        s.start_broker(s.broker_port)
        wait_for(lambda: "info: ready" in down.text(), 40, "the gateway to connect once the broker is up")

        # The broker restarted twice within seconds of accepting the gateway
        # (a crash loop, an operator's two restarts): connections closed
        # without a reason, like a takeover, but the connect attempts in
        # between failed, so it is not named a client-id clash.
        seen = len(down.text())
        for _ in range(2):
            ups = down.text().count("bus: connected to")
            s.stop("broker")
            wait_for(lambda: "connection refused" in down.text()[seen:], 40,
                     "a failed attempt while the broker is down")
            s.start_broker(s.broker_port)
            wait_for(lambda: down.text().count("bus: connected to") > ups, 40,
                     "the gateway to connect again")
            seen = len(down.text())
        assert "client-id clash" not in down.text(), down.text()[-3000:]

        # Trusts both CAs, holds the other CA's certificate: the broker refuses it.
        bundle = s.path("both-ca.crt")
        with open(bundle, "w") as f:
            for ca in (os.path.join(pki, "ca.crt"), os.path.join(other, "ca.crt")):
                with open(ca) as c:
                    f.write(c.read())
        stranger = s.start("gw-stranger", [GATEWAY, "--config", gateway_conf(
            s, "gw-stranger", ca_file=bundle, cert_file=os.path.join(other, "gateway.crt"),
            key_file=os.path.join(other, "gateway.key"))])
        wait_for(lambda: "unknown ca" in stranger.text() or not stranger.alive(), 20,
                 "OpenSSL's reason in the log")
        assert ("TLS handshake with 127.0.0.1:%d failed: tlsv1 alert unknown ca" % s.broker_port) \
            in stranger.text(), stranger.text()
        assert not [l for l in stranger.text().splitlines()
                    if "TCP/TLS connect failure" in l and "debug:" not in l], stranger.text()
        s.stop("gw-stranger")

        # A second instance with the same certificate takes the session over.
        # It is named at the second takeover in a row; the restarts above
        # left the first instance's backoff ceiling at up to 30 s (it starts
        # again from 1 s only after a connection lasts BUS_STABLE_MS), so
        # its way back to the second takeover may take one such wait.
        seen = len(down.text())
        s.start("gw-twin", [GATEWAY, "--config", gateway_conf(s, "gw-twin")])
        wait_for(lambda: "client-id clash" in down.text()[seen:], 75, "the takeover to be named")
        line = [l for l in down.text()[seen:].splitlines() if "client-id clash" in l][0]
        assert "'pitstop-gateway'" in line and "two instances share one certificate" in line, line
        s.stop("gw-twin")

        plain = s.start("gw-plain", [GATEWAY, "--config", gateway_conf(
            s, "gw-plain", broker_uri="tcp://127.0.0.1:%d" % s.broker_port,
            allow_plaintext="yes", client_id="pitstop-gateway-plain")])
        wait_for(lambda: "is plaintext" in plain.text() or not plain.alive(), 20,
                 "the plaintext warning")
        wait_for(lambda: "connect to" in plain.text() or not plain.alive(), 20,
                 "a connect attempt")
        assert plain.alive(), plain.text()


if __name__ == "__main__":
    run(test)
