/*
 * Protocol v1 encoding and decoding (see codec.h and proto/pitstop.proto).
 * The wire format is protobuf-c's own pack/unpack; this file only maps our
 * C structs onto the generated messages and enforces the limits:
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
};

static const struct column columns[] = {
	{ 0, 1, SAMPLE_FIELD(time_ms), BATCH_FIELD(n_time_ms), BATCH_FIELD(time_ms), 0,
	  CODEC_TIME_MAX },
	{ SAMPLE_ODOMETER, 1, SAMPLE_FIELD(odometer_m), BATCH_FIELD(n_odometer_m),
	  BATCH_FIELD(odometer_m), 0, CODEC_ODOMETER_MAX },
	{ SAMPLE_FUEL, 0, SAMPLE_FIELD(fuel_permille), BATCH_FIELD(n_fuel_permille),
	  BATCH_FIELD(fuel_permille), 0, CODEC_FUEL_MAX },
	{ SAMPLE_POSITION, 0, SAMPLE_FIELD(lat_e7), BATCH_FIELD(n_lat_e7), BATCH_FIELD(lat_e7),
	  -CODEC_LAT_MAX, CODEC_LAT_MAX },
	{ SAMPLE_POSITION, 0, SAMPLE_FIELD(lon_e7), BATCH_FIELD(n_lon_e7), BATCH_FIELD(lon_e7),
	  -CODEC_LON_MAX, CODEC_LON_MAX },
	{ SAMPLE_SPEED, 0, SAMPLE_FIELD(speed_cms), BATCH_FIELD(n_speed_cms),
	  BATCH_FIELD(speed_cms), 0, CODEC_SPEED_MAX },
	{ SAMPLE_HEADING, 0, SAMPLE_FIELD(heading_cdeg), BATCH_FIELD(n_heading_cdeg),
	  BATCH_FIELD(heading_cdeg), 0, CODEC_HEADING_MAX },
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

int codec_encode_batch(uint64_t epoch, uint64_t seq, const struct sample *samples, size_t n,
		       uint8_t **ret_buf, size_t *ret_len)
{
	Pitstop__V1__TelemetryBatch b = PITSTOP__V1__TELEMETRY_BATCH__INIT;
	int64_t prev[NCOLUMNS] = { 0 };
	size_t k;
	int r;

	if (!samples || !ret_buf || !ret_len || seq == 0 || n == 0)
		return -EINVAL;
	if (n > CODEC_MAX_SAMPLES)
		return -EMSGSIZE;

	b.epoch = epoch;
	b.seq = seq;
	b.n_flags = n;
	b.flags = malloc(n * sizeof(*b.flags));
	if (!b.flags) {
		r = -ENOMEM;
		goto out;
	}
	/* Every column gets room for n entries; n is bounded above. */
	for (k = 0; k < NCOLUMNS; k++) {
		r = col_alloc(&columns[k], &b, n);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct sample *s = &samples[i];

		if ((s->present & ~SAMPLE_ALL) || (unsigned)s->fix > CODEC_FIX_MAX ||
		    (s->present & (SAMPLE_ODOMETER | SAMPLE_ODOMETER_EST)) == SAMPLE_ODOMETER_EST) {
			r = -EINVAL;
			goto out;
		}
		b.flags[i] = s->present | ((unsigned)s->fix << FLAGS_FIX_SHIFT);
		for (k = 0; k < NCOLUMNS; k++) {
			const struct column *c = &columns[k];
			size_t *count = col_count(c, &b);
			void *data = col_data(c, &b);
			int64_t v;

			if (!col_in(c, s->present))
				continue;
			v = col_get(c, s);
			if (v < c->lo || v > c->hi) {
				r = -EINVAL;
				goto out;
			}
			/* Both in range: the difference cannot overflow int64. */
			if (c->wide)
				((int64_t *)data)[*count] = v - prev[k];
			else
				((int32_t *)data)[*count] = wrap32(v - prev[k]);
			(*count)++;
			prev[k] = v;
		}
	}
	r = pack_message(&b.base, CODEC_MAX_BATCH_BYTES, ret_buf, ret_len);
out:
	free(b.flags);
	for (k = 0; k < NCOLUMNS; k++)
		free(col_data(&columns[k], &b));
	return r;
}

int codec_decode_batch(const uint8_t *buf, size_t len, uint64_t *ret_epoch, uint64_t *ret_seq,
		       struct sample **ret_samples, size_t *ret_n)
{
	Pitstop__V1__TelemetryBatch *m = NULL;
	struct sample *samples = NULL;
	int64_t acc[NCOLUMNS] = { 0 };
	size_t idx[NCOLUMNS] = { 0 };
	size_t n, k;
	int r;

	if ((!buf && len) || !ret_seq || !ret_samples || !ret_n)
		return -EINVAL;
	if (len > CODEC_MAX_BATCH_BYTES)
		return -EMSGSIZE;
	m = pitstop__v1__telemetry_batch__unpack(NULL, len, buf);
	if (!m)
		return -EBADMSG;

	n = m->n_flags;
	if (n > CODEC_MAX_SAMPLES) {
		r = -EMSGSIZE;
		goto out;
	}
	if (m->seq == 0 || n == 0 || m->n_time_ms != n) {
		r = -EBADMSG;
		goto out;
	}
	/* Each column must hold exactly one entry per sample that has it. */
	for (k = 0; k < NCOLUMNS; k++) {
		size_t want = 0;

		for (size_t i = 0; i < n; i++)
			want += col_in(&columns[k], m->flags[i]) ? 1 : 0;
		if (*col_count(&columns[k], m) != want) {
			r = -EBADMSG;
			goto out;
		}
	}
	samples = calloc(n, sizeof(*samples));
	if (!samples) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct sample *s = &samples[i];
		unsigned present = m->flags[i] & SAMPLE_ALL; /* other bits: ignored */

		if (!(present & SAMPLE_ODOMETER))
			present &= ~SAMPLE_ODOMETER_EST;
		s->present = present;
		s->fix = (enum fix_mode)((m->flags[i] >> FLAGS_FIX_SHIFT) & FLAGS_FIX_MASK);
		for (k = 0; k < NCOLUMNS; k++) {
			const struct column *c = &columns[k];

			if (!col_in(c, present))
				continue;
			r = col_undelta(c, &acc[k], col_entry(c, m, idx[k]++));
			if (r < 0)
				goto out;
			col_set(c, s, acc[k]);
		}
	}
	if (ret_epoch)
		*ret_epoch = m->epoch;
	*ret_seq = m->seq;
	*ret_samples = samples;
	*ret_n = n;
	samples = NULL;
	r = 0;
out:
	free(samples);
	pitstop__v1__telemetry_batch__free_unpacked(m, NULL);
	return r;
}

int codec_encode_offer_event(const struct offer_event *ev, uint8_t **ret_buf, size_t *ret_len)
{
	Pitstop__V1__Event e = PITSTOP__V1__EVENT__INIT;
	Pitstop__V1__OfferEvent oe = PITSTOP__V1__OFFER_EVENT__INIT;

	if (!ev || !ret_buf || !ret_len)
		return -EINVAL;
	if (ev->action < OFFER_ACTION_SHOWN || ev->action > OFFER_ACTION_REJECTED ||
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
	    (int)e->offer->action > OFFER_ACTION_REJECTED)
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
