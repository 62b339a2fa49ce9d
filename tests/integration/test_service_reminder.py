#!/usr/bin/env python3
"""Service reminders (issue 10 item 6) end to end: two gateway instances on
one database run the reminder job every second (PITSTOP_REMINDERS_PERIOD_MS);
a car drives, then parks, while its oil service falls due in 20 days (a
service recorded 23 months and 10 days ago, every 24 months). Its first
reminder appears on the agent's screen, signed, naming the dealer and a
voucher code, and `pitstopctl task list` (and GET /api/v1/tasks) has
exactly one CRM task. More runs later, and after both instances stopped and
one started again, still exactly one offer and one task."""
import datetime
import os
import subprocess
import sys
import time

from harness import PG_BIN, SOURCE_DIR, VIN_A, System, read_card, run, wait_for

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "api"))
import openapi_shapes  # noqa: E402

PLANS = os.path.join(SOURCE_DIR, "gateway", "service", "plans.json")


def months_ago(months, plus_days):
    """The day `months` calendar months before today + plus_days."""
    d = datetime.date.today() + datetime.timedelta(days=plus_days)
    y, m = divmod(d.month - 1 - months, 12)
    return d.replace(year=d.year + y, month=m + 1, day=min(d.day, 28)).isoformat()


def lease_expiry_ms(s):
    """The reminder job's lease expiry: every run renews it in its transaction."""
    q = "SELECT expires_ms FROM job_leases WHERE name = 'service_reminders'"
    if s.db_backend == "sqlite":
        import sqlite3
        db = sqlite3.connect(s.db_url())
        row = db.execute(q).fetchone()
        db.close()
        return row[0] if row else 0
    r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-A", "-t", "-d", s.db_url(),
                        "-c", q], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip() or 0)


def test():
    with System("reminder") as s:
        s.make_pki(VIN_A)
        s.start_broker()
        os.environ["PITSTOP_REMINDERS_PERIOD_MS"] = "1000"
        try:
            conf = dict(service_plans_file=PLANS, service_dealer_name="Autohaus Sonnenschein")
            s.start_gateway(**conf)
            s.start_gateway(name="gateway-2", **conf)
        finally:
            del os.environ["PITSTOP_REMINDERS_PERIOD_MS"]

        # Drive a little, then park: offers are shown at standstill. The car
        # connects first: the job runs every second from the service history
        # alone, and an offer published before a car's first connection has
        # no session at the broker to wait in.
        rows = [(t, "%.3f" % (5000 + 0.01 * min(t, 6)), "60.0", "40" if t < 6 else "0")
                for t in range(0, 40, 2)]
        agent = s.start_agent(VIN_A, s.write_signals("signals.csv", rows),
                              batch_max_samples="1", batch_max_age_ms="1000")
        screen = s.path("agent-state", "screen.txt")
        wait_for(lambda: "connected to the broker" in agent.text(), 20, "the car connected")

        # Everything serviced 24 months before 20 days from now; only the oil
        # service has a 24-month interval here, the rest are years away (the
        # intervals first, so that no run sees the history with the defaults).
        s.ctl("service", "override", VIN_A, "oil_service", "--every-months", "24",
              json_out=False)
        for item in ("inspection", "brake_fluid"):
            s.ctl("service", "override", VIN_A, item, "--every-months", "48", json_out=False)
        done = months_ago(24, 20)
        s.ctl("service", "record", VIN_A, "--date", done, "--odometer-km", "4000",
              "--items", "oil_service;inspection;brake_fluid;timing_belt", json_out=False)

        card = wait_for(lambda: (lambda c: c if c and c.get("kind") == "service" else None)(
            read_card(screen)), 30, "the service reminder on the car's screen")
        assert card["title"] == "Service due: oil service", card
        assert "Book your service at Autohaus Sonnenschein" in card.get("body", ""), card
        assert card["promo_code"].startswith("SVC-") and len(card["promo_code"]) == 10, card

        tasks = s.ctl("task", "list")
        assert len(tasks["tasks"]) == 1 and not tasks["truncated"], tasks
        task = tasks["tasks"][0]
        assert (task["vin"], task["kind"], task["item"], task["stage"], task["state"]) == \
            (VIN_A, "service_call", "oil_service", "first", "open"), task
        st, body = s.api_local("GET", "/api/v1/tasks")
        openapi_shapes.load(SOURCE_DIR).check("GET", "/tasks", st, body)
        assert body == tasks, (body, tasks)
        offers = s.ctl("vehicle", "offers", VIN_A)
        assert [(o["id"], o["kind"]) for o in offers] == [(card["offer_id"], "service")], offers

        # More runs (the lease holder's, one a second) and a restart of both
        # instances: nothing new.
        time.sleep(3)
        s.stop("gateway-2")
        s.stop("gateway")
        restarted_ms = time.time() * 1000
        os.environ["PITSTOP_REMINDERS_PERIOD_MS"] = "1000"
        try:
            s.start_gateway(**conf)
        finally:
            del os.environ["PITSTOP_REMINDERS_PERIOD_MS"]
        # a run after the restart renewed the lease (until now + 2 periods)
        wait_for(lambda: lease_expiry_ms(s) > restarted_ms + 2000, 15,
                 "a reminder run after the restart")
        time.sleep(1)
        assert len(s.ctl("task", "list")["tasks"]) == 1, s.ctl("task", "list")
        offers = s.ctl("vehicle", "offers", VIN_A)
        assert len(offers) == 1, offers


if __name__ == "__main__":
    run(test)
