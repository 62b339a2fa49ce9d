#!/usr/bin/env python3
"""Promotion rules through pitstopctl and the API (issue 11, docs/promotions.md),
with a real gateway and no car: `promo check` validates a file offline (exit 1
with FILE:LINE errors), `promo rules` shows what the gateway loaded, SIGHUP
re-reads the file (an invalid edit keeps the running rules and logs every
error with its line, a valid one takes effect), `vehicle set` writes a
profile (an unknown time zone is refused, the write is audited) and `promo
suppressed` lists nothing for a car that got nothing yet."""
import os
import signal
import subprocess

from harness import CTL, SOURCE_DIR, VIN_A, System, run, wait_for


def test():
    example = os.path.join(SOURCE_DIR, "packaging", "promotions.rules")
    with System("promo-ctl") as s:
        r = subprocess.run([CTL, "promo", "check", example], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 0 and "4 rules, valid" in r.stdout, (r.stdout, r.stderr)
        bad = s.path("bad.rules")
        with open(bad, "w") as f:
            f.write("[rule a]\ntrigger = fuel_below 15\ntitle = {stationn}\nbody = b\ncolour = 1\n")
        r = subprocess.run([CTL, "promo", "check", bad], capture_output=True, text=True, timeout=10)
        assert r.returncode == 1, r
        assert "bad.rules:3: title: unknown placeholder {stationn}" in r.stderr, r.stderr
        assert "bad.rules:5: unknown key colour" in r.stderr, r.stderr

        s.make_pki(VIN_A)
        s.start_broker()
        rules = s.path("promotions.rules")
        with open(example) as src, open(rules, "w") as f:
            f.write(src.read())
        gw = s.start_gateway(promo_rules_file=rules)
        got = s.ctl("promo", "rules")
        assert got["file"] == rules, got
        assert [x["name"] for x in got["items"]] == [
            "partner_fuel", "wash_after_trip", "dealer_service", "charger_welcome"], got
        assert got["limits"]["quiet_hours"] == "21:30-07:00", got

        # an invalid edit: the running rules stay, each error logged with its line
        with open(rules, "a") as f:
            f.write("[rule extra]\nbogus = 1\n")
        os.kill(gw.p.pid, signal.SIGHUP)
        wait_for(lambda: "reload failed" in gw.text(), 10, "the failed reload")
        assert "promotions.rules:67: unknown key bogus" in gw.text(), gw.text()[-2000:]
        assert len(s.ctl("promo", "rules")["items"]) == 4
        # a valid one takes effect
        with open(rules, "w") as f:
            f.write("[limits]\nper_day = 1\n[rule only]\ntrigger = fuel_below 10\n"
                    "title = t\nbody = {code}\n")
        os.kill(gw.p.pid, signal.SIGHUP)
        wait_for(lambda: [x["name"] for x in s.ctl("promo", "rules")["items"]] == ["only"],
                 10, "the reloaded rules")

        prof = s.ctl("vehicle", "set", VIN_A, "--make", "Audi", "--time-zone", "Asia/Tokyo",
                     "--offers", "off")
        assert prof["make"] == "Audi" and prof["time_zone"] == "Asia/Tokyo", prof
        assert prof["offers_opt_out"] is True, prof
        prof = s.ctl("vehicle", "set", VIN_A, "--model", "A4")  # the others stay
        assert prof["make"] == "Audi" and prof["model"] == "A4" and prof["offers_opt_out"], prof
        r = s.ctl("vehicle", "set", VIN_A, "--time-zone", "Mars/Base", check=False,
                  json_out=False)
        assert r.returncode == 1 and "time_zone: Mars/Base" in r.stderr, r.stderr
        audit = s.ctl("audit", json_out=False).stdout
        assert audit.count("vehicle.profile") == 2, audit
        assert s.ctl("promo", "suppressed", "--vin", VIN_A) == []


if __name__ == "__main__":
    run(test)
