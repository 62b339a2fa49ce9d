#!/usr/bin/env python3
"""Service history and prediction through pitstopctl against a real gateway
(issue 10): odometer readings and past services imported from CSV (a bad
file is refused with FILE:LINE errors and stores nothing; a file of more
than one chunk shows progress and lands whole), a service recorded and an
override set through the API, then `service predict` (now and --as-of a
date before the visit: the visit is not known then) and `service due`.
Every write is in the audit trail."""
import datetime
import os
import subprocess
import sys
import time

from harness import PG_BIN, SOURCE_DIR, System, run

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "api"))
import openapi_shapes  # noqa: E402

A = "WVWZZZ1KZAW000001"  # volkswagen by its WMI
B = "XTA21099012345678"  # only in the bad file


def day(offset):
    return (datetime.date.today() + datetime.timedelta(days=offset)).isoformat()


def write(s, name, text):
    path = s.path(name)
    with open(path, "w") as f:
        f.write(text)
    return path


def sql(s, statements):
    """Runs statements on the gateway's database, as ingest would write."""
    if s.db_backend == "sqlite":
        import sqlite3
        db = sqlite3.connect(s.db_url())
        for q in statements:
            db.execute(q)
        db.commit()
        db.close()
    else:
        r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                            "-d", s.db_url(), "-c", ";".join(statements)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr


def ctl_fails(s, *args):
    r = s.ctl(*args, check=False, json_out=False)
    assert r.returncode == 1, (args, r.returncode, r.stdout, r.stderr)
    return r.stderr


def test_all():
    with System("service") as s:
        s.make_pki()
        s.start_broker()
        s.start_gateway(service_plans_file=os.path.join(SOURCE_DIR, "gateway", "service",
                                                        "plans.json"))

        # A bad file: every bad line named, nothing stored (not even its good lines).
        bad = write(s, "bad.csv", "vin,time,odometer_km\n"
                    "%s,%s,1000\n" % (B, day(-50)) +
                    "%s,yesterday,1200\n" % B +
                    "%s,%s,-5\n" % (B, day(-40)))
        err = ctl_fails(s, "telemetry", "import", bad)
        assert bad + ":3: time:" in err and bad + ":4: odometer_km:" in err, err
        assert ":2:" not in err and "nothing imported" in err, err
        assert "nothing known" in ctl_fails(s, "service", "predict", B)

        # Odometer history from another system: monthly, about 1,000 km a month.
        odo = "vin,time,odometer_km\n" + "".join(
            "%s,%sT09:30:00Z,%d\n" % (A, day(-30 * k), 60000 - 1000 * k) for k in range(12, 0, -1))
        r = s.ctl("telemetry", "import", write(s, "odo.csv", odo), json_out=False)
        assert "12 rows imported" in r.stdout, r.stdout

        # More than one chunk (10,000 rows or 160 KiB): progress on stderr, all of it lands.
        big = "vin,time,odometer_km\n" + "".join(
            "XTA2109901%07d,%s,%d\n" % (i // 100, day(-(i % 100) - 1), 50000 - (i % 100) * 30)
            for i in range(10001))
        r = s.ctl("telemetry", "import", write(s, "big.csv", big), json_out=False)
        assert "10001/10001 rows sent" in r.stderr and "10001 rows imported" in r.stdout, r

        # Past services from a dealer system, then one recorded now.
        svc = write(s, "services.csv", "vin,date,odometer_km,items\n"
                    "%s,%s,49500,oil_service;inspection\n" % (A, day(-330)) +
                    "%s,%s,,brake_fluid\n" % (A, day(-700)))
        r = s.ctl("service", "import", svc, json_out=False)
        assert "2 rows imported" in r.stdout, r.stdout
        s.ctl("service", "record", A, "--date", day(-20), "--odometer-km", "59400",
              "--items", "oil_service;brake_fluid", "--cost", "249.90",
              "--workshop", "Garage Nord", "--advisories", "front pads at 4 mm")
        s.ctl("service", "override", A, "inspection", "--every-months", "12")
        assert "expected --every-km" in s.ctl("service", "override", A, "oil_service",
                                              "--every-kms", "5", check=False,
                                              json_out=False).stderr

        p = s.ctl("service", "predict", A)
        items = {i["item"]: i for i in p["items"]}
        assert p["plan"]["make"] == "volkswagen", p["plan"]
        assert set(items) == {"oil_service", "inspection", "brake_fluid", "timing_belt"}, items
        for it in items.values():
            assert it["reason"] in ("distance", "time"), it
            assert it["range"]["from"] <= it["due_date"] <= it["range"]["to"], it
            assert it["basis"] in ("telemetry", "service_history", "fleet_average"), it
        oil = items["oil_service"]
        assert oil["last_service"] == {"date": day(-20), "odometer_km": 59400}, oil
        assert oil["due_odometer_km"] == 59400 + 30000, oil
        assert items["inspection"]["interval"]["every_months"] == 12, items["inspection"]
        assert items["inspection"]["interval"]["overridden"] is True
        assert items["inspection"]["last_service"]["date"] == day(-330)
        assert p["usage"]["readings"] >= 12, p["usage"]
        assert p["next_service"]["item"] in items

        # As known 100 days ago: the visit of 20 days ago did not count yet.
        then = s.ctl("service", "predict", A, "--as-of", day(-100))
        oil_then = {i["item"]: i for i in then["items"]}["oil_service"]
        assert oil_then["last_service"]["date"] == day(-330), oil_then
        assert then["as_of"] == day(-100)

        # Due: the inspection (every 12 months since 330 days ago) is due within 60 days.
        due = s.ctl("service", "due", "--within-days", "60")
        mine = [d for d in due["items"] if d["vin"] == A]
        assert any(d["item"] == "inspection" for d in mine), due["items"][:5]
        assert not due["truncated"]

        # The API says the same (as docs/openapi.yaml describes), and every
        # write is in the audit trail.
        spec = openapi_shapes.load(SOURCE_DIR)
        st, body = s.api_local("GET", "/api/v1/vehicles/%s/service-prediction" % A)
        assert st == 200 and body["items"] == p["items"], (st, body)
        spec.check("GET", "/vehicles/{vin}/service-prediction", st, body)
        st, body = s.api_local("GET", "/api/v1/service/due?as_of=%s&within_days=60" % day(0))
        spec.check("GET", "/service/due", st, body)
        assert body["items"] == due["items"], (body, due)
        st, body = s.api_local("GET", "/api/v1/vehicles/%s/services" % A)
        spec.check("GET", "/vehicles/{vin}/services", st, body)
        assert st == 200 and [r["source"] for r in body["items"]] == ["api", "import", "import"]
        assert body["items"][0]["advisories"] == "front pads at 4 mm"
        assert body["items"][0]["cost"] == 249.9
        # A car the gateway knows: next_service in vehicle show and the API,
        # with the car's own daily rollups (the last two days) among the readings.
        now = int(time.time() * 1000)
        today = now // 86400000
        sql(s, ["INSERT INTO vehicle_state(vin, created_ms, time_ms, fix, odometer_m, odometer_ms)"
                " VALUES('%s', 1, %d, 3, 59900000, %d)" % (A, now, now)] +
            ["INSERT INTO telemetry_daily(vin, day, samples, first_odo_ms, first_odometer_m,"
             " last_odo_ms, last_odometer_m, driving_ms, fuel_refuelled_permille) VALUES"
             "('%s', %d, 10, %d, %d, %d, %d, 600000, 0)"
             % (A, today - k, (today - k) * 86400000, 59900000 - 40000 * k - 30000,
                (today - k) * 86400000 + 3600000, 59900000 - 40000 * k) for k in (1, 0)])
        shown = s.ctl("vehicle", "show", A)
        now_p = s.ctl("service", "predict", A)
        assert now_p["usage"]["readings"] == p["usage"]["readings"] + 2, now_p["usage"]
        assert shown["next_service"] == now_p["next_service"], (shown, now_p)
        st, body = s.api_local("GET", "/api/v1/vehicles/%s" % A)
        spec.check("GET", "/vehicles/{vin}", st, body)
        assert body["next_service"] == now_p["next_service"], body

        audit = [a["action"] for a in s.ctl("audit", "--limit", "50")["items"]]
        for action in ("service.record", "service.override", "service.import"):
            assert action in audit, audit
        assert audit.count("service.import") == 3, audit  # the bad file never began


if __name__ == "__main__":
    run(test_all)
