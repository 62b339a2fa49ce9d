/*
 * Unit tests of the bus's reconnect backoff (common/bus.c,
 * bus_backoff_delay_ms): every wait lies within [BUS_BACKOFF_FLOOR_MS,
 * ceiling]; the waits spread over that range (full jitter: some in its lowest
 * quarter, some in its highest); a ceiling at or below the floor gives the
 * floor; one seed gives one sequence (tests can rely on it), two seeds
 * different ones (two cars do not retry in step). Pure arithmetic: no broker,
 * no time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bus.h"

#define DRAWS 2000

/* The ceilings the bus uses: 1 s doubling to 30 s. */
static const unsigned ceilings[] = { 1000, 2000, 4000, 8000, 16000, 30000 };

static void test_bounds_and_spread(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(ceilings) / sizeof(ceilings[0]); c++) {
		unsigned ceil = ceilings[c], lo = ceil, hi = 0;
		unsigned quarter = BUS_BACKOFF_FLOOR_MS + (ceil - BUS_BACKOFF_FLOOR_MS) / 4;
		unsigned low_quarter = 0, high_quarter = 0;
		uint64_t rng = 42 + c;

		for (int i = 0; i < DRAWS; i++) {
			unsigned d = bus_backoff_delay_ms(ceil, &rng);

			assert_in_range(d, BUS_BACKOFF_FLOOR_MS, ceil);
			if (d < lo)
				lo = d;
			if (d > hi)
				hi = d;
			low_quarter += d <= quarter;
			high_quarter += d >= ceil - (quarter - BUS_BACKOFF_FLOOR_MS);
		}
		/* Uniform: about a quarter of the draws in each end quarter. */
		assert_true(low_quarter > DRAWS / 8);
		assert_true(high_quarter > DRAWS / 8);
		assert_true(lo < quarter);
		assert_true(hi > ceil - (quarter - BUS_BACKOFF_FLOOR_MS));
	}
}

static void test_floor(void **state)
{
	uint64_t rng = 7;

	(void)state;
	assert_int_equal(bus_backoff_delay_ms(0, &rng), BUS_BACKOFF_FLOOR_MS);
	assert_int_equal(bus_backoff_delay_ms(BUS_BACKOFF_FLOOR_MS, &rng), BUS_BACKOFF_FLOOR_MS);
	assert_in_range(bus_backoff_delay_ms(BUS_BACKOFF_FLOOR_MS + 1, &rng), BUS_BACKOFF_FLOOR_MS,
			BUS_BACKOFF_FLOOR_MS + 1);
}

static void test_seeded(void **state)
{
	uint64_t a = 12345, b = 12345, other = 54321;
	int same = 0;

	(void)state;
	for (int i = 0; i < 100; i++) {
		unsigned da = bus_backoff_delay_ms(30000, &a);

		assert_int_equal(da, bus_backoff_delay_ms(30000, &b));
		same += da == bus_backoff_delay_ms(30000, &other);
	}
	assert_true(same < 10); /* 1 in 29801 each by chance */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds_and_spread),
		cmocka_unit_test(test_floor),
		cmocka_unit_test(test_seeded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
