#!/usr/bin/env python3
"""(d) Low fuel produces exactly one offer, signed by the gateway and
displayed by the agent within 2 seconds of being issued; the car's SHOWN
event comes back to the gateway. The fuel keeps reporting low (and noisy
around the threshold) afterwards: still one offer."""
import datetime
import time

from harness import VIN_A, System, read_card, run, wait_for


def iso_ms(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000


def test():
    with System("lowfuel") as s:
        s.make_pki(VIN_A)
        s.start_broker()
        s.start_gpsfake()
        s.start_gateway(low_fuel_pct="15")
        # Parked (speed 0) so the offer may be shown at once. Fuel falls
        # through 15 % at t=4 s, wobbles around it, never rises 10 points.
        rows = [(0, "5000.000", "22.0", "0"), (2, "5000.000", "16.0", "0"),
                (4, "5000.000", "14.5", "0"), (6, "5000.000", "15.2", "0"),
                (8, "5000.000", "14.9", "0"), (10, "5000.000", "15.1", "0"),
                (12, "5000.000", "14.0", "0")]
        signals = s.write_signals("signals.csv", rows)
        s.start_agent(VIN_A, signals, batch_max_samples="1", batch_max_age_ms="1000")
        screen = s.path("agent-state", "screen.txt")

        card = wait_for(lambda: read_card(screen), 30, "an offer on the car's screen")
        offers = s.ctl("vehicle", "offers", VIN_A)
        assert len(offers) == 1, offers
        offer = offers[0]
        assert card["offer_id"] == offer["id"], (card, offer)
        assert offer["kind"] == "refuel" and card["kind"] == "refuel", (card, offer)
        assert card["promo_code"] == offer["promo_code"]
        latency = int(card["shown_at_ms"]) - iso_ms(offer["created_at"])
        print("offer shown %.0f ms after it was issued" % latency)
        assert latency <= 2000, "offer shown %.0f ms after it was issued" % latency

        # The SHOWN event reaches the gateway.
        wait_for(lambda: s.ctl("vehicle", "offers", VIN_A)[0]["state"] == "shown", 10,
                 "the offer to be marked shown")
        # Let the noisy low readings run to the end of the replay: no second offer.
        time.sleep(14)
        offers = s.ctl("vehicle", "offers", VIN_A)
        assert len(offers) == 1, "more than one offer in one low-fuel episode: %r" % offers
        stats = s.ctl("stats")
        assert stats["offers_sent"] == 1, stats


if __name__ == "__main__":
    run(test)
