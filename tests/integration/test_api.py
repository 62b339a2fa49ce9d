#!/usr/bin/env python3
"""The gateway's HTTP API (issue 8) against the real system: broker, one
gateway, two agents in two fleets. Every reply checked here is also checked
against docs/openapi.yaml (tests/api/openapi_shapes.py).

Covers: the API URL in the log; 401 without, with a bad or malformed token
(the error body, WWW-Authenticate); login, the session cookie reads but a
change with the cookie alone is refused; 403 for a fleet manager on an
operator route; fleet isolation (list, /vehicles/{vin} and its history,
days, offers, trips answer another fleet's car exactly as an unknown one;
the event stream never carries it while it carries theirs); pagination of
vehicles (operator and a two-fleet manager) and users; history (a time
range) and daily rollups return the stored samples; the offer; counters
and instances; 413, 400 bad_json with line/column, 404 no_route, 405;
API tokens (work, revoked: 401), disabled users, logout; an audit row for
each write (who, action, target); HTTPS with a fleet-PKI certificate that a
client trusting the fleet CA accepts; plain HTTP on 0.0.0.0 refused at start."""
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

from harness import CTL, GATEWAY, SOURCE_DIR, VIN_A, VIN_B, System, run, wait_for

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "api"))
import openapi_shapes  # noqa: E402

V = "/api/v1"
PASSWORD = "correct horse battery staple"
UNKNOWN_VIN = "WDB12345678901234"


class Stream:
    """GET /api/v1/events read on a thread: the vehicle events, in order."""

    def __init__(self, port, token):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.conn.request("GET", V + "/events", headers={"Authorization": "Bearer " + token})
        self.r = self.conn.getresponse()
        assert self.r.status == 200, (self.r.status, self.r.read())
        assert self.r.getheader("Content-Type") == "text/event-stream"
        self.events = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        kind = None
        try:
            for raw in self.r:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "vehicle":
                    self.events.append(json.loads(line[6:]))
                elif not line:
                    kind = None
        except Exception:  # closed under us: the end of the stream
            pass

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()
        self.thread.join(10)


def test():
    spec = openapi_shapes.load(SOURCE_DIR)
    with System("api") as s:
        s.make_pki(VIN_A, VIN_B)
        s.start_broker()
        gw = s.start_gateway(low_fuel_pct="15")
        url = s.api_urls["gateway"]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), url
        assert "api: console and API at %s (api/v1), local socket %s" % (
            url, s.path("gateway-api.sock")) in gw.text()
        port = urllib.parse.urlsplit(url).port

        def call(method, pattern, *args, status=200, token=None, body=None, query=None,
                 headers=None, check=True):
            it = iter(args)
            path = re.sub(r"\{[^}]+\}", lambda m: next(it), pattern)
            if query:
                path += "?" + urllib.parse.urlencode(query)
            st, b, h = s.api(method, path, body, token, headers=headers)
            assert st == status, "%s %s: %s, expected %s: %r" % (method, path, st, status, b)
            if check:
                spec.check(method, pattern, st, b)
            return b, h

        def local(method, path, body=None, status=200):
            st, b = s.api_local(method, path, body)
            assert st == status, "local %s %s: %s: %r" % (method, path, st, b)
            return b

        def error(b, code):
            assert set(b) == {"error"} and set(b["error"]) == {"code", "message"}, b
            assert b["error"]["code"] == code, b
            return b["error"]["message"]

        # --- accounts, as the local operator on the unix socket ----------
        me = local("GET", V + "/me")
        assert me == {"name": "local", "role": "operator", "fleets": []}, me
        for fleet, vin in (("north", VIN_A), ("south", VIN_B)):
            spec.check("POST", V + "/fleets", 201, local("POST", V + "/fleets", {"name": fleet}, 201))
            b = local("POST", V + "/fleets/%s/vehicles" % fleet, {"vins": [vin]})
            assert spec.check("POST", V + "/fleets/{name}/vehicles", 200, b) == \
                {"fleet": fleet, "assigned": 1, "moved": 1}, b
        b = local("POST", V + "/users", {"name": "alice", "role": "fleet_manager",
                                          "fleets": ["north"], "password": PASSWORD}, 201)
        spec.check("POST", V + "/users", 201, b)
        assert b["has_password"] and b["fleets"] == ["north"] and not b["disabled"], b
        tokens = {}
        for name, role, fleets in (("bob", "fleet_manager", ["south"]),
                                   ("both", "fleet_manager", ["north", "south"]),
                                   ("ops", "operator", []), ("sam", "service_advisor", [])):
            b = local("POST", V + "/users", {"name": name, "role": role, "fleets": fleets}, 201)
            assert not b["has_password"], b
            b = local("POST", V + "/users/%s/tokens" % name, {"label": "script"}, 201)
            spec.check("POST", V + "/users/{name}/tokens", 201, b)
            assert b["user"] == name and b["expires_at"] is None, b
            tokens[name] = b["token"]
        ops, bob, both, sam = (tokens[n] for n in ("ops", "bob", "both", "sam"))

        # --- 401 ----------------------------------------------------------
        for tok, hdrs in ((None, None), ("pst_" + "A" * 43, None), ("nonsense", None),
                          (None, {"Authorization": "Basic b3BzOm9wcw=="})):
            b, h = call("GET", V + "/vehicles", status=401, token=tok, headers=hdrs)
            error(b, "unauthorized")
            assert h["WWW-Authenticate"] == 'Bearer realm="pitstop"', dict(h)

        # --- login, the session cookie, 403 -------------------------------
        b, _ = call("POST", V + "/login", status=401,
                    body={"username": "alice", "password": PASSWORD + "x"})
        wrong = error(b, "unauthorized")
        b, _ = call("POST", V + "/login", status=401,
                    body={"username": "nobody", "password": PASSWORD})
        assert error(b, "unauthorized") == wrong, "an unknown user answers like a wrong password"
        b, h = call("POST", V + "/login", body={"username": "alice", "password": PASSWORD})
        alice = b["token"]
        assert b["user"] == {"name": "alice", "role": "fleet_manager", "fleets": ["north"]}, b
        cookie = h["Set-Cookie"]
        assert cookie.startswith("pitstop_session=%s;" % alice), cookie
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        by_cookie = {"Cookie": "pitstop_session=" + alice}
        b, _ = call("GET", V + "/me", headers=by_cookie)
        assert b["name"] == "alice", b
        for method, path, body in (("POST", V + "/logout", None),
                                   ("POST", V + "/users/{name}/disable", None),
                                   ("POST", V + "/fleets", {"name": "east"})):
            b, _ = call(method, path, "bob", status=401, headers=by_cookie, body=body)
            assert "Bearer" in error(b, "unauthorized"), b
        for method, path, body in (("GET", V + "/users", None), ("GET", V + "/counters", None),
                                   ("GET", V + "/audit", None),
                                   ("POST", V + "/fleets", {"name": "east"}),
                                   ("POST", V + "/users/{name}/tokens", {})):
            b, _ = call(method, path, "bob", status=403, token=alice, body=body)
            assert "operator" in error(b, "forbidden"), b

        # --- the cars, and their event streams ----------------------------
        # alice's stream first, so everything the operator's sees came
        # after hers was open.
        alice_stream = Stream(port, alice)
        ops_stream = Stream(port, ops)
        sig_a = s.write_signals("a.csv", [(t, "5000.000", "%.1f" % max(10.0, 16 - 0.5 * t), "0")
                                          for t in range(600)])
        sig_b = s.write_signals("b.csv", [(t, "%.3f" % (42195 + 0.02 * t), "60.0", "72")
                                          for t in range(600)])
        fast = {"batch_max_samples": "1", "batch_max_age_ms": "1000"}
        s.start_agent(VIN_A, sig_a, name="agent-a", **fast)
        # B in batches of 3: a day's driving time adds up the steps inside
        # a batch (gateway/telemetry/telemetry.c), so 1-sample batches never
        # drive.
        s.start_agent(VIN_B, sig_b, name="agent-b", batch_max_samples="3",
                      batch_max_age_ms="3000")

        def b_then_a():
            evs = list(ops_stream.events)
            first_b = next((i for i, e in enumerate(evs) if e["vin"] == VIN_B), None)
            later_a = [e["batches"] for e in evs[first_b or 0:] if e["vin"] == VIN_A]
            return later_a[0] if first_b is not None and later_a else None

        # In the operator's stream an event of B comes before A's batch n:
        # had B leaked into alice's stream, it would be there before her A(n).
        n = wait_for(b_then_a, 30, "the operator's stream to carry B, then A")
        wait_for(lambda: any(e["vin"] == VIN_A and e["batches"] >= n
                             for e in alice_stream.events), 20, "A's batch %d in alice's stream" % n)
        seen = {e["vin"] for e in alice_stream.events}
        assert seen == {VIN_A}, "alice's stream carried %s" % seen
        vehicle_schema = {"$ref": "#/components/schemas/Vehicle"}
        for e in alice_stream.events + ops_stream.events:
            assert not spec.errors(vehicle_schema, e), spec.errors(vehicle_schema, e)
        alice_stream.close()
        ops_stream.close()

        # --- fleet isolation ----------------------------------------------
        def vins(token, **query):
            return [v["vin"] for v in call("GET", V + "/vehicles", token=token, query=query)[0]["items"]]

        assert vins(ops) == sorted([VIN_A, VIN_B]), vins(ops)
        items = call("GET", V + "/vehicles", token=alice)[0]["items"]
        assert [(v["vin"], v["fleet"]) for v in items] == [(VIN_A, "north")], items
        assert vins(bob) == [VIN_B] and vins(sam) == [], (vins(bob), vins(sam))
        assert vins(ops, fleet="south") == [VIN_B]
        b, _ = call("GET", V + "/vehicles", token=alice, query={"fleet": "south"}, status=404)
        error(b, "not_found")
        for suffix in ("", "/history", "/days", "/offers", "/trips"):
            pattern = V + "/vehicles/{vin}" + suffix
            call("GET", pattern, VIN_A, token=alice)
            # Another fleet's car answers exactly as one that does not exist
            # (to her, and to the operator).
            hidden, _ = call("GET", pattern, VIN_B, token=alice, status=404)
            for tok in (alice, ops):
                unknown, _ = call("GET", pattern, UNKNOWN_VIN, token=tok, status=404)
                assert error(hidden, "not_found") == error(unknown, "not_found").replace(
                    UNKNOWN_VIN, VIN_B), (hidden, unknown)
            call("GET", pattern, VIN_B, token=sam, status=404)
        b, _ = call("GET", V + "/fleets", token=alice)
        assert [f["name"] for f in b["items"]] == ["north"] and b["next"] is None, b
        call("GET", V + "/fleets/{name}", "south", token=alice, status=404)
        b, _ = call("GET", V + "/fleets/{name}", "south", token=ops)
        assert b["vehicles"] == 1, b

        # --- pagination ---------------------------------------------------
        def walk(pattern, token, limit, key):
            got, after = [], None
            for _ in range(20):
                q = {"limit": limit}
                if after:
                    q["after"] = after
                b, _ = call("GET", pattern, token=token, query=q)
                assert len(b["items"]) <= limit, b
                got += [x[key] for x in b["items"]]
                after = b["next"]
                if after is None:
                    return got
            raise AssertionError("%s: no end of pages: %s" % (pattern, got))

        for tok in (ops, both):
            assert walk(V + "/vehicles", tok, 1, "vin") == sorted([VIN_A, VIN_B])
        assert walk(V + "/users", ops, 2, "name") == ["alice", "bob", "both", "ops", "sam"]
        b, _ = call("GET", V + "/vehicles", token=ops, query={"limit": 0}, status=400)
        assert "limit" in error(b, "bad_request")

        # --- the offer ----------------------------------------------------
        offers = wait_for(lambda: call("GET", V + "/vehicles/{vin}/offers", VIN_A,
                                       token=alice)[0]["items"], 30, "the low-fuel offer of A")
        assert len(offers) == 1 and offers[0]["kind"] == "refuel", offers
        assert call("GET", V + "/vehicles/{vin}/offers", VIN_B, token=ops)[0]["items"] == []

        # --- history and days: the stored samples, when nothing moves ----
        wait_for(lambda: call("GET", V + "/vehicles/{vin}", VIN_B, token=bob)[0]["samples"] >= 6,
                 30, "6 samples of B")
        s.stop("agent-a")
        s.stop("agent-b")

        def settled():
            v1 = call("GET", V + "/vehicles/{vin}", VIN_B, token=bob)[0]
            h = call("GET", V + "/vehicles/{vin}/history", VIN_B, token=bob,
                     query={"from": "0"})[0]
            v2 = call("GET", V + "/vehicles/{vin}", VIN_B, token=bob)[0]
            return (v2, h) if v1 == v2 and len(h["items"]) == v2["samples"] else None

        veh, hist = wait_for(settled, 20, "B's history to hold all its stored samples")
        items = hist["items"]
        assert veh["samples"] >= 6 and not hist["truncated"], (veh, hist["truncated"])
        times = [x["time"] for x in items]
        assert times == sorted(times) and len(set(times)) == len(times), times
        replay = {round(42195 + 0.02 * t, 3) for t in range(600)}
        for x in items:
            assert round(x["odometer_km"], 3) in replay, x
            assert x["fuel_pct"] == 60.0 and abs(x["speed_kmh"] - 72) < 0.01, x
            assert x["lat"] is None and "implausible" not in x, x
        assert veh["updated_at"] == times[-1] and veh["odometer_km"] == items[-1]["odometer_km"]
        # A range: from just before the 3rd sample to just before the 5th.
        unix = [_unix_ms(t) for t in times]
        b, _ = call("GET", V + "/vehicles/{vin}/history", VIN_B, token=bob,
                    query={"from": unix[2] - 1, "to": unix[4] - 1})
        assert b["items"] == items[2:4], (b["items"], items[2:6])
        b, _ = call("GET", V + "/vehicles/{vin}/history", VIN_B, token=bob,
                    query={"from": "0", "limit": 2})
        assert b["items"] == items[-2:] and b["truncated"], b
        b, _ = call("GET", V + "/vehicles/{vin}/history", VIN_B, token=bob,
                    query={"from": "yesterday"}, status=400)
        assert "ISO 8601" in error(b, "bad_request")
        days = call("GET", V + "/vehicles/{vin}/days", VIN_B, token=bob)[0]["items"]
        assert [d["day"] for d in days] == sorted({t[:10] for t in times}), (days, times)
        assert sum(d["samples"] for d in days) == len(items), days
        assert days[0]["first_odometer_km"] == items[0]["odometer_km"], (days, items[0])
        assert days[-1]["last_odometer_km"] == items[-1]["odometer_km"], (days, items[-1])
        assert days[-1]["last_fuel_pct"] == 60.0 and days[-1]["driving_s"] > 0, days
        for d in days:
            assert abs(d["distance_km"] - (d["last_odometer_km"] - d["first_odometer_km"])) < 1e-6, d
        call("GET", V + "/vehicles/{vin}/trips", VIN_B, token=bob)

        # --- counters, instances ------------------------------------------
        c, _ = call("GET", V + "/counters", token=ops)
        assert c["samples_stored"] >= veh["samples"] and c["rejected"]["bad_vin"] == 0, c
        assert [i["id"] for i in c["instances"]] == ["pitstop-gateway"], c
        b, _ = call("GET", V + "/instances", token=ops)
        assert [i["id"] for i in b["items"]] == ["pitstop-gateway"], b

        # --- bodies and routes --------------------------------------------
        big = b'{"name": "' + b"x" * (256 * 1024) + b'"}'
        b, _ = call("POST", V + "/fleets", status=413, token=ops, body=big)
        assert "262144" in error(b, "too_large"), b
        b, _ = call("POST", V + "/fleets", status=400, token=ops, body=b'{"name":\n  nope}')
        assert re.search(r"line 2, column \d+", error(b, "bad_json")), b
        b, _ = call("GET", V + "/nothing", status=404, check=False)
        assert "/api/v1/nothing" in error(b, "no_route"), b
        b, _ = call("DELETE", V + "/vehicles", status=405, token=ops, check=False)
        error(b, "method_not_allowed")

        # --- writes by a user: tokens, disable, fleet ---------------------
        b, _ = call("POST", V + "/fleets", token=ops, body={"name": "west"}, status=201)
        assert b["name"] == "west" and b["vehicles"] == 0, b
        b, _ = call("POST", V + "/fleets", token=ops, body={"name": "west"}, status=409)
        error(b, "conflict")
        b, _ = call("POST", V + "/users/{name}/tokens", "sam", token=ops, body={"label": "ci"},
                    status=201)
        ci, ci_id = b["token"], b["id"]
        assert call("GET", V + "/me", token=ci)[0]["name"] == "sam"
        listed = call("GET", V + "/users/{name}/tokens", "sam", token=ops)[0]["items"]
        assert [(t["id"], t["kind"], t["label"], t["revoked_at"]) for t in listed
                if t["id"] == ci_id] == [(ci_id, "api", "ci", None)], listed
        assert all("token" not in t for t in listed), "a listing shows a token's secret"
        call("DELETE", V + "/tokens/{id}", str(ci_id), token=ops, status=204)
        b, _ = call("GET", V + "/me", token=ci, status=401)
        error(b, "unauthorized")
        call("DELETE", V + "/tokens/{id}", str(ci_id), token=ops, status=404)
        listed = call("GET", V + "/users/{name}/tokens", "sam", token=ops)[0]["items"]
        assert [t["revoked_at"] is not None for t in listed if t["id"] == ci_id] == [True]
        b, _ = call("POST", V + "/users/{name}/disable", "sam", token=ops)
        assert b["disabled"], b
        call("GET", V + "/me", token=sam, status=401)
        assert not call("POST", V + "/users/{name}/enable", "sam", token=ops)[0]["disabled"]
        assert call("GET", V + "/me", token=sam)[0]["name"] == "sam"

        # --- logout -------------------------------------------------------
        b, h = call("POST", V + "/logout", token=alice, status=204)
        assert "Max-Age=0" in h["Set-Cookie"], h["Set-Cookie"]
        call("GET", V + "/me", token=alice, status=401)
        call("GET", V + "/me", headers=by_cookie, status=401)

        # --- the audit trail ----------------------------------------------
        rows = call("GET", V + "/audit", token=ops, query={"limit": 1000})[0]["items"]
        trail = {(r["actor"], r["actor_role"], r["action"], r["target"]) for r in rows}
        want = {("local", "operator", "fleet.add", "north"),
                ("local", "operator", "fleet.add", "south"),
                ("local", "operator", "fleet.assign", VIN_A),
                ("local", "operator", "fleet.assign", VIN_B),
                ("local", "operator", "user.add", "alice"),
                ("local", "operator", "user.add", "sam"),
                ("local", "operator", "token.create", "ops"),
                ("alice", "fleet_manager", "login", "alice"),
                ("alice", "fleet_manager", "token.revoke", "alice"),
                ("ops", "operator", "fleet.add", "west"),
                ("ops", "operator", "token.create", "sam"),
                ("ops", "operator", "token.revoke", "sam"),
                ("ops", "operator", "user.disable", "sam"),
                ("ops", "operator", "user.enable", "sam")}
        assert want <= trail, "audit rows missing: %s" % sorted(want - trail)
        assert any(r["action"] == "login_failed" and r["target"] == "alice" for r in rows), rows
        assert {r["instance"] for r in rows} == {"pitstop-gateway"}, rows
        ids = [r["id"] for r in rows]
        assert ids == sorted(ids, reverse=True), "audit rows not newest first"
        assert all(alice not in json.dumps(r) and ops not in json.dumps(r) for r in rows), \
            "a token in the audit trail"
        b, _ = call("GET", V + "/audit", token=ops, query={"actor": "ops", "limit": 2})
        assert len(b["items"]) == 2 and b["next"] == b["items"][-1]["id"], b
        assert {r["actor"] for r in b["items"]} == {"ops"}, b

        # --- failed logins: throttled per client address -------------------
        # (last of the logins: 127.0.0.1 is locked out until the restart below)
        for i in range(10):
            call("POST", V + "/login", body={"username": "alice", "password": "wrong %d" % i},
                 status=401)
        b, _ = call("POST", V + "/login", body={"username": "alice", "password": PASSWORD},
                    status=429)
        assert b["error"]["code"] == "too_many_logins" and "127.0.0.1" in b["error"]["message"], b
        assert "failed logins from 127.0.0.1" in gw.text(), "no warning in the log"

        # --- plain HTTP off loopback: refused at start --------------------
        with open(s.gateway_conf) as f:
            conf = f.read()
        conf = re.sub(r"(?m)^api_listen = .*$", "api_listen = 0.0.0.0:0", conf)
        conf = re.sub(r"(?m)^api_socket = .*$", "api_socket = " + s.path("refused.sock"), conf)
        path = s.path("refused.conf")
        with open(path, "w") as f:
            f.write(conf)
        r = subprocess.run([GATEWAY, "--config", path], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        out = r.stdout + r.stderr
        assert r.returncode != 0, "plain HTTP on 0.0.0.0 was accepted:\n" + out
        assert "api_listen 0.0.0.0:0 is not a loopback address" in out, out
        assert "api_cert_file" in out and "console and API at" not in out, out

        # --- HTTPS with the fleet PKI's API certificate (pki api) ---------
        s.stop("gateway")
        r = subprocess.run([CTL, "pki", "api", s.pki, "--ip", "127.0.0.1"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        gw = s.start_gateway(low_fuel_pct="15", api_cert_file=s.path("pki", "api.crt"),
                             api_key_file=s.path("pki", "api.key"))
        url = s.api_urls["gateway"]
        assert re.fullmatch(r"https://127\.0\.0\.1:\d+/", url), url
        trusting = ssl.create_default_context(cafile=s.path("pki", "ca.crt"))
        req = urllib.request.Request(url + "api/v1/me", headers={"Authorization": "Bearer " + ops})
        with urllib.request.urlopen(req, context=trusting, timeout=30) as resp:
            assert json.loads(resp.read())["name"] == "ops"
        req = urllib.request.Request(url + "api/v1/login", method="POST",
                                     data=json.dumps({"username": "alice",
                                                      "password": PASSWORD}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=trusting, timeout=30) as resp:
            assert "; Secure" in resp.headers["Set-Cookie"], resp.headers["Set-Cookie"]
        try:
            urllib.request.urlopen(url + "api/v1/me", context=ssl.create_default_context(),
                                   timeout=30)
            raise AssertionError("a client without the fleet CA accepted the certificate")
        except urllib.error.URLError as e:
            assert isinstance(e.reason, ssl.SSLCertVerificationError), e


def _unix_ms(iso):
    """2026-12-01T12:00:00.250Z -> unix ms."""
    import datetime
    return round(datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


if __name__ == "__main__":
    run(test)
