#!/usr/bin/env python3
# ctest: no postgres twin (the car alone: the gateway's database plays no part)
"""(c) An offer with a bad signature, or expired, or signed for another car,
is not displayed; a good one is (so the test can tell the difference). The
offers are crafted with `pitstopctl offer sign` and published straight to
the car's offers topic with mosquitto_pub under the gateway's identity."""
import subprocess
import time

from harness import CTL, VIN_A, VIN_B, System, read_card, run, wait_for


def sign(s, out, key, vin, offer_id, **kw):
    argv = [CTL, "offer", "sign", "--key", key, "--vin", vin, "--id", offer_id,
            "--title", "Test offer " + offer_id, "--body", "body", "--promo", "P-1",
            "--out", out]
    for k, v in kw.items():
        argv += ["--" + k.replace("_", "-"), str(v)]
    subprocess.run(argv, check=True, capture_output=True, timeout=30)
    return out


def test():
    with System("offers") as s:
        s.make_pki(VIN_A)
        rogue = s.path("rogue-pki")
        subprocess.run([CTL, "pki", "init", rogue], check=True, capture_output=True, timeout=60)
        s.start_broker()
        s.start_gpsfake()
        signals = s.write_signals("signals.csv", [(0, "1000.000", "50.0", "0")])
        agent = s.start_agent(VIN_A, signals)
        wait_for(lambda: "bus: connected" in agent.text(), 20, "the agent to connect")
        time.sleep(0.5)  # its SUBSCRIBE goes out right after CONNACK
        screen = s.path("agent-state", "screen.txt")
        good_key = s.path("pki", "offer-signing.key")
        topic = "pitstop/v1/vehicles/%s/offers" % VIN_A
        now_ms = int(time.time() * 1000)

        bad = [
            ("forged", dict(key=rogue + "/offer-signing.key", vin=VIN_A), "unknown key"),
            ("expired", dict(key=good_key, vin=VIN_A, valid_from_ms=now_ms - 7200_000,
                             valid_until_ms=now_ms - 3600_000), "expired"),
            ("other-car", dict(key=good_key, vin=VIN_B), "wrong vehicle"),
            ("future", dict(key=good_key, vin=VIN_A, valid_from_ms=now_ms + 3600_000,
                            valid_until_ms=now_ms + 7200_000), "not yet valid"),
        ]
        # An offer signed with the right key id over other bytes: take a
        # good signed offer and change one byte of the offer inside it.
        good_bytes = open(sign(s, s.path("tamper.bin"), good_key, VIN_A, "offer-tampered"), "rb").read()
        i = good_bytes.find(b"Test offer")
        with open(s.path("tampered.bin"), "wb") as f:
            f.write(good_bytes[:i] + b"X" + good_bytes[i + 1:])

        # One at a time, so each rejection line belongs to the offer just sent.
        # Offers that fail before their signature is checked are logged as "?":
        # the agent does not parse unauthenticated bytes.
        for oid, kw, reason in bad + [("tampered", None, "bad signature")]:
            if kw is None:
                f = s.path("tampered.bin")
            else:
                f = sign(s, s.path(oid + ".bin"), kw.pop("key"), kw.pop("vin"), "offer-" + oid, **kw)
            before = agent.text().count(" rejected: ")
            s.mqtt_pub(topic, f)
            line = wait_for(lambda: [l for l in agent.text().splitlines() if " rejected: " in l][before:],
                            10, "the agent to reject offer-%s" % oid)[0]
            assert line.endswith("rejected: " + reason), (oid, line)
            assert "offer offer-%s rejected" % oid in line or "offer ? rejected" in line, (oid, line)
        assert read_card(screen) is None, "something is on screen: %r" % read_card(screen)

        # The control: a valid offer is displayed.
        s.mqtt_pub(topic, sign(s, s.path("good.bin"), good_key, VIN_A, "offer-good"))
        card = wait_for(lambda: read_card(screen), 10, "the valid offer on screen")
        assert card["offer_id"] == "offer-good", card
        # The card is written before the log line: wait for the line too.
        wait_for(lambda: "offer offer-good shown" in agent.text(), 10, "the agent to log it shown")
        for oid, _, _ in bad:
            assert "offer offer-%s shown" % oid not in agent.text()


if __name__ == "__main__":
    run(test)
