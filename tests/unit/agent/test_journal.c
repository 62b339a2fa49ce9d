/*
 * Unit tests of agent/journal.c, the open-sample journal, on real files in
 * a temporary directory: records round-trip; replay stops at a torn tail (a
 * record cut short), at a CRC mismatch and at a record of another
 * generation or index, never returning damaged or stale samples; the file
 * is 0600 and full size from the start. How the queue uses it (replay
 * after a kill, retiring at a seal) is in test_queue_cap.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec.h"
#include "journal.h"
#include "testdir.h"

#define GEN UINT64_C(0x123456789abc)

struct fixture {
	struct testdir dir;
	char side[320]; /* the journal */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || testdir_make(&f->dir) < 0) {
		free(f);
		return -1;
	}
	testdir_file(&f->dir, "queue.db-samples", f->side, sizeof(f->side));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	testdir_remove(&f->dir);
	free(f);
	return 0;
}

static struct sample make_sample(int i)
{
	struct sample s = { 0 };

	s.time_ms = 1700000000000LL + i * 1000;
	s.present = SAMPLE_ODOMETER | SAMPLE_FUEL | SAMPLE_POSITION | SAMPLE_SPEED | SAMPLE_HEADING;
	s.fix = FIX_3D;
	s.odometer_m = 9876543210LL + i;
	s.fuel_permille = 1000 - i;
	s.lat_e7 = -899999999 + i;
	s.lon_e7 = 1799999999 - i;
	s.speed_cms = 19999 - i;
	s.heading_cdeg = 35999 - i;
	return s;
}

static void append(struct journal *j, uint64_t gen, int from, int n)
{
	struct sample s[16];

	assert_true(n <= 16);
	for (int i = 0; i < n; i++)
		s[i] = make_sample(from + i);
	assert_int_equal(journal_append(j, gen, (unsigned)from, s, (unsigned)n), 0);
}

/* Overwrites one byte of the file at off (a damaged record). */
static void poke(const char *path, off_t off, uint8_t v)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &v, 1, off), 1);
	close(fd);
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct journal *j = NULL;
	struct sample got[64];
	struct stat st;
	int damaged = -1;

	assert_int_equal(journal_open(f->side, 64, &j), 0);
	assert_int_equal(stat(f->side, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 64 * JOURNAL_RECORD_BYTES);
	assert_int_equal(journal_replay(j, GEN, got, 64, &damaged), 0); /* zeros */
	assert_int_equal(damaged, 0);
	append(j, GEN, 0, 3);
	append(j, GEN, 3, 2);
	journal_close(j);
	assert_int_equal(journal_open(f->side, 64, &j), 0);
	assert_int_equal(journal_replay(j, GEN, got, 64, &damaged), 5);
	assert_int_equal(damaged, 0);
	for (int i = 0; i < 5; i++) {
		struct sample w = make_sample(i);

		assert_true(got[i].time_ms == w.time_ms && got[i].present == w.present &&
			    got[i].fix == w.fix && got[i].odometer_m == w.odometer_m &&
			    got[i].fuel_permille == w.fuel_permille && got[i].lat_e7 == w.lat_e7 &&
			    got[i].lon_e7 == w.lon_e7 && got[i].speed_cms == w.speed_cms &&
			    got[i].heading_cdeg == w.heading_cdeg);
	}
	assert_int_equal(journal_replay(j, GEN + 1, got, 64, &damaged), 0);
	assert_int_equal(journal_append(j, GEN, 62, got, 3), -ENOSPC);
	journal_close(j);
}

/* A record cut short by a power cut (its second half never written). */
static void test_torn_tail_dropped(void **state)
{
	struct fixture *f = *state;
	struct journal *j = NULL;
	struct sample got[64];
	int damaged = 0;

	assert_int_equal(journal_open(f->side, 64, &j), 0);
	append(j, GEN, 0, 4);
	for (off_t b = 3 * JOURNAL_RECORD_BYTES + 32; b < 4 * JOURNAL_RECORD_BYTES; b++)
		poke(f->side, b, 0);
	assert_int_equal(journal_replay(j, GEN, got, 64, &damaged), 3);
	assert_int_equal(damaged, 1);
	journal_close(j);
}

/* One flipped bit in the middle: replay stops before it, nothing after. */
static void test_crc_mismatch_stops(void **state)
{
	struct fixture *f = *state;
	struct journal *j = NULL;
	struct sample got[64];
	int damaged = 0;

	assert_int_equal(journal_open(f->side, 64, &j), 0);
	append(j, GEN, 0, 6);
	poke(f->side, 2 * JOURNAL_RECORD_BYTES + 20, 0x55); /* inside time_ms */
	assert_int_equal(journal_replay(j, GEN, got, 64, &damaged), 2);
	assert_int_equal(damaged, 1);
	journal_close(j);
}

/* Records of an older generation past the new span's end are not read. */
static void test_older_generation_ignored(void **state)
{
	struct fixture *f = *state;
	struct journal *j = NULL;
	struct sample got[64];
	int damaged = 1;

	assert_int_equal(journal_open(f->side, 64, &j), 0);
	append(j, GEN, 0, 8);
	append(j, GEN + 1, 0, 2);
	assert_int_equal(journal_replay(j, GEN + 1, got, 64, &damaged), 2);
	assert_int_equal(damaged, 0);
	assert_true(got[1].time_ms == make_sample(1).time_ms);
	/* A record at the wrong place (its index says 5) is damaged. */
	append(j, GEN + 2, 5, 1);
	poke(f->side, 0, 0); /* record 0 of GEN + 1 is no longer of GEN + 1 */
	assert_int_equal(journal_replay(j, GEN + 1, got, 64, &damaged), 0);
	journal_close(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crc_mismatch_stops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_generation_ignored, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
