/*
 * Helpers shared by the gateway unit tests (header-only: the test glob
 * builds only test_*.c). A temporary directory per test run, removed at the
 * end and also when a test fails (atexit), and sample builders.
 */
#ifndef PITSTOP_GW_TEST_UTIL_H
#define PITSTOP_GW_TEST_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"

static char gw_test_dir[256];

static inline int gw_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void gw_test_dir_remove(void)
{
	if (gw_test_dir[0]) {
		nftw(gw_test_dir, gw_rm_one, 16, FTW_DEPTH | FTW_PHYS);
		gw_test_dir[0] = '\0';
	}
}

/* Creates the run's temp dir (once) and registers its removal. */
static inline const char *gw_test_dir_make(void)
{
	if (!gw_test_dir[0]) {
		snprintf(gw_test_dir, sizeof(gw_test_dir), "/tmp/pitstop-gw-test-XXXXXX");
		if (!mkdtemp(gw_test_dir)) {
			perror("mkdtemp");
			exit(1);
		}
		atexit(gw_test_dir_remove);
	}
	return gw_test_dir;
}

/* A fresh path inside the temp dir: "<dir>/<name>". */
static inline void gw_test_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", gw_test_dir_make(), name);
}

/* A sample at time t with fuel (permille) and, if lat != 0, a position. */
static inline struct sample gw_sample(int64_t t, int32_t fuel, int32_t lat, int32_t lon)
{
	struct sample s;

	memset(&s, 0, sizeof(s));
	s.time_ms = t;
	s.fix = FIX_3D;
	s.present = SAMPLE_FUEL | SAMPLE_ODOMETER;
	s.fuel_permille = fuel;
	s.odometer_m = t / 100;
	if (lat) {
		s.present |= SAMPLE_POSITION;
		s.lat_e7 = lat;
		s.lon_e7 = lon;
	}
	return s;
}

#endif
