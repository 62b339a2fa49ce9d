/*
 * Protocol v1 encoding and decoding (see codec.h and proto/pitstop.proto).
 * The wire format is protobuf-c's own pack/unpack; this file only maps our
 * C structs onto the generated messages and enforces the limits. Telemetry
 * batches have two encodings under the same message: v1 (the columns below)
 * and v2 (one bit-packed stream in field 11, described at encode_v2());
 * batches are written as v2 and both are read:
 *
 *  - Input sizes are checked against the CODEC_MAX_*_BYTES limits before
 *    protobuf-c sees them, so unpack allocates at most a small multiple of a
 *    bounded input.
 *  - Telemetry is columnar: one flags entry and one time entry per sample,
 *    and one entry per *present* value in each value column, each column
 *    delta-coded against its previous present value (the first absolute).
 *    Decoding accumulates in int64 and range-checks every value, so a
 *    hostile batch cannot overflow or smuggle out-of-range values through.
 *  - sint32 columns are delta-coded modulo 2^32 (two's complement wrap).
 *    Only one real case needs it: lon_e7 crossing the antimeridian, where
 *    the plain difference (up to 3.6e9) does not fit in a sint32. Every other
 *    column's differences fit, so for them the wrap never happens.
 *  - Strings that do not fit the fixed buffers of our structs are an error
 *    (-EBADMSG), never truncated.
 *
 * A batch needs at least one sample and a non-zero seq. The GNSS fix is
 * bits 8-9 of a flags entry, so it cannot exceed 3 on decode. Times in events,
 * statuses and offers are carried as given (their meaning is the caller's).
 *
 * Enum values outside the ones we know (a newer peer) are rejected: a v1
 * reader cannot act on them. Unknown *fields* and unknown flag bits are
 * ignored, as the proto's evolution rules require.
 *
 * Known limitation: protobuf-c NUL-terminates strings it unpacks, so a string
 * field with an embedded NUL byte reads as its prefix. Offers are signed, and
 * the other strings are display/diagnostic text, so this cannot be used to
 * change what a signed offer means beyond what its signer wrote.
 */
#include "codec.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pitstop.pb-c.h"

/* Value ranges of struct sample; codec.h documents the same numbers. */
#define CODEC_TIME_MAX (INT64_C(1) << 53)	/* exact in a double / JSON */
#define CODEC_ODOMETER_MAX INT64_C(10000000000) /* 1e10 m = 10 million km */
#define CODEC_FUEL_MAX 1000
#define CODEC_LAT_MAX 900000000
#define CODEC_LON_MAX 1800000000
#define CODEC_SPEED_MAX 19999 /* < 200 m/s (720 km/h) */
#define CODEC_HEADING_MAX 35999
#define CODEC_FIX_MAX FIX_3D

#define SAMPLE_ALL SAMPLE_KNOWN
#define FLAGS_FIX_SHIFT 8
#define FLAGS_FIX_MASK 0x3u

#define SAMPLE_FIELD(f) offsetof(struct sample, f)
#define BATCH_FIELD(f) offsetof(Pitstop__V1__TelemetryBatch, f)

/* One column of a TelemetryBatch and the struct sample field it carries. */
struct column {
	unsigned bit;	   /* SAMPLE_* bit; 0 = in every sample (time) */
	int wide;	   /* 1: int64_t / sint64, 0: int32_t / sint32 */
	size_t sample_off; /* the field in struct sample */
	size_t count_off;  /* n_<column> in the generated message */
	size_t data_off;   /* <column> array pointer in the generated message */
	int64_t lo, hi;	   /* valid values, inclusive */
	int64_t wrap;	   /* v2: deltas taken modulo this (heading), 0 = none */
};

static const struct column columns[] = {
	{ 0, 1, SAMPLE_FIELD(time_ms), BATCH_FIELD(n_time_ms), BATCH_FIELD(time_ms), 0,
	  CODEC_TIME_MAX, 0 },
	{ SAMPLE_ODOMETER, 1, SAMPLE_FIELD(odometer_m), BATCH_FIELD(n_odometer_m),
	  BATCH_FIELD(odometer_m), 0, CODEC_ODOMETER_MAX, 0 },
	{ SAMPLE_FUEL, 0, SAMPLE_FIELD(fuel_permille), BATCH_FIELD(n_fuel_permille),
	  BATCH_FIELD(fuel_permille), 0, CODEC_FUEL_MAX, 0 },
	{ SAMPLE_POSITION, 0, SAMPLE_FIELD(lat_e7), BATCH_FIELD(n_lat_e7), BATCH_FIELD(lat_e7),
	  -CODEC_LAT_MAX, CODEC_LAT_MAX, 0 },
	{ SAMPLE_POSITION, 0, SAMPLE_FIELD(lon_e7), BATCH_FIELD(n_lon_e7), BATCH_FIELD(lon_e7),
	  -CODEC_LON_MAX, CODEC_LON_MAX, 0 },
	{ SAMPLE_SPEED, 0, SAMPLE_FIELD(speed_cms), BATCH_FIELD(n_speed_cms),
	  BATCH_FIELD(speed_cms), 0, CODEC_SPEED_MAX, 0 },
	{ SAMPLE_HEADING, 0, SAMPLE_FIELD(heading_cdeg), BATCH_FIELD(n_heading_cdeg),
	  BATCH_FIELD(heading_cdeg), 0, CODEC_HEADING_MAX, CODEC_HEADING_MAX + 1 },
};

#define NCOLUMNS (sizeof(columns) / sizeof(columns[0]))

/* The value of column c in sample s, widened to int64. */
static int64_t col_get(const struct column *c, const struct sample *s)
{
	const char *p = (const char *)s + c->sample_off;

	return c->wide ? *(const int64_t *)p : *(const int32_t *)p;
}

/* Stores v into s's field; v must be in [c->lo, c->hi], which fits the field's type. */
static void col_set(const struct column *c, struct sample *s, int64_t v)
{
	char *p = (char *)s + c->sample_off;

	if (c->wide)
		*(int64_t *)p = v;
	else
		*(int32_t *)p = (int32_t)v;
}

/* The n_<column> entry count of column c in b. */
static size_t *col_count(const struct column *c, Pitstop__V1__TelemetryBatch *b)
{
	return (size_t *)((char *)b + c->count_off);
}

/* The column's array in b, whatever its element type. */
static void *col_data(const struct column *c, Pitstop__V1__TelemetryBatch *b)
{
	char *p = (char *)b + c->data_off;

	return c->wide ? (void *)*(int64_t **)p : (void *)*(int32_t **)p;
}

/* Gives column c of b room for n entries; 0 or -ENOMEM. */
static int col_alloc(const struct column *c, Pitstop__V1__TelemetryBatch *b, size_t n)
{
	char *p = (char *)b + c->data_off;

	if (c->wide)
		*(int64_t **)p = malloc(n * sizeof(int64_t));
	else
		*(int32_t **)p = malloc(n * sizeof(int32_t));
	return col_data(c, b) ? 0 : -ENOMEM;
}

/* Entry i of column c in b (i < *col_count(c, b)). */
static int64_t col_entry(const struct column *c, Pitstop__V1__TelemetryBatch *b, size_t i)
{
	const void *data = col_data(c, b);

	return c->wide ? ((const int64_t *)data)[i] : ((const int32_t *)data)[i];
}

/* 1 if column c has a value in a sample with presence bits present. */
static int col_in(const struct column *c, unsigned present)
{
	return c->bit == 0 || (present & c->bit);
}

/* The int32 that is congruent to v modulo 2^32 (portable two's complement wrap). */
static int32_t wrap32(int64_t v)
{
	uint32_t u = (uint32_t)(uint64_t)v;

	if (u <= (uint32_t)INT32_MAX)
		return (int32_t)u;
	return (int32_t)((int64_t)u - (INT64_C(1) << 32));
}

/*
 * Undoes one delta: *acc is the previous value of column c (0 before the
 * first), which is in [c->lo, c->hi]. Returns 0 and updates *acc, or -EBADMSG
 * if the result is out of range. Never overflows.
 */
static int col_undelta(const struct column *c, int64_t *acc, int64_t delta)
{
	int64_t v;

	if (c->wide) {
		/* *acc and the bounds are far from INT64 limits: no overflow here. */
		if (delta > c->hi - *acc || delta < c->lo - *acc)
			return -EBADMSG;
		v = *acc + delta;
	} else {
		v = wrap32(*acc + delta); /* |*acc| < 2^31, |delta| <= 2^31 */
	}
	if (v < c->lo || v > c->hi)
		return -EBADMSG;
	*acc = v;
	return 0;
}

/*
 * Packs m into a malloc'ed buffer if its encoding is at most max bytes.
 * Returns 0, -EMSGSIZE or -ENOMEM; *ret_buf and *ret_len untouched on failure.
 */
static int pack_message(const ProtobufCMessage *m, size_t max, uint8_t **ret_buf, size_t *ret_len)
{
	size_t size = protobuf_c_message_get_packed_size(m);
	uint8_t *buf;
	size_t n;

	if (size > max)
		return -EMSGSIZE;
	buf = malloc(size ? size : 1);
	if (!buf)
		return -ENOMEM;
	n = protobuf_c_message_pack(m, buf);
	assert(n == size);
	(void)n;
	*ret_buf = buf;
	*ret_len = size;
	return 0;
}

/* 0 if s is NUL-terminated within its size-byte buffer, else -EINVAL. */
static int str_check(const char *s, size_t size)
{
	return memchr(s, '\0', size) ? 0 : -EINVAL;
}

/* Copies src into dst[size]; -EBADMSG (dst untouched) if it does not fit. */
static int str_copy(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);

	if (len >= size)
		return -EBADMSG;
	memcpy(dst, src, len + 1);
	return 0;
}

/*
 * 0 if s can go on the wire: known presence bits only, the estimated
 * odometer flag only with the odometer, a valid fix and every present value
 * in range; else -EINVAL.
 */
static int sample_check(const struct sample *s)
{
	if ((s->present & ~SAMPLE_ALL) || (unsigned)s->fix > CODEC_FIX_MAX ||
	    (s->present & (SAMPLE_ODOMETER | SAMPLE_ODOMETER_EST)) == SAMPLE_ODOMETER_EST)
		return -EINVAL;
	for (size_t k = 0; k < NCOLUMNS; k++) {
		const struct column *c = &columns[k];
		int64_t v;

		if (!col_in(c, s->present))
			continue;
		v = col_get(c, s);
		if (v < c->lo || v > c->hi)
			return -EINVAL;
	}
	return 0;
}

/* Fills fields 2-9 of b (v1 columns) from n checked samples; 0 or -ENOMEM. */
static int encode_v1(Pitstop__V1__TelemetryBatch *b, const struct sample *samples, size_t n)
{
	int64_t prev[NCOLUMNS] = { 0 };
	size_t k;

	b->n_flags = n;
	b->flags = malloc(n * sizeof(*b->flags));
	if (!b->flags)
		return -ENOMEM;
	/* Every column gets room for n entries; n is bounded by the caller. */
	for (k = 0; k < NCOLUMNS; k++)
		if (col_alloc(&columns[k], b, n) < 0)
			return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct sample *s = &samples[i];

		b->flags[i] = s->present | ((unsigned)s->fix << FLAGS_FIX_SHIFT);
		for (k = 0; k < NCOLUMNS; k++) {
			const struct column *c = &columns[k];
			size_t *count = col_count(c, b);
			void *data = col_data(c, b);
			int64_t v;

			if (!col_in(c, s->present))
				continue;
			v = col_get(c, s);
			/* Both in range: the difference cannot overflow int64. */
			if (c->wide)
				((int64_t *)data)[*count] = v - prev[k];
			else
				((int32_t *)data)[*count] = wrap32(v - prev[k]);
			(*count)++;
			prev[k] = v;
		}
	}
	return 0;
}

/*
 * Encoding v2: one bit stream (MSB first) in TelemetryBatch.packed.
 *
 *   count      raw unsigned (below) number of samples, 1..CODEC_MAX_SAMPLES
 *   flags      sample 0: 8 bits (bits 0-5 presence, 6-7 fix); every other
 *              sample: 0 = same as the previous sample, or 1 + 8 bits
 *   columns    in table order (time, odometer, fuel, lat, lon, speed,
 *              heading), each only if some sample has it:
 *                first value   raw signed
 *                if 2+ values: 1 bit mode (0 delta, 1 delta of delta),
 *                              5 bits k, then one exp-Golomb(k) code of the
 *                              zig-zagged residual per further value
 *   padding    zero bits to the byte boundary
 *
 * A raw unsigned is 6 bits of bit length L then L bits; a raw signed is a
 * raw unsigned of its zig-zag. The delta of heading is taken modulo 36000
 * into [-18000, 17999], so crossing north is a small step. The encoder
 * picks the mode and k per column and batch that give the fewest bits, so
 * an unchanged value (delta 0 with k = 0) costs one bit. Lossless: every
 * value decodes exactly.
 */
#define V2_FLAG_BITS 8
#define V2_LEN_BITS 6
#define V2_K_BITS 5
#define V2_K_MAX 31
#define V2_EG_MAX_BITS 62 /* longest exp-Golomb body a decoder accepts */

struct bitw {
	uint8_t *buf; /* owned, cap bytes, zeroed */
	size_t cap;
	size_t bits; /* written so far */
};

struct bitr {
	const uint8_t *buf; /* borrowed */
	size_t nbits;	    /* available */
	size_t pos;	    /* next bit */
};

/* Appends the low n (0..64) bits of v; the caller sized the buffer. */
static void bw_put(struct bitw *w, uint64_t v, unsigned n)
{
	while (n--) {
		assert(w->bits / 8 < w->cap);
		if ((v >> n) & 1)
			w->buf[w->bits / 8] |= (uint8_t)(0x80u >> (w->bits % 8));
		w->bits++;
	}
}

/* Reads n (0..64) bits into *v; -EBADMSG past the end. */
static int br_get(struct bitr *r, unsigned n, uint64_t *v)
{
	uint64_t x = 0;

	if (n > r->nbits - r->pos)
		return -EBADMSG;
	while (n--) {
		x = x << 1 | ((r->buf[r->pos / 8] >> (7 - r->pos % 8)) & 1u);
		r->pos++;
	}
	*v = x;
	return 0;
}

static uint64_t zigzag(int64_t v)
{
	return v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1;
}

static int64_t unzigzag(uint64_t z)
{
	return (z & 1) ? -(int64_t)(z >> 1) - 1 : (int64_t)(z >> 1);
}

/* Number of significant bits of v (0 for 0). */
static unsigned bitlen(uint64_t v)
{
	unsigned n = 0;

	while (v) {
		n++;
		v >>= 1;
	}
	return n;
}

static void bw_raw(struct bitw *w, uint64_t v)
{
	unsigned n = bitlen(v);

	bw_put(w, n, V2_LEN_BITS);
	bw_put(w, v, n);
}

static int br_raw(struct bitr *r, uint64_t *v)
{
	uint64_t n;
	int rc = br_get(r, V2_LEN_BITS, &n);

	return rc < 0 ? rc : br_get(r, (unsigned)n, v);
}

/* Bits of the exp-Golomb(k) code of z (z < 2^56, k <= 31). */
static unsigned eg_bits(uint64_t z, unsigned k)
{
	return 2 * bitlen(z + (UINT64_C(1) << k)) - 1 - k;
}

static void bw_eg(struct bitw *w, uint64_t z, unsigned k)
{
	uint64_t x = z + (UINT64_C(1) << k);
	unsigned n = bitlen(x);

	bw_put(w, 0, n - 1 - k);
	bw_put(w, x, n);
}

static int br_eg(struct bitr *r, unsigned k, uint64_t *z)
{
	unsigned zeros = 0;
	uint64_t bit = 0, x;
	int rc;

	for (;;) {
		rc = br_get(r, 1, &bit);
		if (rc < 0)
			return rc;
		if (bit)
			break;
		if (++zeros + k + 1 > V2_EG_MAX_BITS)
			return -EBADMSG;
	}
	rc = br_get(r, zeros + k, &x);
	if (rc < 0)
		return rc;
	*z = ((UINT64_C(1) << (zeros + k)) | x) - (UINT64_C(1) << k);
	return 0;
}

/* v - prev for column c (modulo c->wrap into [-wrap/2, wrap/2) if set). */
static int64_t col_delta(const struct column *c, int64_t v, int64_t prev)
{
	int64_t d = v - prev;

	if (c->wrap) {
		if (d >= c->wrap / 2)
			d -= c->wrap;
		else if (d < -(c->wrap / 2))
			d += c->wrap;
	}
	return d;
}

/* The residuals of vals[1..n-1] in mode dod (0 delta, 1 delta of delta). */
static void col_residuals(const struct column *c, const int64_t *vals, size_t n, int dod,
			  int64_t *ret)
{
	int64_t pd = 0;

	for (size_t i = 1; i < n; i++) {
		int64_t d = col_delta(c, vals[i], vals[i - 1]);

		ret[i - 1] = dod ? d - pd : d;
		pd = d;
	}
}

/* Writes column c's n >= 1 values (vals) with the cheapest mode and k. */
static void encode_v2_column(struct bitw *w, const struct column *c, const int64_t *vals, size_t n,
			     int64_t *scratch)
{
	uint64_t best = UINT64_MAX;
	unsigned best_k = 0;
	int best_dod = 0;

	bw_raw(w, zigzag(vals[0]));
	if (n < 2)
		return;
	for (int dod = 0; dod <= 1; dod++) {
		col_residuals(c, vals, n, dod, scratch);
		for (unsigned k = 0; k <= V2_K_MAX; k++) {
			uint64_t bits = 0;

			for (size_t i = 0; i + 1 < n; i++)
				bits += eg_bits(zigzag(scratch[i]), k);
			if (bits < best) {
				best = bits;
				best_k = k;
				best_dod = dod;
			}
		}
	}
	col_residuals(c, vals, n, best_dod, scratch);
	bw_put(w, (uint64_t)best_dod, 1);
	bw_put(w, best_k, V2_K_BITS);
	for (size_t i = 0; i + 1 < n; i++)
		bw_eg(w, zigzag(scratch[i]), best_k);
}

/* The 8-bit v2 flags of s. */
static unsigned v2_flags(const struct sample *s)
{
	return (s->present & 0x3fu) | ((unsigned)s->fix << 6);
}

/* Fills b->packed from n checked samples; 0, -EMSGSIZE or -ENOMEM. */
static int encode_v2(Pitstop__V1__TelemetryBatch *b, const struct sample *samples, size_t n)
{
	/* Worst case per value: a 117-bit code (z < 2^56, k 31); plus headers. */
	struct bitw w = { NULL, n * (NCOLUMNS * 15 + 2) + 64, 0 };
	int64_t *vals = malloc(n * sizeof(*vals));
	int64_t *scratch = malloc(n * sizeof(*scratch));
	int r = -ENOMEM;

	w.buf = calloc(1, w.cap);
	if (!w.buf || !vals || !scratch)
		goto out;
	bw_raw(&w, n);
	for (size_t i = 0; i < n; i++) {
		unsigned f = v2_flags(&samples[i]);

		if (i > 0 && f == v2_flags(&samples[i - 1])) {
			bw_put(&w, 0, 1);
			continue;
		}
		if (i > 0)
			bw_put(&w, 1, 1);
		bw_put(&w, f, V2_FLAG_BITS);
	}
	for (size_t k = 0; k < NCOLUMNS; k++) {
		size_t m = 0;

		for (size_t i = 0; i < n; i++)
			if (col_in(&columns[k], samples[i].present))
				vals[m++] = col_get(&columns[k], &samples[i]);
		if (m)
			encode_v2_column(&w, &columns[k], vals, m, scratch);
	}
	b->packed.data = w.buf;
	b->packed.len = (w.bits + 7) / 8;
	w.buf = NULL; /* now b's */
	r = 0;
out:
	free(w.buf);
	free(vals);
	free(scratch);
	return r;
}

int codec_encode_batch_version(int version, uint64_t epoch, uint64_t seq,
			       const struct sample *samples, size_t n, uint8_t **ret_buf,
			       size_t *ret_len)
{
	Pitstop__V1__TelemetryBatch b = PITSTOP__V1__TELEMETRY_BATCH__INIT;
	int r;

	if (!samples || !ret_buf || !ret_len || seq == 0 || n == 0 ||
	    (version != CODEC_BATCH_V1 && version != CODEC_BATCH_V2))
		return -EINVAL;
	if (n > CODEC_MAX_SAMPLES)
		return -EMSGSIZE;
	for (size_t i = 0; i < n; i++)
		if (sample_check(&samples[i]) < 0)
			return -EINVAL;
	b.epoch = epoch;
	b.seq = seq;
	r = version == CODEC_BATCH_V1 ? encode_v1(&b, samples, n) : encode_v2(&b, samples, n);
	if (r == 0)
		r = pack_message(&b.base, CODEC_MAX_BATCH_BYTES, ret_buf, ret_len);
	free(b.flags);
	for (size_t k = 0; k < NCOLUMNS; k++)
		free(col_data(&columns[k], &b));
	free(b.packed.data);
	return r;
}

int codec_encode_batch(uint64_t epoch, uint64_t seq, const struct sample *samples, size_t n,
		       uint8_t **ret_buf, size_t *ret_len)
{
	return codec_encode_batch_version(CODEC_BATCH_V2, epoch, seq, samples, n, ret_buf, ret_len);
}

/* The presence bits a reader keeps of wire flags f (unknown bits dropped). */
static unsigned flags_present(uint32_t f)
{
	unsigned present = f & SAMPLE_ALL;

	if (!(present & SAMPLE_ODOMETER))
		present &= ~SAMPLE_ODOMETER_EST;
	return present;
}

/* Decodes the v1 columns of m into *ret_samples (n of them, malloc'ed). */
static int decode_v1(Pitstop__V1__TelemetryBatch *m, struct sample **ret_samples, size_t *ret_n)
{
	struct sample *samples = NULL;
	int64_t acc[NCOLUMNS] = { 0 };
	size_t idx[NCOLUMNS] = { 0 };
	size_t n = m->n_flags, k;
	int r;

	if (n > CODEC_MAX_SAMPLES)
		return -EMSGSIZE;
	if (n == 0 || m->n_time_ms != n)
		return -EBADMSG;
	/* Each column must hold exactly one entry per sample that has it. */
	for (k = 0; k < NCOLUMNS; k++) {
		size_t want = 0;

		for (size_t i = 0; i < n; i++)
			want += col_in(&columns[k], m->flags[i]) ? 1 : 0;
		if (*col_count(&columns[k], m) != want)
			return -EBADMSG;
	}
	samples = calloc(n, sizeof(*samples));
	if (!samples)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct sample *s = &samples[i];

		s->present = flags_present(m->flags[i]);
		s->fix = (enum fix_mode)((m->flags[i] >> FLAGS_FIX_SHIFT) & FLAGS_FIX_MASK);
		for (k = 0; k < NCOLUMNS; k++) {
			const struct column *c = &columns[k];

			if (!col_in(c, s->present))
				continue;
			r = col_undelta(c, &acc[k], col_entry(c, m, idx[k]++));
			if (r < 0) {
				free(samples);
				return r;
			}
			col_set(c, s, acc[k]);
		}
	}
	*ret_samples = samples;
	*ret_n = n;
	return 0;
}

/*
 * Reads column c (count values) into the samples that have it. Every
 * residual, delta and value is bounded before it is used, so a hostile
 * stream cannot overflow: values stay in [lo, hi], deltas within its span.
 */
static int decode_v2_column(struct bitr *br, const struct column *c, struct sample *samples,
			    size_t n, size_t count)
{
	const int64_t span = c->hi - c->lo; /* < 2^54 */
	int64_t v = 0, pd = 0;
	uint64_t z, dod = 0, k = 0;
	size_t seen = 0;
	int r;

	for (size_t i = 0; i < n; i++) {
		if (!col_in(c, samples[i].present))
			continue;
		if (seen == 0) {
			r = br_raw(br, &z);
			if (r < 0)
				return r;
			if (z > (uint64_t)INT64_MAX)
				return -EBADMSG;
			v = unzigzag(z);
			if (v < c->lo || v > c->hi)
				return -EBADMSG;
			if (count > 1 &&
			    ((r = br_get(br, 1, &dod)) < 0 || (r = br_get(br, V2_K_BITS, &k)) < 0))
				return r;
		} else {
			int64_t res, d;

			r = br_eg(br, (unsigned)k, &z);
			if (r < 0)
				return r;
			res = unzigzag(z); /* z < 2^62 */
			if (res > 2 * span || res < -2 * span)
				return -EBADMSG;
			d = dod ? pd + res : res;
			if (d > span || d < -span)
				return -EBADMSG;
			v += d;
			if (c->wrap)
				v = ((v % c->wrap) + c->wrap) % c->wrap;
			if (v < c->lo || v > c->hi)
				return -EBADMSG;
			pd = d;
		}
		col_set(c, &samples[i], v);
		seen++;
	}
	return 0;
}

/* Decodes m->packed (encoding v2) into *ret_samples (malloc'ed). */
static int decode_v2(const Pitstop__V1__TelemetryBatch *m, struct sample **ret_samples,
		     size_t *ret_n)
{
	struct bitr br = { m->packed.data, m->packed.len * 8, 0 };
	struct sample *samples = NULL;
	uint64_t n, f = 0, bit, pad;
	int r;

	r = br_raw(&br, &n);
	if (r < 0)
		return r;
	if (n > CODEC_MAX_SAMPLES)
		return -EMSGSIZE;
	if (n == 0)
		return -EBADMSG;
	samples = calloc(n, sizeof(*samples));
	if (!samples)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && (r = br_get(&br, 1, &bit)) < 0)
			goto fail;
		if ((i == 0 || bit) && (r = br_get(&br, V2_FLAG_BITS, &f)) < 0)
			goto fail;
		samples[i].present = flags_present((uint32_t)f & 0x3fu);
		samples[i].fix = (enum fix_mode)(f >> 6);
	}
	for (size_t k = 0; k < NCOLUMNS; k++) {
		size_t count = 0;

		for (size_t i = 0; i < n; i++)
			count += col_in(&columns[k], samples[i].present) ? 1 : 0;
		r = decode_v2_column(&br, &columns[k], samples, n, count);
		if (r < 0)
			goto fail;
	}
	/* Only zero padding to the byte boundary may follow. */
	r = -EBADMSG;
	if (br.nbits - br.pos >= 8 || br_get(&br, (unsigned)(br.nbits - br.pos), &pad) < 0 ||
	    pad != 0)
		goto fail;
	*ret_samples = samples;
	*ret_n = n;
	return 0;
fail:
	free(samples);
	return r;
}

/* 1 if m carries any v1 column (fields 2-9). */
static int has_v1_columns(Pitstop__V1__TelemetryBatch *m)
{
	if (m->n_flags)
		return 1;
	for (size_t k = 0; k < NCOLUMNS; k++)
		if (*col_count(&columns[k], m))
			return 1;
	return 0;
}

int codec_decode_batch(const uint8_t *buf, size_t len, uint64_t *ret_epoch, uint64_t *ret_seq,
		       struct sample **ret_samples, size_t *ret_n)
{
	Pitstop__V1__TelemetryBatch *m = NULL;
	struct sample *samples = NULL;
	size_t n = 0;
	int r;

	if ((!buf && len) || !ret_seq || !ret_samples || !ret_n)
		return -EINVAL;
	if (len > CODEC_MAX_BATCH_BYTES)
		return -EMSGSIZE;
	m = pitstop__v1__telemetry_batch__unpack(NULL, len, buf);
	if (!m)
		return -EBADMSG;
	if (m->seq == 0) {
		r = -EBADMSG;
		goto out;
	}
	if (m->packed.len == 0)
		r = decode_v1(m, &samples, &n);
	else if (has_v1_columns(m))
		r = -EBADMSG; /* both encodings at once: which one is meant? */
	else
		r = decode_v2(m, &samples, &n);
	if (r < 0)
		goto out;
	if (ret_epoch)
		*ret_epoch = m->epoch;
	*ret_seq = m->seq;
	*ret_samples = samples;
	*ret_n = n;
	r = 0;
out:
	pitstop__v1__telemetry_batch__free_unpacked(m, NULL);
	return r;
}

int codec_encode_offer_event(const struct offer_event *ev, uint8_t **ret_buf, size_t *ret_len)
{
	Pitstop__V1__Event e = PITSTOP__V1__EVENT__INIT;
	Pitstop__V1__OfferEvent oe = PITSTOP__V1__OFFER_EVENT__INIT;

	if (!ev || !ret_buf || !ret_len)
		return -EINVAL;
	if (ev->action < OFFER_ACTION_SHOWN || ev->action > OFFER_ACTION_DELIVERED ||
	    str_check(ev->offer_id, sizeof(ev->offer_id)) < 0 ||
	    str_check(ev->reason, sizeof(ev->reason)) < 0)
		return -EINVAL;
	oe.offer_id = (char *)ev->offer_id; /* pack only reads */
	oe.action = (Pitstop__V1__OfferEvent__Action)ev->action;
	oe.reason = (char *)ev->reason;
	e.time_ms = ev->time_ms;
	e.body_case = PITSTOP__V1__EVENT__BODY_OFFER;
	e.offer = &oe;
	return pack_message(&e.base, CODEC_MAX_EVENT_BYTES, ret_buf, ret_len);
}

int codec_decode_offer_event(const uint8_t *buf, size_t len, struct offer_event *ret_ev)
{
	Pitstop__V1__Event *e;
	struct offer_event ev;
	int r = -EBADMSG;

	if ((!buf && len) || !ret_ev)
		return -EINVAL;
	if (len > CODEC_MAX_EVENT_BYTES)
		return -EMSGSIZE;
	e = pitstop__v1__event__unpack(NULL, len, buf);
	if (!e)
		return -EBADMSG;
	/* Another body kind (from a newer agent) is not an offer event. */
	if (e->body_case != PITSTOP__V1__EVENT__BODY_OFFER || !e->offer)
		goto out;
	if ((int)e->offer->action < OFFER_ACTION_SHOWN ||
	    (int)e->offer->action > OFFER_ACTION_DELIVERED)
		goto out;
	memset(&ev, 0, sizeof(ev));
	ev.time_ms = e->time_ms;
	ev.action = (enum offer_action)e->offer->action;
	if (str_copy(ev.offer_id, sizeof(ev.offer_id), e->offer->offer_id) < 0 ||
	    str_copy(ev.reason, sizeof(ev.reason), e->offer->reason) < 0)
		goto out;
	*ret_ev = ev;
	r = 0;
out:
	pitstop__v1__event__free_unpacked(e, NULL);
	return r;
}

int codec_encode_status(const struct agent_status *st, uint8_t **ret_buf, size_t *ret_len)
{
	Pitstop__V1__Status s = PITSTOP__V1__STATUS__INIT;

	if (!st || !ret_buf || !ret_len)
		return -EINVAL;
	if ((st->state != AGENT_ONLINE && st->state != AGENT_OFFLINE) ||
	    str_check(st->agent_version, sizeof(st->agent_version)) < 0)
		return -EINVAL;
	s.state = (Pitstop__V1__Status__State)st->state;
	s.time_ms = st->time_ms;
	s.agent_version = (char *)st->agent_version;
	if (st->has_queue_depth) {
		s.queue_depth_present_case = PITSTOP__V1__STATUS__QUEUE_DEPTH_PRESENT_QUEUE_DEPTH;
		s.queue_depth = st->queue_depth;
	}
	return pack_message(&s.base, CODEC_MAX_STATUS_BYTES, ret_buf, ret_len);
}

int codec_decode_status(const uint8_t *buf, size_t len, struct agent_status *ret_st)
{
	Pitstop__V1__Status *s;
	struct agent_status st;
	int r = -EBADMSG;

	if ((!buf && len) || !ret_st)
		return -EINVAL;
	if (len > CODEC_MAX_STATUS_BYTES)
		return -EMSGSIZE;
	s = pitstop__v1__status__unpack(NULL, len, buf);
	if (!s)
		return -EBADMSG;
	if (s->state != PITSTOP__V1__STATUS__STATE__ONLINE &&
	    s->state != PITSTOP__V1__STATUS__STATE__OFFLINE)
		goto out;
	memset(&st, 0, sizeof(st));
	st.state = (enum agent_state)s->state;
	st.time_ms = s->time_ms;
	if (str_copy(st.agent_version, sizeof(st.agent_version), s->agent_version) < 0)
		goto out;
	if (s->queue_depth_present_case == PITSTOP__V1__STATUS__QUEUE_DEPTH_PRESENT_QUEUE_DEPTH) {
		st.has_queue_depth = 1;
		st.queue_depth = s->queue_depth;
	}
	*ret_st = st;
	r = 0;
out:
	pitstop__v1__status__free_unpacked(s, NULL);
	return r;
}

int codec_encode_ack(uint64_t epoch, int64_t gateway_time_ms, const uint64_t *seqs, size_t n,
		     uint8_t **ret_buf, size_t *ret_len)
{
	Pitstop__V1__TelemetryAck a = PITSTOP__V1__TELEMETRY_ACK__INIT;

	if (!seqs || !ret_buf || !ret_len || n == 0)
		return -EINVAL;
	if (n > CODEC_MAX_ACK_SEQS)
		return -EMSGSIZE;
	for (size_t i = 0; i < n; i++)
		if (seqs[i] == 0)
			return -EINVAL;
	a.epoch = epoch;
	a.gateway_time_ms = gateway_time_ms;
	a.n_seqs = n;
	a.seqs = (uint64_t *)seqs;
	return pack_message(&a.base, CODEC_MAX_ACK_BYTES, ret_buf, ret_len);
}

int codec_decode_ack(const uint8_t *buf, size_t len, uint64_t *ret_epoch,
		     int64_t *ret_gateway_time_ms, uint64_t **ret_seqs, size_t *ret_n)
{
	Pitstop__V1__TelemetryAck *a;
	uint64_t *seqs = NULL;
	int r = -EBADMSG;

	if ((!buf && len) || !ret_seqs || !ret_n)
		return -EINVAL;
	if (len > CODEC_MAX_ACK_BYTES)
		return -EMSGSIZE;
	a = pitstop__v1__telemetry_ack__unpack(NULL, len, buf);
	if (!a)
		return -EBADMSG;
	if (a->n_seqs > CODEC_MAX_ACK_SEQS) {
		r = -EMSGSIZE;
		goto out;
	}
	if (a->n_seqs == 0)
		goto out;
	for (size_t i = 0; i < a->n_seqs; i++)
		if (a->seqs[i] == 0)
			goto out;
	seqs = malloc(a->n_seqs * sizeof(*seqs));
	if (!seqs) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(seqs, a->seqs, a->n_seqs * sizeof(*seqs));
	if (ret_epoch)
		*ret_epoch = a->epoch;
	if (ret_gateway_time_ms)
		*ret_gateway_time_ms = a->gateway_time_ms;
	*ret_seqs = seqs;
	*ret_n = a->n_seqs;
	r = 0;
out:
	pitstop__v1__telemetry_ack__free_unpacked(a, NULL);
	return r;
}

/* 1 if a GeoArea centre is a valid WGS84 position. */
static int area_ok(int32_t lat_e7, int32_t lon_e7)
{
	return lat_e7 >= -CODEC_LAT_MAX && lat_e7 <= CODEC_LAT_MAX && lon_e7 >= -CODEC_LON_MAX &&
	       lon_e7 <= CODEC_LON_MAX;
}

int codec_encode_offer(const struct offer *o, uint8_t **ret_buf, size_t *ret_len)
{
	Pitstop__V1__Offer m = PITSTOP__V1__OFFER__INIT;
	Pitstop__V1__GeoArea area = PITSTOP__V1__GEO_AREA__INIT;

	if (!o || !ret_buf || !ret_len)
		return -EINVAL;
	if (o->kind < OFFER_REFUEL || o->kind > OFFER_TEST_DRIVE ||
	    str_check(o->id, sizeof(o->id)) < 0 || str_check(o->title, sizeof(o->title)) < 0 ||
	    str_check(o->body, sizeof(o->body)) < 0 ||
	    str_check(o->promo_code, sizeof(o->promo_code)) < 0 ||
	    str_check(o->vin, sizeof(o->vin)) < 0)
		return -EINVAL;
	if (o->has_area && !area_ok(o->area_lat_e7, o->area_lon_e7))
		return -EINVAL;
	m.id = (char *)o->id;
	m.kind = (Pitstop__V1__Offer__Kind)o->kind;
	m.title = (char *)o->title;
	m.body = (char *)o->body;
	m.promo_code = (char *)o->promo_code;
	m.valid_from_ms = o->valid_from_ms;
	m.valid_until_ms = o->valid_until_ms;
	m.vin = (char *)o->vin;
	if (o->has_area) {
		area.lat_e7 = o->area_lat_e7;
		area.lon_e7 = o->area_lon_e7;
		area.radius_m = o->area_radius_m;
		m.area_present_case = PITSTOP__V1__OFFER__AREA_PRESENT_AREA;
		m.area = &area;
	}
	return pack_message(&m.base, CODEC_MAX_OFFER_BYTES, ret_buf, ret_len);
}

int codec_decode_offer(const uint8_t *buf, size_t len, struct offer *ret_o)
{
	Pitstop__V1__Offer *m;
	struct offer *o = NULL; /* heap: struct offer is over 1 KiB */
	int r = -EBADMSG;

	if ((!buf && len) || !ret_o)
		return -EINVAL;
	if (len > CODEC_MAX_OFFER_BYTES)
		return -EMSGSIZE;
	m = pitstop__v1__offer__unpack(NULL, len, buf);
	if (!m)
		return -EBADMSG;
	if ((int)m->kind < OFFER_REFUEL || (int)m->kind > OFFER_TEST_DRIVE)
		goto out;
	o = calloc(1, sizeof(*o));
	if (!o) {
		r = -ENOMEM;
		goto out;
	}
	o->kind = (enum offer_kind)m->kind;
	o->valid_from_ms = m->valid_from_ms;
	o->valid_until_ms = m->valid_until_ms;
	if (str_copy(o->id, sizeof(o->id), m->id) < 0 ||
	    str_copy(o->title, sizeof(o->title), m->title) < 0 ||
	    str_copy(o->body, sizeof(o->body), m->body) < 0 ||
	    str_copy(o->promo_code, sizeof(o->promo_code), m->promo_code) < 0 ||
	    str_copy(o->vin, sizeof(o->vin), m->vin) < 0)
		goto out;
	if (m->area_present_case == PITSTOP__V1__OFFER__AREA_PRESENT_AREA && m->area) {
		if (!area_ok(m->area->lat_e7, m->area->lon_e7))
			goto out;
		o->has_area = 1;
		o->area_lat_e7 = m->area->lat_e7;
		o->area_lon_e7 = m->area->lon_e7;
		o->area_radius_m = m->area->radius_m;
	}
	*ret_o = *o;
	r = 0;
out:
	free(o);
	pitstop__v1__offer__free_unpacked(m, NULL);
	return r;
}

int codec_encode_signed_offer(const uint8_t *offer, size_t offer_len, const uint8_t *sig,
			      size_t sig_len, const char *key_id, uint8_t **ret_buf,
			      size_t *ret_len)
{
	Pitstop__V1__SignedOffer m = PITSTOP__V1__SIGNED_OFFER__INIT;

	if (!offer || offer_len == 0 || !sig || sig_len == 0 || sig_len > CODEC_MAX_SIG ||
	    !key_id || strlen(key_id) >= CODEC_MAX_KEY_ID || !ret_buf || !ret_len)
		return -EINVAL;
	if (offer_len > CODEC_MAX_OFFER_BYTES)
		return -EMSGSIZE;
	m.offer.data = (uint8_t *)offer; /* pack only reads */
	m.offer.len = offer_len;
	m.signature.data = (uint8_t *)sig;
	m.signature.len = sig_len;
	m.key_id = (char *)key_id;
	return pack_message(&m.base, CODEC_MAX_OFFER_BYTES, ret_buf, ret_len);
}

int codec_decode_signed_offer(const uint8_t *buf, size_t len, struct signed_offer *ret_so)
{
	Pitstop__V1__SignedOffer *m;
	struct signed_offer so = { 0 };
	int r = -EBADMSG;

	if ((!buf && len) || !ret_so)
		return -EINVAL;
	if (len > CODEC_MAX_OFFER_BYTES)
		return -EMSGSIZE;
	m = pitstop__v1__signed_offer__unpack(NULL, len, buf);
	if (!m)
		return -EBADMSG;
	/* No offer or no signature can never verify: refuse it here. */
	if (m->offer.len == 0 || m->signature.len == 0 || m->signature.len > CODEC_MAX_SIG)
		goto out;
	if (str_copy(so.key_id, sizeof(so.key_id), m->key_id) < 0)
		goto out;
	so.offer = malloc(m->offer.len);
	so.sig = malloc(m->signature.len);
	if (!so.offer || !so.sig) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(so.offer, m->offer.data, m->offer.len);
	so.offer_len = m->offer.len;
	memcpy(so.sig, m->signature.data, m->signature.len);
	so.sig_len = m->signature.len;
	*ret_so = so;
	so.offer = so.sig = NULL; /* now owned by *ret_so */
	r = 0;
out:
	free(so.offer);
	free(so.sig);
	pitstop__v1__signed_offer__free_unpacked(m, NULL);
	return r;
}

void codec_signed_offer_free(struct signed_offer *so)
{
	if (!so)
		return;
	free(so->offer);
	free(so->sig);
	so->offer = so->sig = NULL;
	so->offer_len = so->sig_len = 0;
}
