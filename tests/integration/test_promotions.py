#!/usr/bin/env python3
"""Geo-localized promotions end to end (issue 11), with the real broker,
gpsd (gpsfake), gateway and two agents on one route.

The route (written here as NMEA) drives north at 144 km/h, parks 200 m short
of a partner station ("Aral Nord"), then drives on and parks at it. A
nearer station lies behind the car and a third one beyond the search
radius. Both tanks drain through 15 % while the cars drive.

- Car A (time zone UTC) gets exactly one offer, for the station ahead, not
  the nearer one behind; the offer's area is a circle around that station,
  so the parked car does not show it 200 m short of the station and shows
  it once it parks there. Passing a car wash would trigger a second rule,
  but the per-day cap is 1: that offer is suppressed as cap_day.
- Car B (time zone Asia/Tokyo) is inside the quiet hours, which are set so
  that they hold for Tokyo and not for UTC: no offer, suppressed as
  quiet_hours.
"""
import datetime
import time

from harness import VIN_A, VIN_B, System, read_card, run, wait_for

LAT0, LON0 = 52.50000, 13.40000
M_PER_DEG_LAT = 111195.0
STATION_Y = 600.0  # metres north of the start


def lat_of(y):
    return LAT0 + y / M_PER_DEG_LAT


def nmea_coord(v, pos, neg, width):
    hemi = pos if v >= 0 else neg
    v = abs(v)
    deg = int(v)
    return "%0*d%08.5f" % (width, deg, (v - deg) * 60), hemi


def sentence(body):
    ck = 0
    for ch in body:
        ck ^= ord(ch)
    return "$%s*%02X" % (body, ck)


def route():
    """(t_s, y_m, speed_ms) per second: drive, park short, drive on, park at
    the station (long enough that gpsfake does not loop during the test)."""
    pts, y = [], 0.0
    for t in range(0, 10):  # 40 m/s north
        pts.append((t, y, 40.0))
        y += 40.0
    for t in range(10, 20):  # parked 200 m short of the station
        pts.append((t, 400.0, 0.0))
    y = 400.0
    for t in range(20, 25):  # 40 m/s on to the station
        y += 40.0
        pts.append((t, y, 40.0))
    for t in range(25, 300):  # parked at the station
        pts.append((t, STATION_Y, 0.0))
    return pts


def write_nmea(path):
    with open(path, "w") as f:
        for t, y, v in route():
            hhmmss = "15%02d%02d.00" % (t // 60, t % 60)
            lat, ns = nmea_coord(lat_of(y), "N", "S", 2)
            lon, ew = nmea_coord(LON0, "E", "W", 3)
            f.write(sentence("GPGGA,%s,%s,%s,%s,%s,1,09,0.9,40.0,M,47.0,M,," %
                             (hhmmss, lat, ns, lon, ew)) + "\n")
            f.write(sentence("GPRMC,%s,A,%s,%s,%s,%s,%.2f,0.0,011226,,,A" %
                             (hhmmss, lat, ns, lon, ew, v * 1.943844)) + "\n")


def signals_rows():
    """The replay: the tank draining 16.5 % -> 12 %, through 15 % at t = 3 s (the
    agents start a second or two into the route: still driving); no speed column, so the
    screen's speed gate uses GNSS speed, in step with the route."""
    rows, odo = [], 5000.0
    for t, y, _ in route()[:120]:
        fuel = max(12.0, 16.5 - t * 0.5)
        rows.append((t, "%.3f" % (odo + y / 1000.0), "%.1f" % fuel, ""))
    return rows


def rules_text(quiet):
    return """# test rules: see docs/promotions.md
[limits]
per_day = 1
per_week = 5
quiet_hours = %s
time_zone = UTC

[rule partner_fuel]
trigger = fuel_below 15
poi_category = fuel
search_radius_m = 5000
range_km_full_tank = 600
channel = in_car
kind = refuel
title = {station}: 5 ct/l off
body = Fuel at {fuel_pct} %%. {station} is {distance_km} km ahead. Show code {code}.
codes = generate FUEL- 8
valid_for = 2h
area_radius_m = 150
cooldown = 24h

[rule wash]
trigger = poi_enter car_wash 100
poi_category = car_wash
channel = in_car
kind = loyalty
title = {station}: a free wash
body = Show code {code} at {station}.
codes = generate WASH- 8
valid_for = 2h
area_radius_m = 300
cooldown = 24h
""" % quiet


def pois_csv(path):
    with open(path, "w") as f:
        f.write("id,name,category,lat,lon,brand,address\n")
        f.write("st-ahead,Aral Nord,fuel,%.7f,%.7f,Aral,Nordstrasse 1\n" %
                (lat_of(STATION_Y), LON0))
        f.write("st-behind,Shell Sued,fuel,%.7f,%.7f,Shell,Suedstrasse 1\n" %
                (lat_of(-300.0), LON0))
        f.write("st-far,Total Fern,fuel,%.7f,%.7f,Total,Fernweg 1\n" % (lat_of(20000.0), LON0))
        f.write("wash-1,Waschpark,car_wash,%.7f,%.7f,,Waschweg 2\n" % (lat_of(420.0), LON0))


def quiet_window():
    """Two hours that hold for Tokyo (UTC+9, no DST) now and not for UTC."""
    h = datetime.datetime.now(datetime.timezone.utc).hour
    return "%02d:00-%02d:00" % ((h + 9) % 24, (h + 11) % 24)


def test():
    with System("promotions") as s:
        s.make_pki(VIN_A, VIN_B)
        s.start_broker()
        nmea = s.path("north.nmea")
        write_nmea(nmea)
        rules = s.path("promotions.rules")
        with open(rules, "w") as f:
            f.write(rules_text(quiet_window()))
        s.start_gateway(promo_rules_file=rules)
        pois = s.path("pois.csv")
        pois_csv(pois)
        s.ctl("poi", "import", pois, json_out=False)
        s.ctl("vehicle", "set", VIN_A, "--time-zone", "UTC", json_out=False)
        s.ctl("vehicle", "set", VIN_B, "--time-zone", "Asia/Tokyo", json_out=False)

        s.start_gpsfake(nmea=nmea)
        signals = s.write_signals("signals.csv", signals_rows())
        s.start_agent(VIN_A, signals, name="agent-a", batch_max_samples="1",
                      batch_max_age_ms="1000")
        s.start_agent(VIN_B, signals, name="agent-b", batch_max_samples="1",
                      batch_max_age_ms="1000")
        screen_a = s.path("agent-a-state", "screen.txt")
        screen_b = s.path("agent-b-state", "screen.txt")

        offers = wait_for(lambda: s.ctl("offer", "list", "--vin", VIN_A)["items"] or None, 40,
                          "car A's offer")
        assert len(offers) == 1, offers
        offer = offers[0]
        assert offer["rule"] == "partner_fuel", offer
        assert "Aral Nord" in offer["title"], offer  # ahead, not the nearer one behind

        # Parked 200 m short of the station (t = 10..19 s): outside the
        # offer's area, so not on screen although the car stands still.
        def parked_short():
            v = s.ctl("vehicle", "show", VIN_A)
            return (v["speed_kmh"] == 0 and v["lat"] is not None and
                    abs(v["lat"] - lat_of(400.0)) * M_PER_DEG_LAT < 30)

        wait_for(parked_short, 40, "car A parked 200 m short of the station")
        time.sleep(2)  # the agent has ticked while parked there
        assert read_card(screen_a) is None, "shown outside its area"
        # Parked at the station: shown.
        card = wait_for(lambda: read_card(screen_a), 40, "the offer on car A's screen")
        assert card["offer_id"] == offer["id"], (card, offer)

        # The car wash at 420 m would have been a second offer: capped.
        supp_a = wait_for(lambda: [x for x in s.ctl("promo", "suppressed", "--vin", VIN_A)
                                   if x["rule"] == "wash"] or None, 30,
                          "car A's suppressed wash offer")
        assert {x["reason"] for x in supp_a} == {"cap_day"}, supp_a

        # Car B drove the same route in its quiet hours: nothing.
        supp_b = wait_for(lambda: [x for x in s.ctl("promo", "suppressed", "--vin", VIN_B)
                                   if x["rule"] == "partner_fuel"] or None, 30,
                          "car B's suppressed fuel offer")
        assert {x["reason"] for x in supp_b} == {"quiet_hours"}, supp_b
        assert s.ctl("offer", "list", "--vin", VIN_B)["items"] == [], "an offer in quiet hours"
        assert read_card(screen_b) is None
        assert len(s.ctl("offer", "list", "--vin", VIN_A)["items"]) == 1


if __name__ == "__main__":
    run(test)
