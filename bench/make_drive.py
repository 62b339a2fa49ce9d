#!/usr/bin/env python3
"""Makes the one-hour drive of bench/data_budget.py, deterministically.

Writes tests/data/drive_hour.nmea (1 Hz GGA + RMC, as a u-blox receiver
behind gpsd gives them: 5 decimals of a minute, speed in knots with 3
decimals, course with 2) and tests/data/drive_hour.csv (the signals replay
file: t_s,odometer_km,fuel_pct,speed_kmh). The drive, around Munich:

  0-90 s       parked, engine on (GNSS noise only)
  city         blocks of 120-400 m at 30-50 km/h; at each corner a 90 degree
               turn, a red light (10-45 s stop) or straight on
  motorway     on-ramp, 120-130 km/h with long curves, a slow stretch at
               80 km/h, a 25 s tunnel without a fix
  city         back to the end, then parked for the last 2 minutes

It aims at the month of docs/performance.md: 40 hours and 1,500 km, so
about 37.5 km in the hour. The same seed gives the same bytes.

usage: bench/make_drive.py [OUT_DIR]   (default tests/data)
"""
import math
import os
import random
import sys

SEED = 9
DURATION = 3600
LAT0, LON0 = 48.137154, 11.576124  # Marienplatz
TANK_L = 50.0
DATE = "011226"

rng = random.Random(SEED)


def city_plan(n_blocks):
    """Segments (length_m, speed_kmh, end, arg); end: 'turn' deg, 'stop' s, 'none'."""
    plan = []
    for _ in range(n_blocks):
        length = rng.uniform(120, 400)
        speed = rng.choice([30, 30, 40, 50, 50])
        r = rng.random()
        if r < 0.35:
            plan.append((length, speed, "turn", rng.choice([-90, 90])))
        elif r < 0.65:
            plan.append((length, speed, "stop", rng.uniform(10, 45)))
        else:
            plan.append((length, speed, "none", 0))
    return plan


def motorway_plan():
    plan = [(600, 80, "curve", 60)]  # on-ramp
    for _ in range(6):
        plan.append((rng.uniform(1500, 3000), rng.choice([120, 130]), "curve",
                     rng.uniform(-25, 25)))
    plan.append((3000, 80, "none", 0))  # roadworks
    for _ in range(2):
        plan.append((rng.uniform(1500, 2500), 120, "curve", rng.uniform(-20, 20)))
    plan.append((700, 70, "curve", -80))  # off-ramp
    return plan


class Car:
    def __init__(self):
        self.x = self.y = 0.0  # metres east, north
        self.v = 0.0  # m/s
        self.heading = 75.0  # degrees from north
        self.odo = 42195000.0  # metres
        self.fuel = 62.0  # percent
        self.t = 0
        self.rows = []  # (t, x, y, v, heading, odo, fuel, gnss_ok)
        self.tunnel = None

    def record(self):
        ok = not (self.tunnel and self.tunnel[0] <= self.t < self.tunnel[1])
        self.rows.append((self.t, self.x, self.y, self.v, self.heading, self.odo,
                          self.fuel, ok))
        self.t += 1

    def step(self, dt, target, turn_per_m, litres_per_100km):
        accel, decel = 1.6, 2.2
        dv = max(-decel * dt, min(accel * dt, target - self.v))
        self.v = max(0.0, self.v + dv)
        d = self.v * dt
        self.heading = (self.heading + turn_per_m * d) % 360
        h = math.radians(self.heading)
        self.x += d * math.sin(h)
        self.y += d * math.cos(h)
        self.odo += d
        idle = 0.8 / 3600 * dt  # litres an idling engine burns
        self.fuel -= (d / 1000 * litres_per_100km / 100 + idle) / TANK_L * 100

    def drive(self, length, speed_kmh, end_speed, turn_per_m, lp100):
        """Drives length metres, braking to end_speed (m/s) at its end."""
        done = 0.0
        target = speed_kmh / 3.6
        while done < length and self.t < DURATION:
            for _ in range(10):
                left = length - done
                allowed = math.sqrt(end_speed ** 2 + 2 * 2.0 * max(0.0, left))
                before = self.odo
                self.step(0.1, min(target, allowed), turn_per_m, lp100)
                done += self.odo - before
                if self.v < 0.05 and left < 1.0:
                    done = length
            self.record()

    def wait(self, seconds):
        for _ in range(int(seconds)):
            if self.t >= DURATION:
                return
            for _ in range(10):
                self.step(0.1, 0.0, 0.0, 0.0)
            self.record()

    def run_city(self, plan):
        for length, speed, end, arg in plan:
            if end == "turn":
                self.drive(length, speed, 4.0, 0.0, 8.0)
                self.drive(15, 15, 4.0, arg / 15.0, 8.0)  # a corner: a 15 m arc
            elif end == "stop":
                self.drive(length, speed, 0.0, 0.0, 8.0)
                self.wait(arg)
            else:
                self.drive(length, speed, speed / 3.6, 0.0, 8.0)

    def run_motorway(self, plan):
        for length, speed, end, arg in plan:
            turn = arg / length if end == "curve" else 0.0
            self.drive(length, speed, speed / 3.6 * 0.9, turn, 6.5)


def nmea(body):
    cs = 0
    for ch in body:
        cs ^= ord(ch)
    return "$%s*%02X\n" % (body, cs)


def deg_min(v, width):
    d = int(abs(v))
    return "%0*d%08.5f" % (width, d, (abs(v) - d) * 60)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
    car = Car()
    car.wait(90)
    car.run_city(city_plan(38))
    car.tunnel = (car.t + 500, car.t + 525)
    car.run_motorway(motorway_plan())
    car.run_city(city_plan(60))
    car.wait(DURATION - car.t)
    rows = car.rows[:DURATION]

    ex = ey = 0.0  # GNSS error: a slow random walk, ~0.3 m
    last_course = rows[0][4]
    nmea_lines, csv_lines = [], ["# t_s,odometer_km,fuel_pct,speed_kmh"]
    m_per_deg_lat = 111132.0
    m_per_deg_lon = 111320.0 * math.cos(math.radians(LAT0))
    fuel_shown = rows[0][6]
    for t, x, y, v, heading, odo, fuel, ok in rows:
        ex = 0.97 * ex + rng.gauss(0, 0.05)
        ey = 0.97 * ey + rng.gauss(0, 0.05)
        hh, mm, ss = 8 + t // 3600, (t // 60) % 60, t % 60
        stamp = "%02d%02d%02d.00" % (hh, mm, ss)
        if ok:
            lat = LAT0 + (y + ey) / m_per_deg_lat
            lon = LON0 + (x + ex) / m_per_deg_lon
            spd = max(0.0, v + rng.gauss(0, 0.03)) if v > 0.1 else abs(rng.gauss(0, 0.02))
            if v > 0.5:  # receivers hold the course at walking speed and below
                last_course = (heading + rng.gauss(0, 0.3)) % 360
            lat_s, lon_s = deg_min(lat, 2), deg_min(lon, 3)
            nmea_lines.append(nmea("GPGGA,%s,%s,N,%s,E,1,10,0.8,519.0,M,47.0,M,," %
                                   (stamp, lat_s, lon_s)))
            nmea_lines.append(nmea("GPRMC,%s,A,%s,N,%s,E,%.3f,%.2f,%s,,,A" %
                                   (stamp, lat_s, lon_s, spd * 1.943844, last_course, DATE)))
        else:
            nmea_lines.append(nmea("GPGGA,%s,,,,,0,00,99.9,,,,,," % stamp))
            nmea_lines.append(nmea("GPRMC,%s,V,,,,,,,%s,,,N" % (stamp, DATE)))
        # a level sensor: filtered, shown in 0.1 % steps, never rising by sloshing
        if fuel < fuel_shown - 0.1:
            fuel_shown = round(fuel, 1)
        csv_lines.append("%d,%.3f,%.1f,%.1f" % (t, odo / 1000, fuel_shown, v * 3.6))
    with open(os.path.join(out, "drive_hour.nmea"), "w") as f:
        f.writelines(nmea_lines)
    with open(os.path.join(out, "drive_hour.csv"), "w") as f:
        f.write("\n".join(csv_lines) + "\n")
    dist = (rows[-1][5] - rows[0][5]) / 1000
    print("drive: %d s, %.1f km, fuel %.1f -> %.1f %%" % (len(rows), dist, rows[0][6],
                                                      rows[-1][6]))


if __name__ == "__main__":
    main()
