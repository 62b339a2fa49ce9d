/*
 * Unit tests of gateway/app/activity.c with made-up clocks: the line shows
 * the deltas since the last line (rejects only by the reasons that
 * occurred), cars count once however often they send, drop out after
 * ACTIVITY_ONLINE_MS, and the table grows, shrinks and keeps every car.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "activity.h"
#include "counters.h"

/* A syntactically valid VIN numbered i (i < 10^6). */
static void vin_of(unsigned i, char vin[18])
{
	snprintf(vin, 18, "WP0ZZZ99ZTS%06u", i);
}

static void test_line_shows_deltas(void **state)
{
	struct counters c;
	struct activity *a = NULL;
	char line[512];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.stored = 100; /* loaded from the database: not this run's */
	c.rejected[REJECT_MALFORMED] = 7;
	assert_int_equal(activity_new(&c, 1000, &a), 0);
	c.stored += 12;
	c.samples_stored = 360;
	c.duplicates = 1;
	c.offers_sent = 2;
	c.acks_sent = 11;
	c.rejected[REJECT_MALFORMED] += 3;
	c.rejected[REJECT_BAD_VIN] = 1;
	assert_int_equal(activity_seen(a, "WP0ZZZ99ZTS392124", 5000), 0);
	assert_int_equal(activity_seen(a, "WP0ZZZ99ZTS392124", 6000), 0);
	assert_int_equal(activity_seen(a, "WVWZZZ1JZXW000001", 7000), 0);
	assert_int_equal(activity_line(a, &c, 61000, line, sizeof(line)), 12);
	assert_string_equal(line, "last 60 s: batches=12 samples=360 duplicates=1 offers=2 "
				  "receipts=11 rejected.bad_vin=1 rejected.malformed=3 "
				  "cars_online=2");
	/* Nothing since: zeros, no rejects listed. */
	assert_int_equal(activity_line(a, &c, 121000, line, sizeof(line)), 0);
	assert_string_equal(line, "last 60 s: batches=0 samples=0 duplicates=0 offers=0 "
				  "receipts=0 cars_online=2");
	/* A short buffer is cut, never overrun. */
	c.stored++;
	activity_line(a, &c, 181000, line, 20);
	assert_int_equal(strlen(line), 19);
	activity_free(a);
	activity_free(NULL);
}

static void test_cars_drop_out(void **state)
{
	struct counters c;
	struct activity *a = NULL;
	int more = -1;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(activity_new(&c, 0, &a), 0);
	assert_int_equal(activity_seen(a, "WP0ZZZ99ZTS392124", 1000), 0);
	assert_int_equal(activity_seen(a, "WVWZZZ1JZXW000001", 100000), 0);
	assert_int_equal(activity_online(a, 1000 + ACTIVITY_ONLINE_MS, &more), 2);
	assert_int_equal(more, 0);
	assert_int_equal(activity_online(a, 1001 + ACTIVITY_ONLINE_MS, NULL), 1);
	/* Seen again: online again. */
	assert_int_equal(activity_seen(a, "WP0ZZZ99ZTS392124", 2000 + ACTIVITY_ONLINE_MS), 0);
	assert_int_equal(activity_online(a, 2000 + ACTIVITY_ONLINE_MS, NULL), 2);
	assert_int_equal(activity_online(a, 10 * ACTIVITY_ONLINE_MS, NULL), 0);
	activity_free(a);
}

static void test_many_cars(void **state)
{
	struct counters c;
	struct activity *a = NULL;
	char vin[18];

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(activity_new(&c, 0, &a), 0);
	for (unsigned i = 0; i < 5000; i++) {
		vin_of(i, vin);
		assert_int_equal(activity_seen(a, vin, 1000 + i), 0);
	}
	for (unsigned i = 0; i < 5000; i += 2) { /* again: no new entries */
		vin_of(i, vin);
		assert_int_equal(activity_seen(a, vin, 10000), 0);
	}
	assert_int_equal(activity_online(a, 10000, NULL), 5000);
	/* Only the even ones were seen recently enough. */
	assert_int_equal(activity_online(a, 6001 + ACTIVITY_ONLINE_MS, NULL), 2500);
	for (unsigned i = 0; i < 5000; i += 2) {
		vin_of(i, vin);
		assert_int_equal(activity_seen(a, vin, 7000 + ACTIVITY_ONLINE_MS), 0);
	}
	assert_int_equal(activity_online(a, 7000 + ACTIVITY_ONLINE_MS, NULL), 2500);
	activity_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_shows_deltas),
		cmocka_unit_test(test_cars_drop_out),
		cmocka_unit_test(test_many_cars),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
