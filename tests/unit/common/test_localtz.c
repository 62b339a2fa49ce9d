/*
 * Unit tests of local time in named zones (common/localtz.c) against the
 * system's tz database (tzdata): which names are zones, offsets in winter
 * and summer, the cache, and that the process's own TZ is left as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "localtz.h"

/* 2026-01-15 12:00 and 2026-07-15 12:00 UTC, in ms. */
#define WINTER_MS 1768478400000LL
#define SUMMER_MS 1784116800000LL

static void test_valid_names(void **state)
{
	(void)state;
	assert_true(localtz_valid("UTC"));
	assert_true(localtz_valid("Europe/Berlin"));
	assert_true(localtz_valid("Asia/Tokyo"));
	assert_true(localtz_valid("America/Argentina/Buenos_Aires"));
	assert_true(localtz_valid("Etc/GMT+5"));
	assert_false(localtz_valid("Europe/Atlantis"));
	assert_false(localtz_valid("/etc/passwd"));
	assert_false(localtz_valid("../zoneinfo/UTC"));
	assert_false(localtz_valid("Europe")); /* a directory */
	assert_false(localtz_valid("Europe/Berlin;rm"));
	assert_false(localtz_valid(""));
	assert_false(localtz_valid(NULL));
}

static void test_offsets(void **state)
{
	struct localtz_cache c;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(localtz_offset(&c, "Europe/Berlin", WINTER_MS), 3600);
	assert_int_equal(localtz_offset(&c, "Europe/Berlin", SUMMER_MS), 7200);
	assert_int_equal(localtz_offset(&c, "Asia/Tokyo", SUMMER_MS), 9 * 3600);
	assert_int_equal(localtz_offset(&c, "America/New_York", WINTER_MS), -5 * 3600);
	assert_int_equal(localtz_offset(&c, "UTC", SUMMER_MS), 0);
	assert_int_equal(localtz_offset(&c, "", SUMMER_MS), 0);
	/* Cached: the same answers again, from the cache. */
	assert_int_equal(localtz_offset(&c, "Europe/Berlin", WINTER_MS), 3600);
	assert_int_equal(localtz_offset(&c, "Europe/Berlin", SUMMER_MS), 7200);
	/* More zones than the cache holds: still right. */
	for (int i = 0; i < 2 * LOCALTZ_CACHE; i++)
		assert_int_equal(localtz_offset(&c, i % 2 ? "Asia/Tokyo" : "Europe/Berlin",
						WINTER_MS + i * 3600000LL),
				 i % 2 ? 9 * 3600 : 3600);
}

static void test_process_tz_untouched(void **state)
{
	struct localtz_cache c;

	(void)state;
	memset(&c, 0, sizeof(c));
	setenv("TZ", "America/Sao_Paulo", 1);
	assert_int_equal(localtz_offset(&c, "Asia/Tokyo", WINTER_MS), 9 * 3600);
	assert_string_equal(getenv("TZ"), "America/Sao_Paulo");
	unsetenv("TZ");
	assert_int_equal(localtz_offset(&c, "Europe/Berlin", SUMMER_MS), 7200);
	assert_null(getenv("TZ"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_names),
		cmocka_unit_test(test_offsets),
		cmocka_unit_test(test_process_tz_untouched),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
