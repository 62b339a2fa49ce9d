/*
 * libFuzzer target for common/codec.c: every input goes through every
 * codec_decode_*(): the messages a car sends (TelemetryBatch with its queue
 * epoch, Event, Status) and the ones it reads (TelemetryAck with the
 * gateway's clock, SignedOffer and the Offer it carries). Whatever decodes
 * must re-encode, and decode again to the same values (for telemetry batches
 * this checks the delta coding and the range checks against each other). A failed check calls abort(), which
 * libFuzzer and the corpus replay (replay_main.c) both report.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                            \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "fuzz_codec: check failed at line %d: %s\n", __LINE__, \
				#cond);                                                        \
			abort();                                                               \
		}                                                                              \
	} while (0)

static int samples_equal(const struct sample *a, const struct sample *b)
{
	return a->time_ms == b->time_ms && a->present == b->present && a->fix == b->fix &&
	       a->odometer_m == b->odometer_m && a->fuel_permille == b->fuel_permille &&
	       a->lat_e7 == b->lat_e7 && a->lon_e7 == b->lon_e7 && a->speed_cms == b->speed_cms &&
	       a->heading_cdeg == b->heading_cdeg;
}

static void fuzz_batch(const uint8_t *data, size_t size)
{
	struct sample *s1 = NULL, *s2 = NULL;
	size_t n1 = 0, n2 = 0, len = 0;
	uint64_t seq1 = 0, seq2 = 0, ep1 = 0, ep2 = 0;
	uint8_t *buf = NULL;

	if (codec_decode_batch(data, size, &ep1, &seq1, &s1, &n1) != 0)
		return;
	CHECK(seq1 != 0 && n1 >= 1 && n1 <= CODEC_MAX_SAMPLES);
	CHECK(codec_encode_batch(ep1, seq1, s1, n1, &buf, &len) == 0);
	CHECK(len <= CODEC_MAX_BATCH_BYTES);
	CHECK(codec_decode_batch(buf, len, &ep2, &seq2, &s2, &n2) == 0);
	CHECK(seq1 == seq2 && n1 == n2 && ep1 == ep2);
	for (size_t i = 0; i < n1; i++)
		CHECK(samples_equal(&s1[i], &s2[i]));
	free(buf);
	free(s1);
	free(s2);
}

static void fuzz_ack(const uint8_t *data, size_t size)
{
	uint64_t *s1 = NULL, *s2 = NULL, ep1 = 0, ep2 = 0;
	int64_t t1 = 0, t2 = 0;
	size_t n1 = 0, n2 = 0, len = 0;
	uint8_t *buf = NULL;

	if (codec_decode_ack(data, size, &ep1, &t1, &s1, &n1) != 0)
		return;
	CHECK(n1 >= 1 && n1 <= CODEC_MAX_ACK_SEQS);
	for (size_t i = 0; i < n1; i++)
		CHECK(s1[i] != 0);
	CHECK(codec_encode_ack(ep1, t1, s1, n1, &buf, &len) == 0);
	CHECK(len <= CODEC_MAX_ACK_BYTES);
	CHECK(codec_decode_ack(buf, len, &ep2, &t2, &s2, &n2) == 0);
	CHECK(ep1 == ep2 && t1 == t2 && n1 == n2 && memcmp(s1, s2, n1 * sizeof(*s1)) == 0);
	/* the epoch and the clock are optional outputs */
	free(s2);
	s2 = NULL;
	CHECK(codec_decode_ack(buf, len, NULL, NULL, &s2, &n2) == 0 && n2 == n1);
	free(buf);
	free(s1);
	free(s2);
}

static void fuzz_event(const uint8_t *data, size_t size)
{
	struct offer_event a, b;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (codec_decode_offer_event(data, size, &a) != 0)
		return;
	CHECK(codec_encode_offer_event(&a, &buf, &len) == 0);
	CHECK(codec_decode_offer_event(buf, len, &b) == 0);
	CHECK(a.time_ms == b.time_ms && a.action == b.action);
	CHECK(strcmp(a.offer_id, b.offer_id) == 0 && strcmp(a.reason, b.reason) == 0);
	free(buf);
}

static void fuzz_status(const uint8_t *data, size_t size)
{
	struct agent_status a, b;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (codec_decode_status(data, size, &a) != 0)
		return;
	CHECK(codec_encode_status(&a, &buf, &len) == 0);
	CHECK(codec_decode_status(buf, len, &b) == 0);
	CHECK(a.state == b.state && a.time_ms == b.time_ms &&
	      a.has_queue_depth == b.has_queue_depth);
	CHECK(a.queue_depth == b.queue_depth && strcmp(a.agent_version, b.agent_version) == 0);
	free(buf);
}

static void fuzz_offer(const uint8_t *data, size_t size)
{
	struct offer *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	uint8_t *buf = NULL;
	size_t len = 0;

	CHECK(a && b);
	if (codec_decode_offer(data, size, a) == 0) {
		CHECK(codec_encode_offer(a, &buf, &len) == 0);
		CHECK(codec_decode_offer(buf, len, b) == 0);
		CHECK(a->kind == b->kind && a->valid_from_ms == b->valid_from_ms &&
		      a->valid_until_ms == b->valid_until_ms && a->has_area == b->has_area);
		CHECK(a->area_lat_e7 == b->area_lat_e7 && a->area_lon_e7 == b->area_lon_e7 &&
		      a->area_radius_m == b->area_radius_m);
		CHECK(strcmp(a->id, b->id) == 0 && strcmp(a->title, b->title) == 0 &&
		      strcmp(a->body, b->body) == 0 && strcmp(a->promo_code, b->promo_code) == 0 &&
		      strcmp(a->vin, b->vin) == 0);
		free(buf);
	}
	free(a);
	free(b);
}

static void fuzz_signed_offer(const uint8_t *data, size_t size)
{
	struct signed_offer a, b;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (codec_decode_signed_offer(data, size, &a) != 0)
		return;
	CHECK(a.offer_len > 0 && a.sig_len > 0 && a.sig_len <= CODEC_MAX_SIG);
	CHECK(codec_encode_signed_offer(a.offer, a.offer_len, a.sig, a.sig_len, a.key_id, &buf,
					&len) == 0);
	CHECK(codec_decode_signed_offer(buf, len, &b) == 0);
	CHECK(a.offer_len == b.offer_len && memcmp(a.offer, b.offer, a.offer_len) == 0);
	CHECK(a.sig_len == b.sig_len && memcmp(a.sig, b.sig, a.sig_len) == 0);
	CHECK(strcmp(a.key_id, b.key_id) == 0);
	/* the carried offer bytes are fuzz input too */
	fuzz_offer(a.offer, a.offer_len);
	codec_signed_offer_free(&a);
	codec_signed_offer_free(&b);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_batch(data, size);
	fuzz_ack(data, size);
	fuzz_event(data, size);
	fuzz_status(data, size);
	fuzz_offer(data, size);
	fuzz_signed_offer(data, size);
	return 0;
}
