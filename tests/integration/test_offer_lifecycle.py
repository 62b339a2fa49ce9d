#!/usr/bin/env python3
"""The offer lifecycle (docs/offers.md) end to end: the low-fuel rule issues
an offer (sent); the agent reports it delivered (verified and stored) and
shown; the driver accepts it on the HMI socket; a partner's till redeems its
code over the API with a partner token (once: a second redemption is 409,
an unknown code 404), and the partner may do nothing else (403 on the
vehicle list); `pitstopctl offer stats --json` counts each stage and the
redemption, and `offer list --vin --json` shows the states with their times."""
import socket

from harness import VIN_A, System, read_card, run, wait_for


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
        s.start_gateway(low_fuel_pct="15")
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
        rule_name = offer["rule"] or "(none)"  # the statistics' name of its rule
        assert offer["times"]["sent"] == offer["created_at"], offer
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
        stats = s.ctl("offer", "stats")
        rule = [r for r in stats["items"] if r["rule"] == rule_name]
        assert len(rule) == 1, stats
        fig = rule[0]
        assert (fig["sent"], fig["delivered"], fig["shown"], fig["accepted"],
                fig["redeemed"]) == (1, 1, 1, 1, 1), fig
        assert fig["conversion_rate"] == 1.0 and fig["acceptance_rate"] == 1.0, fig
        assert stats["total"]["redeemed"] == 1, stats
        r = s.ctl("offer", "redeem", code, check=False, json_out=False)
        assert r.returncode == 1 and "already redeemed" in r.stderr, (r.returncode, r.stderr)

        offer = offer_of(s)
        assert offer["state"] == "redeemed", offer
        assert set(offer["times"]) == {"sent", "delivered", "shown", "accepted", "redeemed"}, \
            offer
        assert offer["times"]["redeemed"] == offer["state_at"], offer


if __name__ == "__main__":
    run(test)
