/*
 * bench_publish: publishes N telemetry batches as one vehicle, as fast as the
 * broker acknowledges them (QoS 1, a window of in-flight messages), through
 * the same bus and codec the agent uses. Driven by bench/throughput.py; also
 * prints its own figures as key=value lines.
 *
 * usage: bench_publish URI CA CERT KEY VIN N [SAMPLES_PER_BATCH] [FIRST_SEQ]
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

struct bench {
	struct loop *loop;
	struct bus *bus;
	char topic[128];
	uint8_t *payload; /* one encoded batch, re-encoded per seq */
	size_t len;
	struct sample *samples;
	size_t per_batch;
	uint64_t next_seq, first_seq, end_seq; /* [first, end) */
	uint64_t acked;
	uint64_t t_start, t_end;
	int failed;
};

static void bench_fill(struct bench *b)
{
	while (b->next_seq < b->end_seq) {
		uint8_t *buf;
		size_t len;
		int r;

		/* Each batch carries its own seq, so each is a distinct batch. */
		r = codec_encode_batch(0, b->next_seq, b->samples, b->per_batch, &buf, &len);
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
		b->next_seq++;
	}
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
	case BUS_PUBLISHED:
		if (++b->acked == b->end_seq - b->first_seq) {
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
	int64_t t0 = 1795000000000;
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
	if (n == 0 || b.per_batch == 0 || b.per_batch > CODEC_MAX_SAMPLES || b.first_seq == 0) {
		fprintf(stderr, "bad N, SAMPLES_PER_BATCH or FIRST_SEQ\n");
		return 2;
	}
	b.next_seq = b.first_seq;
	b.end_seq = b.first_seq + n;
	snprintf(b.topic, sizeof(b.topic), "pitstop/v1/vehicles/%s/telemetry", argv[5]);

	/* A plausible 1 Hz drive: 12 m/s north-east, fuel slowly falling. */
	b.samples = calloc(b.per_batch, sizeof(*b.samples));
	if (!b.samples)
		return 1;
	for (size_t i = 0; i < b.per_batch; i++) {
		struct sample *s = &b.samples[i];

		s->time_ms = t0 + (int64_t)i * 1000;
		s->present = SAMPLE_ODOMETER | SAMPLE_FUEL | SAMPLE_POSITION | SAMPLE_SPEED |
			     SAMPLE_HEADING;
		s->fix = FIX_3D;
		s->odometer_m = 42195000 + (int64_t)i * 12;
		s->fuel_permille = 400 - (int32_t)(i / 20);
		s->lat_e7 = 481371540 + (int32_t)i * 760;
		s->lon_e7 = 115761240 + (int32_t)i * 1150;
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
	bus_start(b.bus);
	loop_run(b.loop);
	bus_stop(b.bus, 1000);
	bus_free(b.bus);
	loop_free(b.loop);
	free(b.samples);
	if (b.failed || !b.t_end)
		return 1;
	printf("publish_batches=%" PRIu64 "\n", n);
	printf("publish_samples_per_batch=%zu\n", b.per_batch);
	printf("publish_batch_bytes=%zu\n", b.len);
	printf("publish_acked_msgs_per_s=%.0f\n",
	       (double)n * 1000.0 / (double)(b.t_end - b.t_start ? b.t_end - b.t_start : 1));
	return 0;
}
