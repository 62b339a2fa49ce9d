#!/usr/bin/env python3
# ctest: no postgres twin (the car and the broker: the gateway's database plays no part)
"""An offer published while the car is offline reaches it when it comes back
(issue 9 item 6): the agent connects with clean start off and a session
expiry (session_expiry_s), so the broker keeps its subscription and queues
the QoS 1 offer for it. The agent connects once (the broker learns its
session), is stopped, the offer is published to its topic while it is down,
and the restarted agent resumes the session and shows that offer. With clean
start on (or an expired session) the broker would drop the offer: nobody is
subscribed while the car is away."""
import os
import subprocess
import time

from harness import CTL, VIN_A, System, read_card, run, wait_for


def test():
    with System("offline-offer") as s:
        s.make_pki(VIN_A)
        s.start_broker()
        signals = s.write_signals("signals.csv", [(0, "1000.000", "50.0", "0")])
        state = s.path("agent-state")
        screen = os.path.join(state, "screen.txt")
        agent = s.start_agent(VIN_A, signals, session_expiry_s="3600")
        wait_for(lambda: "bus: connected" in agent.text(), 20, "the agent to connect")
        time.sleep(0.5)  # its SUBSCRIBE goes out right after CONNACK
        s.stop("agent")
        assert read_card(screen) is None, "an offer on screen before any was sent"

        now_ms = int(time.time() * 1000)
        offer = s.path("offline.bin")
        subprocess.run([CTL, "offer", "sign", "--key", s.path("pki", "offer-signing.key"),
                        "--vin", VIN_A, "--id", "offer-while-offline", "--title", "Offline",
                        "--body", "sent while the car was off", "--promo", "P-OFF",
                        "--valid-from-ms", str(now_ms - 60_000),
                        "--valid-until-ms", str(now_ms + 3600_000), "--out", offer],
                       check=True, capture_output=True, timeout=30)
        s.mqtt_pub("pitstop/v1/vehicles/%s/offers" % VIN_A, offer)

        again = s.start_agent(VIN_A, signals, name="agent-again", state_dir=state,
                              display_file=screen, session_expiry_s="3600")
        wait_for(lambda: "bus: connected" in again.text(), 20, "the agent to reconnect")
        assert "(session resumed)" in again.text(), again.text()
        card = wait_for(lambda: read_card(screen), 20, "the offline offer on the screen")
        assert card["offer_id"] == "offer-while-offline", card
        assert card["promo_code"] == "P-OFF", card


if __name__ == "__main__":
    run(test)
