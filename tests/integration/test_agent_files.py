#!/usr/bin/env python3
# ctest: no postgres twin (the car alone: the gateway's database plays no part)
"""Files readable by everyone: with umask 000, everything the agent writes
to its state dir (queue.db, offers.db, their -wal and -shm, the screen file
with a promo code on it) must be 0600, and so must the private keys
`pitstopctl pki` writes. The agent runs until it has sealed batches and shown
an offer (published to its offers topic under the gateway's identity, signed
with `pitstopctl offer sign`); a second, validly signed offer with a 31-day
validity window is refused (offer_max_validity_s defaults to 30 days).
Afterwards the agent restarts over files an older agent left 0644 and
tightens them."""
import os
import stat
import subprocess
import time

from harness import CTL, VIN_A, System, read_card, run, wait_for

DAY_MS = 86400_000
PRIVATE = ("queue.db", "queue.db-wal", "queue.db-shm", "offers.db", "offers.db-wal",
           "offers.db-shm", "screen.txt")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def sign(s, name, offer_id, valid_from_ms, valid_until_ms):
    out = s.path(name)
    subprocess.run([CTL, "offer", "sign", "--key", s.path("pki", "offer-signing.key"),
                    "--vin", VIN_A, "--id", offer_id, "--title", "Offer " + offer_id,
                    "--body", "body", "--promo", "P-1", "--valid-from-ms", str(valid_from_ms),
                    "--valid-until-ms", str(valid_until_ms), "--out", out],
                   check=True, capture_output=True, timeout=30)
    return out


def modes(state):
    return {n: oct(mode(os.path.join(state, n))) for n in PRIVATE
            if os.path.exists(os.path.join(state, n))}


def test():
    old_umask = os.umask(0)
    try:
        with System("agent-files") as s:
            s.make_pki(VIN_A)
            for rel in ("ca.key", "broker.key", "gateway.key", "offer-signing.key",
                        os.path.join("vehicles", VIN_A + ".key")):
                assert mode(s.path("pki", rel)) == 0o600, \
                    "pki %s is %s" % (rel, oct(mode(s.path("pki", rel))))
            s.start_broker()
            s.start_gpsfake()
            signals = s.write_signals("signals.csv", [(0, "1000.000", "50.0", "0")])
            knobs = dict(batch_max_samples="2", batch_max_age_ms="2000")
            agent = s.start_agent(VIN_A, signals, **knobs)
            wait_for(lambda: "bus: connected" in agent.text(), 20, "the agent to connect")
            time.sleep(0.5)  # its SUBSCRIBE goes out right after CONNACK
            topic = "pitstop/v1/vehicles/%s/offers" % VIN_A
            now = int(time.time() * 1000)
            s.mqtt_pub(topic, sign(s, "long.bin", "month-long", now - 1000, now + 31 * DAY_MS))
            wait_for(lambda: "offer month-long rejected: validity window too long" in agent.text(),
                     10, "the 31-day offer refused")
            s.mqtt_pub(topic, sign(s, "ok.bin", "hour-long", now - 1000, now + 3600_000))
            screen = s.path("agent-state", "screen.txt")
            wait_for(lambda: (read_card(screen) or {}).get("offer_id") == "hour-long", 10,
                     "the good offer on screen")
            wait_for(lambda: "sealed with" in agent.text(), 10, "a batch sealed")
            state = s.path("agent-state")
            got = modes(state)
            assert set(got) == set(PRIVATE), "missing files: %s" % got
            assert all(m == "0o600" for m in got.values()), "modes: %s" % got

            # An older agent's files, world-readable: tightened at the next start.
            s.stop("agent")
            for n in PRIVATE:
                if os.path.exists(os.path.join(state, n)):
                    os.chmod(os.path.join(state, n), 0o644)
            s.start_agent(VIN_A, signals, name="agent-again", state_dir=state,
                          display_file=screen, **knobs)
            wait_for(lambda: os.path.exists(os.path.join(state, "queue.db-wal")), 10,
                     "the WAL again")
            got = modes(state)
            assert all(m == "0o600" for m in got.values()), "after a restart: %s" % got
    finally:
        os.umask(old_umask)


if __name__ == "__main__":
    run(test)
