#!/usr/bin/env python3
# ctest: no postgres twin (the in-car screen: the gateway's database plays no part)
"""The reference in-car screen (agent/screen: pitstop-screen and its page)
in Debian's chromium at 1280x720, against a real broker, gateway and agent
on loopback. The gateway's low-fuel rule issues the offer (bound to a 20 km
area around the car, which gpsfake places inside it); the car replays
signals: driving at 50 km/h while the fuel falls, then parked.

Checks, as the driver sees them:
  - while the car moves, the offer is received but the page shows nothing;
  - once parked, the page shows it (title, promo code), with touch targets
    at least 120 px high;
  - the night theme (the toggle) turns the page dark;
  - Accept takes the card off, and the gateway records the offer accepted
    (pitstopctl vehicle offers VIN --json);
  - a short offer shows and disappears when it expires;
  - a POST without the page's header is refused (403), a choice for an
    offer not on screen is answered 409;
  - the page ran without script errors and asked nothing of other hosts.
Screenshots go to <build>/test-artifacts/browser/car-screen/ and stay.
"""
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

from harness import BUILD_DIR, CTL, SOURCE_DIR, VIN_A, System, run, wait_for  # noqa: E402
from cdp import Browser  # noqa: E402

SCREEN = os.path.join(BUILD_DIR, "agent", "screen", "pitstop-screen")
WWW = os.path.join(SOURCE_DIR, "agent", "screen", "www")
ARTIFACTS = os.path.join(BUILD_DIR, "test-artifacts", "browser", "car-screen")
if os.environ.get("PITSTOP_TEST_DB") == "postgresql":
    ARTIFACTS += "-postgresql"
MOVING_S = 15  # the car drives this long, then parks

CARD_SHOWN = "!document.getElementById('card').hidden"
CARD_HIDDEN = "document.getElementById('card').hidden && !document.getElementById('idle').hidden"


def post(url, headers=None):
    req = urllib.request.Request(url, method="POST", data=b"", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def offers(s):
    return s.ctl("vehicle", "offers", VIN_A)


def test():
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = lambda page, name: page.screenshot(os.path.join(ARTIFACTS, name))  # noqa: E731
    with System("carscreen") as s:
        s.make_pki(VIN_A)
        s.start_broker()
        s.start_gpsfake()
        s.start_gateway(low_fuel_pct="15", offer_valid_s="600")
        # Fuel falls below 15 % at t=2 s while driving; parked from MOVING_S on.
        signals = s.write_signals("signals.csv", [
            (0, "5000.000", "40.0", "50"), (2, "5000.000", "12.0", "50"),
            (MOVING_S, "5000.000", "12.0", "0")])
        agent = s.start_agent(VIN_A, signals, batch_max_samples="1", batch_max_age_ms="1000")
        sock = s.path("agent-state", "hmi.sock")
        assert os.stat(sock).st_mode & 0o777 == 0o660, oct(os.stat(sock).st_mode)
        screen = s.start("pitstop-screen", [SCREEN, "--socket", sock, "--port", "0",
                                            "--www", WWW, "--theme", "day"])
        m = wait_for(lambda: re.search(r"serving (http://127\.0\.0\.1:\d+/)", screen.text()),
                     10, "pitstop-screen to listen")
        url = m.group(1)

        with Browser(log_dir=s.dir) as b:
            page = b.new_page(width=1280, height=720)
            page.goto(url)
            page.wait("document.getElementById('link').className === 'up'", 15,
                      "the page to be connected to the agent")

            # Moving: the offer arrives and waits; the page shows nothing.
            wait_for(lambda: len(offers(s)) == 1, 20, "the gateway to issue the offer")
            offer = offers(s)[0]
            wait_for(lambda: "offer %s waits until the car is at or below" % offer["id"]
                     in agent.text(), 10, "the agent to hold the offer while moving")
            page.b.pump(1.0)
            assert page.eval(CARD_HIDDEN), "an offer is on the page while the car moves"
            shot(page, "1-moving-nothing-shown.png")
            assert "offer %s shown" % offer["id"] not in agent.text(), \
                "the car parked before the moving check: raise MOVING_S"

            # Parked: the offer appears.
            page.wait(CARD_SHOWN, MOVING_S + 15, "the offer once parked")
            assert page.text("#title") == offer["title"], (page.text("#title"), offer)
            assert page.text("#code") == offer["promo_code"], (page.text("#code"), offer)
            assert page.eval("document.getElementById('card').dataset.offerId") == offer["id"]
            for sel in ("#accept", "#dismiss"):
                h = page.eval("document.querySelector('%s').getBoundingClientRect().height" % sel)
                assert h >= 120, "%s is %s px high, a touch target needs 120" % (sel, h)
            assert page.eval("document.body.className") == "day"
            shot(page, "2-parked-offer-day.png")

            # Night theme by the toggle.
            page.click("#theme")
            page.wait("document.body.className === 'night'", 5, "the night theme")
            bg = page.eval("getComputedStyle(document.body).backgroundColor")
            rgb = [int(x) for x in re.findall(r"\d+", bg)[:3]]
            assert sum(rgb) < 100, "night background is not dark: " + bg
            shot(page, "3-parked-offer-night.png")

            # The page's API: a POST without its header, a choice not on screen.
            assert post(url + "api/accept?id=" + offer["id"]) == 403
            assert post(url + "api/dismiss?id=not-shown", {"X-Pitstop-Screen": "1"}) == 409
            assert page.eval(CARD_SHOWN), "a refused choice took the card off"

            # Accept: the card goes, the gateway records it.
            page.click("#accept")
            page.wait(CARD_HIDDEN, 10, "the card to go after Accept")
            wait_for(lambda: offers(s)[0]["state"] == "accepted", 15,
                     "the gateway to record the offer accepted")
            assert "offer %s accepted by the driver" % offer["id"] in agent.text()
            shot(page, "4-accepted.png")

            # A short offer, straight on the offers topic, shows and expires.
            now_ms = int(time.time() * 1000)
            signed = s.path("short.offer")
            subprocess.run([CTL, "offer", "sign", "--key", s.path("pki", "offer-signing.key"),
                            "--vin", VIN_A, "--id", "short-1", "--title", "Coffee for 8 s",
                            "--body", "Expires soon", "--promo", "C8", "--kind", "loyalty",
                            "--valid-from-ms", str(now_ms - 1000),
                            "--valid-until-ms", str(now_ms + 8000), "--out", signed],
                           check=True, capture_output=True, timeout=30)
            s.mqtt_pub("pitstop/v1/vehicles/%s/offers" % VIN_A, signed)
            page.wait(CARD_SHOWN + " && document.getElementById('title').textContent"
                      " === 'Coffee for 8 s'", 10, "the short offer")
            shot(page, "5-short-offer.png")
            page.wait(CARD_HIDDEN, 20, "the short offer to disappear once expired")
            assert time.time() * 1000 > now_ms + 8000, "taken off before it expired"
            assert "offer short-1 expired: removed from screen" in agent.text()
            shot(page, "6-expired.png")

            assert not page.exceptions, "script errors: %r" % page.exceptions
            assert not page.console_errors, "console errors: %r" % page.console_errors
            assert not page.foreign_requests(url), page.foreign_requests(url)


if __name__ == "__main__":
    run(test)
