/*
 * Unit tests of agent/queue.c's flash budget and byte cap, on a real SQLite
 * database in a temporary directory: with max_loss_ms samples wait in memory
 * (no row written), queue_flush_now() writes them in one go to the sample
 * journal (still no row; they survive a reopen), a seal takes the stored
 * samples first and then the ones in memory (oldest first, without writing
 * those as rows), a full memory buffer goes to the journal and, full too,
 * to rows; journaled samples survive a reopen (a kill) and are sealed once,
 * in order, a seal retires them, a partial seal keeps the rest as rows, and
 * a journal left by a deleted queue.db is not replayed into a new one;
 * the byte cap thins the oldest unsent batch first (every Nth sample kept,
 * same epoch and seq, marked thinned, never thinned twice, published
 * batches skipped), drops the oldest batch only when nothing is left to
 * thin, and counts both persistently.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec.h"
#include "queue.h"
#include "testdir.h"

struct fixture {
	struct testdir dir;
	char db[300];
	struct queue *q;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || testdir_make(&f->dir) < 0) {
		free(f);
		return -1;
	}
	testdir_file(&f->dir, "queue.db", f->db, sizeof(f->db));
	assert_int_equal(queue_open(f->db, 1000, &f->q), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	queue_close(f->q);
	testdir_remove(&f->dir);
	free(f);
	return 0;
}

static void reopen(struct fixture *f)
{
	queue_close(f->q);
	f->q = NULL;
	assert_int_equal(queue_open(f->db, 1000, &f->q), 0);
}

static struct sample make_sample(int i)
{
	struct sample s = { 0 };

	s.time_ms = 1700000000000LL + i * 1000;
	s.present = SAMPLE_ODOMETER | SAMPLE_FUEL | SAMPLE_POSITION | SAMPLE_SPEED;
	s.fix = FIX_3D;
	s.odometer_m = 123456000 + i * 10;
	s.fuel_permille = 500;
	/* Irregular steps, as a real drive: thinning then halves the bytes. */
	s.lat_e7 = 523000000 + i * 1000 + (int32_t)((uint32_t)i * 2654435761u % 700);
	s.lon_e7 = 134000000 - i * 1500 + (int32_t)((uint32_t)i * 40503u % 900);
	s.speed_cms = 1000 + i;
	return s;
}

/* One integer from a query on a second connection (what is on the file). */
static int64_t db_int(const struct fixture *f, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_open_v2(f->db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

static void add(struct fixture *f, int from, int n)
{
	for (int i = from; i < from + n; i++) {
		struct sample s = make_sample(i);

		assert_int_equal(queue_add_sample(f->q, &s), 0);
	}
}

/* Decodes stored batch seq; returns its samples (caller frees) and count. */
static struct sample *batch_samples(struct fixture *f, uint64_t seq, size_t *ret_n)
{
	char sql[128];
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	struct sample *out = NULL;
	uint64_t epoch = 0, bseq = 0;

	snprintf(sql, sizeof(sql), "SELECT data FROM batches WHERE seq = %llu",
		 (unsigned long long)seq);
	assert_int_equal(sqlite3_open_v2(f->db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(codec_decode_batch(sqlite3_column_blob(s, 0),
					    (size_t)sqlite3_column_bytes(s, 0), &epoch, &bseq, &out,
					    ret_n),
			 0);
	assert_true(bseq == seq);
	assert_true(epoch == queue_epoch(f->q));
	sqlite3_finalize(s);
	sqlite3_close(h);
	return out;
}

/* Samples wait in memory; a flush writes them; a close without one loses them. */
static void test_samples_wait_in_memory(void **state)
{
	struct fixture *f = *state;
	struct queue_limits lim = { .max_loss_ms = 60000 };

	assert_int_equal(queue_set_limits(f->q, &lim), 0);
	add(f, 0, 3);
	assert_int_equal(queue_open_samples(f->q), 3);
	assert_int_equal(db_int(f, "SELECT count(*) FROM samples"), 0);
	assert_int_equal(queue_flush_now(f->q), 3);
	assert_int_equal(queue_flush_now(f->q), 0);
	assert_int_equal(db_int(f, "SELECT count(*) FROM samples"), 0); /* in the journal */
	add(f, 3, 2);
	reopen(f); /* a power cut: the 2 in memory are gone, the flushed 3 stay */
	assert_int_equal(queue_open_samples(f->q), 3);
}

/* max_loss_ms 0: every sample is on the file when the add returns. */
static void test_zero_loss_writes_each(void **state)
{
	struct fixture *f = *state;
	struct queue_limits lim = { .max_loss_ms = 0 };

	assert_int_equal(queue_set_limits(f->q, &lim), 0);
	add(f, 0, 4);
	assert_int_equal(db_int(f, "SELECT count(*) FROM samples"), 4);
}

/* A seal takes stored samples, then those in memory, never writing those. */
static void test_seal_takes_stored_then_memory(void **state)
{
	struct fixture *f = *state;
	struct queue_limits lim = { .max_loss_ms = 60000 };
	struct queue_limits zero = { .max_loss_ms = 0 };
	struct sample *got;
	uint64_t seq = 0;
	size_t n = 0;

	assert_int_equal(queue_set_limits(f->q, &zero), 0);
	add(f, 0, 2); /* stored as rows */
	assert_int_equal(db_int(f, "SELECT count(*) FROM samples"), 2);
	assert_int_equal(queue_set_limits(f->q, &lim), 0);
	add(f, 2, 2);
	assert_int_equal(queue_flush_now(f->q), 2); /* in the journal */
	add(f, 4, 3);
	assert_int_equal(queue_seal(f->q, 4, &seq), 4);
	assert_int_equal(queue_open_samples(f->q), 3);
	assert_int_equal(db_int(f, "SELECT count(*) FROM samples"), 0);
	got = batch_samples(f, seq, &n);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++)
		assert_true(got[i].time_ms == make_sample((int)i).time_ms);
	free(got);
	assert_int_equal(queue_seal(f->q, 30, &seq), 3);
	got = batch_samples(f, seq, &n);
	assert_int_equal(n, 3);
	assert_true(got[0].time_ms == make_sample(4).time_ms);
	free(got);
	assert_int_equal(queue_open_samples(f->q), 0);
	assert_int_equal(db_int(f, "SELECT count(*) FROM samples"), 0);
}

/*
 * A full memory buffer is written at once, whatever max_loss_ms says: to
 * the journal, and when that is full too (no seal for QUEUE_MAX_PENDING
 * samples), to rows, all of them.
 */
static void test_full_memory_flushes(void **state)
{
	struct fixture *f = *state;
	struct queue_limits lim = { .max_loss_ms = 60000 };

	assert_int_equal(queue_set_limits(f->q, &lim), 0);
	add(f, 0, QUEUE_MAX_PENDING);
	assert_int_equal(db_int(f, "SELECT count(*) FROM samples"), 0);
	reopen(f); /* all in the journal */
	assert_int_equal(queue_set_limits(f->q, &lim), 0);
	assert_int_equal(queue_open_samples(f->q), QUEUE_MAX_PENDING);
	add(f, QUEUE_MAX_PENDING, 1);
	assert_int_equal(db_int(f, "SELECT count(*) FROM samples"), QUEUE_MAX_PENDING);
	assert_int_equal(queue_open_samples(f->q), QUEUE_MAX_PENDING + 1);
	reopen(f); /* the last one was in memory only */
	assert_int_equal(queue_open_samples(f->q), QUEUE_MAX_PENDING);
}

/* Seals n batches of 30 samples each, starting at sample *next. */
static void seal_batches(struct fixture *f, int nbatches, int *next)
{
	for (int b = 0; b < nbatches; b++) {
		uint64_t seq = 0;

		add(f, *next, 30);
		*next += 30;
		assert_int_equal(queue_seal(f->q, 30, &seq), 30);
	}
}

/*
 * Over the cap the oldest unsent batch is thinned (same seq, every 2nd
 * sample), a published one is skipped, nothing is dropped while something
 * can be thinned, then the oldest is dropped; counters persist.
 */
static void test_cap_thins_before_dropping(void **state)
{
	struct fixture *f = *state;
	struct queue_limits lim = { .max_loss_ms = 0 };
	struct queue_stats st;
	struct sample *got;
	uint64_t seq = 0;
	uint8_t *data = NULL;
	size_t n = 0, len = 0, one;
	int next = 0;

	seal_batches(f, 1, &next);
	queue_stats(f->q, &st);
	one = st.bytes;
	assert_true(one > 0);
	/* Room for 4 full batches; batch 1 is published (in flight). */
	lim.max_bytes = 4 * one + one / 2;
	assert_int_equal(queue_set_limits(f->q, &lim), 0);
	assert_int_equal(queue_peek_unsent(f->q, &seq, &data, &len), 0);
	free(data);
	assert_true(seq == 1);
	assert_int_equal(queue_mark_inflight(f->q, 1), 0);
	seal_batches(f, 4, &next);
	queue_stats(f->q, &st);
	assert_int_equal(st.batches, 5);
	assert_true(st.bytes <= lim.max_bytes);
	assert_true(st.thinned_batches >= 1);
	assert_true(st.dropped == 0);
	/* Batch 1 (in flight) is whole; batch 2, the oldest unsent, is thinned. */
	got = batch_samples(f, 1, &n);
	assert_int_equal(n, 30);
	free(got);
	got = batch_samples(f, 2, &n);
	assert_int_equal(n, 15);
	for (size_t i = 0; i < n; i++)
		assert_true(got[i].time_ms == make_sample(30 + 2 * (int)i).time_ms);
	free(got);
	assert_int_equal(db_int(f, "SELECT thinned FROM batches WHERE seq = 2"), 1);
	assert_int_equal(db_int(f, "SELECT thinned FROM batches WHERE seq = 1"), 0);
	assert_int_equal(db_int(f, "SELECT nsamples FROM batches WHERE seq = 2"), 15);

	/* Keep sealing: every unsent batch gets thinned once, then drops begin. */
	seal_batches(f, 12, &next);
	queue_stats(f->q, &st);
	assert_true(st.bytes <= lim.max_bytes);
	assert_true(st.dropped > 0);
	assert_true(st.thinned_samples == 15 * st.thinned_batches);
	assert_int_equal(db_int(f, "SELECT count(*) FROM batches WHERE nsamples < 15"), 0);
	/* The dropped ones are the oldest: the stored seqs are one run to the last. */
	assert_int_equal(db_int(f, "SELECT max(seq) - min(seq) + 1 - count(*) FROM batches"), 0);
	assert_true((uint64_t)db_int(f, "SELECT min(seq) FROM batches") == st.dropped + 1);

	reopen(f);
	{
		struct queue_stats again;

		queue_stats(f->q, &again);
		assert_true(again.thinned_batches == st.thinned_batches);
		assert_true(again.thinned_samples == st.thinned_samples);
		assert_true(again.dropped == st.dropped);
		assert_true(again.bytes == st.bytes);
	}
}

/* A receipt's delete gives its bytes back. */
static void test_delete_frees_bytes(void **state)
{
	struct fixture *f = *state;
	struct queue_stats st;
	int next = 0;

	seal_batches(f, 2, &next);
	queue_stats(f->q, &st);
	assert_int_equal(queue_delete(f->q, 1), 1);
	{
		struct queue_stats after;

		queue_stats(f->q, &after);
		assert_true(after.bytes < st.bytes && after.bytes > 0);
		assert_true(after.bytes == (uint64_t)db_int(f, "SELECT sum(length(data)) FROM "
							       "batches"));
	}
}

/* Limits out of range are refused. */
static void test_bad_limits(void **state)
{
	struct fixture *f = *state;
	struct queue_limits lim = { .max_loss_ms = QUEUE_MAX_LOSS_MS + 1 };

	assert_int_equal(queue_set_limits(f->q, &lim), -EINVAL);
	lim.max_loss_ms = 0;
	lim.thin_every = 1;
	assert_int_equal(queue_set_limits(f->q, &lim), -EINVAL);
}

/* A new queue uses 512-byte pages (docs/performance.md) and schema version 2. */
static void test_new_queue_settings(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(db_int(f, "PRAGMA page_size"), 512);
	assert_int_equal(db_int(f, "PRAGMA user_version"), 2);
}

/* Batch seq holds samples first..first+n-1, in order. */
static void check_run(struct fixture *f, uint64_t seq, int first, size_t n)
{
	size_t got_n = 0;
	struct sample *got = batch_samples(f, seq, &got_n);

	assert_int_equal(got_n, n);
	for (size_t i = 0; i < n; i++)
		assert_true(got[i].time_ms == make_sample(first + (int)i).time_ms);
	free(got);
}

/* reopen() with samples kept in memory up to 5 s (the default). */
static void reopen_lossy(struct fixture *f)
{
	struct queue_limits lim = { .max_loss_ms = 5000 };

	reopen(f);
	assert_int_equal(queue_set_limits(f->q, &lim), 0);
}

/* Journaled samples survive a kill (a reopen), are sealed once, in order. */
static void test_journal_replay_after_kill(void **state)
{
	struct fixture *f = *state;
	uint64_t seq = 0;

	reopen_lossy(f);
	add(f, 0, 4);
	assert_int_equal(queue_flush_now(f->q), 4);
	add(f, 4, 3);
	assert_int_equal(queue_flush_now(f->q), 3);
	add(f, 7, 2); /* in memory only: lost with the kill */
	assert_int_equal(db_int(f, "SELECT count(*) FROM samples"), 0);
	reopen_lossy(f); /* replayed, and made rows under a new generation */
	assert_int_equal(db_int(f, "SELECT count(*) FROM samples"), 7);
	assert_int_equal(queue_open_samples(f->q), 7);
	assert_int_equal(queue_flush_now(f->q), 0); /* already durable */
	assert_int_equal(queue_seal(f->q, 100, &seq), 7);
	check_run(f, seq, 0, 7);

	reopen_lossy(f); /* the seal retired them: not replayed again */
	assert_int_equal(queue_open_samples(f->q), 0);
	add(f, 20, 2);
	assert_int_equal(queue_flush_now(f->q), 2);
	reopen_lossy(f);
	assert_int_equal(queue_open_samples(f->q), 2);
}

/* A seal of fewer than are journaled: the rest become rows, none twice. */
static void test_journal_partial_seal(void **state)
{
	struct fixture *f = *state;
	uint64_t seq = 0;

	reopen_lossy(f);
	add(f, 0, 5);
	assert_int_equal(queue_flush_now(f->q), 5);
	add(f, 5, 1);
	assert_int_equal(queue_seal(f->q, 2, &seq), 2);
	assert_int_equal(db_int(f, "SELECT count(*) FROM samples"), 3);
	reopen_lossy(f); /* sample 5 was in memory only */
	assert_int_equal(queue_open_samples(f->q), 3);
	assert_int_equal(queue_seal(f->q, 100, &seq), 3);
	check_run(f, seq, 2, 3);
	assert_int_equal(queue_open_samples(f->q), 0);
}

/*
 * A torn write in the middle (record 3 damaged, 4..9 intact): replay stops
 * at 3, and the records after it never come back once new ones are
 * written over the damaged one (a new generation at every open).
 */
static void test_journal_torn_middle_never_resurfaces(void **state)
{
	struct fixture *f = *state;
	char side[340];
	uint8_t junk = 0x55;
	int fd;

	reopen_lossy(f);
	add(f, 0, 10);
	assert_int_equal(queue_flush_now(f->q), 10);
	queue_close(f->q);
	f->q = NULL;
	snprintf(side, sizeof(side), "%s-samples", f->db);
	fd = open(side, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &junk, 1, 3 * 64 + 20), 1);
	close(fd);
	reopen_lossy(f);
	assert_int_equal(queue_open_samples(f->q), 3);
	add(f, 10, 1);
	assert_int_equal(queue_flush_now(f->q), 1);
	reopen_lossy(f);
	assert_int_equal(queue_open_samples(f->q), 4);
}

/* A journal left by a queue.db deleted by hand is not replayed. */
static void test_journal_of_deleted_db_ignored(void **state)
{
	struct fixture *f = *state;
	char side[340];

	reopen_lossy(f);
	add(f, 0, 3);
	assert_int_equal(queue_flush_now(f->q), 3);
	queue_close(f->q);
	f->q = NULL;
	for (int i = 0; i < 3; i++) {
		snprintf(side, sizeof(side), "%s%s", f->db,
			 (const char *[]){ "", "-wal", "-shm" }[i]);
		unlink(side);
	}
	reopen_lossy(f);
	assert_int_equal(queue_open_samples(f->q), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_samples_wait_in_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_loss_writes_each, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seal_takes_stored_then_memory, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_full_memory_flushes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cap_thins_before_dropping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_frees_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_queue_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_replay_after_kill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_partial_seal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_of_deleted_db_ignored, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_journal_torn_middle_never_resurfaces, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
