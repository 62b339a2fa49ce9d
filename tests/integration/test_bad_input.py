#!/usr/bin/env python3
"""Bad input through the real broker loses nothing already accepted: garbage
and oversized telemetry are counted by reason and skipped, the gateway keeps
running, and good telemetry before and after is stored. A car presenting a
certificate from another CA is refused at the TLS handshake."""
import os
import subprocess
import time

from harness import CTL, DATA_DIR, VIN_A, VIN_B, System, run, wait_for


def test():
    with System("badinput") as s:
        s.make_pki(VIN_A, VIN_B)
        s.start_broker()
        s.start_gpsfake()
        gw = s.start_gateway()
        s.start_agent(VIN_A, os.path.join(DATA_DIR, "drive.csv"), batch_max_samples="2",
                      batch_max_age_ms="2000")
        wait_for(lambda: s.ctl("stats")["stored"] >= 1, 30, "good telemetry stored")

        topic = "pitstop/v1/vehicles/%s/telemetry" % VIN_B
        garbage = s.path("garbage.bin")
        with open(garbage, "wb") as f:
            f.write(b"\xff\x00 this is not a TelemetryBatch \x12\x34" * 3)
        big = s.path("oversized.bin")
        with open(big, "wb") as f:
            f.write(os.urandom(200 * 1024))  # under the broker's limit, over the protocol's
        s.mqtt_pub(topic, garbage, cert=VIN_B)
        s.mqtt_pub(topic, big, cert=VIN_B)
        st = wait_for(lambda: (lambda x: x if x["rejected"]["malformed"] >= 1
                               and x["rejected"]["oversized"] >= 1 else None)(s.ctl("stats")),
                      15, "both bad messages counted")
        assert st["rejected"]["malformed"] == 1 and st["rejected"]["oversized"] == 1, st
        assert gw.alive(), "gateway died on bad input"
        assert s.try_ctl("vehicle", "show", VIN_B) is None, "bad input created state for B"

        # Good telemetry keeps flowing afterwards.
        before = s.ctl("stats")["stored"]
        wait_for(lambda: s.ctl("stats")["stored"] > before, 30, "telemetry stored after bad input")

        # A car with a certificate from another fleet CA never gets in.
        rogue = s.path("rogue-pki")
        subprocess.run([CTL, "pki", "init", rogue], check=True, capture_output=True, timeout=60)
        subprocess.run([CTL, "pki", "vehicle", VIN_B, rogue], check=True, capture_output=True,
                       timeout=60)
        # It trusts both CAs, so its own start-up check (chain to ca_file)
        # passes and the broker is what refuses it.
        both = s.path("both-ca.crt")
        with open(both, "w") as f:
            for ca in (s.path("pki", "ca.crt"), os.path.join(rogue, "ca.crt")):
                with open(ca) as c:
                    f.write(c.read())
        intruder = s.start_agent(VIN_B, os.path.join(DATA_DIR, "drive.csv"), name="intruder",
                                 ca_file=both,
                                 cert_file=os.path.join(rogue, "vehicles", VIN_B + ".crt"),
                                 key_file=os.path.join(rogue, "vehicles", VIN_B + ".key"))
        wait_for(lambda: "tlsv1 alert unknown ca" in intruder.text(),
                 20, "the intruder's connection to be refused")
        time.sleep(2)
        assert "bus: connected" not in intruder.text(), intruder.text()
        assert s.try_ctl("vehicle", "show", VIN_B) is None, "an intruder's data was stored"
        assert "certificate" in s.broker_log() or "SSL" in s.broker_log() \
            or "OpenSSL" in s.broker_log(), s.broker_log()[-1500:]


if __name__ == "__main__":
    run(test)
