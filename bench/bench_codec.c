/*
 * bench_codec: what a drive costs on the wire, and how fast the codec is.
 * Reads samples (one per line: time_ms odometer_m fuel_permille lat_e7 lon_e7
 * speed_cms heading_cdeg fix) from stdin, as bench/payload.py makes them from
 * the shipped route, encodes them in batches like the agent does, and prints
 * key=value lines: payload bytes per sample (protobuf payload alone and with
 * the MQTT PUBLISH overhead), and encode/decode rates.
 *
 * usage: bench_codec [SAMPLES_PER_BATCH] < samples.txt
 */
#include "codec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Agents send a random queue epoch (fixed64: 9 bytes a batch with its tag). */
#define BENCH_EPOCH 0x9e3779b97f4a7c15ULL

/* Fixed header (2) + topic length (2) + topic + packet id (2) + v5 props (1). */
#define MQTT_OVERHEAD(topic_len) (2 + 2 + (topic_len) + 2 + 1)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t per_batch = argc > 1 ? strtoul(argv[1], NULL, 10) : 30;
	size_t n = 0, cap = 4096, batches = 0, bytes = 0;
	const size_t topic_len = strlen("pitstop/v1/vehicles/WP0ZZZ99ZTS392124/telemetry");
	struct sample *s = malloc(cap * sizeof(*s));
	long long t, odo;
	int fuel, lat, lon, spd, hdg, fix;
	double t0, el;
	size_t rounds = 0;

	if (!s || per_batch == 0 || per_batch > CODEC_MAX_SAMPLES)
		return 2;
	while (scanf("%lld %lld %d %d %d %d %d %d", &t, &odo, &fuel, &lat, &lon, &spd, &hdg,
		     &fix) == 8) {
		if (n == cap) {
			struct sample *m = realloc(s, (cap *= 2) * sizeof(*s));

			if (!m)
				return 1;
			s = m;
		}
		memset(&s[n], 0, sizeof(s[n]));
		s[n].time_ms = t;
		s[n].present = SAMPLE_ODOMETER | SAMPLE_FUEL;
		s[n].odometer_m = odo;
		s[n].fuel_permille = fuel;
		s[n].fix = (enum fix_mode)fix;
		if (fix >= FIX_2D) {
			s[n].present |= SAMPLE_POSITION | SAMPLE_SPEED | SAMPLE_HEADING;
			s[n].lat_e7 = lat;
			s[n].lon_e7 = lon;
			s[n].speed_cms = spd;
			s[n].heading_cdeg = hdg;
		}
		n++;
	}
	if (n == 0) {
		fprintf(stderr, "no samples on stdin\n");
		return 2;
	}

	for (size_t i = 0; i < n; i += per_batch) {
		size_t k = n - i < per_batch ? n - i : per_batch;
		uint8_t *buf;
		size_t len;

		if (codec_encode_batch(BENCH_EPOCH, batches + 1, s + i, k, &buf, &len) < 0) {
			fprintf(stderr, "encode failed at sample %zu\n", i);
			return 1;
		}
		bytes += len;
		batches++;
		free(buf);
	}
	printf("samples=%zu\n", n);
	printf("samples_per_batch=%zu\n", per_batch);
	printf("batches=%zu\n", batches);
	printf("payload_bytes_per_sample=%.2f\n", (double)bytes / (double)n);
	printf("mqtt_bytes_per_sample=%.2f\n",
	       (double)(bytes + batches * MQTT_OVERHEAD(topic_len)) / (double)n);
	printf("raw_struct_bytes_per_sample=%zu\n", sizeof(struct sample));

	/* Speed: encode and decode full batches for about a second each. */
	{
		size_t k = n < per_batch ? n : per_batch;
		uint8_t *buf = NULL;
		size_t len = 0;

		t0 = now_s();
		do {
			free(buf);
			if (codec_encode_batch(BENCH_EPOCH, 1, s, k, &buf, &len) < 0)
				return 1;
			rounds++;
		} while ((el = now_s() - t0) < 1.0);
		printf("encode_samples_per_s=%.0f\n", (double)(rounds * k) / el);

		rounds = 0;
		t0 = now_s();
		do {
			struct sample *out;
			size_t nout;
			uint64_t seq;

			if (codec_decode_batch(buf, len, NULL, &seq, &out, &nout) < 0)
				return 1;
			free(out);
			rounds++;
		} while ((el = now_s() - t0) < 1.0);
		printf("decode_samples_per_s=%.0f\n", (double)(rounds * k) / el);
		free(buf);
	}
	free(s);
	return 0;
}
