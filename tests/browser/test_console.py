#!/usr/bin/env python3
"""The web console in a real browser (Debian's chromium, driven over CDP by
cdp.py) against a real gateway on loopback with seeded data: two fleets
(alpha: VIN_A, beta: VIN_B), two cars driving (real agents, gpsfake), an
operator, a fleet manager per fleet and a service advisor.

Checks, each as the user sees it:
  - a wrong password is refused on the login form; logging in works by
    keyboard alone (type, Tab, type, Enter), and a vehicle opens by Enter on
    its link;
  - the operator sees both cars in the table and on the map, the fleet
    filter narrows the table, the vehicle page shows the car's state, the
    daily charts, the trips and the offers the API has, and the page follows
    the car live (the odometer shown changes with no reload);
  - a fleet manager sees only their fleet's car: not in the table, not on
    the map, not in the page's text; typing the other car's URL shows "not
    found" and none of its data; the API answers 404 for it (by cookie and by
    Bearer token, on every vehicle endpoint) and the live stream carries
    none of its events;
  - the campaigns page shows one card per rule with the funnel the API
    counts (a redeemed code among it) and, under it, the rule's stations as
    the API counts them per station (the redeemed one's among them); a
    fleet manager has no such page;
  - the service advisor gets the empty state and no vehicle data from the API;
  - logging out ends the session (the cookie no longer works);
  - every page ran without a script error or a Content-Security-Policy
    violation and asked nothing of any host but the gateway.
Screenshots go to <build>/test-artifacts/browser/<db backend>/ and stay.
"""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

from harness import (BUILD_DIR, CTL, DATA_DIR, SOURCE_DIR, VIN_A, VIN_B, System, run,  # noqa: E402
                     wait_for)
from cdp import CHROMIUM, Browser  # noqa: E402
from test_offer_lifecycle import partner_station_files  # noqa: E402  (a station on the route)

PASSWORD = "correct horse battery staple"
USERS = {  # name: (role, fleet)
    "olga": ("operator", None),
    "anna": ("fleet_manager", "alpha"),
    "bert": ("fleet_manager", "beta"),
    "sam": ("service_advisor", None),
}
LAPTOP = dict(width=1280, height=800)
TABLET = dict(width=820, height=1180, mobile=True, scale=2)


class Api:
    """The HTTP API as a script uses it: the harness's requests with the
    Bearer token of one login."""

    def __init__(self, system):
        self.s = system
        self.token = None

    def call(self, method, path, body=None, token=None):
        return self.s.api(method, path, body, token=token or self.token)

    def login(self, name):
        self.token = self.s.login(name, PASSWORD)

    def get(self, path):
        st, body, _ = self.call("GET", path)
        assert st == 200, "GET %s: %s %r" % (path, st, body)
        return body


def seed(s):
    """Fleets, assignments and users, with pitstopctl as an operator would."""
    def ctl(*args, stdin=None):
        argv = [CTL, "--config", s.gateway_conf] + list(args)
        r = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, "%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stderr)
    ctl("fleet", "add", "alpha")
    ctl("fleet", "add", "beta")
    ctl("fleet", "assign", "alpha", VIN_A)
    ctl("fleet", "assign", "beta", VIN_B)
    for name, (role, fleet) in USERS.items():
        ctl("user", "add", name, "--role", role, *(["--fleet", fleet] if fleet else []),
            "--password-stdin", stdin=PASSWORD + "\n")


class Shots:
    def __init__(self, backend):
        self.dir = os.path.join(BUILD_DIR, "test-artifacts", "browser", backend)
        os.makedirs(self.dir, exist_ok=True)
        for f in os.listdir(self.dir):  # this run's pictures only
            if f.endswith(".png"):
                os.unlink(os.path.join(self.dir, f))
        self.n = 0

    def take(self, page, name, full=False):
        self.n += 1
        path = os.path.join(self.dir, "%02d-%s.png" % (self.n, name))
        page.screenshot(path, full=full)
        return path


def assert_clean(page, base, what):
    page.b.pump(0.2)
    assert not page.exceptions, "%s: script errors: %r" % (what, page.exceptions)
    assert not page.console_errors, "%s: console errors: %r" % (what, page.console_errors)
    foreign = page.foreign_requests(base)
    assert not foreign, "%s: requests to other hosts: %r" % (what, foreign)


def login(page, base, name, path="/#/fleet"):
    """Logs in with the keyboard alone: user name, Tab, password, Enter."""
    page.goto(base + path)
    page.wait_selector("#username")
    page.type("#username", name)
    page.press("Tab")
    assert page.active() == "input#password", "Tab from the user name went to %s" % page.active()
    page.send("Input.insertText", {"text": PASSWORD})
    page.press("Enter")
    page.wait("document.getElementById('who-name') && "
              "document.getElementById('who-name').textContent === %s" % page.js(name),
              20, "%s logged in" % name)


def fleet_rows(page, count):
    page.wait("document.querySelectorAll('#fleet-rows tr[data-vin]').length === %d" % count,
              15, "%d rows in the fleet table" % count)
    return page.eval("Array.from(document.querySelectorAll('#fleet-rows tr[data-vin]'), "
                     "r => r.dataset.vin).sort()")


def map_markers(page, sel, count):
    return page.wait("document.querySelectorAll('%s path.leaflet-interactive').length === %d"
                     % (sel, count), 15, "%d markers on %s" % (count, sel))


def operator(b, base, api, shots):
    p = b.new_page(**LAPTOP)
    # A wrong password stays on the form with a message.
    p.goto(base + "/")
    p.wait_selector("#username")
    p.type("#username", "olga")
    p.type("#password", "not the password")
    p.press("Enter")
    p.wait("document.getElementById('login-error').textContent.length > 0", 15, "a login error")
    assert "#/login" in p.url(), p.url()
    shots.take(p, "login-refused")

    login(p, base, "olga")
    assert "operator" in p.text("#who"), p.text("#who")
    assert fleet_rows(p, 2) == sorted([VIN_A, VIN_B])
    map_markers(p, "#fleet-map", 2)
    for vin in (VIN_A, VIN_B):
        fuel = p.text("#fleet-rows tr[data-vin='%s'] td:nth-of-type(3)" % vin)
        odo = p.text("#fleet-rows tr[data-vin='%s'] td:nth-of-type(4)" % vin)
        assert re.fullmatch(r"\d+\.\d\u00a0%", fuel), "fuel of %s shown as %r" % (vin, fuel)
        assert re.fullmatch(r"[\d,]+\.\d\u00a0km", odo), "odometer of %s shown as %r" % (vin, odo)
        assert p.text("#fleet-rows tr[data-vin='%s'] .badge" % vin) == "online"
    p.wait_selector("#filter-fleet")  # two fleets: the fleet filter is offered
    shots.take(p, "operator-fleet")

    # The fleet filter goes to the API and into the URL.
    p.eval("(s => { s.value = 'beta'; s.dispatchEvent(new Event('change', {bubbles: true})); })"
           "(document.getElementById('filter-fleet'))")
    assert fleet_rows(p, 1) == [VIN_B]
    assert "fleet=beta" in p.url(), p.url()
    # Live events keep the filtered table right (VIN_B stays, VIN_A stays out).
    p.eval("window.__live = []; Pitstop.api.live.subscribe(v => window.__live.push(v.vin))")
    p.wait("window.__live.includes(%s) && window.__live.includes(%s)" % (p.js(VIN_A), p.js(VIN_B)),
           30, "live events of both cars")
    p.b.pump(0.5)  # the table redraws 250 ms after an event
    assert fleet_rows(p, 1) == [VIN_B]
    shots.take(p, "operator-fleet-beta")
    p.click("#filter-reset")
    fleet_rows(p, 2)

    # Open VIN_A by keyboard: focus its link, Enter.
    p.focus("#fleet-rows tr[data-vin='%s'] a" % VIN_A)
    p.press("Enter")
    p.wait_selector("#vehicle-facts")
    assert p.url().endswith("#/vehicle/" + VIN_A), p.url()
    assert p.active() == "h1#vehicle-title", "focus after opening: %s" % p.active()
    assert p.text("#fact-fleet dd") == "alpha"

    trips = api.get("/api/v1/vehicles/%s/trips?limit=10" % VIN_A)["items"]
    if trips:
        p.wait("document.querySelectorAll('#trip-list button.trip').length === %d" % len(trips),
               15, "%d trips listed" % len(trips))
        p.wait("document.querySelectorAll('#vehicle-map path.leaflet-interactive').length >= %d"
               % (len(trips) + 1), 15, "the trips and the car on the map")
        p.click("#trip-list button.trip")
        assert p.eval("document.querySelector('#trip-list button.trip').getAttribute('aria-pressed')") == "true"
    else:
        p.wait("document.querySelector('#vehicle-trips .empty')", 15, "the no-trips note")
    p.wait_selector("#chart-odometer")  # today's rollup exists: the cars drive now
    p.wait_selector("#chart-fuel")
    days = p.eval("document.querySelectorAll('#days-table tbody tr').length")
    assert days >= 1, "no day in the daily table"
    offers = api.get("/api/v1/vehicles/%s/offers" % VIN_A)["items"]
    assert offers, "VIN_A's fuel fell below 15 %%: the gateway should have sent an offer"
    p.wait("document.querySelectorAll('#offers-table tbody tr').length === %d" % len(offers),
           15, "%d offers listed" % len(offers))
    first = p.text("#offers-table tbody tr th")
    assert first == (offers[0]["title"] or offers[0]["kind"]), (first, offers[0])
    shown_codes = p.texts("#offers-table tbody code")
    assert sorted(shown_codes) == sorted(o["promo_code"] for o in offers), shown_codes

    # Live: the car keeps driving; its odometer changes on the page while
    # the page stays (a reload would drop the mark).
    p.eval("window.__pitstop_mark = 1")
    before = p.text("#fact-odometer dd")
    p.wait("document.querySelector('#fact-odometer dd').textContent !== %s" % p.js(before),
           40, "the odometer shown (%s) to change by the live stream" % before)
    assert p.eval("window.__pitstop_mark") == 1, "the page was reloaded"
    assert p.text("#fact-fleet dd") == "alpha", "fleet after a live update: %r" % p.text("#fact-fleet dd")
    assert p.text("#live") == "live", p.text("#live")
    shots.take(p, "operator-vehicle", full=True)
    # The next service (the gateway's prediction, service_plans_file set).
    ns = api.get("/api/v1/vehicles/%s" % VIN_A).get("next_service")
    fact = p.text("#fact-service dd")
    if ns:
        assert ns["due_date"] in fact and ns["item"].replace("_", " ") in fact, (fact, ns)
    else:
        assert fact == "not predicted", fact
    # The fleet's service-due list: what the API says, row for row.
    p.goto(base + "/#/service?within=365")
    p.wait("!!(document.getElementById('service-table') || document.getElementById('service-empty')"
           " || document.querySelector('#service-status .notice'))", 15, "the service-due list")
    assert not p.exists("#service-status .notice-error"), p.text("#service-status")
    due = api.get("/api/v1/service/due?within_days=365")["items"]
    rows = p.eval("Array.from(document.querySelectorAll('#service-rows tr'))"
                  ".map(function (r) { return r.dataset.vin + ' ' + r.dataset.item; })") or []
    assert sorted(rows) == sorted("%s %s" % (x["vin"], x["item"]) for x in due), (rows, due)
    assert p.eval("document.getElementById('nav-service').getAttribute('aria-current')") == "page"
    shots.take(p, "operator-service-due", full=True)
    # Campaigns: one card per rule, its funnel as the API counts it, after
    # the refuel offer's code was redeemed at a till (here the operator).
    code = api.get("/api/v1/vehicles/%s/offers" % VIN_A)["items"][-1]["promo_code"]
    st, red, _ = api.call("POST", "/api/v1/offers/redeem", {"code": code})
    assert st == 200, (st, red)
    p.click("#nav-campaigns")
    p.wait("!!(document.getElementById('campaign-cards') || "
           "document.querySelector('#campaigns-status .notice'))", 15, "the campaign cards")
    stats = api.get("/api/v1/offers/stats")
    cards = p.eval("Array.from(document.querySelectorAll('#campaign-cards .campaign-card'))"
                   ".map(function (c) { var o = {rule: c.dataset.rule}; "
                   "c.querySelectorAll('.fact').forEach(function (f) { "
                   "o[f.dataset.stage] = f.querySelector('dd').textContent; }); return o; })")
    assert [c["rule"] for c in cards] == [x["rule"] for x in stats["items"]], (cards, stats)
    for c, x in zip(cards, stats["items"]):
        for k in ("created", "sent", "delivered", "shown", "accepted", "redeemed", "dismissed",
                  "expired"):
            assert c[k].replace(",", "") == str(x[k]), (k, c, x)
        assert c["conversion_rate"] == "%.1f %%" % (x["conversion_rate"] * 100), (c, x)
    assert sum(x["redeemed"] for x in stats["items"]) >= 1, stats
    # Under each card its stations, as the API counts them per station (top 10 by sent).
    by_station = api.get("/api/v1/offers/stats?by=station")["items"]
    tables = p.eval("Array.from(document.querySelectorAll('#campaign-cards .campaign-card'))"
                    ".map(function (c) { return Array.from(c.querySelectorAll("
                    "'table.campaign-stations tbody tr')).map(function (r) { "
                    "var o = {poi: r.dataset.poi, name: r.querySelector('th').textContent}; "
                    "r.querySelectorAll('td').forEach(function (d) { "
                    "o[d.dataset.stage] = d.textContent; }); return o; }); })")
    for c, rows in zip(cards, tables):
        want = [x for x in by_station if x["rule"] == c["rule"]][:10]
        assert [r["poi"] for r in rows] == [x["poi_id"] for x in want], (c["rule"], rows, want)
        for r, x in zip(rows, want):
            assert r["name"] == (x["poi_name"] or x["poi_id"]), (r, x)
            for k in ("sent", "shown", "accepted", "redeemed"):
                assert r[k].replace(",", "") == str(x[k]), (k, r, x)
            assert r["conversion_rate"] == "%.1f %%" % (x["conversion_rate"] * 100), (r, x)
    assert any(r["name"] == "Aral Test" and r["redeemed"] == "1" for rows in tables
               for r in rows), tables
    assert p.eval("document.querySelectorAll('#campaign-cards canvas').length") == len(cards)
    assert p.eval("document.getElementById('nav-campaigns').getAttribute('aria-current')") == "page"
    shots.take(p, "operator-campaigns", full=True)
    assert_clean(p, base, "operator")

    # Logging out ends the session: back to the login form, the cookie is dead.
    p.click("#logout")
    p.wait_selector("#username")
    st = p.fetch("/api/v1/me")[0]
    assert st == 401, "after logout /api/v1/me answers %s" % st
    p.close()


def fleet_manager(b, base, api, shots, name, own, other, size):
    p = b.new_page(**size)
    login(p, base, name)
    assert fleet_rows(p, 1) == [own]
    map_markers(p, "#fleet-map", 1)
    assert p.eval("document.getElementById('filter-fleet').closest('[hidden]') !== null"), \
        "%s has one fleet: no fleet filter" % name
    body = p.eval("document.body.innerText")
    assert other not in body, "%s sees %s on the fleet page" % (name, other)
    shots.take(p, "%s-fleet" % name)

    # The other fleet's car by its URL, typed: not found, nothing of it shown.
    for how in ("hash", "load"):
        if how == "hash":
            p.eval("location.hash = '#/vehicle/%s'" % other)
        else:
            p.goto(base + "/#/vehicle/" + other)
        p.wait_selector("#vehicle-not-found")
        assert not p.exists("#vehicle-facts") and not p.exists("#vehicle-map"), \
            "%s: the other car's page has content" % name
    shots.take(p, "%s-other-vehicle" % name)

    # The API, from the page (cookie) and as a script (Bearer token).
    tok = p.eval("sessionStorage.getItem('pitstop_token')")
    assert tok and tok.startswith("pst_"), tok
    for sub in ("", "/history", "/trips", "/days", "/offers"):
        path = "/api/v1/vehicles/%s%s" % (other, sub)
        st, text = p.fetch(path)
        assert st == 404 and list(json.loads(text)) == ["error"], \
            "%s: GET %s by cookie: %s %s" % (name, path, st, text[:200])
        st, body, _ = api.call("GET", path, token=tok)
        assert st == 404 and list(body) == ["error"], \
            "%s: GET %s by token: %s %r" % (name, path, st, body)
    st, text = p.fetch("/api/v1/vehicles")
    assert st == 200 and other not in text and own in text, (st, text[:300])
    st, text = p.fetch("/api/v1/vehicles?fleet=" + ("beta" if other == VIN_B else "alpha"))
    assert other not in text, "%s: the other fleet by filter: %s %s" % (name, st, text[:300])
    st, text = p.fetch("/api/v1/fleets")
    assert st == 200 and [f["name"] for f in json.loads(text)["items"]] == \
        [USERS[name][1]], text

    # The live stream carries the own car's changes and none of the other's.
    p.eval("""window.__seen = [];
        window.__es = new EventSource('/api/v1/events');
        window.__es.addEventListener('vehicle', e => window.__seen.push(JSON.parse(e.data).vin));""")
    p.wait("window.__seen.filter(v => v === %s).length >= 2" % p.js(own), 40,
           "two live events of %s" % own)
    seen = p.eval("window.__es.close(), window.__seen")
    assert other not in seen, "%s got live events of %s: %r" % (name, other, seen)

    # The campaign figures are the operator's: no nav entry, a notice, 403.
    assert p.eval("document.getElementById('nav-campaigns').hidden") is True
    p.eval("location.hash = '#/campaigns'")
    p.wait_selector("#campaigns-forbidden")
    assert p.fetch("/api/v1/offers/stats")[0] == 403

    p.goto(base + "/#/vehicle/" + own)
    p.wait_selector("#vehicle-facts")
    p.wait_selector("#chart-fuel")
    shots.take(p, "%s-vehicle" % name, full=True)
    assert_clean(p, base, name)
    p.close()


def service_advisor(b, base, api, shots):
    p = b.new_page(**LAPTOP)
    login(p, base, "sam")
    p.wait_selector("#no-vehicle-data")
    assert not p.exists("#fleet-table")
    st, text = p.fetch("/api/v1/vehicles")
    assert VIN_A not in text and VIN_B not in text, (st, text[:300])
    p.eval("location.hash = '#/vehicle/%s'" % VIN_A)
    p.wait_selector("#no-vehicle-data")
    assert not p.exists("#vehicle-facts")
    shots.take(p, "sam-no-data")
    assert_clean(p, base, "sam")
    p.close()


def test():
    if not os.access(CHROMIUM, os.X_OK):
        raise AssertionError("%s missing: run scripts/install-deps (chromium)" % CHROMIUM)
    with System("console") as s:
        shots = Shots(s.db_backend)
        s.make_pki(VIN_A, VIN_B)
        s.start_broker()
        s.start_gpsfake()
        # The harness serves the API on a free loopback port, the console
        # from this tree and the libraries from /usr/share/javascript.
        # A fuel rule for the one partner station near the route (so the
        # campaigns page has a station to show).
        rules, pois = partner_station_files(s)
        s.start_gateway(promo_rules_file=rules, service_plans_file=os.path.join(
            SOURCE_DIR, "gateway", "service", "plans.json"))
        s.ctl("poi", "import", pois, json_out=False)
        base = s.api_urls["gateway"].rstrip("/")
        seed(s)
        # VIN_A drives with its fuel falling through 15 % (a refuel offer);
        # VIN_B drives the shipped replay. Both loop, so their state keeps
        # changing for the live checks.
        rows = [(t, "%.3f" % (1000 + 0.02 * t), "%.1f" % (16.5 - 0.25 * t), "40")
                for t in range(0, 21)]
        s.start_agent(VIN_A, s.write_signals("a.csv", rows), name="agent-a",
                      signals_loop="true", batch_max_samples="2", batch_max_age_ms="2000")
        s.start_agent(VIN_B, os.path.join(DATA_DIR, "drive.csv"), name="agent-b",
                      signals_loop="true", batch_max_samples="2", batch_max_age_ms="2000")

        api = Api(s)
        api.login("olga")

        def both_placed():
            items = api.get("/api/v1/vehicles")["items"]
            ok = [v for v in items if v["lat"] is not None and v["fuel_pct"] is not None
                  and v["online"]]
            return len(ok) == 2 and items
        wait_for(both_placed, 40, "both cars online with a position, by the API")
        wait_for(lambda: api.get("/api/v1/vehicles/%s/offers" % VIN_A)["items"], 30,
                 "the refuel offer for VIN_A")

        st, _, headers = api.call("GET", "/")
        csp = headers.get("Content-Security-Policy") or ""
        assert st == 200 and "default-src 'self'" in csp, "GET / %s, CSP %r" % (st, csp)

        with Browser(log_dir=s.dir) as b:
            operator(b, base, api, shots)
            fleet_manager(b, base, api, shots, "anna", VIN_A, VIN_B, TABLET)
            fleet_manager(b, base, api, shots, "bert", VIN_B, VIN_A, LAPTOP)
            service_advisor(b, base, api, shots)
        print("screenshots in %s" % shots.dir)


if __name__ == "__main__":
    run(test)
