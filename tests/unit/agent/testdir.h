/*
 * Temporary directories for the agent's unit tests: made with mkdtemp under
 * $TMPDIR (or /tmp) and removed recursively by the cmocka teardown, which
 * also runs when a test fails.
 */
#ifndef PITSTOP_TEST_TESTDIR_H
#define PITSTOP_TEST_TESTDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct testdir {
	char path[256];
};

/* Creates a fresh directory; returns 0 or -1. */
static inline int testdir_make(struct testdir *t)
{
	const char *base = getenv("TMPDIR");

	snprintf(t->path, sizeof(t->path), "%s/pitstop-agent-test.XXXXXX", base ? base : "/tmp");
	return mkdtemp(t->path) ? 0 : -1;
}

static inline int testdir_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

/* Removes the directory and everything in it. */
static inline void testdir_remove(struct testdir *t)
{
	if (t->path[0])
		nftw(t->path, testdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	t->path[0] = '\0';
}

/* Writes "<dir>/<name>" into buf. */
static inline const char *testdir_file(const struct testdir *t, const char *name, char *buf,
				       size_t len)
{
	snprintf(buf, len, "%s/%s", t->path, name);
	return buf;
}

#endif
