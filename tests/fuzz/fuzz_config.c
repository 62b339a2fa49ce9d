/*
 * libFuzzer target for common/config.c: the input is a whole config file.
 * config.c has no in-memory entry point, so the bytes go into a memfd and
 * config_load() reads them through /proc/self/fd/N, with a small table that
 * has every option type: strings (free text, and two with the validators the
 * daemons use), an int and a double with ranges, a bool, defaults.
 *
 * Checked on every input: no crash and no leak (ASan/LSan, valgrind on the
 * replay); on success the values are in range; on failure the message is
 * "<path>:<line>: <what>" with a line number the input has, and every string
 * field is freed and NULL again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create; the CMake build defines it already */
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "vin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                             \
	do {                                                                                    \
		if (!(cond)) {                                                                  \
			fprintf(stderr, "fuzz_config: check failed at line %d: %s\n", __LINE__, \
				#cond);                                                         \
			abort();                                                                \
		}                                                                               \
	} while (0)

struct fuzz_conf {
	char *name;	 /* free text, with a default */
	char *vin;	 /* checked by vin_check() */
	char *log_level; /* checked by log_level_check() */
	int port;	 /* 1..65535 */
	int retries;	 /* -5..5, no default */
	double speed;	 /* 0..250 */
	int enabled;	 /* bool */
};

/* config_check_fn: a well-formed VIN (as the agent's "vin" option). */
static int vin_check(const char *value, char *msg, size_t msglen)
{
	if (vin_valid(value))
		return 0;
	snprintf(msg, msglen, "is not a valid VIN");
	return -1;
}

static const struct config_option table[] = {
	{ "name", CONFIG_STRING, offsetof(struct fuzz_conf, name), 0, 0, "pitstop", "text", NULL },
	{ "vin", CONFIG_STRING, offsetof(struct fuzz_conf, vin), 0, 0, NULL, "a VIN", vin_check },
	{ "log_level", CONFIG_STRING, offsetof(struct fuzz_conf, log_level), 0, 0, "info",
	  "a level", log_level_check },
	{ "port", CONFIG_INT, offsetof(struct fuzz_conf, port), 1, 65535, "1883", "a port", NULL },
	{ "retries", CONFIG_INT, offsetof(struct fuzz_conf, retries), -5, 5, NULL, "an int", NULL },
	{ "speed", CONFIG_DOUBLE, offsetof(struct fuzz_conf, speed), 0, 250, "30.5", "km/h", NULL },
	{ "enabled", CONFIG_BOOL, offsetof(struct fuzz_conf, enabled), 0, 1, "yes", "a bool",
	  NULL },
	CONFIG_END,
};

/* The memfd the input is written to, made once; its /proc path. */
static int memfd = -1;
static char path[64];

/* Number of lines in data as fgets() counts them (a last line without '\n' counts). */
static unsigned count_lines(const uint8_t *data, size_t size)
{
	unsigned n = 0;

	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n')
			n++;
	return n + (size > 0 && data[size - 1] != '\n');
}

/* Writes all of data at offset 0 of memfd, replacing what was there. */
static void put_input(const uint8_t *data, size_t size)
{
	size_t done = 0;

	CHECK(ftruncate(memfd, 0) == 0);
	while (done < size) {
		ssize_t w = pwrite(memfd, data + done, size - done, (off_t)done);

		CHECK(w > 0);
		done += (size_t)w;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_conf conf;
	char err[1024], prefix[80];
	size_t plen;
	int r;

	if (memfd < 0) {
		log_init("fuzz_config", LOG_LEVEL_ERROR);
		memfd = memfd_create("fuzz_config", MFD_CLOEXEC);
		CHECK(memfd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	}
	put_input(data, size);
	memset(&conf, 0xa5, sizeof(conf)); /* config_load must not read what was there */
	err[0] = '\0';
	r = config_load(path, table, &conf, err, sizeof(err));
	if (r == 0) {
		CHECK(conf.name && conf.log_level && log_level_parse(conf.log_level) >= 0);
		CHECK(!conf.vin || vin_valid(conf.vin));
		CHECK(conf.port >= 1 && conf.port <= 65535);
		CHECK(conf.retries >= -5 && conf.retries <= 5);
		CHECK(conf.speed >= 0 && conf.speed <= 250);
		CHECK(conf.enabled == 0 || conf.enabled == 1);
		config_free(table, &conf);
		CHECK(!conf.name && !conf.vin && !conf.log_level);
		return 0;
	}
	/* "<path>:<line>: <message>", the line one the input has */
	CHECK(!conf.name && !conf.vin && !conf.log_level);
	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s:", path);
	CHECK(strncmp(err, prefix, plen) == 0);
	{
		char *end;
		unsigned long line = strtoul(err + plen, &end, 10);

		CHECK(end > err + plen && err[plen] >= '1' && err[plen] <= '9');
		CHECK(line >= 1 && line <= count_lines(data, size));
		CHECK(end[0] == ':' && end[1] == ' ' && end[2] != '\0');
	}
	return 0;
}
