#!/usr/bin/env python3
"""The offer lifecycle (docs/offers.md) end to end: a fuel rule of a rules
file issues an offer for the one partner station near the route (created),
the broker acknowledges its publish (sent); the agent reports it delivered
(verified and stored) and shown; the driver accepts it on the HMI socket; a
partner's till redeems its code over the API with a partner token (once: a
second redemption is 409, an unknown code 404), and the partner may do
nothing else (403 on the vehicle list); `pitstopctl offer stats --json`
counts each stage and the redemption, `offer stats --by station --json`
counts it for its station (by the POI's name), and `offer list --vin --json`
shows the states with their times."""
import os
import socket
import sys

from harness import SOURCE_DIR, VIN_A, System, read_card, run, wait_for

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "api"))
import openapi_shapes  # noqa: E402

# The route (tests/data/route.nmea) runs around 48.13 N 11.58 E.
RULES = """# test rules: docs/promotions.md
[rule partner_fuel]
trigger = fuel_below 15
poi_category = fuel
search_radius_m = 20000
kind = refuel
title = {station}: 5 ct/l off
body = Show code {code} at {station}.
codes = generate FUEL- 8
valid_for = 2h
area_radius_m = 0
"""
POIS = "id,name,category,lat,lon,brand,address\nst-1,Aral Test,fuel,48.1360,11.5800,Aral,Teststrasse 1\n"


def partner_station_files(s):
    """Writes RULES and POIS into s's directory: (rules file, POI CSV)."""
    paths = s.path("promotions.rules"), s.path("pois.csv")
    for path, text in zip(paths, (RULES, POIS)):
        with open(path, "w") as f:
            f.write(text)
    return paths


def hmi(path, line):
    """Sends line on the agent's HMI socket; returns what came back up to
    the OK/ERR answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(10)
        c.connect(path)
        c.sendall((line + "\n").encode())
        got = b""
        while b"\nOK " not in got and b"\nERR " not in got:
            chunk = c.recv(4096)
            if not chunk:
                break
            got += chunk
        return got.decode()


def offer_of(s):
    items = s.ctl("offer", "list", "--vin", VIN_A)["items"]
    assert len(items) == 1, items
    return items[0]


def test():
    with System("lifecycle") as s:
        s.make_pki(VIN_A)
        s.start_broker()
        s.start_gpsfake()
        rules, pois = partner_station_files(s)
        s.start_gateway(promo_rules_file=rules)
        s.ctl("poi", "import", pois, json_out=False)
        # Parked (so the card may be shown at once), the tank below 15 %.
        rows = [(0, "5000.000", "22.0", "0"), (2, "5000.000", "14.0", "0"),
                (4, "5000.000", "13.5", "0"), (6, "5000.000", "13.0", "0")]
        signals = s.write_signals("signals.csv", rows)
        s.start_agent(VIN_A, signals, batch_max_samples="1", batch_max_age_ms="1000")
        card = wait_for(lambda: read_card(s.path("agent-state", "screen.txt")), 30,
                        "an offer on the car's screen")

        # delivered and shown come back from the car
        wait_for(lambda: {"delivered", "shown"} <= set(offer_of(s)["times"]), 15,
                 "the car's DELIVERED and SHOWN events")
        offer = offer_of(s)
        assert offer["id"] == card["offer_id"] and offer["state"] == "shown", offer
        rule_name = offer["rule"]
        assert rule_name == "partner_fuel" and "Aral Test" in offer["title"], offer
        # created in the issuing transaction, sent when the broker acknowledged it
        assert offer["times"]["created"] == offer["created_at"], offer
        wait_for(lambda: "sent" in offer_of(s)["times"], 15, "the offer marked sent")
        offer = offer_of(s)
        assert offer["times"]["sent"] >= offer["created_at"], offer
        code = offer["promo_code"]
        assert code, offer

        # the driver accepts on the HMI socket
        answer = hmi(s.path("agent-state", "hmi.sock"), "ACCEPT " + offer["id"])
        assert "OK ACCEPT " + offer["id"] in answer, answer
        wait_for(lambda: offer_of(s)["state"] == "accepted", 15, "the offer accepted")

        # a partner's till: a partner user with an API token
        s.ctl("user", "add", "till-1", "--role", "partner")
        token = s.ctl("user", "token", "till-1", "--label", "till")["token"]
        status, body, _ = s.api("POST", "/api/v1/offers/redeem", {"code": code}, token=token)
        assert status == 200, (status, body)
        assert body["offer_id"] == offer["id"] and body["rule"] == offer["rule"], body
        assert "vin" not in body, body  # a partner sees no vehicle
        status, again, _ = s.api("POST", "/api/v1/offers/redeem", {"code": code}, token=token)
        assert status == 409 and "already redeemed" in again["error"]["message"], again
        status, unknown, _ = s.api("POST", "/api/v1/offers/redeem", {"code": "NO-SUCH"},
                                   token=token)
        assert status == 404, (status, unknown)
        # ... and nothing else
        for method, path in (("GET", "/api/v1/vehicles"), ("GET", "/api/v1/offers/stats"),
                             ("GET", "/api/v1/offers?vin=" + VIN_A),
                             ("GET", "/api/v1/users")):
            status, denied, _ = s.api(method, path, token=token)
            assert status == 403 and "partner" in denied["error"]["message"], \
                (path, status, denied)
        # but it may say who it is (and log out)
        status, me, _ = s.api("GET", "/api/v1/me", token=token)
        assert status == 200 and me["role"] == "partner", (status, me)
        audit = s.ctl("audit", "--action", "offer.redeem")["items"]
        assert [a["actor"] for a in audit] == ["till-1"], audit

        # the statistics count it; pitstopctl redeems too (and is refused the same)
        spec = openapi_shapes.load(SOURCE_DIR)  # pitstopctl --json prints the API's answer
        stats = spec.check("GET", "/api/v1/offers/stats", 200, s.ctl("offer", "stats"))
        rule = [r for r in stats["items"] if r["rule"] == rule_name]
        assert len(rule) == 1, stats
        fig = rule[0]
        assert (fig["created"], fig["sent"], fig["delivered"], fig["shown"], fig["accepted"],
                fig["redeemed"]) == (1, 1, 1, 1, 1, 1), fig
        assert fig["conversion_rate"] == 1.0 and fig["acceptance_rate"] == 1.0, fig
        assert stats["total"]["redeemed"] == 1, stats
        # ... for its station too, named by the poi domain
        by_station = spec.check("GET", "/api/v1/offers/stats", 200,
                                s.ctl("offer", "stats", "--by", "station"))
        assert "total" not in by_station, by_station
        assert [(x["rule"], x["poi_id"], x["poi_name"]) for x in by_station["items"]] == \
            [("partner_fuel", "st-1", "Aral Test")], by_station
        fig = by_station["items"][0]
        assert (fig["created"], fig["sent"], fig["shown"], fig["accepted"], fig["redeemed"]) == \
            (1, 1, 1, 1, 1), fig
        assert fig["conversion_rate"] == 1.0, fig
        r = s.ctl("offer", "stats", "--by", "station", json_out=False)
        assert r.returncode == 0 and "Aral Test" in r.stdout, (r.returncode, r.stdout)
        r = s.ctl("offer", "stats", "--by", "fleet", check=False, json_out=False)
        assert r.returncode == 1 and "expected rule (the default) or station" in r.stderr, \
            (r.returncode, r.stderr)
        r = s.ctl("offer", "redeem", code, check=False, json_out=False)
        assert r.returncode == 1 and "already redeemed" in r.stderr, (r.returncode, r.stderr)

        offer = offer_of(s)
        assert offer["state"] == "redeemed", offer
        assert set(offer["times"]) == {"created", "sent", "delivered", "shown", "accepted",
                                       "redeemed"}, offer
        assert offer["times"]["redeemed"] == offer["state_at"], offer


if __name__ == "__main__":
    run(test)
