/*
 * What the codec's unit tests (test_codec.c, test_codec_v2.c) share: a
 * deterministic PRNG, so failures reproduce, the sample comparison and a
 * round trip.
 * Included once per test executable, after cmocka.h and codec.h.
 */
#ifndef PITSTOP_TEST_CODEC_UTIL_H
#define PITSTOP_TEST_CODEC_UTIL_H

/* xorshift64* */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* Asserts that decoded sample b carries exactly the meaningful parts of a. */
static void assert_sample_eq(const struct sample *a, const struct sample *b)
{
	assert_int_equal(a->time_ms, b->time_ms);
	assert_int_equal(a->present, b->present);
	assert_int_equal(a->fix, b->fix);
	assert_int_equal((a->present & SAMPLE_ODOMETER) ? a->odometer_m : 0, b->odometer_m);
	assert_int_equal((a->present & SAMPLE_FUEL) ? a->fuel_permille : 0, b->fuel_permille);
	assert_int_equal((a->present & SAMPLE_POSITION) ? a->lat_e7 : 0, b->lat_e7);
	assert_int_equal((a->present & SAMPLE_POSITION) ? a->lon_e7 : 0, b->lon_e7);
	assert_int_equal((a->present & SAMPLE_SPEED) ? a->speed_cms : 0, b->speed_cms);
	assert_int_equal((a->present & SAMPLE_HEADING) ? a->heading_cdeg : 0, b->heading_cdeg);
}

/* Encodes in encoding version, decodes, compares; returns the encoded size. */
static size_t round_trip_batch(int version, uint64_t epoch, uint64_t seq, const struct sample *s,
			       size_t n)
{
	uint8_t *buf = NULL;
	size_t len = 0, got_n = 0;
	struct sample *got = NULL;
	uint64_t got_seq = 0, got_epoch = 0;

	assert_int_equal(codec_encode_batch_version(version, epoch, seq, s, n, &buf, &len), 0);
	assert_non_null(buf);
	assert_true(len > 0 && len <= CODEC_MAX_BATCH_BYTES);
	assert_int_equal(codec_decode_batch(buf, len, &got_epoch, &got_seq, &got, &got_n), 0);
	assert_int_equal(got_seq, seq);
	assert_int_equal(got_epoch, epoch);
	assert_int_equal(got_n, n);
	for (size_t i = 0; i < n; i++)
		assert_sample_eq(&s[i], &got[i]);
	free(buf);
	free(got);
	return len;
}

#endif
