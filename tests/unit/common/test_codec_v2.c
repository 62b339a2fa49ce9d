/*
 * Unit tests of the telemetry batch encodings in common/codec.c: a v1 test
 * vector (bytes an older car sends) still decodes; v2 round trips (one
 * sample, changing presence, missing fields, large jumps, the antimeridian
 * and north, random batches) and is smaller than v1; hostile v2 streams
 * (empty, too many samples, both encodings at once, trailing bits, truncated,
 * values out of range, every single-bit flip) are refused or decode to
 * in-range values. test_codec.c covers the v1 decode rules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pitstop.pb-c.h"
#include "test_codec_util.h"

#define ALL5 (SAMPLE_ODOMETER | SAMPLE_FUEL | SAMPLE_POSITION | SAMPLE_SPEED | SAMPLE_HEADING)

/* A value in [lo, hi], often one of the ends. */
static int64_t rnd_in(int64_t lo, int64_t hi)
{
	switch (rnd() % 4) {
	case 0:
		return lo;
	case 1:
		return hi;
	default:
		return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
	}
}

/* Encodes in version v, decodes, compares; returns the encoded size. */
static size_t round_trip_v(int v, const struct sample *s, size_t n)
{
	return round_trip_batch(v, 0xabcdef, 77, s, n);
}

/*
 * A v1 batch as cars before v2 send it (made by the v1 encoder of commit
 * 1028c51, epoch 0x1122334455667788, seq 42): three samples, the heading
 * crossing north, the last without a fix.
 */
static const uint8_t v1_vector[] = {
	0x08, 0x2a, 0x12, 0x06, 0x9f, 0x06, 0x9f, 0x06, 0x83, 0x02, 0x1a, 0x0a, 0x80, 0xf8, 0xb2,
	0xe5, 0xbd, 0x68, 0xd0, 0x0f, 0xd0, 0x0f, 0x22, 0x06, 0xaa, 0xb4, 0xde, 0x75, 0x1c, 0x1c,
	0x2a, 0x04, 0x80, 0x08, 0x00, 0x01, 0x32, 0x07, 0xc0, 0x9d, 0x89, 0xcb, 0x03, 0x98, 0x11,
	0x3a, 0x06, 0xf0, 0x9f, 0xb2, 0x6e, 0x88, 0x0e, 0x42, 0x03, 0xda, 0x15, 0x1a, 0x4a, 0x06,
	0xac, 0xb2, 0x04, 0x97, 0xb2, 0x04, 0x51, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
};

static const struct sample v1_samples[] = {
	{ .time_ms = 1795000000000,
	  .present = ALL5,
	  .fix = FIX_3D,
	  .odometer_m = 123456789,
	  .fuel_permille = 512,
	  .lat_e7 = 481372000,
	  .lon_e7 = 115755000,
	  .speed_cms = 1389,
	  .heading_cdeg = 35990 },
	{ .time_ms = 1795000001000,
	  .present = ALL5,
	  .fix = FIX_3D,
	  .odometer_m = 123456803,
	  .fuel_permille = 512,
	  .lat_e7 = 481373100,
	  .lon_e7 = 115755900,
	  .speed_cms = 1402,
	  .heading_cdeg = 10 },
	{ .time_ms = 1795000002000,
	  .present = SAMPLE_ODOMETER | SAMPLE_FUEL,
	  .fix = FIX_NONE,
	  .odometer_m = 123456817,
	  .fuel_permille = 511 },
};

static void test_v1_vector_decodes(void **state)
{
	struct sample *got = NULL;
	size_t n = 0, len = 0;
	uint64_t seq = 0, epoch = 0;
	uint8_t *buf = NULL;

	(void)state;
	assert_int_equal(codec_decode_batch(v1_vector, sizeof(v1_vector), &epoch, &seq, &got, &n),
			 0);
	assert_int_equal(seq, 42);
	assert_int_equal(epoch, 0x1122334455667788ull);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_sample_eq(&v1_samples[i], &got[i]);
	free(got);
	/* and the v1 encoder still writes exactly those bytes */
	assert_int_equal(codec_encode_batch_version(CODEC_BATCH_V1, 0x1122334455667788ull, 42,
						    v1_samples, 3, &buf, &len),
			 0);
	assert_int_equal(len, sizeof(v1_vector));
	assert_memory_equal(buf, v1_vector, len);
	free(buf);
}

/* v2 fills field 11 only, v1 fields 2-9 only; a bad version is -EINVAL. */
static void test_versions_use_their_fields(void **state)
{
	Pitstop__V1__TelemetryBatch *m;
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(codec_encode_batch(1, 42, v1_samples, 3, &buf, &len), 0);
	m = pitstop__v1__telemetry_batch__unpack(NULL, len, buf);
	assert_non_null(m);
	assert_true(m->packed.len > 0);
	assert_int_equal(m->n_flags + m->n_time_ms + m->n_lat_e7, 0);
	pitstop__v1__telemetry_batch__free_unpacked(m, NULL);
	free(buf);
	assert_int_equal(
		codec_encode_batch_version(CODEC_BATCH_V1, 1, 42, v1_samples, 3, &buf, &len), 0);
	m = pitstop__v1__telemetry_batch__unpack(NULL, len, buf);
	assert_non_null(m);
	assert_int_equal(m->packed.len, 0);
	assert_int_equal(m->n_flags, 3);
	pitstop__v1__telemetry_batch__free_unpacked(m, NULL);
	free(buf);
	assert_int_equal(codec_encode_batch_version(3, 1, 42, v1_samples, 3, &buf, &len), -EINVAL);
	assert_int_equal(codec_encode_batch_version(0, 1, 42, v1_samples, 3, &buf, &len), -EINVAL);
}

static void test_v2_one_sample_and_missing_fields(void **state)
{
	struct sample s[6] = {
		{ .time_ms = 0, .present = 0, .fix = FIX_UNKNOWN },
		{ .time_ms = 5, .present = SAMPLE_FUEL, .fix = FIX_NONE, .fuel_permille = 1000 },
		{ .time_ms = 6,
		  .present = SAMPLE_POSITION,
		  .fix = FIX_2D,
		  .lat_e7 = -900000000,
		  .lon_e7 = 1800000000 },
		{ .time_ms = 7,
		  .present = SAMPLE_ODOMETER | SAMPLE_ODOMETER_EST,
		  .fix = FIX_NONE,
		  .odometer_m = 0 },
		{ .time_ms = 7, .present = SAMPLE_HEADING, .fix = FIX_3D, .heading_cdeg = 35999 },
		{ .time_ms = 8, .present = SAMPLE_SPEED, .fix = FIX_3D, .speed_cms = 19999 },
	};

	(void)state;
	for (size_t i = 0; i < 6; i++)
		round_trip_v(CODEC_BATCH_V2, &s[i], 1);
	round_trip_v(CODEC_BATCH_V2, s, 6);
}

/* Jumps across each column's whole range, both ways, and around north. */
static void test_v2_large_jumps(void **state)
{
	struct sample s[8];
	static const int64_t times[8] = {
		0, INT64_C(1) << 53, 0, 1, INT64_C(1) << 53, (INT64_C(1) << 53) - 1, 2, 2
	};

	(void)state;
	for (size_t i = 0; i < 8; i++) {
		int hi = i % 2;

		s[i] = (struct sample){
			.time_ms = times[i],
			.present = ALL5,
			.fix = FIX_3D,
			.odometer_m = hi ? INT64_C(10000000000) : 0,
			.fuel_permille = hi ? 1000 : 0,
			.lat_e7 = hi ? 900000000 : -900000000,
			.lon_e7 = hi ? -1800000000 : 1800000000, /* antimeridian */
			.speed_cms = hi ? 19999 : 0,
			.heading_cdeg = hi ? 35999 : 0, /* north */
		};
	}
	round_trip_v(CODEC_BATCH_V2, s, 8);
}

/* Random presence, fixes and values (many at the range ends). */
static void test_v2_random_batches(void **state)
{
	struct sample *s = calloc(500, sizeof(*s));

	(void)state;
	assert_non_null(s);
	for (int round = 0; round < 40; round++) {
		size_t n = 1 + rnd() % 500;

		for (size_t i = 0; i < n; i++) {
			unsigned present = (unsigned)(rnd() % 64);

			if (!(present & SAMPLE_ODOMETER))
				present &= ~SAMPLE_ODOMETER_EST;
			s[i] = (struct sample){
				.time_ms = rnd_in(0, INT64_C(1) << 53),
				.present = present,
				.fix = (enum fix_mode)(rnd() % 4),
				.odometer_m = rnd_in(0, INT64_C(10000000000)),
				.fuel_permille = (int32_t)rnd_in(0, 1000),
				.lat_e7 = (int32_t)rnd_in(-900000000, 900000000),
				.lon_e7 = (int32_t)rnd_in(-1800000000, 1800000000),
				.speed_cms = (int32_t)rnd_in(0, 19999),
				.heading_cdeg = (int32_t)rnd_in(0, 35999),
			};
		}
		round_trip_v(CODEC_BATCH_V2, s, n);
		round_trip_v(CODEC_BATCH_V1, s, n);
	}
	free(s);
}

/* A car at 50 km/h on a straight road, 1 Hz, speed and heading constant. */
static void straight_drive(struct sample *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s[i] = (struct sample){
			.time_ms = 1795000000000 + (int64_t)i * 1000,
			.present = ALL5,
			.fix = FIX_3D,
			.odometer_m = 1000000 + (int64_t)i * 14,
			.fuel_permille = 600 - (int32_t)(i / 200),
			.lat_e7 = 481372000 + (int32_t)i * 1250,
			.lon_e7 = 115755000 + (int32_t)i * 310,
			.speed_cms = 1389,
			.heading_cdeg = 900,
		};
}

/* Constant steps cost about a bit per value: delta of delta, speed only when it changes. */
static void test_v2_steady_values_cost_bits(void **state)
{
	struct sample s[300];
	size_t v1, v2;

	(void)state;
	straight_drive(s, 300);
	v1 = round_trip_v(CODEC_BATCH_V1, s, 300);
	v2 = round_trip_v(CODEC_BATCH_V2, s, 300);
	print_message("straight drive, 300 samples: v1 %zu bytes, v2 %zu bytes\n", v1, v2);
	/* 8 columns at one bit a sample, plus headers and first values */
	assert_true(v2 <= 300 + 80);
	assert_true(v2 * 10 < v1);
}

/* Packs a TelemetryBatch with the given fields. */
static uint8_t *pack_batch(uint64_t seq, const uint8_t *packed, size_t plen, int with_v1,
			   size_t *ret_len)
{
	Pitstop__V1__TelemetryBatch b = PITSTOP__V1__TELEMETRY_BATCH__INIT;
	uint32_t flags = 0;
	int64_t t = 5;
	uint8_t *buf;

	b.seq = seq;
	b.packed.data = (uint8_t *)packed;
	b.packed.len = plen;
	if (with_v1) {
		b.n_flags = 1;
		b.flags = &flags;
		b.n_time_ms = 1;
		b.time_ms = &t;
	}
	*ret_len = protobuf_c_message_get_packed_size(&b.base);
	buf = malloc(*ret_len ? *ret_len : 1);
	assert_non_null(buf);
	protobuf_c_message_pack(&b.base, buf);
	return buf;
}

/* A test's own bit writer, to make streams the encoder never would. */
struct bits {
	uint8_t b[64];
	size_t n;
};

static void put(struct bits *w, uint64_t v, unsigned n)
{
	while (n--) {
		if ((v >> n) & 1)
			w->b[w->n / 8] |= (uint8_t)(0x80u >> (w->n % 8));
		w->n++;
	}
}

/* A raw unsigned: 6 bits of length, then the bits. */
static void put_raw(struct bits *w, uint64_t v)
{
	unsigned len = 0;

	for (uint64_t x = v; x; x >>= 1)
		len++;
	put(w, len, 6);
	put(w, v, len);
}

static int decode_stream(const struct bits *w, size_t nbytes)
{
	struct sample *got = NULL;
	size_t len, n;
	uint64_t seq;
	uint8_t *buf = pack_batch(9, w->b, nbytes, 0, &len);
	int r = codec_decode_batch(buf, len, NULL, &seq, &got, &n);

	free(buf);
	free(got);
	return r;
}

static void test_v2_hostile_streams(void **state)
{
	struct bits w;
	uint8_t *buf, *good;
	size_t len, glen, n;
	struct sample *got = NULL;
	uint64_t seq;
	Pitstop__V1__TelemetryBatch *m;

	(void)state;
	/* count 0 */
	memset(&w, 0, sizeof(w));
	put_raw(&w, 0);
	assert_int_equal(decode_stream(&w, 1), -EBADMSG);
	/* count over the limit */
	memset(&w, 0, sizeof(w));
	put_raw(&w, CODEC_MAX_SAMPLES + 1);
	assert_int_equal(decode_stream(&w, 3), -EMSGSIZE);
	/* one sample with only a time: valid, then with a stray byte / stray bit */
	memset(&w, 0, sizeof(w));
	put_raw(&w, 1);
	put(&w, 0, 8);	 /* flags: nothing present, fix unknown */
	put_raw(&w, 10); /* time 5, zig-zagged */
	assert_int_equal(decode_stream(&w, (w.n + 7) / 8), 0);
	assert_int_equal(decode_stream(&w, (w.n + 7) / 8 + 1), -EBADMSG);
	put(&w, 1, 1);
	assert_int_equal(decode_stream(&w, (w.n + 7) / 8), -EBADMSG);
	/* a negative time, a latitude past the pole */
	memset(&w, 0, sizeof(w));
	put_raw(&w, 1);
	put(&w, 0, 8);
	put_raw(&w, 1); /* -1 */
	assert_int_equal(decode_stream(&w, (w.n + 7) / 8), -EBADMSG);
	memset(&w, 0, sizeof(w));
	put_raw(&w, 1);
	put(&w, SAMPLE_POSITION, 8);
	put_raw(&w, 10);
	put_raw(&w, 2 * UINT64_C(900000001)); /* lat */
	put_raw(&w, 0);			      /* lon */
	assert_int_equal(decode_stream(&w, (w.n + 7) / 8), -EBADMSG);
	/* a delta that leaves the range: fuel 1000 then +1 */
	memset(&w, 0, sizeof(w));
	put_raw(&w, 2);
	put(&w, SAMPLE_FUEL, 8);
	put(&w, 0, 1);	 /* same flags */
	put_raw(&w, 10); /* time 5 */
	put(&w, 0, 1);	 /* delta */
	put(&w, 0, 5);	 /* k 0 */
	put(&w, 1, 1);	 /* delta 0 */
	put_raw(&w, 2000);
	put(&w, 0, 1);
	put(&w, 0, 5);
	put(&w, 3, 3); /* exp-Golomb(0) of zig-zag(+1) = 2: "011", so fuel 1001 */
	assert_int_equal(decode_stream(&w, (w.n + 7) / 8), -EBADMSG);
	/* an exp-Golomb code of 64 zeros */
	memset(&w, 0, sizeof(w));
	put_raw(&w, 2);
	put(&w, 0, 8);
	put(&w, 0, 1);
	put_raw(&w, 10);
	put(&w, 0, 1);
	put(&w, 0, 5);
	put(&w, 0, 64);
	put(&w, 1, 1);
	assert_int_equal(decode_stream(&w, (w.n + 7) / 8), -EBADMSG);

	/* both encodings at once; seq 0 */
	good = NULL;
	assert_int_equal(codec_encode_batch(0, 3, v1_samples, 3, &good, &glen), 0);
	m = pitstop__v1__telemetry_batch__unpack(NULL, glen, good);
	assert_non_null(m);
	buf = pack_batch(3, m->packed.data, m->packed.len, 1, &len);
	assert_int_equal(codec_decode_batch(buf, len, NULL, &seq, &got, &n), -EBADMSG);
	free(buf);
	buf = pack_batch(0, m->packed.data, m->packed.len, 0, &len);
	assert_int_equal(codec_decode_batch(buf, len, NULL, &seq, &got, &n), -EBADMSG);
	free(buf);
	/* every shorter stream is refused */
	for (size_t cut = 1; cut < m->packed.len; cut++) {
		buf = pack_batch(3, m->packed.data, cut, 0, &len);
		assert_int_equal(codec_decode_batch(buf, len, NULL, &seq, &got, &n), -EBADMSG);
		free(buf);
	}
	pitstop__v1__telemetry_batch__free_unpacked(m, NULL);
	free(good);
}

/* Every single-bit flip of a real batch is refused or decodes to valid samples. */
static void test_v2_bit_flips(void **state)
{
	struct sample s[40];
	uint8_t *buf, *re;
	size_t len, rlen, n;
	uint64_t seq;
	int refused = 0;

	(void)state;
	straight_drive(s, 40);
	s[7].present = SAMPLE_ODOMETER | SAMPLE_FUEL; /* a GNSS gap */
	s[8].present = SAMPLE_ODOMETER | SAMPLE_FUEL;
	s[20].speed_cms = 0;
	assert_int_equal(codec_encode_batch(0, 3, s, 40, &buf, &len), 0);
	for (size_t bit = 0; bit < len * 8; bit++) {
		struct sample *got = NULL;
		int r;

		buf[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
		r = codec_decode_batch(buf, len, NULL, &seq, &got, &n);
		if (r == 0) {
			/* the encoder's own range checks accept what the decoder let through */
			assert_int_equal(codec_encode_batch(0, seq, got, n, &re, &rlen), 0);
			free(re);
		} else {
			refused++;
		}
		free(got);
		buf[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
	}
	assert_true(refused > 0);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_vector_decodes),
		cmocka_unit_test(test_versions_use_their_fields),
		cmocka_unit_test(test_v2_one_sample_and_missing_fields),
		cmocka_unit_test(test_v2_large_jumps),
		cmocka_unit_test(test_v2_random_batches),
		cmocka_unit_test(test_v2_steady_values_cost_bits),
		cmocka_unit_test(test_v2_hostile_streams),
		cmocka_unit_test(test_v2_bit_flips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
