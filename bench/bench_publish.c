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
 *
 * Fleet mode (bench/offer_latency.py): many cars in one process, each with
 * its own certificate (PKI_DIR/vehicles/<VIN>.crt) and connection, publish
 * RATE batches a second in total, round robin, for SECONDS. Every car's
 * fuel is high except in one batch of every 100 / OFFER_PCT of its own (the
 * cars offset from each other), so with the gateway's low-fuel rule at
 * low_fuel_rearm_hold_s = 0 and no daily cap each low batch earns one
 * offer. Each car subscribes to its offers topic; the time from handing a
 * low batch to Paho to Paho's thread receiving the car's next offer is the
 * client-observed offer latency (printed as percentiles, ms). Runs until
 * every low batch has its offer or 10 s after the last publish.
 *
 * usage: bench_publish fleet URI CA PKI_DIR VINS_FILE RATE SECONDS OFFER_PCT
 *                      [SAMPLES_PER_BATCH]
 *
 * Watch mode (bench/offer_e2e.py): subscribes to FILTER (QoS 1; a shared
 * subscription of its own, so the gateway still gets every message) and
 * prints a line per telemetry batch until SIGTERM or SIGINT:
 *   <us> <VIN> <seq> <fuel permille of its last sample, -1 if none>
 * where <us> is CLOCK_MONOTONIC in microseconds when Paho's thread received
 * it (Python's time.monotonic() reads the same clock).
 *
 * usage: bench_publish watch URI CA CERT KEY CLIENT_ID FILTER
 */
#include "bus.h"
#include "codec.h"
#include "log.h"
#include "loop.h"
#include "vin.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
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

/*
 * conf for one client of ours (strings borrowed): a clean start, 64 QoS 1
 * publishes in flight at most.
 */
static void client_config(struct bus_config *conf, const char *uri, const char *ca,
			  const char *cert, const char *key, const char *client_id)
{
	memset(conf, 0, sizeof(*conf));
	conf->uri = uri;
	conf->ca_file = ca;
	conf->cert_file = cert;
	conf->key_file = key;
	conf->client_id = client_id;
	conf->clean_start = 1;
	conf->max_inflight = 64;
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

/* ---- fleet mode -------------------------------------------------------- */

#define FLEET_MAX_CARS 1000
#define FLEET_TICK_MS 1
#define FLEET_DRAIN_MS 10000
#define FUEL_HIGH_PERMILLE 600 /* 60 %: above any low-fuel re-arm level */
#define FUEL_LOW_PERMILLE 80   /* 8 %: below the default low_fuel_pct of 15 */

struct fleet;

struct car {
	struct fleet *f; /* borrowed */
	struct bus *bus; /* owned */
	char vin[VIN_LEN + 1];
	char topic[64];
	uint64_t epoch;
	uint64_t seq;	      /* batches published so far (the last seq) */
	unsigned offset;      /* its low batches are those with (seq + offset) % period == 0 */
	uint64_t low_sent_us; /* publish time of a low batch awaiting its offer; 0 = none */
	int connected;
};

enum fleet_phase { FLEET_CONNECTING, FLEET_WARMING, FLEET_RUNNING, FLEET_DRAINING };

struct fleet {
	struct loop *loop;
	struct car *cars; /* owned, ncars */
	size_t ncars;
	double rate;	  /* batches per second, all cars together */
	unsigned seconds; /* of publishing */
	unsigned period;  /* batches per car between two low ones */
	size_t per_batch;
	struct sample *samples; /* owned, per_batch: scratch */
	enum fleet_phase phase;
	size_t connected, rr;
	uint64_t t0_us, t_end_us, drain_until_us;
	uint64_t sent, low, refused, behind; /* behind: a car had no free in-flight slot */
	uint64_t offers, unmatched, missed, bad;
	uint64_t *lat_us; /* owned, maxlat: client-observed latency per offer */
	size_t nlat, maxlat;
	size_t last_len;
	int failed;
};

static void fleet_fail(struct fleet *f, const char *what, const char *vin)
{
	fprintf(stderr, "fleet: %s (%s)\n", what, vin);
	f->failed = 1;
	loop_stop(f->loop);
}

/* Batch seq of car c: per_batch 1 Hz samples, parked, fuel low or high. */
static void fleet_samples(struct fleet *f, const struct car *c, uint64_t seq, int low)
{
	size_t k = (size_t)(c - f->cars);

	for (size_t i = 0; i < f->per_batch; i++) {
		struct sample *s = &f->samples[i];
		int64_t j = (int64_t)(seq - 1) * (int64_t)f->per_batch + (int64_t)i;

		memset(s, 0, sizeof(*s));
		s->present = SAMPLE_ODOMETER | SAMPLE_FUEL | SAMPLE_POSITION | SAMPLE_SPEED |
			     SAMPLE_HEADING;
		s->fix = FIX_3D;
		s->time_ms = 1795000000000 + j * 1000;
		s->odometer_m = 42195000 + (int64_t)k * 1000;
		s->fuel_permille = low ? FUEL_LOW_PERMILLE : FUEL_HIGH_PERMILLE;
		s->lat_e7 = 481371540 + (int32_t)(k % 100) * 10000;
		s->lon_e7 = 115761240 + (int32_t)(k / 100) * 10000;
	}
}

/* Publishes car c's next batch. Returns 0, -EAGAIN (no slot: later) or -errno. */
static int fleet_publish(struct fleet *f, struct car *c)
{
	uint64_t seq = c->seq + 1;
	int low = (seq + c->offset) % f->period == 0, r;
	uint8_t *buf;
	size_t len;

	fleet_samples(f, c, seq, low);
	r = codec_encode_batch(c->epoch, seq, f->samples, f->per_batch, &buf, &len);
	if (r < 0)
		return r;
	r = bus_publish(c->bus, c->topic, buf, len, 1, 0, seq);
	free(buf);
	if (r < 0)
		return r;
	c->seq = seq;
	f->sent++;
	f->last_len = len;
	if (low) {
		if (c->low_sent_us)
			f->missed++; /* the previous low batch got no offer */
		c->low_sent_us = loop_now_us();
		f->low++;
	}
	return 0;
}

/* 1 when no car waits for an offer. */
static int fleet_all_answered(const struct fleet *f)
{
	for (size_t i = 0; i < f->ncars; i++)
		if (f->cars[i].low_sent_us)
			return 0;
	return 1;
}

/* Every ms: publish what the target rate makes due by now, round robin. */
static void fleet_tick(void *arg)
{
	struct fleet *f = arg;
	uint64_t now = loop_now_us(), due;

	if (f->phase == FLEET_WARMING) {
		f->phase = FLEET_RUNNING;
		f->t0_us = now;
	}
	if (f->phase == FLEET_RUNNING && now - f->t0_us >= (uint64_t)f->seconds * 1000000u) {
		f->phase = FLEET_DRAINING;
		f->t_end_us = now;
		f->drain_until_us = now + FLEET_DRAIN_MS * 1000u;
	}
	if (f->phase == FLEET_DRAINING) {
		if (fleet_all_answered(f) || now >= f->drain_until_us) {
			loop_stop(f->loop);
			return;
		}
	} else {
		due = (uint64_t)(f->rate * (double)(now - f->t0_us) / 1e6);
		for (size_t tries = 0; f->sent < due && tries < f->ncars; tries++) {
			struct car *c = &f->cars[f->rr++ % f->ncars];
			int r = fleet_publish(f, c);

			if (r == -EAGAIN) {
				f->behind++;
			} else if (r < 0) {
				fleet_fail(f, strerror(-r), c->vin);
				return;
			}
		}
	}
	if (loop_add_timer(f->loop, FLEET_TICK_MS, fleet_tick, f) < 0)
		fleet_fail(f, "no timer", "-");
}

/* An offer for car c: matched with its low batch waiting for one. */
static void fleet_offer(struct fleet *f, struct car *c, const struct bus_event *ev)
{
	struct signed_offer so;
	struct offer o;
	int ok;

	if (codec_decode_signed_offer(ev->payload, ev->len, &so) < 0) {
		f->bad++;
		return;
	}
	ok = codec_decode_offer(so.offer, so.offer_len, &o) == 0 && o.kind == OFFER_REFUEL &&
	     strcmp(o.vin, c->vin) == 0;
	codec_signed_offer_free(&so);
	if (!ok) {
		f->bad++;
		return;
	}
	f->offers++;
	if (!c->low_sent_us || f->nlat == f->maxlat) {
		f->unmatched++;
		return;
	}
	f->lat_us[f->nlat++] = ev->received_us - c->low_sent_us;
	c->low_sent_us = 0;
}

static void fleet_on_bus(const struct bus_event *ev, void *arg)
{
	struct car *c = arg;
	struct fleet *f = c->f;

	switch (ev->type) {
	case BUS_CONNECTED:
		if (c->connected)
			break;
		c->connected = 1;
		if (++f->connected == f->ncars && f->phase == FLEET_CONNECTING) {
			/* the SUBSCRIBEs follow the CONNACKs: give them a second */
			f->phase = FLEET_WARMING;
			if (loop_add_timer(f->loop, 1000, fleet_tick, f) < 0)
				fleet_fail(f, "no timer", "-");
		}
		break;
	case BUS_MESSAGE:
		fleet_offer(f, c, ev);
		break;
	case BUS_PUBLISH_FAILED:
		f->refused++; /* over the broker's per-car budget, most likely */
		break;
	case BUS_DISCONNECTED:
		fleet_fail(f, "connection lost during the run", c->vin);
		break;
	case BUS_SUBSCRIBE_FAILED:
		fleet_fail(f, "cannot subscribe to its offers", c->vin);
		break;
	default:
		break;
	}
}

/* Gives up when not every car connected in time. */
static void fleet_connect_timeout(void *arg)
{
	struct fleet *f = arg;

	if (f->phase != FLEET_CONNECTING)
		return;
	fprintf(stderr, "fleet: only %zu of %zu cars connected after 60 s\n", f->connected,
		f->ncars);
	f->failed = 1;
	loop_stop(f->loop);
}

/* Reads up to FLEET_MAX_CARS VINs, one a line, into f->cars. Returns 0 or -errno. */
static int fleet_read_vins(struct fleet *f, const char *path)
{
	char line[64];
	FILE *in = fopen(path, "r");

	if (!in)
		return -errno;
	f->cars = calloc(FLEET_MAX_CARS, sizeof(*f->cars));
	if (!f->cars) {
		fclose(in);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), in)) {
		struct car *c;

		line[strcspn(line, "\r\n")] = '\0';
		if (!*line)
			continue;
		if (!vin_valid(line) || f->ncars == FLEET_MAX_CARS) {
			fprintf(stderr, "%s: %s: not a VIN, or more than %d\n", path, line,
				FLEET_MAX_CARS);
			fclose(in);
			return -EINVAL;
		}
		c = &f->cars[f->ncars++];
		memcpy(c->vin, line, sizeof(c->vin));
	}
	fclose(in);
	return f->ncars ? 0 : -EINVAL;
}

/* The nearest-rank q-quantile of the sorted a[0..n), in ms. */
static double quantile_ms(const uint64_t *a, size_t n, double q)
{
	size_t k = (size_t)(q * (double)n + 0.999999);

	if (n == 0)
		return 0;
	k = k ? k - 1 : 0;
	return (double)a[k < n ? k : n - 1] / 1000.0;
}

static int fleet_main(int argc, char **argv)
{
	struct fleet f = { 0 };
	char cert[512], key[512], offers[96];
	double pct;
	int r, rc = 1;

	if (argc < 8) {
		fprintf(stderr, "usage: bench_publish fleet URI CA PKI_DIR VINS_FILE RATE SECONDS "
				"OFFER_PCT [SAMPLES_PER_BATCH]\n");
		return 2;
	}
	f.rate = strtod(argv[5], NULL);
	f.seconds = (unsigned)strtoul(argv[6], NULL, 10);
	pct = strtod(argv[7], NULL);
	f.per_batch = argc > 8 ? strtoul(argv[8], NULL, 10) : 5;
	if (f.rate <= 0 || f.seconds == 0 || pct <= 0 || pct > 50 || f.per_batch == 0 ||
	    f.per_batch > CODEC_MAX_SAMPLES) {
		fprintf(stderr,
			"bad RATE, SECONDS, OFFER_PCT (0 < P <= 50) or SAMPLES_PER_BATCH\n");
		return 2;
	}
	f.period = (unsigned)(100.0 / pct + 0.5);
	r = fleet_read_vins(&f, argv[4]);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", argv[4], strerror(-r));
		goto out;
	}
	f.maxlat = (size_t)(f.rate * f.seconds / f.period) + f.ncars + 16;
	f.lat_us = calloc(f.maxlat, sizeof(*f.lat_us));
	f.samples = calloc(f.per_batch, sizeof(*f.samples));
	if (!f.lat_us || !f.samples || loop_new(&f.loop) < 0)
		goto out;
	for (size_t i = 0; i < f.ncars; i++) {
		struct car *c = &f.cars[i];
		struct bus_config conf;

		c->f = &f;
		c->offset = (unsigned)(i * f.period / f.ncars);
		if (getrandom(&c->epoch, sizeof(c->epoch), 0) != sizeof(c->epoch) || !c->epoch)
			c->epoch = 0x5eed + i;
		snprintf(c->topic, sizeof(c->topic), "pitstop/v1/vehicles/%s/telemetry", c->vin);
		snprintf(cert, sizeof(cert), "%s/vehicles/%s.crt", argv[3], c->vin);
		snprintf(key, sizeof(key), "%s/vehicles/%s.key", argv[3], c->vin);
		snprintf(offers, sizeof(offers), "pitstop/v1/vehicles/%s/offers", c->vin);
		client_config(&conf, argv[1], argv[2], cert, key, c->vin);
		r = bus_new(f.loop, &conf, fleet_on_bus, c, &c->bus);
		if (r == 0)
			r = bus_subscribe(c->bus, offers, 1);
		if (r < 0) {
			fprintf(stderr, "bus for %s: %s\n", c->vin, strerror(-r));
			goto out;
		}
	}
	for (size_t i = 0; i < f.ncars; i++)
		bus_start(f.cars[i].bus);
	if (loop_add_timer(f.loop, 60000, fleet_connect_timeout, &f) < 0)
		goto out;
	loop_run(f.loop);
	if (f.failed || !f.t_end_us)
		goto out;
	for (size_t i = 0; i < f.ncars; i++)
		if (f.cars[i].low_sent_us)
			f.missed++;
	qsort(f.lat_us, f.nlat, sizeof(*f.lat_us), cmp_u64);
	printf("fleet_cars=%zu\n", f.ncars);
	printf("fleet_target_batches_per_s=%.0f\n", f.rate);
	printf("publish_samples_per_batch=%zu\n", f.per_batch);
	printf("publish_batch_bytes=%zu\n", f.last_len);
	printf("publish_batches=%" PRIu64 "\n", f.sent);
	printf("publish_batches_per_s=%.0f\n",
	       (double)f.sent * 1e6 / (double)(f.t_end_us - f.t0_us));
	printf("publish_low_batches=%" PRIu64 "\n", f.low);
	printf("publish_refused=%" PRIu64 "\n", f.refused);
	printf("publish_behind=%" PRIu64 "\n", f.behind);
	printf("offers_received=%" PRIu64 "\n", f.offers);
	printf("offers_missed=%" PRIu64 "\n", f.missed);
	printf("offers_unmatched=%" PRIu64 "\n", f.unmatched + f.bad);
	printf("client_offer_ms_p50=%.2f\n", quantile_ms(f.lat_us, f.nlat, 0.50));
	printf("client_offer_ms_p99=%.2f\n", quantile_ms(f.lat_us, f.nlat, 0.99));
	printf("client_offer_ms_max=%.2f\n", quantile_ms(f.lat_us, f.nlat, 1.0));
	rc = 0;
out:
	for (size_t i = 0; f.cars && i < f.ncars; i++)
		bus_free(f.cars[i].bus); /* stops it; accepts NULL */
	if (f.loop)
		loop_free(f.loop);
	free(f.cars);
	free(f.samples);
	free(f.lat_us);
	return rc;
}

/* ---- watch mode -------------------------------------------------------- */

static void watch_on_bus(const struct bus_event *ev, void *arg)
{
	const char *v, *slash;
	struct sample *x = NULL;
	uint64_t epoch, seq;
	size_t n = 0;

	(void)arg;
	if (ev->type == BUS_SUBSCRIBE_FAILED) {
		fprintf(stderr, "watch: cannot subscribe to %s\n", ev->topic ? ev->topic : "?");
		return;
	}
	if (ev->type != BUS_MESSAGE || !ev->topic)
		return;
	v = strstr(ev->topic, "/vehicles/");
	if (!v || codec_decode_batch(ev->payload, ev->len, &epoch, &seq, &x, &n) < 0)
		return;
	v += strlen("/vehicles/");
	slash = strchr(v, '/');
	printf("%" PRIu64 " %.*s %" PRIu64 " %d\n", ev->received_us,
	       (int)(slash ? slash - v : (ptrdiff_t)strlen(v)), v, seq,
	       n && (x[n - 1].present & SAMPLE_FUEL) ? (int)x[n - 1].fuel_permille : -1);
	free(x);
}

static void watch_on_signal(int signo, void *arg)
{
	(void)signo;
	loop_stop(arg);
}

static int watch_main(int argc, char **argv)
{
	struct bus_config conf = { 0 };
	struct loop *loop = NULL;
	struct bus *bus = NULL;
	int rc = 1;

	if (argc < 7) {
		fprintf(stderr, "usage: bench_publish watch URI CA CERT KEY CLIENT_ID FILTER\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (loop_new(&loop) < 0)
		return 1;
	client_config(&conf, argv[1], argv[2], argv[3], argv[4], argv[5]);
	if (bus_new(loop, &conf, watch_on_bus, NULL, &bus) < 0 ||
	    bus_subscribe(bus, argv[6], 1) < 0 ||
	    loop_watch_signal(loop, SIGTERM, watch_on_signal, loop) < 0 ||
	    loop_watch_signal(loop, SIGINT, watch_on_signal, loop) < 0 || bus_start(bus) < 0)
		goto out;
	loop_run(loop);
	rc = 0;
out:
	bus_free(bus);
	loop_free(loop);
	return rc;
}

int main(int argc, char **argv)
{
	struct bus_config conf = { 0 };
	struct bench b = { 0 };
	char acks[160];
	uint64_t n;
	int r;

	if (argc > 1 && strcmp(argv[1], "fleet") == 0) {
		log_init("bench_publish", LOG_LEVEL_WARN);
		return fleet_main(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "watch") == 0) {
		log_init("bench_publish", LOG_LEVEL_WARN);
		return watch_main(argc - 1, argv + 1);
	}
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
	client_config(&conf, argv[1], argv[2], argv[3], argv[4], argv[5]);
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
