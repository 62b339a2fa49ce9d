/*
 * Unit tests of agent/sampler.c: every rule that keeps a sample (first,
 * distance, heading only while moving, fuel, presence, the maximum
 * interval), parking (after parked_after_s standing, once; the heartbeat;
 * refuelling while parked; starting again), non-adaptive sampling keeping
 * everything, the batch-due rule, the distance and sample building.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "gnss.h"
#include "sampler.h"
#include "signals.h"

static const struct sampler_config conf = {
	.adaptive = 1,
	.min_distance_m = 50,
	.min_heading_deg = 15,
	.min_fuel_pct = 0.5,
	.max_interval_s = 30,
	.parked_after_s = 60,
	.parked_heartbeat_s = 600,
};

/* A sample at north_m metres north of 48.1 N, 11.5 E, moving at speed_cms. */
static struct sample at(double north_m, int speed_cms, int heading_cdeg, int fuel)
{
	struct sample s = {
		.present = SAMPLE_POSITION | SAMPLE_SPEED | SAMPLE_HEADING | SAMPLE_FUEL,
		.fix = FIX_3D,
		.lat_e7 = 481000000 + (int32_t)lround(north_m / 111194.9 * 1e7),
		.lon_e7 = 115000000,
		.speed_cms = speed_cms,
		.heading_cdeg = heading_cdeg,
		.fuel_permille = fuel,
	};
	return s;
}

static void test_not_adaptive_keeps_all(void **state)
{
	struct sampler_config c = conf;
	struct sampler sp;
	struct sample s = at(0, 0, 0, 500);

	(void)state;
	c.adaptive = 0;
	sampler_init(&sp);
	for (uint64_t t = 0; t < 1000000; t += 1000)
		assert_int_equal(sampler_feed(&sp, &c, &s, t), SAMPLER_KEEP);
}

static void test_distance_rule(void **state)
{
	struct sampler sp;
	struct sample s;

	(void)state;
	sampler_init(&sp);
	s = at(0, 1000, 0, 500);
	assert_int_equal(sampler_feed(&sp, &conf, &s, 0), SAMPLER_KEEP); /* first */
	s = at(10, 1000, 0, 500);
	assert_int_equal(sampler_feed(&sp, &conf, &s, 1000), 0);
	s = at(49, 1000, 0, 500);
	assert_int_equal(sampler_feed(&sp, &conf, &s, 2000), 0);
	s = at(51, 1000, 0, 500);
	assert_int_equal(sampler_feed(&sp, &conf, &s, 3000), SAMPLER_KEEP);
	s = at(90, 1000, 0, 500); /* 39 m after the last kept one */
	assert_int_equal(sampler_feed(&sp, &conf, &s, 4000), 0);
}

static void test_heading_only_while_moving(void **state)
{
	struct sampler sp;
	struct sample s;

	(void)state;
	sampler_init(&sp);
	s = at(0, 500, 35900, 500);
	assert_int_equal(sampler_feed(&sp, &conf, &s, 0), SAMPLER_KEEP);
	s = at(1, 500, 1000, 500); /* 11 degrees across north */
	assert_int_equal(sampler_feed(&sp, &conf, &s, 1000), 0);
	s = at(2, 500, 1500, 500); /* 16 */
	assert_int_equal(sampler_feed(&sp, &conf, &s, 2000), SAMPLER_KEEP);
	s = at(2, 0, 9000, 500); /* standing: the track is noise */
	assert_int_equal(sampler_feed(&sp, &conf, &s, 3000), 0);
}

static void test_fuel_presence_and_interval(void **state)
{
	struct sampler sp;
	struct sample s;

	(void)state;
	sampler_init(&sp);
	s = at(0, 300, 0, 500);
	assert_int_equal(sampler_feed(&sp, &conf, &s, 0), SAMPLER_KEEP);
	s = at(1, 300, 0, 496); /* 0.4 % */
	assert_int_equal(sampler_feed(&sp, &conf, &s, 1000), 0);
	s = at(2, 300, 0, 495); /* 0.5 % */
	assert_int_equal(sampler_feed(&sp, &conf, &s, 2000), SAMPLER_KEEP);
	s.present &= ~(unsigned)(SAMPLE_POSITION | SAMPLE_HEADING); /* fix lost */
	s.fix = FIX_NONE;
	assert_int_equal(sampler_feed(&sp, &conf, &s, 3000), SAMPLER_KEEP);
	assert_int_equal(sampler_feed(&sp, &conf, &s, 4000), 0);
	assert_int_equal(sampler_feed(&sp, &conf, &s, 32999), 0);
	assert_int_equal(sampler_feed(&sp, &conf, &s, 33000), SAMPLER_KEEP); /* 30 s */
}

static void test_parking_heartbeat_refuel_start(void **state)
{
	struct sampler sp;
	struct sample s;
	unsigned parked = 0, kept = 0;
	uint64_t t;

	(void)state;
	sampler_init(&sp);
	s = at(0, 800, 0, 300);
	assert_int_equal(sampler_feed(&sp, &conf, &s, 0), SAMPLER_KEEP);
	/* stops at 1 s; GNSS wanders by 2 m while it stands */
	for (t = 1000; t <= 3600000; t += 1000) {
		unsigned r;

		s = at((t / 1000) % 2 ? 2 : 0, 5, 0, 300);
		r = sampler_feed(&sp, &conf, &s, t);
		if (r & SAMPLER_PARKED) {
			assert_int_equal(t, 61000); /* standing since 1 s, for 60 s */
			assert_true(r & SAMPLER_KEEP);
			parked++;
		}
		kept += r & SAMPLER_KEEP ? 1 : 0;
	}
	assert_int_equal(parked, 1);
	/* 30 s and 60 s (max interval), 61 s (parked), then every 600 s until 3600 s */
	assert_int_equal(kept, 3 + 5);
	/* refuelling while parked */
	s = at(0, 0, 0, 900);
	assert_int_equal(sampler_feed(&sp, &conf, &s, t), SAMPLER_KEEP);
	assert_int_equal(sampler_feed(&sp, &conf, &s, t + 1000), 0);
	/* starting again is kept at once */
	s = at(0, 200, 0, 900);
	assert_int_equal(sampler_feed(&sp, &conf, &s, t + 2000), SAMPLER_KEEP);
	/* and parks again only after another 60 s standing */
	s = at(0, 0, 0, 900);
	assert_false(sampler_feed(&sp, &conf, &s, t + 3000) & SAMPLER_PARKED);
	assert_false(sampler_feed(&sp, &conf, &s, t + 62000) & SAMPLER_PARKED);
	assert_true(sampler_feed(&sp, &conf, &s, t + 63000) & SAMPLER_PARKED);
}

/* Without speed, movement is what the position (or odometer) says. */
static void test_no_speed_uses_movement(void **state)
{
	struct sampler sp;
	struct sample s = { .present = SAMPLE_ODOMETER, .odometer_m = 1000 };
	uint64_t t;

	(void)state;
	sampler_init(&sp);
	assert_int_equal(sampler_feed(&sp, &conf, &s, 0), SAMPLER_KEEP);
	for (t = 1000; t < 120000; t += 1000) {
		s.odometer_m += 20; /* 20 m/s by the odometer */
		assert_false(sampler_feed(&sp, &conf, &s, t) & SAMPLER_PARKED);
	}
}

static void test_batch_due(void **state)
{
	(void)state;
	assert_false(sampler_batch_due(0, 0, 1000000, 10, 1000));
	assert_false(sampler_batch_due(9, 0, 999, 10, 1000));
	assert_true(sampler_batch_due(10, 0, 0, 10, 1000));
	assert_true(sampler_batch_due(1, 0, 1000, 10, 1000));
}

static void test_distance(void **state)
{
	(void)state;
	assert_true(fabs(sampler_distance_m(481000000, 115000000, 481010000, 115000000) - 111.2) <
		    0.2);
	assert_true(fabs(sampler_distance_m(0, 1799999000, 0, -1799999000) - 22.2) < 0.1);
	assert_true(sampler_distance_m(481000000, 115000000, 481000000, 115000000) == 0);
}

static void test_build(void **state)
{
	struct vehicle_signals vs = {
		.present = SIGNAL_ODOMETER | SIGNAL_FUEL | SIGNAL_SPEED,
		.odometer_km = 42195.0126,
		.fuel_pct = 55.55,
		.speed_kmh = 36,
	};
	struct gnss_fix fix = {
		.mode = FIX_3D,
		.lat_deg = 48.1,
		.lon_deg = -11.5,
		.has_speed = 1,
		.speed_ms = 9.87,
		.has_track = 1,
		.track_deg = 359.999,
	};
	struct sample s;

	(void)state;
	sampler_build(&vs, &fix, 1, 1234, &s);
	assert_int_equal(s.time_ms, 1234);
	assert_int_equal(s.present, SAMPLE_ODOMETER | SAMPLE_FUEL | SAMPLE_POSITION | SAMPLE_SPEED |
					    SAMPLE_HEADING);
	assert_int_equal(s.odometer_m, 42195013);
	assert_int_equal(s.fuel_permille, 556);
	assert_int_equal(s.lat_e7, 481000000);
	assert_int_equal(s.lon_e7, -115000000);
	assert_int_equal(s.speed_cms, 987); /* the fix's speed wins */
	assert_int_equal(s.heading_cdeg, 0);
	sampler_build(&vs, &fix, 0, 1234, &s); /* stale fix: the vehicle's speed */
	assert_int_equal(s.present, SAMPLE_ODOMETER | SAMPLE_FUEL | SAMPLE_SPEED);
	assert_int_equal(s.speed_cms, 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_adaptive_keeps_all),
		cmocka_unit_test(test_distance_rule),
		cmocka_unit_test(test_heading_only_while_moving),
		cmocka_unit_test(test_fuel_presence_and_interval),
		cmocka_unit_test(test_parking_heartbeat_refuel_start),
		cmocka_unit_test(test_no_speed_uses_movement),
		cmocka_unit_test(test_batch_due),
		cmocka_unit_test(test_distance),
		cmocka_unit_test(test_build),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
