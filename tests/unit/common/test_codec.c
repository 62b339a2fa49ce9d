/*
 * Unit tests of common/codec.c: telemetry batches (round trips over every
 * presence combination, negative deltas, extreme values, the antimeridian,
 * every decode-side limit with hand-made hostile messages, truncation and
 * garbage), and the event, status, offer and signed-offer messages. Hostile
 * messages are built with the generated protobuf-c structs, so they are
 * valid protobuf that only our rules refuse. Also measures the encoded size
 * of a realistic 1 Hz drive and prints bytes/sample.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pitstop.pb-c.h"
#include "test_codec_util.h"

#define ALL_BITS (SAMPLE_ODOMETER | SAMPLE_FUEL | SAMPLE_POSITION | SAMPLE_SPEED | SAMPLE_HEADING)
#define TIME_MAX (INT64_C(1) << 53)
#define ODO_MAX INT64_C(10000000000)

/* Encodes (v2), decodes and compares; returns the encoded size. */
static size_t round_trip(uint64_t seq, const struct sample *s, size_t n)
{
	return round_trip_batch(CODEC_BATCH_V2, 0, seq, s, n);
}

/*
 * The queue epoch travels in batches and receipts; a batch without one
 * (a pre-epoch car) decodes as epoch 0 and costs nothing on the wire.
 */
static void test_epoch_round_trip(void **state)
{
	struct sample s = { .time_ms = 1763900000000,
			    .present = SAMPLE_FUEL,
			    .fuel_permille = 500 };
	const uint64_t epoch = 0xfedcba9876543210ull, seqs[2] = { 7, 9 };
	uint64_t got_epoch = 1, got_seq = 0, *got_seqs = NULL;
	int64_t got_time = 0;
	uint8_t *buf = NULL, *buf0 = NULL;
	size_t len = 0, len0 = 0, n = 0;
	struct sample *got = NULL;

	(void)state;
	assert_int_equal(codec_encode_batch(epoch, 3, &s, 1, &buf, &len), 0);
	assert_int_equal(codec_decode_batch(buf, len, &got_epoch, &got_seq, &got, &n), 0);
	assert_true(got_epoch == epoch);
	assert_int_equal(got_seq, 3);
	free(got);
	assert_int_equal(codec_encode_batch(0, 3, &s, 1, &buf0, &len0), 0);
	assert_int_equal(len0 + 9, len); /* fixed64: one tag byte + 8 */
	assert_int_equal(codec_decode_batch(buf0, len0, &got_epoch, &got_seq, &got, &n), 0);
	assert_true(got_epoch == 0);
	free(got);
	free(buf);
	free(buf0);

	{ /* the worst case fits: every seq 10 bytes, epoch and clock */
		uint64_t *many = malloc(CODEC_MAX_ACK_SEQS * sizeof(*many));

		assert_non_null(many);
		for (size_t i = 0; i < CODEC_MAX_ACK_SEQS; i++)
			many[i] = UINT64_MAX - i;
		assert_int_equal(codec_encode_ack(UINT64_MAX, INT64_MIN, many, CODEC_MAX_ACK_SEQS,
						  &buf, &len),
				 0);
		assert_true(len <= CODEC_MAX_ACK_BYTES);
		free(buf);
		free(many);
	}
	assert_int_equal(codec_encode_ack(epoch, 1764590000123, seqs, 2, &buf, &len), 0);
	assert_int_equal(codec_decode_ack(buf, len, &got_epoch, &got_time, &got_seqs, &n), 0);
	assert_true(got_time == 1764590000123);
	assert_true(got_epoch == epoch);
	assert_int_equal(n, 2);
	assert_int_equal(got_seqs[1], 9);
	free(got_seqs);
	free(buf);
}

/* A plausible sample i with every field set (values move both ways). */
static struct sample plain_sample(size_t i)
{
	struct sample s = {
		.time_ms = 1763900000000 + (int64_t)i * 1000 - (i % 3 == 2 ? 1500 : 0),
		.present = ALL_BITS,
		.fix = FIX_3D,
		.odometer_m = 123456 + (int64_t)i * 17,
		.fuel_permille = 500 - (int32_t)(i % 4),
		.lat_e7 = 483000000 + (i % 2 ? -1234 : 5678),
		.lon_e7 = 115000000 - (int32_t)i * 999,
		.speed_cms = i % 2 ? 1500 : 200,
		.heading_cdeg = i % 2 ? 35990 : 5,
	};
	return s;
}

static void test_batch_all_presence_combinations(void **state)
{
	struct sample s[6];

	for (unsigned mask = 0; mask <= ALL_BITS; mask++) {
		for (int fix = FIX_UNKNOWN; fix <= FIX_3D; fix++) {
			for (size_t i = 0; i < 6; i++) {
				s[i] = plain_sample(i);
				/* vary presence per sample too: some samples lack bits */
				s[i].present =
					i % 3 == 1 ? mask & (ALL_BITS ^ (1u << (i % 5))) : mask;
				s[i].fix = (enum fix_mode)((fix + (int)i) % 4);
				/* absent values must be ignored, even when out of range */
				if (!(s[i].present & SAMPLE_FUEL))
					s[i].fuel_permille = 99999;
			}
			round_trip(mask + 1, s, 6);
		}
	}
}

static void test_batch_extremes_and_negative_deltas(void **state)
{
	/* Each column jumps between its extremes: the largest deltas there are. */
	static const struct sample s[] = {
		{ 0, ALL_BITS, FIX_NONE, 0, 0, -900000000, -1800000000, 0, 0 },
		{ TIME_MAX, ALL_BITS, FIX_3D, ODO_MAX, 1000, 900000000, 1800000000, 19999, 35999 },
		{ 0, ALL_BITS, FIX_2D, 0, 0, -900000000, -1800000000, 0, 0 },
		{ 5, ALL_BITS, FIX_UNKNOWN, 1, 1, -1, -1, 1, 1 },
		/* antimeridian: +179.9999999 -> -179.9999999 and back */
		{ 6, ALL_BITS, FIX_3D, 2, 2, 0, 1799999999, 2, 2 },
		{ 7, ALL_BITS, FIX_3D, 3, 3, 0, -1799999999, 3, 3 },
		{ 8, ALL_BITS, FIX_3D, 4, 4, 0, 1799999999, 4, 4 },
		{ 1, SAMPLE_POSITION, FIX_3D, 0, 0, 900000000, 1800000000, 0, 0 },
		{ 0, 0, FIX_UNKNOWN, 0, 0, 0, 0, 0, 0 },
		/* an estimated odometer keeps its mark */
		{ 9, SAMPLE_ODOMETER | SAMPLE_ODOMETER_EST, FIX_3D, 12345, 0, 0, 0, 0, 0 },
	};

	round_trip(UINT64_MAX, s, sizeof(s) / sizeof(s[0]));
	round_trip(1, &s[1], 1);
}

static void test_batch_antimeridian_is_cheap(void **state)
{
	/* Crossing 180 degrees must cost a few bytes, not break the encoding. */
	struct sample s[2] = { plain_sample(0), plain_sample(1) };
	size_t a, b;

	s[0].lon_e7 = 1799999990;
	s[1].lon_e7 = 1799999995;
	a = round_trip(1, s, 2);
	s[1].lon_e7 = -1799999995;
	b = round_trip(1, s, 2);
	assert_true(b <= a + 4);
}

static void test_batch_worst_case_fits(void **state)
{
	/* CODEC_MAX_SAMPLES samples of maximal deltas still encode and decode. */
	struct sample *s = calloc(CODEC_MAX_SAMPLES, sizeof(*s));
	static const struct sample ext[2] = {
		{ 0, ALL_BITS, FIX_NONE, 0, 0, -900000000, -1800000000, 0, 0 },
		{ TIME_MAX, ALL_BITS, FIX_3D, ODO_MAX, 1000, 900000000, 1800000000, 19999, 35999 },
	};
	size_t len;

	assert_non_null(s);
	for (size_t i = 0; i < CODEC_MAX_SAMPLES; i++)
		s[i] = ext[i % 2];
	len = round_trip(7, s, CODEC_MAX_SAMPLES);
	print_message("worst case: %zu samples in %zu bytes (limit %d)\n",
		      (size_t)CODEC_MAX_SAMPLES, len, CODEC_MAX_BATCH_BYTES);
	free(s);
}

struct bad_sample_case {
	const char *name;
	void (*mutate)(struct sample *s);
};

static void m_time_neg(struct sample *s)
{
	s->time_ms = -1;
}
static void m_time_big(struct sample *s)
{
	s->time_ms = TIME_MAX + 1;
}
static void m_odo_neg(struct sample *s)
{
	s->odometer_m = -1;
}
static void m_odo_big(struct sample *s)
{
	s->odometer_m = ODO_MAX + 1;
}
static void m_fuel_neg(struct sample *s)
{
	s->fuel_permille = -1;
}
static void m_fuel_big(struct sample *s)
{
	s->fuel_permille = 1001;
}
static void m_lat_lo(struct sample *s)
{
	s->lat_e7 = -900000001;
}
static void m_lat_hi(struct sample *s)
{
	s->lat_e7 = 900000001;
}
static void m_lon_lo(struct sample *s)
{
	s->lon_e7 = -1800000001;
}
static void m_lon_hi(struct sample *s)
{
	s->lon_e7 = 1800000001;
}
static void m_speed_neg(struct sample *s)
{
	s->speed_cms = -1;
}
static void m_speed_big(struct sample *s)
{
	s->speed_cms = 20000;
}
static void m_head_neg(struct sample *s)
{
	s->heading_cdeg = -1;
}
static void m_head_big(struct sample *s)
{
	s->heading_cdeg = 36000;
}
static void m_fix_big(struct sample *s)
{
	s->fix = (enum fix_mode)4;
}
static void m_bit6(struct sample *s)
{
	s->present |= 1u << 6;
}
static void m_est_alone(struct sample *s)
{
	s->present = (s->present & ~SAMPLE_ODOMETER) | SAMPLE_ODOMETER_EST;
}
static void m_bit8(struct sample *s)
{
	s->present |= 1u << 8;
}

static void test_batch_encode_rejects_out_of_range(void **state)
{
	static const struct bad_sample_case cases[] = {
		{ "time<0", m_time_neg },
		{ "time>2^53", m_time_big },
		{ "odometer<0", m_odo_neg },
		{ "odometer>1e10", m_odo_big },
		{ "fuel<0", m_fuel_neg },
		{ "fuel>1000", m_fuel_big },
		{ "lat<-90", m_lat_lo },
		{ "lat>90", m_lat_hi },
		{ "lon<-180", m_lon_lo },
		{ "lon>180", m_lon_hi },
		{ "speed<0", m_speed_neg },
		{ "speed>=200m/s", m_speed_big },
		{ "heading<0", m_head_neg },
		{ "heading>=360", m_head_big },
		{ "fix>3", m_fix_big },
		{ "present bit 6", m_bit6 },
		{ "estimated without odometer", m_est_alone },
		{ "present bit 8", m_bit8 },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct sample s[3] = { plain_sample(0), plain_sample(1), plain_sample(2) };
		uint8_t *buf = (uint8_t *)"sentinel";
		size_t len = 4242;

		cases[c].mutate(&s[2]);
		print_message("  %s\n", cases[c].name);
		assert_int_equal(codec_encode_batch(0, 1, s, 3, &buf, &len), -EINVAL);
		assert_string_equal((char *)buf, "sentinel"); /* untouched */
		assert_int_equal(len, 4242);
	}
}

static void test_batch_encode_bad_arguments(void **state)
{
	struct sample *s = calloc(CODEC_MAX_SAMPLES + 1, sizeof(*s));
	uint8_t *buf = NULL;
	size_t len = 0;

	assert_non_null(s);
	for (size_t i = 0; i <= CODEC_MAX_SAMPLES; i++)
		s[i].time_ms = (int64_t)i;
	assert_int_equal(codec_encode_batch(0, 1, s, 0, &buf, &len), -EINVAL);
	assert_int_equal(codec_encode_batch(0, 0, s, 1, &buf, &len), -EINVAL);
	assert_int_equal(codec_encode_batch(0, 1, NULL, 1, &buf, &len), -EINVAL);
	assert_int_equal(codec_encode_batch(0, 1, s, 1, NULL, &len), -EINVAL);
	assert_int_equal(codec_encode_batch(0, 1, s, CODEC_MAX_SAMPLES + 1, &buf, &len), -EMSGSIZE);
	assert_null(buf);
	assert_int_equal(codec_encode_batch(0, 1, s, CODEC_MAX_SAMPLES, &buf, &len), 0);
	free(buf);
	free(s);
}

/* A hand-made batch: columns as given (NULL/0 = empty). */
struct raw_batch {
	uint64_t seq;
	size_t n_flags;
	const uint32_t *flags;
	size_t n_time;
	const int64_t *time;
	size_t n_odo;
	const int64_t *odo;
	size_t n_fuel;
	const int32_t *fuel;
	size_t n_lat;
	const int32_t *lat;
	size_t n_lon;
	const int32_t *lon;
	size_t n_speed;
	const int32_t *speed;
	size_t n_head;
	const int32_t *head;
};

static uint8_t *pack_raw(const struct raw_batch *r, size_t *ret_len)
{
	Pitstop__V1__TelemetryBatch b = PITSTOP__V1__TELEMETRY_BATCH__INIT;
	uint8_t *buf;

	b.seq = r->seq;
	b.n_flags = r->n_flags;
	b.flags = (uint32_t *)r->flags;
	b.n_time_ms = r->n_time;
	b.time_ms = (int64_t *)r->time;
	b.n_odometer_m = r->n_odo;
	b.odometer_m = (int64_t *)r->odo;
	b.n_fuel_permille = r->n_fuel;
	b.fuel_permille = (int32_t *)r->fuel;
	b.n_lat_e7 = r->n_lat;
	b.lat_e7 = (int32_t *)r->lat;
	b.n_lon_e7 = r->n_lon;
	b.lon_e7 = (int32_t *)r->lon;
	b.n_speed_cms = r->n_speed;
	b.speed_cms = (int32_t *)r->speed;
	b.n_heading_cdeg = r->n_head;
	b.heading_cdeg = (int32_t *)r->head;
	*ret_len = pitstop__v1__telemetry_batch__get_packed_size(&b);
	buf = malloc(*ret_len ? *ret_len : 1);
	assert_non_null(buf);
	assert_int_equal(pitstop__v1__telemetry_batch__pack(&b, buf), *ret_len);
	return buf;
}

/* Decodes r and asserts the result; outputs must be untouched on failure. */
static void expect_raw(const char *name, const struct raw_batch *r, int want)
{
	struct sample *got = (struct sample *)(uintptr_t)0x1;
	uint64_t seq = 77;
	size_t len, n = 99;
	uint8_t *buf = pack_raw(r, &len);
	int rc = codec_decode_batch(buf, len, NULL, &seq, &got, &n);

	print_message("  %s -> %d\n", name, rc);
	assert_int_equal(rc, want);
	if (rc < 0) {
		assert_int_equal(seq, 77);
		assert_int_equal(n, 99);
		assert_ptr_equal(got, (struct sample *)(uintptr_t)0x1);
	} else {
		free(got);
	}
	free(buf);
}

static const uint32_t F2[] = { ALL_BITS | (3u << 8), ALL_BITS | (3u << 8) };
static const int64_t T2[] = { 1000, 1000 };
static const int64_t O2[] = { 10, 5 };
static const int32_t V2[] = { 10, -5 };

#define GOOD2                                                                                \
	.seq = 1, .n_flags = 2, .flags = F2, .n_time = 2, .time = T2, .n_odo = 2, .odo = O2, \
	.n_fuel = 2, .fuel = V2, .n_lat = 2, .lat = V2, .n_lon = 2, .lon = V2, .n_speed = 2, \
	.speed = V2, .n_head = 2, .head = V2

static void test_batch_decode_column_rules(void **state)
{
	static const uint32_t f_one_pos[] = { SAMPLE_POSITION, 0 };
	static const int32_t one[] = { 7 };
	static const int32_t three[] = { 1, 2, 3 };
	static const int64_t t3[] = { 1, 2, 3 };

	struct raw_batch good = { GOOD2 };
	struct raw_batch r;

	expect_raw("good", &good, 0);
	r = good, r.seq = 0;
	expect_raw("seq 0", &r, -EBADMSG);
	r = good, r.n_flags = 0, r.n_time = 0, r.n_odo = r.n_fuel = r.n_lat = r.n_lon = 0,
	r.n_speed = r.n_head = 0;
	expect_raw("no samples", &r, -EBADMSG);
	r = good, r.n_time = 1;
	expect_raw("time column short", &r, -EBADMSG);
	r = good, r.n_time = 3, r.time = t3;
	expect_raw("time column long", &r, -EBADMSG);
	r = good, r.n_odo = 1;
	expect_raw("odometer short", &r, -EBADMSG);
	r = good, r.n_fuel = 3, r.fuel = three;
	expect_raw("fuel long", &r, -EBADMSG);
	r = good, r.n_lon = 1;
	expect_raw("lon short (lat complete)", &r, -EBADMSG);
	r = good, r.n_speed = 0;
	expect_raw("speed missing", &r, -EBADMSG);
	r = good, r.n_head = 3, r.head = three;
	expect_raw("heading long", &r, -EBADMSG);
	/* only sample 0 has a position: one entry in lat and lon, none elsewhere */
	r = (struct raw_batch){ .seq = 1,
				.n_flags = 2,
				.flags = f_one_pos,
				.n_time = 2,
				.time = T2,
				.n_lat = 1,
				.lat = one,
				.n_lon = 1,
				.lon = one };
	expect_raw("sparse columns", &r, 0);
	r.n_odo = 1, r.odo = O2;
	expect_raw("value for an absent column", &r, -EBADMSG);
}

static void test_batch_decode_unknown_bits(void **state)
{
	/* bits 6-7 and 10-31 set around a 2D fix and a fuel bit; bit 5
	 * (odometer estimated) without an odometer is cleared */
	static const uint32_t flags[] = { 0xfffffcc0u | (2u << 8) | SAMPLE_FUEL,
					  (1u << 5) | (1u << 7) | (1u << 10) | (3u << 8) };
	static const int64_t t[] = { 1000, 1 };
	static const int32_t fuel[] = { 42 };
	struct raw_batch r = { .seq = 3,
			       .n_flags = 2,
			       .flags = flags,
			       .n_time = 2,
			       .time = t,
			       .n_fuel = 1,
			       .fuel = fuel };
	struct sample *got = NULL;
	uint64_t seq = 0;
	size_t len, n = 0;
	uint8_t *buf = pack_raw(&r, &len);

	assert_int_equal(codec_decode_batch(buf, len, NULL, &seq, &got, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(got[0].present, SAMPLE_FUEL);
	assert_int_equal(got[0].fix, FIX_2D);
	assert_int_equal(got[0].fuel_permille, 42);
	assert_int_equal(got[0].time_ms, 1000);
	assert_int_equal(got[1].present, 0);
	assert_int_equal(got[1].fix, FIX_3D);
	assert_int_equal(got[1].time_ms, 1001);
	free(got);
	free(buf);
}

static void test_batch_decode_range_after_undelta(void **state)
{
	static const uint32_t f2[] = { ALL_BITS, ALL_BITS };
	static const uint32_t f1[] = { ALL_BITS };
	static const int64_t t_ok[] = { 1000, 1 };
	static const int64_t t_neg[] = { 1000, -1001 };
	static const int64_t t_over[] = { TIME_MAX, 1 };
	static const int64_t t_wrap[] = { TIME_MAX, INT64_MAX };
	static const int64_t t_min[] = { 0, INT64_MIN };
	static const int64_t o_ok[] = { 5, 5 };
	static const int64_t o_over[] = { ODO_MAX, 1 };
	static const int64_t o_min[] = { 5, INT64_MIN };
	static const int64_t o_max[] = { 5, INT64_MAX };
	static const int32_t ok[] = { 5, 5 };
	static const int32_t fuel_over[] = { 600, 600 };
	static const int32_t lat_over[] = { 900000000, 1 };
	static const int32_t lat_first[] = { -900000001 };
	static const int32_t lon_over[] = { 1800000000, 1 };
	static const int32_t lon_min[] = { -1800000000, -1 };
	/* sint32 deltas wrap modulo 2^32: +179.9999999 + 694967298 = -179.9999999 */
	static const int32_t lon_wrap[] = { 1799999999, 694967298 };
	static const int32_t neg[] = { 0, -1 };
	static const int32_t head_over[] = { 35999, 1 };
	static const int32_t speed_over[] = { 19999, 1 };
	static const int64_t t1[] = { 5 };
	static const int64_t o1[] = { 5 };
	static const int32_t v1[] = { 5 };

	struct raw_batch base = { .seq = 1,
				  .n_flags = 2,
				  .flags = f2,
				  .n_time = 2,
				  .time = t_ok,
				  .n_odo = 2,
				  .odo = o_ok,
				  .n_fuel = 2,
				  .fuel = ok,
				  .n_lat = 2,
				  .lat = ok,
				  .n_lon = 2,
				  .lon = ok,
				  .n_speed = 2,
				  .speed = ok,
				  .n_head = 2,
				  .head = ok };
	struct raw_batch r;

	expect_raw("in range", &base, 0);
	r = base, r.time = t_neg;
	expect_raw("time below 0", &r, -EBADMSG);
	r = base, r.time = t_over;
	expect_raw("time above 2^53", &r, -EBADMSG);
	r = base, r.time = t_wrap;
	expect_raw("time + INT64_MAX", &r, -EBADMSG);
	r = base, r.time = t_min;
	expect_raw("time + INT64_MIN", &r, -EBADMSG);
	r = base, r.odo = o_over;
	expect_raw("odometer above 1e10", &r, -EBADMSG);
	r = base, r.odo = o_min;
	expect_raw("odometer + INT64_MIN", &r, -EBADMSG);
	r = base, r.odo = o_max;
	expect_raw("odometer + INT64_MAX", &r, -EBADMSG);
	r = base, r.fuel = fuel_over;
	expect_raw("fuel 1200", &r, -EBADMSG);
	r = base, r.fuel = neg;
	expect_raw("fuel -1", &r, -EBADMSG);
	r = base, r.lat = lat_over;
	expect_raw("lat above 90", &r, -EBADMSG);
	r = base, r.lon = lon_over;
	expect_raw("lon above 180", &r, -EBADMSG);
	r = base, r.lon = lon_min;
	expect_raw("lon below -180", &r, -EBADMSG);
	r = base, r.lon = lon_wrap;
	expect_raw("lon across the antimeridian (wraps)", &r, 0);
	r = base, r.speed = neg;
	expect_raw("speed -1", &r, -EBADMSG);
	r = base, r.speed = speed_over;
	expect_raw("speed 200 m/s", &r, -EBADMSG);
	r = base, r.head = head_over;
	expect_raw("heading 360", &r, -EBADMSG);
	r = (struct raw_batch){ .seq = 1,
				.n_flags = 1,
				.flags = f1,
				.n_time = 1,
				.time = t1,
				.n_odo = 1,
				.odo = o1,
				.n_fuel = 1,
				.fuel = v1,
				.n_lat = 1,
				.lat = lat_first,
				.n_lon = 1,
				.lon = v1,
				.n_speed = 1,
				.speed = v1,
				.n_head = 1,
				.head = v1 };
	expect_raw("first value absolute, out of range", &r, -EBADMSG);
}

static void test_batch_decode_too_many_samples(void **state)
{
	size_t n = CODEC_MAX_SAMPLES + 1;
	uint32_t *flags = calloc(n, sizeof(*flags));
	int64_t *t = calloc(n, sizeof(*t));
	struct raw_batch r = { .seq = 1, .n_flags = n, .flags = flags, .n_time = n, .time = t };

	assert_non_null(flags);
	assert_non_null(t);
	expect_raw("3601 samples", &r, -EMSGSIZE);
	r.n_flags = r.n_time = CODEC_MAX_SAMPLES;
	expect_raw("3600 samples", &r, 0);
	free(flags);
	free(t);
}

static void test_batch_decode_size_limit_and_garbage(void **state)
{
	uint8_t *big = calloc(1, CODEC_MAX_BATCH_BYTES + 1);
	uint8_t junk[512];
	struct sample *got = NULL;
	uint64_t seq = 0;
	size_t n = 0;
	int accepted = 0;

	assert_non_null(big);
	assert_int_equal(codec_decode_batch(big, CODEC_MAX_BATCH_BYTES + 1, NULL, &seq, &got, &n),
			 -EMSGSIZE);
	assert_int_equal(codec_decode_batch(NULL, 0, NULL, &seq, &got, &n), -EBADMSG);
	assert_int_equal(codec_decode_batch(NULL, 5, NULL, &seq, &got, &n), -EINVAL);
	free(big);
	for (int i = 0; i < 20000; i++) {
		size_t len = rnd() % sizeof(junk);
		int r;

		for (size_t k = 0; k < len; k++)
			junk[k] = (uint8_t)rnd();
		r = codec_decode_batch(junk, len, NULL, &seq, &got, &n);
		assert_true(r == 0 || r == -EBADMSG || r == -EMSGSIZE);
		if (r == 0) {
			accepted++;
			free(got);
		}
	}
	print_message("random garbage accepted as a batch: %d of 20000\n", accepted);
}

static void test_batch_decode_truncated(void **state)
{
	struct sample s[8];
	uint8_t *buf = NULL;
	size_t len = 0;

	for (size_t i = 0; i < 8; i++)
		s[i] = plain_sample(i);
	assert_int_equal(codec_encode_batch(0, 5, s, 8, &buf, &len), 0);
	for (size_t cut = 0; cut < len; cut++) {
		struct sample *got = NULL;
		uint64_t seq = 0;
		size_t n = 0;

		assert_int_equal(codec_decode_batch(buf, cut, NULL, &seq, &got, &n), -EBADMSG);
		assert_null(got);
	}
	free(buf);
}

/* A 1 Hz drive: town, stops, country road; fields as a real car fills them. */
static size_t simulate_drive(struct sample *s, size_t n)
{
	double lat = 48.137154, lon = 11.576124, speed = 0, heading = 90, odo = 84213.0;
	int64_t t = 1763900000000;
	int fuel = 612;

	for (size_t i = 0; i < n; i++) {
		double target = (i / 120) % 4 == 0 ? 0 : (i / 120) % 4 == 3 ? 27 : 13;
		double jitter = (double)(rnd() % 2001) / 1000.0 - 1.0; /* -1..1 */

		speed += (target - speed) * 0.1 + 0.3 * jitter;
		if (speed < 0.05)
			speed = 0;
		if (speed > 0)
			heading += 1.5 * jitter + ((i / 45) % 7 == 3 ? 6 : 0); /* turns */
		heading = fmod(heading + 360.0, 360.0);
		lat += speed * cos(heading * M_PI / 180) / 111320.0;
		lon += speed * sin(heading * M_PI / 180) / (111320.0 * cos(lat * M_PI / 180));
		odo += speed;
		if (i % 90 == 89 && fuel > 0)
			fuel--;
		t += 1000 + (int64_t)(rnd() % 7) - 3; /* sampling jitter */
		s[i] = (struct sample){
			.time_ms = t,
			.present = ALL_BITS,
			.fix = FIX_3D,
			.odometer_m = (int64_t)odo,
			.fuel_permille = fuel,
			.lat_e7 = (int32_t)lround(lat * 1e7),
			.lon_e7 = (int32_t)lround(lon * 1e7),
			.speed_cms = (int32_t)lround(speed * 100),
			.heading_cdeg = (int32_t)lround(heading * 100) % 36000,
		};
	}
	return n;
}

static void test_batch_size_realistic_drive(void **state)
{
	static const size_t sizes[] = { 10, 60, 600, CODEC_MAX_SAMPLES };
	struct sample *s = calloc(CODEC_MAX_SAMPLES, sizeof(*s));

	assert_non_null(s);
	simulate_drive(s, CODEC_MAX_SAMPLES);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t len = round_trip(1000, s, sizes[k]);
		double per = (double)len / (double)sizes[k];

		print_message("1 Hz drive, %4zu samples/batch: %6zu bytes, %.2f bytes/sample\n",
			      sizes[k], len, per);
		if (sizes[k] >= 60)
			assert_true(per <= 14.0);
	}
	free(s);
}

/* Packs a protobuf-c message built by a test. */
static uint8_t *pack_msg(const ProtobufCMessage *m, size_t *ret_len)
{
	uint8_t *buf;

	*ret_len = protobuf_c_message_get_packed_size(m);
	buf = malloc(*ret_len ? *ret_len : 1);
	assert_non_null(buf);
	assert_int_equal(protobuf_c_message_pack(m, buf), *ret_len);
	return buf;
}

/* A string of n copies of c (static storage reused every 8 calls, n < 4096). */
static char *rep(char c, size_t n)
{
	static char bufs[8][4096];
	static int which;
	char *s = bufs[which++ % 8];

	assert_true(n < sizeof(bufs[0]));
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void test_offer_event_round_trip(void **state)
{
	for (int a = OFFER_ACTION_SHOWN; a <= OFFER_ACTION_DELIVERED; a++) {
		struct offer_event ev = { .time_ms = -5 + a * INT64_C(1000000000000), .action = a };
		struct offer_event got;
		uint8_t *buf;
		size_t len;

		snprintf(ev.offer_id, sizeof(ev.offer_id), "%s", rep('i', CODEC_MAX_ID - 1));
		if (a == OFFER_ACTION_REJECTED)
			snprintf(ev.reason, sizeof(ev.reason), "%s",
				 rep('r', CODEC_MAX_REASON - 1));
		assert_int_equal(codec_encode_offer_event(&ev, &buf, &len), 0);
		memset(&got, 0x55, sizeof(got));
		assert_int_equal(codec_decode_offer_event(buf, len, &got), 0);
		assert_int_equal(got.time_ms, ev.time_ms);
		assert_int_equal(got.action, a);
		assert_string_equal(got.offer_id, ev.offer_id);
		assert_string_equal(got.reason, ev.reason);
		free(buf);
	}
}

static void test_offer_event_rejects(void **state)
{
	Pitstop__V1__Event e = PITSTOP__V1__EVENT__INIT;
	Pitstop__V1__OfferEvent oe = PITSTOP__V1__OFFER_EVENT__INIT;
	struct offer_event ev = { .action = OFFER_ACTION_SHOWN }, got;
	uint8_t *buf, big[CODEC_MAX_EVENT_BYTES + 1] = { 0 };
	size_t len;

	/* encode: bad action, unterminated string */
	ev.action = 0;
	assert_int_equal(codec_encode_offer_event(&ev, &buf, &len), -EINVAL);
	ev.action = 6;
	assert_int_equal(codec_encode_offer_event(&ev, &buf, &len), -EINVAL);
	ev.action = OFFER_ACTION_SHOWN;
	memset(ev.offer_id, 'x', sizeof(ev.offer_id));
	assert_int_equal(codec_encode_offer_event(&ev, &buf, &len), -EINVAL);

	/* decode: strings one byte too long, unknown action, no body, too big */
	memset(&got, 0x55, sizeof(got));
	e.body_case = PITSTOP__V1__EVENT__BODY_OFFER;
	e.offer = &oe;
	oe.action = PITSTOP__V1__OFFER_EVENT__ACTION__SHOWN;
	oe.offer_id = rep('i', CODEC_MAX_ID);
	buf = pack_msg(&e.base, &len);
	assert_int_equal(codec_decode_offer_event(buf, len, &got), -EBADMSG);
	free(buf);
	oe.offer_id = "ok";
	oe.reason = rep('r', CODEC_MAX_REASON);
	buf = pack_msg(&e.base, &len);
	assert_int_equal(codec_decode_offer_event(buf, len, &got), -EBADMSG);
	free(buf);
	oe.reason = "";
	oe.action = 9;
	buf = pack_msg(&e.base, &len);
	assert_int_equal(codec_decode_offer_event(buf, len, &got), -EBADMSG);
	free(buf);
	e.body_case = PITSTOP__V1__EVENT__BODY__NOT_SET;
	buf = pack_msg(&e.base, &len);
	assert_int_equal(codec_decode_offer_event(buf, len, &got), -EBADMSG);
	free(buf);
	assert_int_equal(got.time_ms, (int64_t)0x5555555555555555); /* untouched */
	assert_int_equal(codec_decode_offer_event(big, sizeof(big), &got), -EMSGSIZE);
	assert_int_equal(codec_decode_offer_event((const uint8_t *)"\xff\xff", 2, &got), -EBADMSG);
}

static void test_status_round_trip_and_rejects(void **state)
{
	struct agent_status st = { .state = AGENT_ONLINE, .time_ms = 1763900000123 }, got;
	Pitstop__V1__Status m = PITSTOP__V1__STATUS__INIT;
	uint8_t *buf, big[CODEC_MAX_STATUS_BYTES + 1] = { 0 };
	size_t len;

	snprintf(st.agent_version, sizeof(st.agent_version), "%s", rep('v', CODEC_MAX_VERSION - 1));
	static const struct {
		int has;
		uint32_t depth, want;
	} q[] = {
		{ 0, 17, 0 }, /* not sent: reads back as absent, 0 */
		{ 1, 0, 0 },  /* depth 0 is a value, not absence */
		{ 1, UINT32_MAX, UINT32_MAX },
	};

	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		st.has_queue_depth = q[i].has;
		st.queue_depth = q[i].depth;
		st.state = i % 2 ? AGENT_OFFLINE : AGENT_ONLINE;
		assert_int_equal(codec_encode_status(&st, &buf, &len), 0);
		memset(&got, 0x55, sizeof(got));
		assert_int_equal(codec_decode_status(buf, len, &got), 0);
		assert_int_equal(got.state, st.state);
		assert_int_equal(got.time_ms, st.time_ms);
		assert_string_equal(got.agent_version, st.agent_version);
		assert_int_equal(got.has_queue_depth, q[i].has);
		assert_int_equal(got.queue_depth, q[i].want);
		free(buf);
	}
	st.state = 0;
	assert_int_equal(codec_encode_status(&st, &buf, &len), -EINVAL);

	memset(&got, 0x55, sizeof(got));
	m.state = PITSTOP__V1__STATUS__STATE__ONLINE;
	m.agent_version = rep('v', CODEC_MAX_VERSION);
	buf = pack_msg(&m.base, &len);
	assert_int_equal(codec_decode_status(buf, len, &got), -EBADMSG);
	free(buf);
	m.agent_version = "1.0";
	m.state = PITSTOP__V1__STATUS__STATE__STATE_UNSPECIFIED;
	buf = pack_msg(&m.base, &len);
	assert_int_equal(codec_decode_status(buf, len, &got), -EBADMSG);
	free(buf);
	assert_int_equal(got.time_ms, (int64_t)0x5555555555555555);
	assert_int_equal(codec_decode_status(big, sizeof(big), &got), -EMSGSIZE);
}

static struct offer sample_offer(int area)
{
	struct offer o = {
		.kind = OFFER_SERVICE,
		.valid_from_ms = 1763900000000,
		.valid_until_ms = 1764900000000,
		.has_area = area,
		.area_lat_e7 = area ? -337000000 : 0,
		.area_lon_e7 = area ? 1511000000 : 0,
		.area_radius_m = area ? 2500 : 0,
	};

	snprintf(o.id, sizeof(o.id), "offer-42");
	snprintf(o.title, sizeof(o.title), "Service due: 10 %% off");
	snprintf(o.body, sizeof(o.body), "%s", rep('b', CODEC_MAX_BODY - 1));
	snprintf(o.promo_code, sizeof(o.promo_code), "PIT-1234");
	snprintf(o.vin, sizeof(o.vin), "WVWZZZ1JZXW000001");
	return o;
}

static void test_offer_round_trip(void **state)
{
	for (int area = 0; area < 2; area++) {
		for (int kind = OFFER_REFUEL; kind <= OFFER_TEST_DRIVE; kind++) {
			struct offer o = sample_offer(area), got;
			uint8_t *buf;
			size_t len;

			o.kind = kind;
			assert_int_equal(codec_encode_offer(&o, &buf, &len), 0);
			memset(&got, 0x55, sizeof(got));
			assert_int_equal(codec_decode_offer(buf, len, &got), 0);
			assert_int_equal(got.kind, kind);
			assert_string_equal(got.id, o.id);
			assert_string_equal(got.title, o.title);
			assert_string_equal(got.body, o.body);
			assert_string_equal(got.promo_code, o.promo_code);
			assert_string_equal(got.vin, o.vin);
			assert_int_equal(got.valid_from_ms, o.valid_from_ms);
			assert_int_equal(got.valid_until_ms, o.valid_until_ms);
			assert_int_equal(got.has_area, area);
			assert_int_equal(got.area_lat_e7, o.area_lat_e7);
			assert_int_equal(got.area_lon_e7, o.area_lon_e7);
			assert_int_equal(got.area_radius_m, o.area_radius_m);
			free(buf);
		}
	}
}

static void test_offer_rejects(void **state)
{
	struct {
		const char *name;
		size_t id, title, body, promo, vin;
		int kind;
		int32_t lat;
	} cases[] = {
		{ "fits", CODEC_MAX_ID - 1, CODEC_MAX_TITLE - 1, CODEC_MAX_BODY - 1,
		  CODEC_MAX_PROMO - 1, 17, 1, 0 },
		{ "id", CODEC_MAX_ID, 1, 1, 1, 17, 1, 0 },
		{ "title", 1, CODEC_MAX_TITLE, 1, 1, 17, 1, 0 },
		{ "body", 1, 1, CODEC_MAX_BODY, 1, 17, 1, 0 },
		{ "promo", 1, 1, 1, CODEC_MAX_PROMO, 17, 1, 0 },
		{ "vin", 1, 1, 1, 1, 18, 1, 0 },
		{ "kind 0", 1, 1, 1, 1, 17, 0, 0 },
		{ "kind 6", 1, 1, 1, 1, 17, 6, 0 },
		{ "area lat", 1, 1, 1, 1, 17, 1, 900000001 },
	};
	struct offer o = sample_offer(1), got;
	uint8_t *buf, *big;
	size_t len;

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		Pitstop__V1__Offer m = PITSTOP__V1__OFFER__INIT;
		Pitstop__V1__GeoArea a = PITSTOP__V1__GEO_AREA__INIT;

		m.id = rep('i', cases[c].id);
		m.title = rep('t', cases[c].title);
		m.body = rep('b', cases[c].body);
		m.promo_code = rep('p', cases[c].promo);
		m.vin = rep('V', cases[c].vin);
		m.kind = cases[c].kind;
		a.lat_e7 = cases[c].lat;
		m.area_present_case = PITSTOP__V1__OFFER__AREA_PRESENT_AREA;
		m.area = &a;
		buf = pack_msg(&m.base, &len);
		memset(&got, 0x55, sizeof(got));
		print_message("  %s\n", cases[c].name);
		assert_int_equal(codec_decode_offer(buf, len, &got), c == 0 ? 0 : -EBADMSG);
		if (c > 0)
			assert_int_equal(got.valid_from_ms, (int64_t)0x5555555555555555);
		free(buf);
	}
	o.kind = 0;
	assert_int_equal(codec_encode_offer(&o, &buf, &len), -EINVAL);
	o = sample_offer(1);
	o.area_lon_e7 = 1800000001;
	assert_int_equal(codec_encode_offer(&o, &buf, &len), -EINVAL);
	o = sample_offer(0);
	o.area_lon_e7 = 1800000001; /* ignored without has_area */
	assert_int_equal(codec_encode_offer(&o, &buf, &len), 0);
	free(buf);
	memset(o.title, 'x', sizeof(o.title));
	assert_int_equal(codec_encode_offer(&o, &buf, &len), -EINVAL);
	big = calloc(1, CODEC_MAX_OFFER_BYTES + 1);
	assert_non_null(big);
	assert_int_equal(codec_decode_offer(big, CODEC_MAX_OFFER_BYTES + 1, &got), -EMSGSIZE);
	free(big);
}

static void test_signed_offer_round_trip_and_rejects(void **state)
{
	struct offer o = sample_offer(1);
	uint8_t sig[CODEC_MAX_SIG + 1];
	uint8_t *offer_buf, *buf, *big;
	size_t offer_len, len;
	struct signed_offer so, sentinel;
	Pitstop__V1__SignedOffer m = PITSTOP__V1__SIGNED_OFFER__INIT;

	for (size_t i = 0; i < sizeof(sig); i++)
		sig[i] = (uint8_t)(i * 7);
	assert_int_equal(codec_encode_offer(&o, &offer_buf, &offer_len), 0);
	assert_int_equal(codec_encode_signed_offer(offer_buf, offer_len, sig, 71,
						   "0123456789abcdef", &buf, &len),
			 0);
	assert_int_equal(codec_decode_signed_offer(buf, len, &so), 0);
	assert_int_equal(so.offer_len, offer_len);
	assert_memory_equal(so.offer, offer_buf, offer_len);
	assert_int_equal(so.sig_len, 71);
	assert_memory_equal(so.sig, sig, 71);
	assert_string_equal(so.key_id, "0123456789abcdef");
	codec_signed_offer_free(&so);
	assert_null(so.offer);
	codec_signed_offer_free(&so); /* twice is harmless */
	codec_signed_offer_free(NULL);
	free(buf);

	/* encode: bad arguments */
	assert_int_equal(codec_encode_signed_offer(offer_buf, offer_len, sig, CODEC_MAX_SIG + 1,
						   "k", &buf, &len),
			 -EINVAL);
	assert_int_equal(codec_encode_signed_offer(offer_buf, offer_len, sig, 0, "k", &buf, &len),
			 -EINVAL);
	assert_int_equal(codec_encode_signed_offer(offer_buf, 0, sig, 8, "k", &buf, &len), -EINVAL);
	assert_int_equal(codec_encode_signed_offer(offer_buf, offer_len, sig, 8,
						   rep('k', CODEC_MAX_KEY_ID), &buf, &len),
			 -EINVAL);
	big = calloc(1, CODEC_MAX_OFFER_BYTES + 1);
	assert_non_null(big);
	assert_int_equal(codec_encode_signed_offer(big, CODEC_MAX_OFFER_BYTES - 10, sig, 72, "k",
						   &buf, &len),
			 -EMSGSIZE);

	/* decode: hostile messages */
	memset(&sentinel, 0x55, sizeof(sentinel));
	so = sentinel;
	m.offer.data = offer_buf;
	m.offer.len = offer_len;
	m.signature.data = sig;
	m.signature.len = CODEC_MAX_SIG + 1;
	m.key_id = "k";
	buf = pack_msg(&m.base, &len);
	assert_int_equal(codec_decode_signed_offer(buf, len, &so), -EBADMSG);
	free(buf);
	m.signature.len = 0;
	buf = pack_msg(&m.base, &len);
	assert_int_equal(codec_decode_signed_offer(buf, len, &so), -EBADMSG);
	free(buf);
	m.signature.len = 64;
	m.offer.len = 0;
	buf = pack_msg(&m.base, &len);
	assert_int_equal(codec_decode_signed_offer(buf, len, &so), -EBADMSG);
	free(buf);
	m.offer.len = offer_len;
	m.key_id = rep('k', CODEC_MAX_KEY_ID);
	buf = pack_msg(&m.base, &len);
	assert_int_equal(codec_decode_signed_offer(buf, len, &so), -EBADMSG);
	free(buf);
	assert_memory_equal(&so, &sentinel, sizeof(so));
	assert_int_equal(codec_decode_signed_offer(big, CODEC_MAX_OFFER_BYTES + 1, &so), -EMSGSIZE);
	free(big);
	free(offer_buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_epoch_round_trip),
		cmocka_unit_test(test_batch_all_presence_combinations),
		cmocka_unit_test(test_batch_extremes_and_negative_deltas),
		cmocka_unit_test(test_batch_antimeridian_is_cheap),
		cmocka_unit_test(test_batch_worst_case_fits),
		cmocka_unit_test(test_batch_encode_rejects_out_of_range),
		cmocka_unit_test(test_batch_encode_bad_arguments),
		cmocka_unit_test(test_batch_decode_column_rules),
		cmocka_unit_test(test_batch_decode_unknown_bits),
		cmocka_unit_test(test_batch_decode_range_after_undelta),
		cmocka_unit_test(test_batch_decode_too_many_samples),
		cmocka_unit_test(test_batch_decode_size_limit_and_garbage),
		cmocka_unit_test(test_batch_decode_truncated),
		cmocka_unit_test(test_batch_size_realistic_drive),
		cmocka_unit_test(test_offer_event_round_trip),
		cmocka_unit_test(test_offer_event_rejects),
		cmocka_unit_test(test_status_round_trip_and_rejects),
		cmocka_unit_test(test_offer_round_trip),
		cmocka_unit_test(test_offer_rejects),
		cmocka_unit_test(test_signed_offer_round_trip_and_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
