/*
 * Unit tests of agent/gnss.c's handling of gpsd reports, without a gpsd:
 * gnss.c is included (the chrony way) and each test fills the libgps report
 * (struct gps_data_t) the way gps_read() leaves it, then hands it to
 * gnss_take() and asks gnss_get() what a sample taken now would carry. A
 * report of no fix clears the position at once, also while the last fix is
 * still fresh. (tests/integration/test_agent_gnss.py checks the same with
 * gpsfake, the real libgps and the samples the agent stores.)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "gnss.c"

/* A client that believes it is connected; nothing is opened. */
static int setup(void **state)
{
	struct gnss *g = calloc(1, sizeof(*g));

	if (!g)
		return -1;
	g->connected = 1;
	g->fd = -1;
	*state = g;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

/* gpsd reports a fix of mode (MODE_2D, MODE_3D) at lat, lon. */
static void report_fix(struct gnss *g, int mode, double lat, double lon)
{
	memset(&g->gd, 0, sizeof(g->gd));
	g->gd.set = MODE_SET | LATLON_SET | SPEED_SET | TRACK_SET;
	g->gd.fix.mode = mode;
	g->gd.fix.latitude = lat;
	g->gd.fix.longitude = lon;
	g->gd.fix.speed = 12.5;
	g->gd.fix.track = 90;
	gnss_take(g);
}

/* gpsd reports mode without a position (MODE_NO_FIX, MODE_NOT_SEEN). */
static void report_no_fix(struct gnss *g, int mode)
{
	memset(&g->gd, 0, sizeof(g->gd));
	g->gd.set = MODE_SET;
	g->gd.fix.mode = mode;
	g->gd.fix.latitude = NAN;
	g->gd.fix.longitude = NAN;
	gnss_take(g);
}

static void test_fix_is_kept(void **state)
{
	struct gnss *g = *state;
	struct gnss_fix fix;

	report_fix(g, MODE_3D, 52.5, 13.4);
	assert_int_equal(gnss_get(g, loop_now_ms(), &fix), 0);
	assert_int_equal(fix.mode, FIX_3D);
	assert_true(fix.lat_deg == 52.5 && fix.lon_deg == 13.4);
	assert_true(fix.has_speed && fix.has_track);
	/* Stale after GNSS_STALE_MS without a report. */
	assert_int_equal(gnss_get(g, loop_now_ms() + GNSS_STALE_MS + 1, &fix), -ENODATA);
	assert_int_equal(fix.mode, FIX_NONE);
}

static void test_no_fix_clears_at_once(void **state)
{
	static const int modes[] = { MODE_NO_FIX, MODE_NOT_SEEN };
	struct gnss *g = *state;
	struct gnss_fix fix;

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		report_fix(g, MODE_3D, 52.5, 13.4);
		assert_int_equal(gnss_get(g, loop_now_ms(), &fix), 0);
		report_no_fix(g, modes[i]);
		/* The same millisecond: the fix is fresh by age, and gone. */
		assert_int_equal(gnss_get(g, g->fix.seen_ms, &fix), -ENODATA);
		assert_int_equal(fix.mode, FIX_NONE);
		assert_true(fix.lat_deg == 0 && fix.lon_deg == 0 && !fix.has_speed);
	}
	/* The next fix counts again. */
	report_fix(g, MODE_2D, 48.1, 11.6);
	assert_int_equal(gnss_get(g, loop_now_ms(), &fix), 0);
	assert_int_equal(fix.mode, FIX_2D);
	assert_true(fix.lat_deg == 48.1);
}

static void test_report_without_mode_keeps_fix(void **state)
{
	struct gnss *g = *state;
	struct gnss_fix fix;

	report_fix(g, MODE_3D, 52.5, 13.4);
	/* A SKY or VERSION report says nothing about the fix. */
	memset(&g->gd, 0, sizeof(g->gd));
	g->gd.set = SATELLITE_SET;
	gnss_take(g);
	assert_int_equal(gnss_get(g, loop_now_ms(), &fix), 0);
	assert_int_equal(fix.mode, FIX_3D);
}

static void test_fix_without_position_keeps_last(void **state)
{
	struct gnss *g = *state;
	struct gnss_fix fix;

	report_fix(g, MODE_3D, 52.5, 13.4);
	report_fix(g, MODE_3D, NAN, 13.4);
	assert_int_equal(gnss_get(g, loop_now_ms(), &fix), 0);
	assert_true(fix.lat_deg == 52.5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fix_is_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_fix_clears_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report_without_mode_keeps_fix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fix_without_position_keeps_last, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
