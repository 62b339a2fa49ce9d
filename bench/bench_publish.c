/*
 * bench_publish: publishes N telemetry batches as one vehicle, as fast as the
 * broker acknowledges them (QoS 1, a window of in-flight messages), through
 * the same bus and codec the agent uses. Driven by bench/throughput.py; also
 * prints its own figures as key=value lines.
 *
 * With WAIT_RECEIPTS = 1 it also subscribes to the vehicle's acks topic and
 * runs until the gateway's receipt for every batch arrived (or 600 s
 * passed): receipt latency (publish to receipt) is printed as percentiles.
 * Batches follow each other in time (batch k covers the k-th
 * SAMPLES_PER_BATCH seconds of a drive), under a random queue epoch, as a
 * real car's do.
 *
 * usage: bench_publish URI CA CERT KEY VIN N [SAMPLES_PER_BATCH] [FIRST_SEQ]
 *                      [WAIT_RECEIPTS]
 */
#include "bus.h"
#include "codec.h"
#include "log.h"
#include "loop.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct bench {
	struct loop *loop;
	struct bus *bus;
	char topic[128];
	uint8_t *payload; /* one encoded batch, re-encoded per seq */
	size_t len;
	struct sample *samples;
	size_t per_batch;
	uint64_t next_seq, first_seq, end_seq; /* [first, end) */
	uint64_t epoch;
	uint64_t acked;
	uint64_t t_start, t_end;
	int failed;
	int wait_receipts;
	uint64_t *sent_ms; /* owned: publish time per batch (index seq - first_seq) */
	uint64_t *latency; /* owned: receipt latency per batch, 0 = none yet */
	uint64_t receipts; /* batches with a receipt */
};

/* The samples of batch seq: the drive moves on by per_batch seconds a batch. */
static void shift_samples(struct bench *b, uint64_t seq)
{
	int64_t k = (int64_t)(seq - 1);

	for (size_t i = 0; i < b->per_batch; i++) {
		struct sample *s = &b->samples[i];
		int64_t j = k * (int64_t)b->per_batch + (int64_t)i;

		s->time_ms = 1795000000000 + j * 1000;
		s->odometer_m = 42195000 + j * 12;
		s->fuel_permille = 800 - (int32_t)((j / 20) % 600);
		s->lat_e7 = 481371540 + (int32_t)((j * 760) % 100000000);
		s->lon_e7 = 115761240 + (int32_t)((j * 1150) % 100000000);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A receipt from the gateway: record the latency of each batch it names. */
static void on_receipt(struct bench *b, const uint8_t *buf, size_t len)
{
	uint64_t *seqs = NULL, epoch = 0, now = loop_now_ms();
	size_t n = 0;

	if (codec_decode_ack(buf, len, &epoch, NULL, &seqs, &n) < 0 || epoch != b->epoch) {
		free(seqs);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t k = seqs[i] - b->first_seq;

		if (seqs[i] < b->first_seq || seqs[i] >= b->end_seq || b->latency[k])
			continue;
		b->latency[k] = now - b->sent_ms[k] + 1; /* +1: 0 means none */
		b->receipts++;
	}
	free(seqs);
	if (b->receipts == b->end_seq - b->first_seq) {
		b->t_end = now;
		loop_stop(b->loop);
	}
}

static void bench_fill(struct bench *b)
{
	while (b->next_seq < b->end_seq) {
		uint8_t *buf;
		size_t len;
		int r;

		/* Each batch carries its own seq, so each is a distinct batch. */
		shift_samples(b, b->next_seq);
		r = codec_encode_batch(b->epoch, b->next_seq, b->samples, b->per_batch, &buf, &len);
		if (r < 0) {
			fprintf(stderr, "encode: %s\n", strerror(-r));
			b->failed = 1;
			loop_stop(b->loop);
			return;
		}
		r = bus_publish(b->bus, b->topic, buf, len, 1, 0, b->next_seq);
		free(buf);
		if (r == -EAGAIN || r == -ENOTCONN)
			return;
		if (r < 0) {
			fprintf(stderr, "publish: %s\n", strerror(-r));
			b->failed = 1;
			loop_stop(b->loop);
			return;
		}
		b->len = len;
		b->sent_ms[b->next_seq - b->first_seq] = loop_now_ms();
		b->next_seq++;
	}
}

/* Gives up waiting for receipts. */
static void receipt_timeout(void *arg)
{
	struct bench *b = arg;

	fprintf(stderr, "only %" PRIu64 " receipts after 600 s\n", b->receipts);
	b->failed = 1;
	loop_stop(b->loop);
}

static void on_bus(const struct bus_event *ev, void *arg)
{
	struct bench *b = arg;

	switch (ev->type) {
	case BUS_CONNECTED:
		if (!b->t_start)
			b->t_start = loop_now_ms();
		bench_fill(b);
		break;
	case BUS_MESSAGE:
		on_receipt(b, ev->payload, ev->len);
		break;
	case BUS_PUBLISHED:
		if (++b->acked == b->end_seq - b->first_seq && !b->wait_receipts) {
			b->t_end = loop_now_ms();
			loop_stop(b->loop);
			return;
		}
		bench_fill(b);
		break;
	case BUS_PUBLISH_FAILED:
		fprintf(stderr, "batch %" PRIu64 " refused: %s\n", ev->cookie,
			bus_reason_string(ev->reason_code));
		b->failed = 1;
		loop_stop(b->loop);
		break;
	case BUS_DISCONNECTED:
		/* Resend from the first unacknowledged batch is not needed for a
		 * benchmark: report the failure instead of a wrong figure. */
		fprintf(stderr, "connection lost during the run\n");
		b->failed = 1;
		loop_stop(b->loop);
		break;
	default:
		break;
	}
}

int main(int argc, char **argv)
{
	struct bus_config conf = { 0 };
	struct bench b = { 0 };
	char acks[160];
	uint64_t n;
	int r;

	if (argc < 7) {
		fprintf(stderr, "usage: %s URI CA CERT KEY VIN N [SAMPLES_PER_BATCH] [FIRST_SEQ]\n",
			argv[0]);
		return 2;
	}
	log_init("bench_publish", LOG_LEVEL_WARN);
	n = strtoull(argv[6], NULL, 10);
	b.per_batch = argc > 7 ? strtoul(argv[7], NULL, 10) : 30;
	b.first_seq = argc > 8 ? strtoull(argv[8], NULL, 10) : 1;
	b.wait_receipts = argc > 9 && strcmp(argv[9], "1") == 0;
	if (getrandom(&b.epoch, sizeof(b.epoch), 0) != sizeof(b.epoch) || !b.epoch)
		b.epoch = 0x5eed;
	if (n == 0 || b.per_batch == 0 || b.per_batch > CODEC_MAX_SAMPLES || b.first_seq == 0) {
		fprintf(stderr, "bad N, SAMPLES_PER_BATCH or FIRST_SEQ\n");
		return 2;
	}
	b.next_seq = b.first_seq;
	b.end_seq = b.first_seq + n;
	snprintf(b.topic, sizeof(b.topic), "pitstop/v1/vehicles/%s/telemetry", argv[5]);

	/* A plausible 1 Hz drive: 12 m/s north-east, fuel slowly falling. */
	b.samples = calloc(b.per_batch, sizeof(*b.samples));
	b.sent_ms = calloc(n, sizeof(*b.sent_ms));
	b.latency = calloc(n, sizeof(*b.latency));
	if (!b.samples || !b.sent_ms || !b.latency)
		return 1;
	for (size_t i = 0; i < b.per_batch; i++) {
		struct sample *s = &b.samples[i];

		s->present = SAMPLE_ODOMETER | SAMPLE_FUEL | SAMPLE_POSITION | SAMPLE_SPEED |
			     SAMPLE_HEADING;
		s->fix = FIX_3D;
		s->speed_cms = 1200 + (int32_t)(i % 7) * 10;
		s->heading_cdeg = 4500 + (int32_t)(i % 5) * 20;
	}

	r = loop_new(&b.loop);
	if (r < 0)
		return 1;
	conf.uri = argv[1];
	conf.client_id = argv[5];
	conf.ca_file = argv[2];
	conf.cert_file = argv[3];
	conf.key_file = argv[4];
	conf.clean_start = 1;
	conf.max_inflight = 64;
	r = bus_new(b.loop, &conf, on_bus, &b, &b.bus);
	if (r < 0) {
		fprintf(stderr, "bus: %s\n", strerror(-r));
		return 1;
	}
	if (b.wait_receipts) {
		snprintf(acks, sizeof(acks), "pitstop/v1/vehicles/%s/acks", argv[5]);
		if (bus_subscribe(b.bus, acks, 1) < 0 ||
		    loop_add_timer(b.loop, 600000, receipt_timeout, &b) < 0)
			return 1;
	}
	bus_start(b.bus);
	loop_run(b.loop);
	bus_stop(b.bus, 1000);
	bus_free(b.bus);
	loop_free(b.loop);
	free(b.samples);
	free(b.sent_ms);
	if (b.failed || !b.t_end) {
		free(b.latency);
		return 1;
	}
	printf("publish_batches=%" PRIu64 "\n", n);
	printf("publish_samples_per_batch=%zu\n", b.per_batch);
	printf("publish_batch_bytes=%zu\n", b.len);
	printf("publish_%s_msgs_per_s=%.0f\n", b.wait_receipts ? "receipted" : "acked",
	       (double)n * 1000.0 / (double)(b.t_end - b.t_start ? b.t_end - b.t_start : 1));
	if (b.wait_receipts) {
		qsort(b.latency, n, sizeof(*b.latency), cmp_u64);
		printf("receipt_latency_ms_p50=%" PRIu64 "\n", b.latency[n / 2] - 1);
		printf("receipt_latency_ms_p99=%" PRIu64 "\n", b.latency[n * 99 / 100] - 1);
		printf("receipt_latency_ms_max=%" PRIu64 "\n", b.latency[n - 1] - 1);
	}
	free(b.latency);
	return 0;
}
