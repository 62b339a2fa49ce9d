/*
 * Unit tests of the latency histogram (gateway/ingest/latency.c): exact
 * below 32 us, percentiles of a known spread within the promised 3.1 % and
 * never below the true value, every bucket's bounds adjacent (no value
 * falls between two), huge values clamped, an empty histogram answering 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "latency.c"

static struct latency lat;

static void test_empty_and_exact(void **state)
{
	(void)state;
	memset(&lat, 0, sizeof(lat));
	assert_int_equal(latency_percentile(&lat, 0.5), 0);
	for (uint64_t v = 0; v < 32; v++)
		latency_add(&lat, v);
	assert_int_equal(lat.count, 32);
	assert_int_equal(latency_percentile(&lat, 0.5), 15); /* rank 16 of 0..31 */
	assert_int_equal(latency_percentile(&lat, 1.0), 31);
	assert_int_equal(latency_percentile(&lat, 0.01), 0);
}

/* 1..100000 us once each: p50 = 50000, p99 = 99000, within 3.1 % above. */
static void test_uniform_spread(void **state)
{
	uint64_t p50, p99;

	(void)state;
	memset(&lat, 0, sizeof(lat));
	for (uint64_t v = 1; v <= 100000; v++)
		latency_add(&lat, v);
	p50 = latency_percentile(&lat, 0.5);
	p99 = latency_percentile(&lat, 0.99);
	assert_true(p50 >= 50000 && p50 <= 50000 + 50000 / 32);
	assert_true(p99 >= 99000 && p99 <= 99000 + 99000 / 32);
	assert_int_equal(latency_percentile(&lat, 1.0), 100000); /* the max, not the bucket's end */
	assert_int_equal(lat.max_us, 100000);
}

/* Each bucket starts right after the previous one ends, and holds its bounds. */
static void test_buckets_adjacent(void **state)
{
	(void)state;
	for (unsigned i = 1; i < LATENCY_BUCKETS; i++) {
		uint64_t lo = bucket_high(i - 1) + 1;

		assert_int_equal(bucket_of(lo), i);
		assert_int_equal(bucket_of(bucket_high(i)), i);
		assert_true(bucket_high(i) - lo <= lo / 32);
	}
}

static void test_clamped(void **state)
{
	(void)state;
	memset(&lat, 0, sizeof(lat));
	latency_add(&lat, UINT64_MAX);
	assert_int_equal(lat.bucket[LATENCY_BUCKETS - 1], 1);
	assert_int_equal(latency_percentile(&lat, 0.5), bucket_high(LATENCY_BUCKETS - 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_and_exact),
		cmocka_unit_test(test_uniform_spread),
		cmocka_unit_test(test_buckets_adjacent),
		cmocka_unit_test(test_clamped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
