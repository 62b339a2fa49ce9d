/*
 * bench_budget: what a drive costs on the wire through the agent's own code.
 * Replays an NMEA file at 1 Hz (one sample per RMC sentence; a 'V' RMC is a
 * second without a fix) and, optionally, a signals replay CSV read by the
 * agent's signals module; builds each sample with sampler_build(), decides
 * with sampler_feed() and seals batches as the agent does
 * (sampler_batch_due(), all open samples when the car parks, the rest at the
 * end), with the settings of an agent config file (agent_config_load(): its
 * defaults for every key it does not set). Every batch is encoded with the
 * codec in v2 (what the agent sends) and v1, for comparison.
 *
 * Prints key=value lines: samples taken and kept, batches, payload bytes of
 * both encodings. bench/data_budget.py turns them into the month's figures.
 *
 * usage: bench_budget CONFIG NMEA [SIGNALS_CSV]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_config.h"
#include "codec.h"
#include "gnss.h"
#include "sampler.h"
#include "signals.h"

#define BENCH_EPOCH 0x9e3779b97f4a7c15ULL
#define BENCH_T0_MS INT64_C(1795000000000)

struct totals {
	size_t batches, v1_bytes, v2_bytes, parked_flushes;
};

/* Parses "ddmm.mmmm" + hemisphere into degrees; 0 on success. */
static int nmea_deg(const char *f, const char *hemi, int deg_digits, double *ret)
{
	char d[4] = { 0 };
	double v;

	if (strlen(f) < (size_t)deg_digits + 2)
		return -1;
	memcpy(d, f, (size_t)deg_digits);
	v = strtod(d, NULL) + strtod(f + deg_digits, NULL) / 60.0;
	*ret = (*hemi == 'S' || *hemi == 'W') ? -v : v;
	return 0;
}

/* Splits an RMC line into fix; returns 1 for an RMC line, 0 for others. */
static int parse_rmc(char *line, struct gnss_fix *fix)
{
	char *fld[16] = { 0 };
	int n = 0;

	if (strncmp(line, "$GPRMC,", 7) != 0 && strncmp(line, "$GNRMC,", 7) != 0)
		return 0;
	for (char *p = line; p && n < 16; n++) {
		fld[n] = p;
		p = strchr(p, ',');
		if (p)
			*p++ = '\0';
	}
	memset(fix, 0, sizeof(*fix));
	fix->mode = FIX_NONE;
	if (n < 9 || strcmp(fld[2], "A") != 0 || nmea_deg(fld[3], fld[4], 2, &fix->lat_deg) < 0 ||
	    nmea_deg(fld[5], fld[6], 3, &fix->lon_deg) < 0)
		return 1;
	fix->mode = FIX_3D;
	if (*fld[7]) {
		fix->has_speed = 1;
		fix->speed_ms = strtod(fld[7], NULL) / 1.943844;
	}
	if (*fld[8]) {
		fix->has_track = 1;
		fix->track_deg = strtod(fld[8], NULL);
	}
	return 1;
}

/* Encodes samples [0, n) as one batch in both encodings and counts them. */
static int ship(const struct sample *s, size_t n, struct totals *t)
{
	uint8_t *buf;
	size_t len;

	if (n == 0)
		return 0;
	t->batches++;
	if (codec_encode_batch_version(CODEC_BATCH_V1, BENCH_EPOCH, t->batches, s, n, &buf, &len) <
	    0)
		return -1;
	t->v1_bytes += len;
	free(buf);
	if (codec_encode_batch(BENCH_EPOCH, t->batches, s, n, &buf, &len) < 0)
		return -1;
	t->v2_bytes += len;
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	struct agent_config conf;
	struct sampler_config sc;
	struct sampler sp;
	struct signals *sig = NULL;
	struct totals tot = { 0 };
	struct sample *open;
	char err[512], line[512];
	size_t taken = 0, kept = 0, nopen = 0;
	uint64_t first_open_ms = 0;
	FILE *f;

	if (argc < 3) {
		fprintf(stderr, "usage: bench_budget CONFIG NMEA [SIGNALS_CSV]\n");
		return 2;
	}
	if (agent_config_load(argv[1], &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	if (argc > 3 && signals_replay_open(argv[3], 0, 0, err, sizeof(err), &sig) < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	f = fopen(argv[2], "r");
	open = calloc(CODEC_MAX_SAMPLES, sizeof(*open));
	if (!f || !open) {
		perror(argv[2]);
		return 2;
	}
	agent_sampler_config(&conf, &sc);
	sampler_init(&sp);
	while (fgets(line, sizeof(line), f)) {
		uint64_t now = (uint64_t)taken * 1000;
		struct vehicle_signals vs;
		struct gnss_fix fix;
		struct sample s;
		unsigned verdict;

		if (!parse_rmc(line, &fix))
			continue;
		signals_read(sig, now, &vs);
		sampler_build(&vs, &fix, fix.mode >= FIX_2D, BENCH_T0_MS + (int64_t)now, &s);
		taken++;
		verdict = sampler_feed(&sp, &sc, &s, now);
		if (verdict & SAMPLER_KEEP) {
			kept++;
			if (nopen == 0)
				first_open_ms = now;
			open[nopen++] = s;
		}
		if ((verdict & SAMPLER_PARKED) ||
		    sampler_batch_due((unsigned)nopen, first_open_ms, now, conf.batch_max_samples,
				      conf.batch_max_age_ms)) {
			tot.parked_flushes += (verdict & SAMPLER_PARKED) && nopen ? 1 : 0;
			if (ship(open, nopen, &tot) < 0) {
				fprintf(stderr, "encode failed near sample %zu\n", taken);
				return 1;
			}
			nopen = 0;
		}
	}
	if (ship(open, nopen, &tot) < 0)
		return 1;
	if (taken == 0) {
		fprintf(stderr, "%s: no RMC sentences\n", argv[2]);
		return 2;
	}
	printf("samples_taken=%zu\n", taken);
	printf("samples_kept=%zu\n", kept);
	printf("batches=%zu\n", tot.batches);
	printf("parked_flushes=%zu\n", tot.parked_flushes);
	printf("payload_bytes_v2=%zu\n", tot.v2_bytes);
	printf("payload_bytes_v1=%zu\n", tot.v1_bytes);
	printf("mqtt_keepalive_s=%d\n", conf.mqtt_keepalive_s);
	fclose(f);
	free(open);
	signals_free(sig);
	agent_config_free(&conf);
	return 0;
}
