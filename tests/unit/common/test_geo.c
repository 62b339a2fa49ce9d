/*
 * Unit tests of common/geo.c: known distances (Paris-London, a quarter
 * meridian, Sydney-Santiago across the antimeridian), every hemisphere,
 * the antimeridian and the poles; bearings and heading differences; "ahead
 * of the car"; and the boxes of a circle: every point within the radius of
 * random circles anywhere (poles and antimeridian included) lies in a box,
 * and the boxes are tight (their extreme longitude is on the circle).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>

#include "geo.h"

#define NEAR(a, b, tol) assert_true(fabs((a) - (b)) <= (tol))

static void test_distance_known(void **state)
{
	(void)state;
	/* Paris - London: 343.56 km on the mean sphere. */
	NEAR(geo_distance_m(48.8566, 2.3522, 51.5074, -0.1278), 343556.5, 1.0);
	NEAR(geo_distance_m(51.5074, -0.1278, 48.8566, 2.3522), 343556.5, 1.0);
	/* Mirrored into the southern and eastern/western hemispheres. */
	NEAR(geo_distance_m(-48.8566, -2.3522, -51.5074, 0.1278), 343556.5, 1.0);
	NEAR(geo_distance_m(-48.8566, 177.6478, -51.5074, -179.8722), 343556.5, 1.0);
	/* A quarter meridian: pi/2 R. */
	NEAR(geo_distance_m(0, 0, 90, 0), M_PI / 2 * GEO_EARTH_R_M, 0.01);
	NEAR(geo_distance_m(0, -75, -90, 10), M_PI / 2 * GEO_EARTH_R_M, 0.01);
	/* Sydney - Santiago de Chile, over the antimeridian: 11,347 km. */
	NEAR(geo_distance_m(-33.8688, 151.2093, -33.4489, -70.6693), 11346731, 10);
	NEAR(geo_distance_m(10, 20, 10, 20), 0, 1e-9);
	/* Antipodes: half the circumference, no NaN from rounding. */
	NEAR(geo_distance_m(30, 40, -30, -140), M_PI * GEO_EARTH_R_M, 0.01);
}

static void test_distance_antimeridian_poles(void **state)
{
	(void)state;
	/* 179.99 and -179.99 are 0.02 degrees apart, not 359.98. */
	NEAR(geo_distance_m(0, 179.99, 0, -179.99), 2223.9, 0.1);
	NEAR(geo_distance_m(0, -180, 0, 180), 0, 1e-6);
	NEAR(geo_distance_m(-45, 179.99, -45, -179.99), 2223.9 * cos(M_PI / 4), 0.1);
	/* Over the pole: 89.9 N at 0 and at 180 are 0.2 degrees of latitude apart. */
	NEAR(geo_distance_m(89.9, 0, 89.9, 180), 22239.0, 0.1);
	NEAR(geo_distance_m(-89.9, 90, -89.9, -90), 22239.0, 0.1);
	/* At the pole every longitude is the same point. */
	NEAR(geo_distance_m(90, 0, 90, 123), 0, 1e-6);
	NEAR(geo_distance_m(-90, -170, -90, 45), 0, 1e-6);
}

static void test_bearing(void **state)
{
	(void)state;
	NEAR(geo_bearing_deg(0, 0, 1, 0), 0, 1e-9);
	NEAR(geo_bearing_deg(0, 0, 0, 1), 90, 1e-9);
	NEAR(geo_bearing_deg(0, 0, -1, 0), 180, 1e-9);
	NEAR(geo_bearing_deg(0, 0, 0, -1), 270, 1e-9);
	NEAR(geo_bearing_deg(48.8566, 2.3522, 51.5074, -0.1278), 330.02, 0.01);
	/* East across the antimeridian, and west back. */
	NEAR(geo_bearing_deg(0, 179.99, 0, -179.99), 90, 1e-6);
	NEAR(geo_bearing_deg(0, -179.99, 0, 179.99), 270, 1e-6);
	/* Southern hemisphere, due south and due north. */
	NEAR(geo_bearing_deg(-33, 151, -34, 151), 180, 1e-9);
	NEAR(geo_bearing_deg(-34, -70, -33, -70), 0, 1e-9);
	/* From near the north pole everything is south. */
	NEAR(geo_bearing_deg(89.999, 0, 89.999, 180), 0, 1e-6); /* over the pole: north */
	NEAR(geo_bearing_deg(89.0, 30, 88.0, 30), 180, 1e-9);
	for (int i = 0; i < 1000; i++) {
		double b = geo_bearing_deg(rand() % 180 - 90, rand() % 360 - 180, rand() % 180 - 90,
					   rand() % 360 - 180);

		assert_true(b >= 0 && b < 360);
	}
}

static void test_heading_diff(void **state)
{
	(void)state;
	NEAR(geo_heading_diff_deg(350, 10), 20, 1e-9);
	NEAR(geo_heading_diff_deg(10, 350), 20, 1e-9);
	NEAR(geo_heading_diff_deg(0, 180), 180, 1e-9);
	NEAR(geo_heading_diff_deg(90, 90), 0, 1e-9);
	NEAR(geo_heading_diff_deg(-10, 10), 20, 1e-9);
	NEAR(geo_heading_diff_deg(725, 0), 5, 1e-9);
	NEAR(geo_heading_diff_deg(0, 359.5), 0.5, 1e-9);
}

static void test_is_ahead(void **state)
{
	(void)state;
	/* Heading east from Munich. */
	assert_true(geo_is_ahead(48.1, 11.5, 90, 48.1, 11.6, 45));
	assert_false(geo_is_ahead(48.1, 11.5, 90, 48.1, 11.4, 45));
	assert_false(geo_is_ahead(48.1, 11.5, 90, 48.2, 11.5, 45)); /* north: 90 off */
	assert_true(geo_is_ahead(48.1, 11.5, 90, 48.2, 11.5, 91));
	assert_true(geo_is_ahead(48.1, 11.5, 0, 48.2, 11.5, 10));
	/* Closer than GEO_AHEAD_NEAR_M: ahead whatever the direction. */
	assert_true(geo_is_ahead(48.1, 11.5, 90, 48.1, 11.5 - 0.0002, 45)); /* ~15 m behind */
	assert_false(geo_is_ahead(48.1, 11.5, 90, 48.1, 11.5 - 0.002, 45)); /* ~150 m behind */
	/* Across the antimeridian: east of 179.9 is -179.9. */
	assert_true(geo_is_ahead(0, 179.9, 90, 0, -179.9, 30));
	assert_false(geo_is_ahead(0, 179.9, 270, 0, -179.9, 30));
	/* Southern hemisphere, heading north-west (315). */
	assert_true(geo_is_ahead(-33.9, 151.2, 315, -33.8, 151.08, 30));
	assert_false(geo_is_ahead(-33.9, 151.2, 315, -34.0, 151.3, 30));
	/* Heading 350 and a point at bearing 10: 20 off across north. */
	assert_true(geo_is_ahead(0, 0, 350, 1, tan(10 * M_PI / 180), 25));
}

static int in_boxes(const struct geo_box *b, int n, double lat, double lon)
{
	for (int i = 0; i < n; i++)
		if (lat >= b[i].lat_min && lat <= b[i].lat_max && lon >= b[i].lon_min &&
		    lon <= b[i].lon_max)
			return 1;
	return 0;
}

static double urand(double lo, double hi)
{
	return lo + (hi - lo) * (rand() / (double)RAND_MAX);
}

static void test_boxes_shapes(void **state)
{
	struct geo_box b[2];
	double dlat = 5000 / GEO_EARTH_R_M * 180 / M_PI;
	int n;

	(void)state;
	n = geo_circle_boxes(48, 11, 5000, b);
	assert_int_equal(n, 1);
	NEAR(b[0].lat_min, 48 - dlat, 1e-12);
	NEAR(b[0].lat_max, 48 + dlat, 1e-12);
	NEAR(b[0].lon_max - 11, asin(sin(5000 / GEO_EARTH_R_M) / cos(48 * M_PI / 180)) * 180 / M_PI,
	     1e-12);
	/* East of the antimeridian: [lon_min, 180] and [-180, ...]. */
	n = geo_circle_boxes(0, 179.99, 5000, b);
	assert_int_equal(n, 2);
	NEAR(b[0].lon_max, 180, 0);
	NEAR(b[1].lon_min, -180, 0);
	assert_true(b[0].lon_min < b[0].lon_max && b[1].lon_min < b[1].lon_max);
	NEAR(b[1].lon_max, -180 + (0.01 + dlat - 0.02), 1e-9);
	/* West of it. */
	n = geo_circle_boxes(-40, -179.995, 5000, b);
	assert_int_equal(n, 2);
	assert_true(b[0].lon_min == -180 && b[1].lon_max == 180);
	/* Around the poles: one box, every longitude. */
	n = geo_circle_boxes(89.99, 17, 5000, b);
	assert_int_equal(n, 1);
	assert_true(b[0].lon_min == -180 && b[0].lon_max == 180 && b[0].lat_max == 90);
	n = geo_circle_boxes(-89.98, -120, 5000, b);
	assert_int_equal(n, 1);
	assert_true(b[0].lon_min == -180 && b[0].lon_max == 180 && b[0].lat_min == -90);
	n = geo_circle_boxes(90, 0, 1, b);
	assert_int_equal(n, 1);
	assert_true(b[0].lon_min == -180 && b[0].lon_max == 180);
}

/* The extreme longitude of the box lies on the circle: the box is tight. */
static void test_boxes_tight(void **state)
{
	static const double lats[] = { 0, 30, -45, 60, -75, 85, 89 };
	static const double radii[] = { 1000, 5000, 50000, 100000 };

	(void)state;
	for (size_t i = 0; i < sizeof(lats) / sizeof(lats[0]); i++)
		for (size_t j = 0; j < sizeof(radii) / sizeof(radii[0]); j++) {
			struct geo_box b[2];
			double d = radii[j] / GEO_EARTH_R_M, lat_t;

			if (geo_circle_boxes(lats[i], 10, radii[j], b) != 1 ||
			    b[0].lon_max - b[0].lon_min >= 360)
				continue;
			/* The meridian lon_max touches the circle at this latitude. */
			lat_t = asin(sin(lats[i] * M_PI / 180) / cos(d)) * 180 / M_PI;
			NEAR(geo_distance_m(lats[i], 10, lat_t, b[0].lon_max), radii[j], 0.01);
		}
}

/* Random circles anywhere: every point within the radius is in a box. */
static void test_boxes_hold_circle(void **state)
{
	(void)state;
	srand(11);
	for (int c = 0; c < 3000; c++) {
		double lat = c % 3 == 0 ? urand(80, 90) * (c % 2 ? 1 : -1) : urand(-90, 90);
		double lon = c % 5 == 0 ? urand(179, 180) * (c % 2 ? 1 : -1) : urand(-180, 180);
		double r = urand(10, c % 7 == 0 ? 2000000 : 50000);
		struct geo_box b[2];
		int n = geo_circle_boxes(lat, lon, r, b);

		assert_true(n == 1 || n == 2);
		for (int i = 0; i < n; i++) {
			assert_true(b[i].lon_min <= b[i].lon_max);
			assert_true(b[i].lon_min >= -180 && b[i].lon_max <= 180);
			assert_true(b[i].lat_min >= -90 && b[i].lat_max <= 90);
		}
		for (int k = 0; k < 200; k++) {
			/* Points at random bearings and distances up to r (spherical destination). */
			double d = urand(0, 1) * r / GEO_EARTH_R_M, th = urand(0, 2 * M_PI);
			double p1 = lat * M_PI / 180, l1 = lon * M_PI / 180;
			double p2 = asin(sin(p1) * cos(d) + cos(p1) * sin(d) * cos(th));
			double l2 =
				l1 + atan2(sin(th) * sin(d) * cos(p1), cos(d) - sin(p1) * sin(p2));
			double plat = p2 * 180 / M_PI, plon = remainder(l2 * 180 / M_PI, 360);

			if (geo_distance_m(lat, lon, plat, plon) > r)
				continue;
			if (!in_boxes(b, n, plat, plon))
				fail_msg("(%.6f, %.6f) is %.1f m from (%.6f, %.6f), within %.1f, "
					 "outside the boxes",
					 plat, plon, geo_distance_m(lat, lon, plat, plon), lat, lon,
					 r);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_distance_known),
		cmocka_unit_test(test_distance_antimeridian_poles),
		cmocka_unit_test(test_bearing),
		cmocka_unit_test(test_heading_diff),
		cmocka_unit_test(test_is_ahead),
		cmocka_unit_test(test_boxes_shapes),
		cmocka_unit_test(test_boxes_tight),
		cmocka_unit_test(test_boxes_hold_circle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
