#!/usr/bin/env python3
"""Points of interest through pitstopctl and the API (docs/poi.md), on one
gateway: a generated CSV (scripts/gen-pois, several chunks) and a small
GeoJSON across the antimeridian are imported; a bad file with two bad lines
has both reported as FILE:LINE and nothing of it imported; `poi near
--json` matches a brute-force haversine over the imported rows (in Berlin,
with and without a category, and across the antimeridian); a row with an
id that exists replaces it; show, delete, and the audit trail."""
import csv
import json
import math
import os
import subprocess

from harness import SOURCE_DIR, System, run

R = 6371008.8
GEN = os.path.join(SOURCE_DIR, "scripts", "gen-pois")


def haversine(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R * math.asin(min(1.0, math.sqrt(h)))


def brute(pois, lat, lon, radius, category=None):
    """(distance, id) within radius, nearest first, on the stored 1e-7 degrees."""
    out = []
    for p in pois.values():
        if category and p["category"] != category:
            continue
        d = haversine(lat, lon, round(p["lat"] * 1e7) / 1e7, round(p["lon"] * 1e7) / 1e7)
        if d <= radius:
            out.append((d, p["id"]))
    return sorted(out)


def check_near(s, pois, lat, lon, radius, category=None):
    args = ["poi", "near", "--lat", str(lat), "--lon", str(lon), "--radius-m", str(radius),
            "--limit", "1000"]
    if category:
        args += ["--category", category]
    got = s.ctl(*args)
    want = brute(pois, lat, lon, radius, category)
    assert not got["truncated"] and len(got["items"]) == len(want), (len(got["items"]), len(want))
    assert want, "an empty answer proves nothing"
    for it, (d, _) in zip(got["items"], want):
        assert abs(it["distance_m"] - d) <= 0.06, (it, d)  # the API rounds to 0.1 m
    assert sorted(i["id"] for i in got["items"]) == sorted(pid for _, pid in want)
    dists = [i["distance_m"] for i in got["items"]]
    assert dists == sorted(dists), dists
    if category:
        assert {i["category"] for i in got["items"]} == {category}
    return got["items"]


def write(s, name, text):
    path = s.path(name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_all():
    with System("poi") as s:
        s.make_pki()
        s.start_broker()
        s.start_gateway()

        # 6,000 generated POIs: more than one chunk, progress per chunk (stderr is no tty).
        csv_path = s.path("pois.csv")
        subprocess.run([GEN, "--count", "6000", "--seed", "5", "--out", csv_path], check=True,
                       timeout=30)
        r = s.ctl("poi", "import", csv_path, json_out=False)
        assert "6000 POIs imported" in r.stdout, (r.stdout, r.stderr)
        assert "6000/6000 rows sent" in r.stderr and r.stderr.count("rows sent") >= 2, r.stderr
        pois = {}
        with open(csv_path) as f:
            for row in csv.DictReader(f):
                row["lat"], row["lon"] = float(row["lat"]), float(row["lon"])
                pois[row["id"]] = row

        # GeoJSON across the antimeridian; poi-000001 moves there (replaced by id).
        feats = [("am-east", "fuel", 0.0, 179.995), ("am-west", "charger", 0.0, -179.995),
                 ("am-north", "fuel", 0.01, 179.99), ("poi-000001", "dealer", -0.005, -179.999)]
        gj = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
             "properties": {"id": i, "name": "Station " + i, "category": c}}
            for i, c, lat, lon in feats]}
        r = s.ctl("poi", "import", write(s, "am.geojson", json.dumps(gj)), json_out=False)
        assert "4 POIs imported" in r.stdout, (r.stdout, r.stderr)
        for i, c, lat, lon in feats:
            pois[i] = {"id": i, "category": c, "lat": lat, "lon": lon}
        one = s.ctl("poi", "show", "poi-000001")
        assert one["category"] == "dealer" and abs(one["lon"] + 179.999) < 1e-9, one

        # A bad file: both bad lines said as FILE:LINE, nothing of it imported.
        bad = write(s, "bad.csv", "id,name,category,lat,lon\n"
                    "bad-1,Fine,fuel,52.5,13.4\n"
                    "bad-2,Broken,fuel,95,13.4\n"
                    "bad-3,Fine too,fuel,52.5,13.4\n"
                    "bad-4,Broken too,Fuel Station,52.5,13.4\n")
        r = s.ctl("poi", "import", bad, check=False, json_out=False)
        assert r.returncode == 1, r
        assert bad + ":3: lat:" in r.stderr and bad + ":5: category:" in r.stderr, r.stderr
        assert ":2:" not in r.stderr and "nothing imported" in r.stderr, r.stderr
        assert s.ctl("poi", "show", "bad-1", check=False, json_out=False).returncode == 1

        # Radius queries against brute force: Berlin, a category, the antimeridian.
        check_near(s, pois, 52.52, 13.405, 5000)
        check_near(s, pois, 48.14, 11.58, 8000, "charger")
        am = check_near(s, pois, 0.0, 180.0, 2000)
        assert {i["id"] for i in am} == {"am-east", "am-west", "am-north", "poi-000001"}, am
        assert len(check_near(s, pois, 0.0, -179.99, 1200)) == 2  # am-west, poi-000001

        # The API answers the same; bad arguments are named.
        st, body = s.api_local("GET", "/api/v1/poi/near?lat=0&lon=180&radius_m=2000&limit=2")
        assert st == 200 and len(body["items"]) == 2 and body["truncated"], body
        st, body = s.api_local("GET", "/api/v1/poi/near?lat=91&lon=0")
        assert st == 400 and "lat=91" in body["error"]["message"], body

        # Delete, then it is gone from queries too.
        r = s.ctl("poi", "delete", "am-west", json_out=False)
        assert "deleted" in r.stdout, r.stdout
        del pois["am-west"]
        assert [i["id"] for i in check_near(s, pois, 0.0, -179.99, 1200)] == ["poi-000001"]
        assert s.ctl("poi", "delete", "am-west", check=False, json_out=False).returncode == 1

        audit = [a["action"] for a in s.ctl("audit", "--limit", "50")["items"]]
        assert audit.count("poi.import") == 2 and "poi.delete" in audit, audit
        assert audit.count("poi.import_begin") == 2, audit  # the bad file never began


if __name__ == "__main__":
    run(test_all)
