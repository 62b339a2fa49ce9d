#!/usr/bin/env python3
"""Every program says its version, and a usage mistake gets one line that
names it and says how to get help (exit 2), not the whole usage text.

pitstopctl's PKI and vehicle list, against a real broker and database:
`pki init` makes missing parents; `pki broker --dns/--ip` re-issues the
broker's certificate and a client checking the name it connects to accepts
exactly those names (the gateway on 127.0.0.1, mosquitto_pub refused for
localhost); `pki vehicle` on a copy holding only ca.crt and ca.key (an
offline CA); `vehicle list` filters (online/offline, seen since, low fuel
with the config's low_fuel_pct) over vehicles whose last-seen times are
written into the gateway's migrated database relative to now."""
import json
import os
import shutil
import subprocess
import time

from harness import AGENT, CTL, GATEWAY, PG_BIN, System, run, wait_for


def call(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=10)


def test():
    for prog, name in ((AGENT, "pitstop-agent"), (GATEWAY, "pitstop-gateway"),
                       (CTL, "pitstopctl")):
        r = call(prog, "--version")
        assert r.returncode == 0 and r.stdout.startswith(name + " "), (name, r)
        assert r.stdout.split()[1].count(".") == 2, r.stdout
    for argv, says in (((AGENT, "--frob"), "--frob: unknown argument"),
                       ((AGENT,), "--config FILE is required"),
                       ((GATEWAY,), "--config FILE is required"),
                       ((GATEWAY, "--config", "x", "extra"), "unexpected argument 'extra'"),
                       ((CTL, "frob"), "unknown command 'frob'"),
                       ((CTL,), "which command?")):
        r = call(*argv)
        assert r.returncode == 2, (argv, r)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0] and "--help" in lines[0], (argv, r.stderr)
    r = call(GATEWAY, "--help")
    assert r.returncode == 0 and "max_backlog_mb" in r.stdout and "db " in r.stdout, r.stdout



def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def test_pki(s):
    nested = s.path("a", "b", "pki")
    r = call(CTL, "pki", "init", nested)
    assert r.returncode == 0, r.stderr
    for d in (s.path("a"), s.path("a", "b"), nested):
        assert os.stat(d).st_mode & 0o777 == 0o755, (d, oct(os.stat(d).st_mode))

    s.make_pki()
    r = call(CTL, "pki", "broker", s.pki, "--dns", "broker.test", "--ip", "127.0.0.1",
             "--ip", "192.0.2.10")
    assert r.returncode == 0, r.stderr
    rc, out = openssl("x509", "-noout", "-ext", "subjectAltName", "-in", s.path("pki", "broker.crt"))
    assert rc == 0 and "DNS:broker.test, IP Address:127.0.0.1, IP Address:192.0.2.10" in out, out
    assert "localhost" not in out, out
    for argv, says in ((("--dns", "bad_name"), "'bad_name' is not a DNS name"),
                       (("--ip", "300.1.1.1"), "not an IPv4 or IPv6 address"),
                       ((), "usage")):
        r = call(CTL, "pki", "broker", s.pki, *argv)
        assert r.returncode == 2 and says in r.stderr, (argv, r)

    # the broker serves the new pair; clients check the name they dial
    s.start_broker()
    s.start_gateway()
    ca, crt = s.path("pki", "ca.crt"), s.path("pki", "vehicles", VIN + ".crt")
    r = call(CTL, "pki", "vehicle", VIN, s.pki)
    assert r.returncode == 0, r.stderr
    for host, ok in (("127.0.0.1", True), ("localhost", False)):
        r = subprocess.run(["mosquitto_pub", "-h", host, "-p", str(s.broker_port), "-V", "mqttv5",
                            "--cafile", ca, "--cert", crt,
                            "--key", s.path("pki", "vehicles", VIN + ".key"), "-q", "1",
                            "-t", "pitstop/v1/vehicles/%s/status" % VIN, "-m", ""],
                           capture_output=True, text=True, timeout=30)
        assert (r.returncode == 0) == ok, (host, r)

    # an offline CA: a directory with ca.crt and ca.key only
    off = s.path("offline-ca")
    os.makedirs(off, mode=0o700)
    for f in ("ca.crt", "ca.key"):
        shutil.copy(s.path("pki", f), off)
    r = call(CTL, "pki", "vehicle", VIN_C, off)
    assert r.returncode == 0, r.stderr
    rc, out = openssl("verify", "-purpose", "sslclient", "-CAfile", s.path("pki", "ca.crt"),
                      os.path.join(off, "vehicles", VIN_C + ".crt"))
    assert rc == 0, out
    assert sorted(os.listdir(off)) == ["ca.crt", "ca.key", "vehicles"], os.listdir(off)


VIN = "WP0ZZZ99ZTS392124"
VIN_B = "WVWZZZ1JZXW000001"
VIN_C = "WDB1234561A000003"
VIN_D = "WDB1234561A000004"


def put_vehicles(s, rows):
    """Writes vehicle_state rows (vin, time_ms or None, fuel_permille or None,
    status_ms or None) into the gateway's database, as ingest would leave them."""
    sql = []
    for vin, t, fuel, st in rows:
        v = lambda x: "NULL" if x is None else str(x)
        sql.append("INSERT INTO vehicle_state(vin, created_ms, time_ms, fix, fuel_permille,"
                   " fuel_ms, online, status_ms, agent_version) VALUES('%s', %d, %s, %s, %s, %s,"
                   " %s, %s, %s)" % (vin, 1, v(t), "3" if t else "NULL", v(fuel),
                                     v(t if fuel is not None else None),
                                     "1" if st else "NULL", v(st), "'1.0'" if st else "NULL"))
    if s.db_backend == "sqlite":
        import sqlite3
        db = sqlite3.connect(s.db_url())
        for q in sql:
            db.execute(q)
        db.commit()
        db.close()
    else:
        r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                            "-d", s.db_url(), "-c", ";".join(sql)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr


def listed(s, *args, conf=None):
    argv = [CTL, "--config", conf or s.gateway_conf, "vehicle", "list", "--json"] + list(args)
    r = call(*argv)
    assert r.returncode == 0, (args, r)
    return [v["vin"] for v in json.loads(r.stdout)["vehicles"]]


def test_vehicle_list(s):
    now = int(time.time() * 1000)
    minute = 60000
    # VIN: sample a minute ago, 12.0 %; VIN_B: status only, 2 h ago;
    # VIN_C: sample 3 days ago, 60 %; VIN_D: sample 20 min ago, 15.0 %, status 25 min ago
    put_vehicles(s, [(VIN, now - minute, 120, None), (VIN_B, None, None, now - 120 * minute),
                     (VIN_C, now - 3 * 1440 * minute, 600, None),
                     (VIN_D, now - 20 * minute, 150, now - 25 * minute)])
    everyone = sorted([VIN, VIN_B, VIN_C, VIN_D])
    assert listed(s) == everyone
    assert listed(s, "--online") == [VIN]
    assert listed(s, "--offline") == sorted([VIN_B, VIN_C, VIN_D])
    assert listed(s, "--online", "--online-within", "30") == sorted([VIN, VIN_D])
    assert listed(s, "--seen-since", "3h") == sorted([VIN, VIN_B, VIN_D])
    assert listed(s, "--not-seen-since", "1d") == [VIN_C]
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1000 - 4 * 86400))
    assert listed(s, "--seen-since", iso) == everyone
    assert listed(s, "--seen-since", str(now - 30 * minute)) == sorted([VIN, VIN_D])
    assert listed(s, "--low-fuel") == sorted([VIN, VIN_D])  # the default 15 %: at or below
    assert listed(s, "--low-fuel", "14.9") == [VIN]
    assert listed(s, "--low-fuel", "--offline") == [VIN_D]
    assert listed(s, "--low-fuel", "70", "--not-seen-since", "2d") == [VIN_C]
    with open(s.gateway_conf) as f:
        conf = f.read()
    low = s.write_conf("low.conf", {})
    with open(low, "w") as f:
        f.write(conf + "low_fuel_pct = 12\n")
    assert listed(s, "--low-fuel", conf=low) == [VIN]

    r = call(CTL, "--config", s.gateway_conf, "vehicle", "list", "--low-fuel", "--json")
    out = json.loads(r.stdout)
    assert out["filter"]["max_fuel_pct"] == 15.0, out["filter"]
    d = [v for v in out["vehicles"] if v["vin"] == VIN_D][0]
    assert d["fuel_pct"] == 15.0 and d["last_seen"].endswith("Z"), d
    r = call(CTL, "--config", s.gateway_conf, "vehicle", "list", "--offline")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and "last_seen" in lines[0] and len(lines) == 4, r.stdout
    assert [l for l in lines if l.startswith(VIN_B)][0].split()[1] == "yes", r.stdout
    for argv, says in ((("--online", "--offline"), "exclude each other"),
                       (("--seen-since", "yesterday"), "bad value for --seen-since"),
                       (("--online-within", "0"), "bad value for --online-within"),
                       (("--low-fuel", "101"), "unexpected argument '101'")):
        r = call(CTL, "--config", s.gateway_conf, "vehicle", "list", *argv)
        assert r.returncode == 2 and says in r.stderr, (argv, r)


def test_all():
    test()
    os.umask(0o022)
    with System("cli") as s:
        test_pki(s)
        s.stop("gateway")
        test_vehicle_list(s)


if __name__ == "__main__":
    run(test_all)
